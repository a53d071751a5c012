"""What every connector does, and the one loader they all share.

A connector only *stages*: it copies a source's rows, as text, into
`stg_<kind>__<entity>` tables with the warehouse's column names plus `_file` and `_row`.
`load_staged()` then types, checks and merges them into the warehouse with the SQL in
`sql/load_<entity>.sql`: bad rows go to `quarantine` with their reason, the rest land.
A connector that finds a row wrong in its own terms (OULAD: "date_submitted is not a
whole number of days") stages it with that reason in `_problem` and the source's row as
JSON in `_raw`; the loader quarantines it as it is.
Incremental sources read and advance their cursors through the `SourceState` they are
given (state.py); the loader writes the new cursors in the same transaction as the rows.
"""

from __future__ import annotations

import secrets
import weakref
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol

import duckdb

from connectors.state import SourceState
from relance import clock
from warehouse import execute_script, sql_file, transaction

SQL_DIR = Path(__file__).parent / "sql"

# The connections the loaders' macros (sql/macros.sql) are defined on: temp macros last as
# long as their connection, so a load defines them once per connection, not at every sync
# (a simulated season or a scheduler process syncs a hundred times on one connection:
# they took 6-28 ms of each load). Remembered once their transaction has committed (a
# rollback takes them away).
_WITH_MACROS: "weakref.WeakSet" = weakref.WeakSet()

# The warehouse columns a connector may fill, per entity, in load order (an enrolment
# needs its learner and course, an event its enrolment).
ENTITIES: dict[str, tuple[str, ...]] = {
    "learners": ("learner_id", "email", "first_name", "last_name", "locale", "timezone",
                 "manager_email", "tutor_email"),
    "courses": ("course_id", "title", "url", "forum_url", "starts_on", "ends_on"),
    "enrolments": ("learner_id", "course_id", "cohort", "enrolled_at", "status",
                   "completed_at", "withdrawn_at"),
    "activities": ("course_id", "activity_id", "title", "kind", "week", "opens_at", "due_at",
                   "weight", "is_required", "url"),
    "progress_events": ("event_id", "learner_id", "course_id", "activity_id", "verb",
                        "occurred_at", "progress"),
    "contributions": ("contribution_id", "learner_id", "course_id", "kind", "title", "url",
                      "posted_at", "n_replies", "is_notable"),
    # the user id a learner has in the source's LMS (Moodle, Canvas), for the LMS message
    # channels (lms_accounts.sql)
    "lms_accounts": ("learner_id", "lms_user_id"),
    # how an enrolment ended, when the source says it (OULAD's final_result)
    "outcomes": ("learner_id", "course_id", "final_result", "decided_at"),
    # a learner's study history at registration (OULAD's num_of_prev_attempts and
    # studied_credits), for the risk score: never demographics
    "study_history": ("learner_id", "course_id", "previous_attempts", "credits"),
    # events and contributions the source took back (xAPI voiding statements): last, so
    # that a target loaded with its void is removed too
    "voids": ("voided_id", "voiding_id", "voided_at"),
}
TABLES = {e: e for e in ENTITIES}

# Day first, as European LMS exports write them; an export with month-first dates says so
# in its mapping (`datetime_formats`), since 09/12 cannot be told apart by looking at it.
DEFAULT_DATETIME_FORMATS = ["%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%d/%m/%Y", "%Y-%m-%d %H:%M"]
DEFAULT_DATE_FORMATS = ["%d/%m/%Y", "%Y-%m-%d", "%d.%m.%Y"]


class SourceError(Exception):
    """A source cannot be read as configured; the message says which and how to fix it."""


class StageInterrupted(Exception):
    """Raised by `stage()` when the source failed part-way through: what was staged before
    (whole streams only, their cursors advanced) is loaded, then `cause` is raised. The
    next sync resumes from there instead of from the start."""

    def __init__(self, rows: dict[str, int], cause: Exception):
        super().__init__(str(cause))
        self.rows = rows
        self.cause = cause


class Connector(Protocol):
    kind: str            # 'csv', 'oulad', ...
    name: str            # the source's name in the warehouse's `source` columns
    timezone: str        # for timestamps that carry no offset
    datetime_formats: list[str]
    date_formats: list[str]
    progress_scale: str  # 'share' (0-1), 'percent' (0-100) or 'auto'

    def stage(self, con: duckdb.DuckDBPyConnection, state: SourceState) -> dict[str, int | None]:
        """Fill stg_<kind>__<entity> for each entity the source has (only what is new
        since `state`'s cursors, proposing the next ones with `state.advance`); return row
        counts per entity staged (None: a view the loader counts as it reads it; such a
        connector has `unreadable(table, exc)`, the error naming the file it could not
        parse)."""
        ...


