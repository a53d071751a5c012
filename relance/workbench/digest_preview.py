"""Previewing a manager's digest: planned and rendered by the same code as a real send,
inside a transaction that is rolled back, so nothing is written or sent."""

from __future__ import annotations

from datetime import datetime

import duckdb

from relance import engine
from relance.delivery import digests
from relance.channels import OutgoingMessage
from relance.campaign.loaded import LoadedCampaign
from relance.workbench.preview import PreviewError
from relance.campaign.reasons import explain
from relance.delivery.rendering import Renderer

PREVIEW_RUN = "preview-digest"


def preview(con: duckdb.DuckDBPyConnection, loaded: LoadedCampaign, manager: str, *,
            when: datetime) -> tuple[OutgoingMessage, str]:
    """The digest `manager` would get as of `when`, and a note on what the engine decided."""
    campaign = loaded.campaign
    if campaign.digest is None:
        raise PreviewError(f"campaign {campaign.id} has no `digest:` section (see docs/digests.md)")
    manager = manager.strip().lower()
    con.execute("begin transaction")
    try:
        evaluation = engine.evaluate(con, loaded, when)
        found = con.execute("select outcome, reason, n_listed from eval_digests "
                            "where manager_email = ?", [manager]).fetchall()
        if not found:
            known = [r[0] for r in con.execute(
                "select manager_email from eval_digests order by n_listed desc limit 5").fetchall()]
            raise PreviewError(
                f"{manager} manages no learner of {campaign.id}'s digest groups as of "
                f"{when:%Y-%m-%d %H:%M} UTC; managers with the largest teams: "
                f"{', '.join(known) or 'none (no learner has a manager_email)'}")
        outcome, reason, n_listed = found[0]
        note = (f"{manager}: {n_listed} learners listed; the engine would "
                + ({"planned": "send it now", "deferred": "send it later"}.get(outcome)
                   or f"not send it ({explain(reason)})") + ".")
        # rendered whatever the engine decided: under a key of its own, so a digest already
        # in the ledger does not collide (all of it is rolled back)
        con.execute("update eval_digests set outcome = 'planned', not_before = ?, "
                    "idempotency_key = 'preview:' || idempotency_key where manager_email = ?",
                    [when, manager]).fetchall()
        con.execute("delete from eval_digests where manager_email <> ?", [manager]).fetchall()
        con.execute("insert into campaign_runs (run_id, campaign_id, campaign_sha, as_of, "
                    "started_at, status) values (?, ?, ?, ?, ?, 'running')",
                    [PREVIEW_RUN, campaign.id, loaded.sha, when, when]).fetchall()
        engine.persist(evaluation, PREVIEW_RUN)
        message_id = con.execute("select message_id from messages where run_id = ? and "
                                 "trigger = 'digest'", [PREVIEW_RUN]).fetchall()[0][0]
        con.execute("create or replace temp table delivery_batch (message_id varchar primary key)")
        con.execute("insert into delivery_batch values (?)", [message_id]).fetchall()
        row = digests.context_rows(con, campaign.timezone)[0] | {"is_digest": True}
        return digests.outgoing(loaded, Renderer(loaded), row), note
    finally:
        con.execute("rollback")
