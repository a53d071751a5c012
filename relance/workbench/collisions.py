"""How many learners two colliding campaigns would both write to, from the warehouse.

Each campaign of the pairs `relance.campaign.collisions` found is evaluated by the real
engine as of one moment, on its own (as a run would plan it: the ledger as it stands),
and what it would send in each learner's local week of that moment is gathered
(`collision_plan.sql`); then, per pair, the learners who would get messages from both, and
those of them over the weekly cap once the ledger's messages of that week are counted too
(`collision_counts.sql`). All of it inside one transaction rolled back: nothing stays.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb

from relance import engine
from relance.campaign.collisions import Collision
from warehouse import execute_script, sql_file

SQL_DIR = Path(__file__).parent


@dataclass
class Counts:
    both: int | None         # learners who would get messages from both campaigns that week
    over_cap: int | None     # of those, learners over the weekly cap
    error: str | None = None  # why there are no counts (a campaign could not be evaluated)


def count(con: duckdb.DuckDBPyConnection, collisions: list[Collision],
          as_of: datetime) -> list[Counts]:
    """Counts for each collision, in order, as of `as_of`."""
    involved = {c.id: c for pair in collisions for c in (pair.first, pair.second)}
    failed: dict[str, str] = {}
    out = []
    con.execute("begin transaction")
    try:
        for cid, loaded in sorted(involved.items()):
            try:
                engine.evaluate(con, loaded, as_of)
            except engine.EvaluationError as exc:
                failed[cid] = str(exc)
                continue
            execute_script(con, sql_file(SQL_DIR, "collision_plan"),
                           {"campaign_id": cid, "as_of": as_of})
        for pair in collisions:
            error = failed.get(pair.first.id) or failed.get(pair.second.id)
            if error:
                out.append(Counts(None, None, error))
                continue
            both, over = con.execute(sql_file(SQL_DIR, "collision_counts"), {
                "first": pair.first.id, "second": pair.second.id, "cap": pair.cap,
                "as_of": as_of, "max_attempts": engine.MAX_ATTEMPTS}).fetchall()[0]
            out.append(Counts(both, over))
    finally:
        con.execute("rollback")
    return out
