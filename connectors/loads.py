"""Sources synced by name, each load with its report: the steps of the sync-progress flow
(flows/sync_progress.py, whose `load-source` task is `load_one` on a warehouse it opens in
its turn) and of `relance sync` / `relance demo` without a Prefect server (`sync_sources`,
in the command's process, on its connection: no temporary server to start)."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Callable

import duckdb

from connectors import SourceError, open_source, sync

# A load's report (its task's result, the run's artifact, the CLI) lists the most frequent
# quarantine reasons only: reasons quote the row's value ("unknown learner: L123"), so an
# export naming 100,000 unknown learners has 100,000 of them. The rest is counted.
REASONS_LISTED = 20


def load_one(con: duckdb.DuckDBPyConnection, source: str, sources_file: str,
             flow_run_id: str | None = None, now: datetime | None = None,
             connector=None) -> dict:
    """One source's load (a name in `sources_file`, or a CSV mapping file; or `connector`,
    already opened), and its report."""
    connector = connector or open_source(source, sources_file)
    report = sync(con, connector, flow_run_id=flow_run_id, now=now)
    reasons = con.execute(
        "with grouped as (select entity, reason, count(*) as n from quarantine "
        "where load_id = ? group by all) "
        "select entity, reason, n, count(*) over (), sum(n) over () from grouped "
        "order by n desc, entity, reason limit ?",
        [report.load_id, REASONS_LISTED]).fetchall()
    # the reasons not listed: how many, for how many rows
    more = [reasons[0][3] - len(reasons),
            int(reasons[0][4]) - sum(n for *_, n, _, _ in reasons)] if reasons else [0, 0]
    return {"load_id": report.load_id, "source": report.source, "rows": report.rows,
            "loaded": report.loaded, "quarantined": report.quarantined,
            "quarantine_reasons": [[entity, reason, n] for entity, reason, n, _, _ in reasons],
            "more_reasons": more, "warnings": report.warnings}


def more_reasons(result: dict) -> str | None:
    """The line that stands for the reasons a load's report does not list (None: it lists
    them all)."""
    n_reasons, n_rows = result.get("more_reasons", [0, 0])
    if not n_reasons:
        return None
    return (f"… and {n_reasons} more reason{'s' if n_reasons > 1 else ''} for {n_rows} "
            f"row{'s' if n_rows > 1 else ''}: select * from quarantine where load_id = "
            f"'{result['load_id']}'")


def sync_sources(con: duckdb.DuckDBPyConnection, names: list[str], sources_file: str, *,
                 now: datetime | None = None, retry_delays: list[float] = (60, 300),
                 on_source: Callable[[str], None] | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> list[dict]:
    """Each source in turn, as the flow loads them: one failing does not keep the others
    stale; one unavailable (its connector's own retries spent) is tried again once the
    others had their turn, `retry_delays` apart; the failures are raised at the end, after
    the loads that went through (returned otherwise)."""
    from connectors.http import SourceUnavailable
    say = on_source or (lambda _what: None)
    loads, failed, unavailable = [], [], []
    for name in names:
        say(name)
        try:
            loads.append(load_one(con, name, sources_file, now=now))
        except SourceUnavailable as exc:
            unavailable.append((name, time.monotonic(), exc))
        except Exception as exc:        # bad credentials, bad settings: a person's to fix
            failed.append(exc)
    for name, failed_at, exc in unavailable:
        for delay in retry_delays:
            wait = max(0.0, delay - (time.monotonic() - failed_at))
            say(f"{name} was unavailable; trying again in {wait:.0f} s")
            sleep(wait)
            try:
                loads.append(load_one(con, name, sources_file, now=now))
                exc = None
                break
            except SourceUnavailable as again:
                exc, failed_at = again, time.monotonic()
            except Exception as again:
                exc = again
                break
        if exc is not None:
            failed.append(exc)
    raise_failures(failed, loads)
    return loads


def raise_failures(failed: list[Exception], loads: list[dict]) -> None:
    """A sync's failed sources, raised once every source had its turn: a lone failure as
    itself, several as one SourceError naming what was loaded all the same."""
    if failed and not loads and len(failed) == 1:
        raise failed[0]
    if failed:
        loaded = [r["source"] for r in loads]
        raise SourceError("; ".join(str(exc) for exc in failed) + (
            f" ({', '.join(loaded)} {'was' if len(loaded) == 1 else 'were'} loaded)"
            if loaded else ""))