@dataclass
class LoadReport:
    load_id: str
    source: str
    rows: dict[str, int] = field(default_factory=dict)
    loaded: dict[str, int] = field(default_factory=dict)
    quarantined: dict[str, int] = field(default_factory=dict)
    # what the source skipped without failing the sync (a connector's `warnings`)
    warnings: list[str] = field(default_factory=list)

    @property
    def n_rows(self) -> int:
        return sum(self.rows.values())

    @property
    def n_loaded(self) -> int:
        return sum(self.loaded.values())

    @property
    def n_quarantined(self) -> int:
        return sum(self.quarantined.values())


def staging_table(kind: str, entity: str) -> str:
    return f"stg_{kind}__{entity}"


def staged_counts(con: duckdb.DuckDBPyConnection, kind: str) -> dict[str, int]:
    """Rows staged per entity, for the entities whose stg_<kind>__<entity> the connector
    filled (a source without, say, outcomes has no such table)."""
    present = {r[0] for r in con.execute("select table_name from duckdb_tables()").fetchall()}
    return {entity: con.execute(f"select count(*) from {staging_table(kind, entity)}")
            .fetchall()[0][0] for entity in ENTITIES if staging_table(kind, entity) in present}


def read_rejects(con: duckdb.DuckDBPyConnection, rejects: str, rows_before: int,
                 where: str) -> bool:
    """The rows a file's read set aside in `rejects` (and `<rejects>_scans`), as
    `rejected_rows` (sql/rejects.sql, which drops both tables); False, with nothing to do,
    when it set none aside (the common case: both tables dropped). `where` names the file
    in the error for a quote left open (below)."""
    if not con.execute(f"select count(*) from {rejects}").fetchall()[0][0]:
        con.execute(f"drop table {rejects}; drop table {rejects}_scans")     # one call
        return False
    execute_script(con, sql_file(SQL_DIR, "rejects", rejects=rejects, scans=f"{rejects}_scans"),
                   {"rows_before": rows_before})
    _check_unclosed_quotes(con, where)
    return True


def _check_unclosed_quotes(con: duckdb.DuckDBPyConnection, where: str) -> None:
    """Stop on a row of `rejected_rows` (rejects.sql) whose quoted value runs past its line
    and is not closed where the row ends: the read may have taken the rows after it as
    part of that value, so that they are neither loaded nor set aside one by one, and
    quarantining it as one row would lose them. (A quoted value on several lines with
    text after its closing quote looks the same to the read: it stops the sync too.)"""
    row = con.execute("select min(row_number) from rejected_rows where unclosed").fetchall()[0][0]
    if row is not None:
        raise SourceError(
            f"{where}: row {row}: a quoted value does not end where its row does (a quote "
            f"never closed, or text after its closing quote): the rows after it may have "
            f"been read as part of it, up to the next quote or the end of the file; fix its "
            f"quotes (a quote inside a quoted value is written twice, \"\"), and sync again "
            f"(nothing of this load was kept)")


def _count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    return con.execute(f"select count(*) from {table}").fetchall()[0][0]


def _staging_columns(con: duckdb.DuckDBPyConnection,
                     tables: list[str]) -> dict[str, list[str]]:
    """The columns of each of `tables` (staging tables or views), from the catalog (a
    query of a file's view would read the file's start again to find them); a temporary
    one hides another of the same name, as it does in queries. One question for all
    (a load asks once, not once per entity: each question lists every database's columns)."""
    found: dict[str, list[tuple[str, str]]] = {}
    for table, database, column in con.execute(
            "select table_name, database_name, column_name from duckdb_columns() "
            "where list_contains(?, table_name) and schema_name = 'main' "
            "order by table_name, database_name <> 'temp', database_name, column_index",
            [tables]).fetchall():
        found.setdefault(table, []).append((database, column))
    return {table: [column for database, column in rows if database == rows[0][0]]
            for table, rows in found.items()}


def sync(con: duckdb.DuckDBPyConnection, connector: Connector, *,
         flow_run_id: str | None = None, now: datetime | None = None) -> LoadReport:
    """Stage a source and load it into the warehouse; logged in `loads`.

    `now` is the moment the load stands for (its `loads` row, the rows' `loaded_at`, the
    cursors' `updated_at`, what a connector compares with "now"): relance's clock unless
    the caller sets it. A campaign run as of a moment judges the sources' freshness
    against it, so a warehouse loaded for a past moment (a test, a simulated season) says
    when, whatever the wall clock."""
    with clock.at(now):
        return _sync(con, connector, flow_run_id)


