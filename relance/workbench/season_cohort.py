"""Where a simulated season's learners come from, and how their data arrives: the cohort
(the demo generator for the whole season, a CSV export's mapping, an OULAD presentation)
loaded once into a holding warehouse, then, each simulated day, the rows known by then
written as the CSV export an LMS would have produced that day, for the real CSV connector
to sync (relance simulate, simulate.py)."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import yaml

from connectors import open_source
from connectors.base import ENTITIES
from relance import demo

PARIS = ZoneInfo("Europe/Paris")


class SimulationError(RuntimeError):
    """A season that cannot be played: says what, and how to fix it."""


def season_start(moment: datetime) -> datetime:
    """Monday 00:00, Paris time, of the week of `moment` (as the demo's courses start)."""
    local = moment.astimezone(PARIS)
    monday = datetime.combine(local.date() - timedelta(days=local.weekday()), time(0), PARIS)
    return monday.astimezone(timezone.utc)


# What a day's export holds of each entity, in the warehouse's own column names: the
# moment a row becomes known (None: known from the first day).
KNOWN_FROM = {"learners": None, "courses": None, "activities": None,
              "enrolments": "enrolled_at", "progress_events": "occurred_at",
              "contributions": "posted_at"}


def open_cohort(cohort: str, folder: Path, start: datetime | None, weeks: int, scale: float):
    """(connector of the whole export, season start): `demo`, a mapping file, `oulad:<p>`."""
    if cohort == "demo":
        start = season_start(start or demo.default_as_of() - timedelta(weeks=weeks))
        mapping = demo.generate(folder / "export-whole", as_of=start + timedelta(weeks=weeks),
                                starts=start, scale=scale)
        return open_source(str(mapping)), start
    if cohort.startswith("oulad:"):
        from connectors.sources import open_config
        presentation = cohort.split(":", 1)[1]
        repo = Path(__file__).resolve().parents[2]
        return open_config("oulad", {"kind": "oulad", "presentations": [presentation]},
                           repo), start
    if Path(cohort).is_file():
        return open_source(cohort), start
    raise SimulationError(f"cohort {cohort!r}: expected 'demo', the path of a CSV export's "
                          "mapping.yaml, or 'oulad:<presentation>' (e.g. oulad:2013J)")


class DailyExport:
    """The holding warehouse's rows known by a moment, written as the CSV export an LMS
    would have produced that day: files that only grow (events, posts), the enrolments
    rewritten when one changed; synced by the real CSV connector."""

    def __init__(self, holding: duckdb.DuckDBPyConnection, folder: Path):
        self.holding, self.folder = holding, folder
        folder.mkdir(parents=True, exist_ok=True)
        self.since: datetime | None = None
        self.enrolments = b""
        self.selects: dict[str, str] = {}        # the holding warehouse does not change
        entities = {e: {"file": f"{e}.csv", "columns": {c: c for c in ENTITIES[e]}}
                    for e in KNOWN_FROM}
        self.mapping = folder / "mapping.yaml"
        self.mapping.write_text(yaml.safe_dump({
            "name": "season", "directory": ".", "delimiter": ",", "encoding": "utf-8",
            "timezone": "UTC", "entities": entities}, sort_keys=False), encoding="utf-8")

    def _select(self, entity: str, where: str) -> str:
        if entity not in self.selects:
            self.selects[entity] = self._columns(entity)
        return f"select {self.selects[entity]} from {entity} where {where}"

    def _columns(self, entity: str) -> str:
        kinds = dict(self.holding.execute(
            "select column_name, data_type from information_schema.columns where table_name = ?",
            [entity]).fetchall())
        cols = []
        for c in ENTITIES[entity]:
            kind = kinds.get(c)
            if kind is None:
                # a column the loaders keep in a table of its own (learners' tutor_email:
                # learner_tutors), which the season's cohort does not fill
                cols.append(f"cast(null as varchar) as {c}")
                continue
            cols.append(f"strftime(timezone('UTC', {c}), '%Y-%m-%dT%H:%M:%SZ') as {c}"
                        if kind.startswith("TIMESTAMP") else f"{c}")
        return ", ".join(cols)

    def _copy(self, query: str, path: Path, params: list, header: bool) -> None:
        self.holding.execute(f"copy ({query}) to '{path}' (header {str(header).lower()}, "
                             "delimiter ',')", params)

    def write(self, now: datetime) -> None:
        for entity, column in KNOWN_FROM.items():
            path = self.folder / f"{entity}.csv"
            if column is None:
                if self.since is None:
                    self._copy(self._select(entity, "true"), path, [], True)
            elif entity == "enrolments":
                # an enrolment's row changes when it ends: completion and withdrawal show
                # from the day they happened (the file is read whole again then)
                query = self._select(entity, "enrolled_at <= $1").replace(
                    "status,", "case when withdrawn_at <= $1 then 'withdrawn' when completed_at "
                    "<= $1 then 'completed' else 'enrolled' end as status,", 1)
                query = query.replace(
                    "strftime(timezone('UTC', completed_at)",
                    "strftime(timezone('UTC', case when completed_at <= $1 then completed_at end)"
                ).replace("strftime(timezone('UTC', withdrawn_at)",
                          "strftime(timezone('UTC', case when withdrawn_at <= $1 then withdrawn_at end)")
                part = self.folder / "enrolments.part"
                self._copy(query + " order by learner_id, course_id", part, [now], True)
                data = part.read_bytes()
                if data != self.enrolments:
                    part.replace(path)
                    self.enrolments = data
            else:
                # appended in the order they happened: the connector reads the new rows only
                part = self.folder / f"{entity}.part"
                first = self.since is None
                where = f"{column} <= $1" + ("" if first else f" and {column} > $2")
                self._copy(self._select(entity, where) + f" order by {column}, 1", part,
                           [now] if first else [now, self.since], first)
                with path.open("ab") as out:
                    out.write(part.read_bytes())
                part.unlink()
        self.since = now
