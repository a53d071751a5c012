"""The per-learner summaries of progress_events the engine reads instead of the events
(migration 0055), kept up to date by every load (`refresh`, in `load_staged`'s
transaction) and rebuilt from the events by `rebuild` (after rows were written some other
way: a benchmark's generator, a repair by hand)."""

from __future__ import annotations

from datetime import datetime

import duckdb

from warehouse import execute_script, sql_file, transaction

from connectors.base import SQL_DIR

THIS_LOAD = "source = $source and loaded_at = $now"


def event_count(con: duckdb.DuckDBPyConnection) -> int:
    return con.execute("select count(*) from progress_events").fetchall()[0][0]


def refresh(con: duckdb.DuckDBPyConnection, source: str, now: datetime, events_before: int) -> None:
    """Merge the events `source`'s load at `now` added, and recompute the learners its voids
    took events from; `events_before`: progress_events' count when the load began."""
    execute_script(con, sql_file(SQL_DIR, "summarize", new_events=THIS_LOAD),
                   {"source": source, "now": now, "events_before": events_before})


def rebuild(con: duckdb.DuckDBPyConnection, now: datetime | None = None) -> None:
    """The summaries again from every event, marked as covering the table, in one
    transaction."""
    from relance import clock
    now = clock.or_now(now)
    with transaction(con):
        con.execute("delete from progress_summaries")
        con.execute("delete from activity_completions")
        con.execute("update progress_summary_state set n_events = -1, max_occurred_at = null")
        execute_script(con, sql_file(SQL_DIR, "summarize", new_events="true"),
                       {"now": now, "events_before": -1})