def _sync(con: duckdb.DuckDBPyConnection, connector: Connector,
          flow_run_id: str | None) -> LoadReport:
    now = clock.now()
    load_id = f"{connector.name}-{now:%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"
    con.execute("insert into loads (load_id, source, started_at, status, flow_run_id) "
                "values (?, ?, ?, 'running', ?)", [load_id, connector.name, now, flow_run_id]).fetchall()
    report = LoadReport(load_id, connector.name)
    try:
        state = SourceState.read(con, connector.name)
        try:
            report.rows = connector.stage(con, state)
        except StageInterrupted as interrupted:
            report.rows = interrupted.rows
            report.warnings = list(getattr(connector, "warnings", ()))
            load_staged(con, connector, report, state)
            raise interrupted.cause from None
        report.warnings = list(getattr(connector, "warnings", ()))
        load_staged(con, connector, report, state)
    except Exception as exc:
        # counts stay NULL unless an interrupted stage loaded what came before the failure
        loaded = bool(report.loaded)
        con.execute("update loads set status = 'failed', finished_at = ?, error = ?, n_rows = ?, "
                    "n_loaded = ?, n_quarantined = ?, warnings = ? where load_id = ?",
                    [clock.now(), f"{type(exc).__name__}: {exc}",
                     report.n_rows if loaded else None, report.n_loaded if loaded else None,
                     report.n_quarantined if loaded else None, report.warnings or None, load_id])
        raise
    con.execute(
        "update loads set status = 'succeeded', finished_at = ?, n_rows = ?, n_loaded = ?, "
        "n_quarantined = ?, warnings = ? where load_id = ?",
        [clock.now(), report.n_rows, report.n_loaded, report.n_quarantined,
         report.warnings or None, load_id])
    return report


def temp_views(con: duckdb.DuckDBPyConnection) -> set[str]:
    """The names of this connection's temporary views (a file connector's staging views),
    asked once by a stage or a load rather than once per staging table."""
    return {r[0] for r in con.execute(
        "select view_name from duckdb_views() where temporary").fetchall()}


def _is_view(con: duckdb.DuckDBPyConnection, name: str, views: set[str] | None = None) -> bool:
    if views is not None:
        return name in views
    return con.execute("select count(*) from duckdb_views() where view_name = ? and temporary",
                       [name]).fetchall()[0][0] > 0


def _drop_staging(con: duckdb.DuckDBPyConnection, name: str,
                  views: set[str] | None = None) -> None:
    """A staging table, or the view a file connector stages instead of a copy (`views`:
    the connection's temporary views, from `temp_views`, when the caller has them)."""
    con.execute(f"drop {'view' if _is_view(con, name, views) else 'table'} if exists {name}")


def _staged_rows(con: duckdb.DuckDBPyConnection, entity: str, table: str,
                 columns: list[str], views: set[str] | None = None) -> tuple[dict[str, str], dict[str, object]]:
    """How a loader reads the staged rows (`columns`, those of `table`).

    Every loader types and checks the rows without a copy of each (most are not set
    aside), and reads a row set aside again by its key for its raw JSON. The events
    loader's: a file's view numbers its rows as it reads them, which takes the read to
    one thread: the loader numbers them itself, from the view's first row on, by their
    position in its work table (kept in file order), and keeps the file's name once
    rather than on every row."""
    view = _is_view(con, table, views)
    if entity != "progress_events":
        # a row's key in the staging, by which a row set aside is read again for its raw
        # JSON: a table's rowid, a view's row number in its file
        return {"staging": table, "key": "_row" if view else "rowid"}, {}
    spaced, first_file, first_row = _first_rows(con, table)
    if not view:
        return ({"staging": table, "key": "rowid",
                 "position": "s._file as _file, s._row as _row, s.rowid as _key,",
                 "file": "c._file", "row": "c._row", "entry": "c._key", "spaced": spaced,
                 "carry": "s as _staged_row", "staged": "_staged_row"},
                {"first_file": None, "first_row": None})
    kept = [c for c in columns if c != "_row"]
    carry = ", ".join(f's."{c}" as "_staged_{c}"' for c in kept)
    staged = "struct_pack(" + ", ".join(f'"{c}" := "_staged_{c}"' for c in kept) + ")"
    params = {"first_file": first_file, "first_row": first_row if first_row is not None else 0}
    if getattr(con, "dsn", None) is None:
        # on the warehouse file, a file's events wait for the load's checks in
        # progress_events itself (load_progress_events_direct.sql): from this row id on
        params["first_event"] = con.execute(
            "select coalesce(max(rowid), -1) + 1 from progress_events").fetchall()[0][0]
    return ({"staging": table, "key": "_row", "position": "", "file": "o.file",
             "row": "(c.rowid + o.start)", "entry": "(c.rowid + o.start)",
             "spaced": spaced, "carry": carry, "staged": staged}, params)


