"""CSV exports from an LMS, described by a mapping file (YAML):

    name: demo                      # the source's name in the warehouse
    directory: .                    # where the files are, relative to the mapping file
    delimiter: ","                  # or ";" (French exports), or "auto"
    encoding: utf-8                 # or latin-1
    timezone: Europe/Paris          # for timestamps without an offset
    progress_scale: auto            # share (0-1) | percent (0-100) | auto
    entities:
      learners:
        file: learners.csv
        columns: {learner_id: id, email: mail, first_name: prenom}   # warehouse: export

Columns not mapped are left empty; a mapped column missing from the file is an error that
names both. Every value is staged as text and typed by the shared loader.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Literal

import duckdb
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from connectors.base import (DEFAULT_DATE_FORMATS, DEFAULT_DATETIME_FORMATS, ENTITIES,
                             SourceError, staging_table)

Entity = Literal["learners", "courses", "enrolments", "activities", "progress_events",
                 "contributions"]


class EntityMapping(BaseModel):
    model_config = ConfigDict(extra="forbid")
    file: str
    columns: dict[str, str] = Field(default_factory=dict)


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


class CsvConnector:
    kind = "csv"

    def __init__(self, source: CsvSource, base_dir: Path):
        self.source = source
        self.name = source.name
        self.timezone = source.timezone
        self.datetime_formats = source.datetime_formats
        self.date_formats = source.date_formats
        self.progress_scale = source.progress_scale
        self.directory = (base_dir / source.directory).resolve()
        self._tmp: tempfile.TemporaryDirectory | None = None

    @classmethod
    def from_file(cls, mapping_path: str | Path) -> "CsvConnector":
        path = Path(mapping_path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
            return cls(CsvSource.model_validate(data), path.parent)
        except FileNotFoundError:
            raise SourceError(f"{path}: mapping file not found") from None
        except yaml.YAMLError as exc:
            raise SourceError(f"{path}: not valid YAML: {exc}") from None
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(p) for p in first["loc"])
            raise SourceError(f"{path}: {loc}: {first['msg']}") from None

    def _read(self, con: duckdb.DuckDBPyConnection, file: Path) -> duckdb.DuckDBPyRelation:
        options = {"header": True, "all_varchar": True}
        if self.source.delimiter != "auto":
            options["delimiter"] = self.source.delimiter
        return con.read_csv(str(self._utf8(file)), **options)

    def _utf8(self, file: Path) -> Path:
        """DuckDB reads UTF-8 only (other encodings need an extension that cannot be
        fetched offline): other encodings are transcoded in chunks to a temporary copy."""
        if self.source.encoding == "utf-8":
            return file
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="relance-csv-")
        target = Path(self._tmp.name) / file.name
        with file.open("r", encoding=self.source.encoding, newline="") as src, \
                target.open("w", encoding="utf-8", newline="") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        return target

    def stage(self, con: duckdb.DuckDBPyConnection, state=None) -> dict[str, int]:
        counts = {}
        for entity, mapping in self.source.entities.items():
            file = self.directory / mapping.file
            if not file.exists():
                raise SourceError(f"source {self.name}: {entity}: file {file} not found")
            try:
                rel = self._read(con, file)
            except duckdb.Error as exc:
                raise SourceError(f"source {self.name}: {file}: cannot be read as CSV "
                                  f"({self.source.encoding}, delimiter "
                                  f"{self.source.delimiter!r}): {exc}") from None
            available = rel.columns
            # the BOM of UTF-8 exports from Excel sticks to the first header
            clean = {c.lstrip("\ufeff").strip(): c for c in available}
            projection = []
            for column in ENTITIES[entity]:
                source_col = mapping.columns.get(column)
                if source_col is None:
                    projection.append(f"null::varchar as {column}")
                    continue
                if source_col not in clean:
                    raise SourceError(
                        f"source {self.name}: {file.name}: column {source_col!r} (mapped to "
                        f"{entity}.{column}) is not in the file; its columns are: "
                        f"{', '.join(clean)}")
                quoted = '"' + clean[source_col].replace('"', '""') + '"'
                projection.append(f"{quoted} as {column}")
            table = staging_table(self.kind, entity)
            con.register("csv_input", rel)
            try:
                con.execute(
                    f"create or replace table {table} as select {', '.join(projection)}, "
                    f"? as _file, row_number() over () as _row from csv_input", [str(file)])
            finally:
                con.unregister("csv_input")
            counts[entity] = con.execute(f"select count(*) from {table}").fetchall()[0][0]
        return counts


def from_config(name: str, options: dict, base_dir: Path) -> CsvConnector:
    """A CSV source of the sources file: `mapping: path/to/mapping.yaml`, or the mapping's
    settings written inline (without `name`, which is the source's)."""
    options = {k: v for k, v in options.items() if k != "kind"}
    if "mapping" in options:
        if set(options) != {"mapping"}:
            raise SourceError(f"source {name}: with `mapping:`, write the other settings in "
                              f"the mapping file ({', '.join(sorted(set(options) - {'mapping'}))})")
        connector = CsvConnector.from_file(base_dir / options["mapping"])
        connector.name = name
        return connector
    try:
        return CsvConnector(CsvSource.model_validate({"name": name, **options}), base_dir)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise SourceError(f"source {name}: {loc}: {first['msg']}") from None
