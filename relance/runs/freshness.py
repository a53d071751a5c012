"""Are a campaign's sources fresh enough to run it? A run on stale progress would nudge
learners who were active since, so a scheduled run checks first and says what is stale.
It does not sync itself: the sync's own failures (a source down, a bad credential) are
the sync deployment's to report, once, not every campaign's; a stale source fails the run
with its name and how to refresh it."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import duckdb

import warehouse
from relance.campaign.model import Campaign


class StaleSources(RuntimeError):
    pass


def stale_sources(con: duckdb.DuckDBPyConnection, campaign: Campaign, as_of: datetime,
                  max_age: timedelta) -> list[str]:
    """What is too old for a run as of `as_of`, in words; empty when everything is fresh."""
    courses = campaign.audience.course
    rows = con.execute(warehouse.sql_file(Path(__file__).parent, "freshness"),
                       {"courses": courses}).fetchall()
    if not rows:
        return [f"no enrolment of {', '.join(courses) if courses else 'any course'} has been "
                "loaded: run the sync (deployment sync-progress, or `relance sync`) first"]
    bound = as_of - max_age
    return [f"source {source!r} " + (
                "has no successful load" if last is None else
                f"was last loaded at {last:%Y-%m-%d %H:%M} UTC, more than "
                f"{max_age.total_seconds() / 3600:g} h before {as_of:%Y-%m-%d %H:%M} UTC")
            for source, last in rows if last is None or last < bound]


def check(con: duckdb.DuckDBPyConnection, campaign: Campaign, as_of: datetime,
          max_age: timedelta) -> None:
    stale = stale_sources(con, campaign, as_of, max_age)
    if stale:
        raise StaleSources(f"campaign {campaign.id} not run, its sources are stale: "
                           + "; ".join(stale) + ". Run the sync (`prefect deployment run "
                           "sync-progress/sync-progress`, or `relance sync`), then this run "
                           "again; `from loads order by started_at desc` shows each load "
                           "and its error")