# `_hour_shift`'s expressions, per timezone and year: the same for every load of a process
_HOUR_SHIFTS: dict[tuple[str, int], str] = {}


def _hour_shift(con: duckdb.DuckDBPyConnection, timezone: str, year: int) -> str:
    """The microseconds to add to a wall-clock time in `timezone` to get its instant, as
    an expression of its hour (`hour_index`, hours since the epoch): the runs of hours of
    sql/hour_shifts.sql written out as constants, compared as a balanced tree (a handful
    of comparisons a row where a lookup in a table of hours would be a join: see
    event_typing.sql); NULL outside those years or in an hour whose offset changes."""
    key = (timezone, year)
    if key not in _HOUR_SHIFTS:
        runs = con.execute(sql_file(SQL_DIR, "hour_shifts"),
                           {"timezone": timezone, "year": year}).fetchall()

        def tree(runs: list) -> str:
            if len(runs) == 1:
                return "null" if runs[0][2] is None else f"{int(runs[0][2])}::bigint"
            middle = len(runs) // 2
            return (f"case when hour_index < {int(runs[middle][0])} then {tree(runs[:middle])} "
                    f"else {tree(runs[middle:])} end")

        _HOUR_SHIFTS[key] = (f"case when hour_index between {int(runs[0][0])} and "
                             f"{int(runs[-1][1])} then {tree(runs)} end")
    return _HOUR_SHIFTS[key]


def _first_rows(con: duckdb.DuckDBPyConnection, table: str,
                sample: int = 10_000) -> tuple[str, str | None, int | None]:
    """Of the first staged events (one read of them: each query of a file's view reads
    the file's start again): whether they have spaces around their learner, course or
    verb ('true' or 'false'; an export written with `A1 ; C1` has them on every row: such
    a load trims every row at once, where another looks again only at the rows its
    checks set aside), and the first row's file and number."""
    spaced, first_file, first_row = con.execute(
        f"select coalesce(bool_or(relance_padded(learner_id) or relance_padded(course_id) "
        f"or relance_padded(verb)), false), first(_file), min(_row) "
        f"from (select learner_id, course_id, verb, _file, _row from {table} limit {sample})"
    ).fetchall()[0]
    return ("true" if spaced else "false"), first_file, first_row


