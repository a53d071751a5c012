"""The mapping file of a CSV or Excel source (YAML), its model and its reading:

    name: demo                      # the source's name in the warehouse
    directory: .                    # where the files are, relative to the mapping file
    delimiter: ","                  # or ";" (French exports), or "auto"
    encoding: utf-8                 # or latin-1, utf-16 (a UTF-8 BOM is always fine)
    timezone: Europe/Paris          # for timestamps without an offset
    progress_scale: auto            # share (0-1) | percent (0-100) | auto
    entities:
      learners:
        file: learners.csv
        columns: {learner_id: id, email: mail, first_name: prenom}   # warehouse: export
      progress_events:
        file: suivi.xlsx            # an Excel workbook: its first sheet, or `sheet:`
        sheet: Traces
        columns: {...}

Columns not mapped are left empty; a mapped column missing from the file is an error that
names both (found when the file is staged: csv_export.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from connectors import excel
from connectors.base import DEFAULT_DATE_FORMATS, DEFAULT_DATETIME_FORMATS, ENTITIES, SourceError

Entity = Literal["learners", "courses", "enrolments", "activities", "progress_events",
                 "contributions", "outcomes"]


class EntityMapping(BaseModel):
    model_config = ConfigDict(extra="forbid")
    file: str
    sheet: str | None = None        # Excel files: the sheet's name (default: the first)
    columns: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _sheet_of_a_workbook(self):
        if self.sheet is not None and not excel.is_workbook(self.file):
            raise ValueError(f"sheet: {self.file} is not an Excel workbook (.xlsx); "
                             f"remove `sheet` or name the .xlsx file")
        return self


class CsvSource(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    directory: str = "."
    delimiter: str = "auto"
    encoding: Literal["utf-8", "latin-1", "utf-16"] = "utf-8"
    timezone: str = "Europe/Paris"
    datetime_formats: list[str] = Field(default_factory=lambda: list(DEFAULT_DATETIME_FORMATS))
    date_formats: list[str] = Field(default_factory=lambda: list(DEFAULT_DATE_FORMATS))
    # How to read a progress figure without a % sign: 'share' (0.42), 'percent' (42), or
    # 'auto' (above 1 means percent: then 1 is read as 100 %, not 1 %).
    progress_scale: Literal["auto", "share", "percent"] = "auto"
    entities: dict[Entity, EntityMapping]

    @model_validator(mode="after")
    def _known_columns(self):
        for entity, mapping in self.entities.items():
            unknown = set(mapping.columns) - set(ENTITIES[entity])
            if unknown:
                raise ValueError(f"entities.{entity}.columns: unknown warehouse column(s) "
                                 f"{', '.join(sorted(unknown))}; expected: {', '.join(ENTITIES[entity])}")
        return self


def read_mapping(path: Path) -> CsvSource:
    """The mapping file at `path`; a SourceError naming it when it is missing, not YAML,
    or not a valid mapping."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SourceError(f"{path}: mapping file not found") from None
    except yaml.YAMLError as exc:
        raise SourceError(f"{path}: not valid YAML: {exc}") from None
    return mapping_of(data, str(path))


def mapping_of(data: Any, where: str) -> CsvSource:
    """A mapping's settings, validated; the first fault a SourceError said from `where`."""
    try:
        return CsvSource.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise SourceError(f"{where}: {loc}: {first['msg']}") from None
