"""Settings for replaying a campaign over many past moments in a scratch warehouse
(backtests: relance/roi/backtest.py), where each evaluation reads a small cohort.

A backtest of OULAD 2013J evaluates 8,845 learners and 49,018 events 39 times: each
statement is small, and most of its time is planning and handing work between threads.
DuckDB splits a scan by row groups (122,880 rows), so a table no larger than one row group
is read by one thread anyway; the second thread only adds its scheduling, which on a busy
2-core machine tripled the wall time of the measures step (85 ms on one thread, 277 ms on
two, same run). A cohort whose tables fill more than one row group keeps every thread.
"""

from __future__ import annotations

import duckdb

# DuckDB's row group size: the unit of a parallel scan
ROW_GROUP = 122_880


def replay_threads(con: duckdb.DuckDBPyConnection) -> int:
    """One thread for a scratch warehouse whose largest evaluated tables (events,
    enrolments) fit in one row group; every thread otherwise. Returns the threads set."""
    [(events, enrolments)] = con.execute(
        "select (select count(*) from progress_events), (select count(*) from enrolments)"
    ).fetchall()
    if max(events, enrolments) > ROW_GROUP:
        return con.execute("select current_setting('threads')").fetchall()[0][0]
    con.execute("set threads = 1")
    return 1