def load_staged(con: duckdb.DuckDBPyConnection, connector: Connector, report: LoadReport,
                state: SourceState | None = None) -> None:
    """Merge the staged entities into the warehouse, and move the source's cursors, in one
    transaction; the rows' `loaded_at` is the clock's now (the load's moment)."""
    params = {"load_id": report.load_id, "source": connector.name,
              "now": clock.now(), "timezone": connector.timezone,
              "datetime_formats": connector.datetime_formats,
              "date_formats": connector.date_formats,
              "progress_scale": getattr(connector, "progress_scale", "auto")}
    # rows set aside per entity for an unknown learner, course or enrolment (waiting_rows.sql)
    waiting: dict[str, int] = {}
    on_shared, staged = getattr(con, "dsn", None) is not None, []
    # rows their connector flagged (`_problem`) are moved out of the staging before the
    # transaction, into a temp table the transaction quarantines them from: on the shared
    # warehouse a transaction writes PostgreSQL alone, and a staging table is in this
    # connection's memory (a temp table is not a database's, and may be written there)
    # what the catalog says of the staging tables and views, asked once (they do not
    # change during the load; setting flagged rows aside removes rows, not columns)
    views = temp_views(con)
    columns_of = _staging_columns(con, [staging_table(connector.kind, entity)
                                        for entity in ENTITIES if entity in report.rows])
    flagged = {entity: _set_aside_flagged(con, staging_table(connector.kind, entity), entity,
                                          columns_of)
               for entity in ENTITIES if entity in report.rows}
    try:
        defined = con in _WITH_MACROS
        with transaction(con):
            # the macros in one call (they bind no parameter): one round trip, not ten
            if not defined:
                con.execute((SQL_DIR / "macros.sql").read_text(encoding="utf-8"))
            events_before = _count(con, "progress_events")
            # the load's quarantined rows so far (none: its load_id is new), counted again
            # after each entity only
            quarantined = 0
            for entity in ENTITIES:
                if entity not in report.rows:
                    continue
                # only the events' table is counted (`loaded` below), which no entity
                # loaded before them writes
                before = events_before if entity == "progress_events" else None
                quarantined_before = quarantined
                table = staging_table(connector.kind, entity)
                columns = columns_of.get(table, [])
                if flagged[entity]:
                    execute_script(con, sql_file(SQL_DIR, "quarantine_flagged",
                                                 flagged=flagged[entity]),
                                   {**params, "entity": entity})
                try:
                    fragments, entity_params = _staged_rows(con, entity, table, columns, views)
                    if entity == "learners" and "tutor_email" in columns:
                        fragments["tutor"] = "s.tutor_email, "     # optional: learner_tutors
                    if entity == "progress_events":
                        fragments["shift"] = _hour_shift(con, connector.timezone,
                                                         params["now"].year)
                    loader = (f"load_{entity}_direct" if "first_event" in entity_params
                              else f"load_{entity}")
                    execute_script(con, sql_file(SQL_DIR, loader, **fragments),
                                   {**params, **entity_params, "entity": entity})
                except duckdb.InvalidInputException as exc:
                    # a file staged as a view is parsed here, by the load: the connector says
                    # which file could not be
                    unreadable = getattr(connector, "unreadable", None)
                    error = unreadable(table, exc) if unreadable else None
                    if error is None:
                        raise
                    raise error from None
                # rows of a file its read could not split into columns, set aside as it
                # read them: quarantined now, and counted as read
                rejected = getattr(connector, "rejected", None)
                read = rejected(con, table, {**params, "entity": entity}) if rejected else 0
                # each loader says how many staged rows it read: a view's are counted
                # there, as they are read (counting them first would parse the file again);
                # read with the load's quarantined rows so far, in one statement (the
                # quarantine is written by the loader and `rejected` only)
                n, quarantined = con.execute(
                    "select (select n from staged_rows), "
                    "(select count(*) from quarantine where load_id = ?)", [report.load_id]
                ).fetchall()[0]
                read += n
                con.execute("drop table staged_rows")
                if report.rows[entity] is None:
                    report.rows[entity] = read
                # a staging table holds one load's rows; dropped inside the transaction (a
                # failed load keeps it for inspection), so the commit's checkpoint does not
                # carry a large temp table along (seconds per million rows). On the shared
                # warehouse a transaction writes PostgreSQL alone and the staging table is in
                # this connection's memory: dropped once the load has committed.
                if on_shared:
                    staged.append(table)
                else:
                    _drop_staging(con, table, views)
                report.quarantined[entity] = quarantined - quarantined_before
                if report.quarantined[entity]:
                    execute_script(con, sql_file(SQL_DIR, "waiting_rows"),
                                   {"load_id": report.load_id, "entity": entity})
                    waiting[entity] = con.execute("select n from waiting_rows").fetchall()[0][0]
                    con.execute("drop table waiting_rows")
                # upserts (learners, courses ...) can change rows without adding any
                report.loaded[entity] = max(_count(con, TABLES[entity]) - before, 0) if entity in (
                    "progress_events",) else report.rows[entity] - report.quarantined[entity]
            if "progress_events" in report.rows or "voids" in report.rows:
                # the engine's per-learner summaries, in the same transaction (summarize.sql)
                from connectors import summaries
                summaries.refresh(con, connector.name, params["now"], events_before)
            if state is not None:
                state.write(con, report.load_id, report.rows, waiting)
        _WITH_MACROS.add(con)
    except BaseException:
        # nothing of it was loaded
        report.loaded.clear()
        report.quarantined.clear()
        raise
    for table in staged + [t for t in flagged.values() if t]:
        _drop_staging(con, table, views)


def _set_aside_flagged(con: duckdb.DuckDBPyConnection, table: str, entity: str,
                       columns_of: dict[str, list[str]]) -> str | None:
    """Move the rows of staging `table` its connector flagged (`_problem`) into a temp
    table of their own, which load_staged quarantines; its name, or None when the staging
    has no `_problem` column. If the load fails, its rows are still there to inspect."""
    if "_problem" not in columns_of.get(table, []):
        return None
    flagged = f"flagged__{entity}"
    execute_script(con, sql_file(SQL_DIR, "set_aside_flagged", staging=table, flagged=flagged))
    return flagged
