"""OULAD, the Open University Learning Analytics Dataset, read as published.

    sources:
      oulad:
        kind: oulad
        directory: ../shared/data/oulad-2013   # read in place, relative to the sources file
        presentations: [2013J]                 # or all (the default)
        modules: [AAA, BBB]                    # or all (the default)
        start_dates: {2013J: 2013-10-07}       # day 0 of a presentation (or of 'AAA-2013J')
        vle_activities: false                  # also load vle.csv's resources as activities

A module presentation becomes a course (`AAA-2013J`), its assessments the course calendar,
its registrations enrolments (with how each ended in `outcomes`, and the learner's previous
attempts and credits studied in `study_history`, for the risk score), its submissions
progress events. Every date of the dataset is a day offset from the presentation's start;
day 0 is the first Monday of February (B presentations) or of October (J) of the year
unless `start_dates` says otherwise. Days become wall-clock times in Europe/London: events
at 00:00 of their day, deadlines at 23:59:59.

Incremental: each file's fingerprint (its content's hash, with the settings that shape
what it yields) is a cursor; a sync stages only the entities whose files changed since
the last committed load, and loads nothing when none did.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date
from pathlib import Path
from typing import Literal

import duckdb
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from connectors.base import SQL_DIR, SourceError, read_rejects, staging_table
from connectors.files import fingerprint
from connectors.state import SourceState
from warehouse import execute_script, sql_file

OULAD_SQL = SQL_DIR / "oulad"
DEFAULT_DIRECTORY = "../shared/data/oulad-2013"

# file -> the columns this connector reads from it
FILES: dict[str, tuple[str, ...]] = {
    "courses.csv": ("code_module", "code_presentation", "module_presentation_length"),
    "assessments.csv": ("code_module", "code_presentation", "id_assessment", "assessment_type",
                        "date", "weight"),
    # never its demographic columns (gender, region, highest_education, imd_band, age_band,
    # disability): nothing reads them into the warehouse
    "studentInfo.csv": ("code_module", "code_presentation", "id_student", "final_result",
                        "num_of_prev_attempts", "studied_credits"),
    "studentRegistration.csv": ("code_module", "code_presentation", "id_student",
                                "date_registration", "date_unregistration"),
    "studentAssessment.csv": ("id_assessment", "id_student", "date_submitted", "is_banked"),
    "vle.csv": ("id_site", "code_module", "code_presentation", "activity_type", "week_from"),
}

# entity -> the files it is made from, in the loader's order (an enrolment needs its
# learner and course, an event its enrolment); every entity dates days from courses.csv
INPUTS: dict[str, tuple[str, ...]] = {
    "learners": ("studentInfo.csv", "studentRegistration.csv"),
    "courses": ("courses.csv",),
    "enrolments": ("courses.csv", "studentRegistration.csv", "studentInfo.csv"),
    "activities": ("courses.csv", "assessments.csv"),
    "progress_events": ("courses.csv", "assessments.csv", "studentAssessment.csv"),
    "outcomes": ("courses.csv", "studentInfo.csv", "studentRegistration.csv"),
    "study_history": ("courses.csv", "studentInfo.csv"),
}


# entity -> the files whose rows it stages, for their rows the read could not split into
# columns: staged with their reason, and quarantined as that entity's (studentInfo.csv's
# own part is the final result)
REJECTS_TO: dict[str, tuple[str, ...]] = {
    "courses": ("oulad_courses",),
    "activities": ("oulad_assessments", "oulad_vle"),
    "enrolments": ("oulad_studentRegistration",),
    "outcomes": ("oulad_studentInfo",),
    "progress_events": ("oulad_studentAssessment",),
}


class OuladSource(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    directory: str = DEFAULT_DIRECTORY
    presentations: list[str] | Literal["all"] = "all"
    modules: list[str] | Literal["all"] = "all"
    start_dates: dict[str, date] = Field(default_factory=dict)
    vle_activities: bool = False

    @field_validator("presentations", "modules", mode="before")
    @classmethod
    def _one_or_many(cls, value):
        return [value] if isinstance(value, str) and value != "all" else value


class OuladConnector:
    kind = "oulad"
    timezone = "Europe/London"
    datetime_formats = ["%Y-%m-%d %H:%M:%S"]
    date_formats = ["%Y-%m-%d"]
    progress_scale = "share"

    def __init__(self, source: OuladSource, base_dir: Path):
        self.source = source
        self.name = source.name
        self.directory = (Path(base_dir) / source.directory).resolve()
        self.inputs = dict(INPUTS)
        if source.vle_activities:
            self.inputs["activities"] = (*INPUTS["activities"], "vle.csv")

    def _settings_hash(self) -> str:
        """What, besides the files, changes the rows a file yields: the source's settings and
        the entities this connector makes of each file (a new one, such as study_history,
        makes an earlier load's cursors stale, so the files are read once more)."""
        settings = self.source.model_dump(mode="json", exclude={"name", "directory"})
        settings["inputs"] = {entity: list(files) for entity, files in sorted(self.inputs.items())}
        return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]

    def _path(self, file: str) -> Path:
        path = self.directory / file
        if not path.is_file():
            raise SourceError(f"source {self.name}: {path} not found: `directory` must be the "
                              f"folder of the OULAD files (courses.csv, assessments.csv, "
                              f"studentInfo.csv, studentRegistration.csv, "
                              f"studentAssessment.csv, vle.csv)")
        return path

    def stage(self, con: duckdb.DuckDBPyConnection, state: SourceState) -> dict[str, int]:
        needed = sorted({f for files in self.inputs.values() for f in files})
        settings = self._settings_hash()
        cursors = {f: f"{fingerprint(self._path(f))};settings={settings}" for f in needed}
        changed = {f for f, c in cursors.items() if state.get(f"file:{f}") != c}
        entities = [e for e, files in self.inputs.items() if changed & set(files)]
        if not entities:
            return {}
        self._read(con, sorted({f for e in entities for f in self.inputs[e]} | {"courses.csv"}))
        counts = {}
        for entity in entities:
            table = staging_table(self.kind, entity)
            fragments = {"staging": table}
            if entity == "activities":
                fragments["vle"] = (sql_file(OULAD_SQL, "stage_vle")
                                    if self.source.vle_activities else "")
            execute_script(con, sql_file(OULAD_SQL, f"stage_{entity}", **fragments))
            con.execute(f"insert into {table} (_file, _row, _raw, _problem) "
                        f"select file, _row, raw, problem from oulad_rejected "
                        f"where list_contains(?, read_into) order by file, _row",
                        [list(REJECTS_TO.get(entity, ()))])
            counts[entity] = con.execute(f"select count(*) from {table}").fetchall()[0][0]
        for f in changed:
            state.advance(f"file:{f}", cursors[f])
        return counts

    def _read(self, con: duckdb.DuckDBPyConnection, files: list[str]) -> None:
        execute_script(con, (SQL_DIR / "macros.sql").read_text(encoding="utf-8"))
        con.execute("create or replace temp table oulad_rejected (read_into varchar, "
                    "file varchar, _row bigint, raw json, problem varchar)")
        selection = sql_file(OULAD_SQL, "selection")
        params = {"modules": None if self.source.modules == "all" else self.source.modules,
                  "presentations": (None if self.source.presentations == "all"
                                    else self.source.presentations)}
        if "studentAssessment.csv" in files:
            # submissions name an assessment only: an unknown one is told apart from one
            # of a presentation that is not selected by the whole file
            self._read_file(con, "assessments.csv", "oulad_all_assessments", "true", params)
        for file in files:
            has_codes = "code_module" in FILES[file]
            self._read_file(con, file, f"oulad_{file.removesuffix('.csv')}",
                            selection if has_codes else "true", params)
        execute_script(con, sql_file(OULAD_SQL, "calendar"), {
            "override_keys": list(self.source.start_dates),
            "override_dates": [d.isoformat() for d in self.source.start_dates.values()]})
        execute_script(con, sql_file(OULAD_SQL, "usable"))

    def _read_file(self, con, file: str, table: str, selection: str, params: dict) -> None:
        path = self._path(file)
        try:
            execute_script(con, sql_file(OULAD_SQL, "read", table=table, selection=selection),
                           {**params, "file": str(path)})
        except duckdb.Error as exc:
            raise SourceError(f"source {self.name}: {path} cannot be read as the dataset's "
                              f"CSV (comma-separated, quoted, UTF-8): {exc}") from None
        # the published files set nothing aside: no row number to put back
        if read_rejects(con, "oulad_read_rejects", 0, f"source {self.name}: {path}"):
            execute_script(con, sql_file(OULAD_SQL, "rejects", table=table), {"file": str(path)})
        columns = con.sql(f"select * from {table} limit 0").columns
        missing = [c for c in FILES[file] if c not in columns]
        if missing:
            raise SourceError(f"source {self.name}: {path}: missing column(s) "
                              f"{', '.join(missing)}; its columns are: "
                              f"{', '.join(c for c in columns if not c.startswith('_'))}")


def from_config(name: str, options: dict, base_dir: Path) -> OuladConnector:
    options = {k: v for k, v in options.items() if k != "kind"}
    try:
        return OuladConnector(OuladSource.model_validate({"name": name, **options}), base_dir)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise SourceError(f"source {name}: {loc}: {first['msg']}") from None
