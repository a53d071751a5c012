"""Send-time truth: a message planned at one moment goes out at another (quiet hours, a
send day, a recap hour, a delivery that did not run over a weekend). Before it does, the
engine judges it again as of the send moment, with the definitions that planned it: the
learner's stage, completion, withdrawal, unsubscribes, the occasion it is about (its
milestone, activity, week), the send window in the learner's timezone and the weekly
caps. What no longer holds is cancelled with its reason; what may not go now waits for the
next allowed moment (or is cancelled when its week is over).

Set-based: one evaluation of the learners concerned, on a second connection (its temp
tables leave the caller's eval_* alone), then two UPDATEs.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb

from relance import engine
from relance.campaign.loaded import LoadedCampaign
from warehouse import run, sql_file, transaction

HERE = Path(__file__).parent


@dataclass
class Recheck:
    checked: int = 0
    cancelled: Counter = field(default_factory=Counter)     # by reason
    waiting: Counter = field(default_factory=Counter)       # by reason (the new not_before)


def stage_targets(loaded: LoadedCampaign) -> list[str]:
    """'message:stage' for each stage a stage-triggered message is meant for."""
    campaign = loaded.campaign
    pairs = []
    for key, msg in campaign.messages.items():
        stages = ([msg.on_enter] if msg.on_enter else []) + (msg.while_in or []) + (
            (msg.to or list(campaign.stages)) if msg.every else [])
        pairs += [f"{key}:{stage}" for stage in stages]
    return pairs or [""]


def recheck_due(con: duckdb.DuckDBPyConnection, loaded: LoadedCampaign, now: datetime) -> Recheck:
    """Judge again, as of `now`, the campaign's messages due at `now` that were planned at
    an earlier moment (a message planned at `now` was judged at `now`); cancel or postpone
    those whose verdict changed. Digests (a manager's week) and messages of a message
    the campaign file no longer has (they fail at rendering, saying so) are left as they are."""
    result = Recheck()
    cur = con.cursor()
    try:
        # (CREATE TABLE AS answers with the number of rows it wrote: no count afterwards)
        result.checked = run(
            cur, "create or replace temp table recheck_messages as "
            "select message_id, learner_id from messages "
            "where campaign_id = ? and not_before <= ? and planned_at < ? "
            "and (status = 'planned' or (status = 'failed' and attempts < ?)) "
            "and trigger <> 'digest' and list_contains(?, message_key)",
            [loaded.id, now, now, engine.MAX_ATTEMPTS, list(loaded.campaign.messages)]
        ).fetchall()[0][0]
        if not result.checked:
            return result
        engine.evaluate(cur, loaded, now, recheck=True)
        run(cur, sql_file(HERE, "recheck"), {"targets": stage_targets(loaded)})
        for cancel, wait, n in cur.execute(
                "select cancel_reason, wait_reason, count(*) from recheck_verdicts "
                "where cancel_reason is not null or wait_until is not null group by all").fetchall():
            if cancel:
                result.cancelled[cancel] += n
            else:
                result.waiting[wait] += n
        if result.cancelled or result.waiting:
            with transaction(cur):
                # (`in (select ...)`: on the shared warehouse, the keys sent to PostgreSQL,
                # which then updates these rows, not a join over the whole ledger)
                run(cur, "update messages set status = 'cancelled', error = v.cancel_reason "
                         "from recheck_verdicts v where messages.message_id = v.message_id "
                         "and v.cancel_reason is not null "
                         "and messages.message_id in (select message_id from recheck_verdicts)")
                run(cur, "update messages set not_before = v.wait_until "
                         "from recheck_verdicts v where messages.message_id = v.message_id "
                         "and v.cancel_reason is null and v.wait_until is not null "
                         "and messages.message_id in (select message_id from recheck_verdicts)")
        return result
    finally:
        cur.close()
