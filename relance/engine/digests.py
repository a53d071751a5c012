"""Managers' weekly digests, planned by the engine: one message per manager and week listing
their team (the campaign's learners whose `manager_email` is theirs), grouped as the
campaign's `digest:` says.

    eval_state -> digest_plan.sql (eval_digest_members, eval_digests) -> digest_persist.sql (ledger)

Planned in the same evaluation and transaction as the learners' messages, delivered by the
same delivery (delivery/digests.py renders them), through the same channel, ledger and
idempotency keys (campaign / digest / manager / ISO week in the manager's timezone).
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from relance.campaign.model import Campaign
from relance.campaign.types import WEEKDAYS
from warehouse import sql_file

SQL_DIR = Path(__file__).parent / "sql"


TRIGGER = "digest"


def _literal(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def group_case(campaign: Campaign) -> str:
    """The digest group of each stage, as a CASE over eval_state's `stage` (s.stage)."""
    whens = " ".join(f"when s.stage in ({', '.join(_literal(x) for x in stages)}) "
                     f"then {_literal(group)}"
                     for group, stages in campaign.digest.groups.items())
    return f"(case {whens} end)"


def plan_sql(campaign: Campaign) -> str:
    return sql_file(SQL_DIR, "digest_plan", group_case=group_case(campaign))


def persist_sql() -> str:
    return sql_file(SQL_DIR, "digest_persist")


def params(campaign: Campaign) -> dict:
    every = campaign.digest.every
    return {"digest_minutes": WEEKDAYS.index(every.day) * 1440 + every.at.hour * 60
            + every.at.minute}


def empty_tables(con: duckdb.DuckDBPyConnection) -> None:
    """For a campaign without a digest: the same tables, empty, so `plan` reads them alike."""
    con.execute("create or replace temp table eval_digests (manager_email varchar, locale "
                "varchar, tz varchar, week varchar, idempotency_key varchar, n_listed bigint, "
                "n_withheld bigint, not_before timestamptz, outcome varchar, reason varchar)")


def counts(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str | None, int]]:
    """(outcome, reason, managers) of the evaluation's digests."""
    return con.execute("select outcome, reason, count(*) from eval_digests group by all "
                       "order by outcome, count(*) desc").fetchall()
