"""Previewing: the exact message a learner would get, rendered by the same code as a real
send, inside a transaction that is rolled back, so nothing is written or sent."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb

from relance import engine
from relance.channels import OutgoingMessage
from relance.campaign.loaded import LoadedCampaign
from relance.campaign.reasons import explain
from relance.delivery.messages import context_rows, outgoing
from relance.delivery.rendering import Renderer

PREVIEW_RUN = "preview"


class PreviewError(Exception):
    pass


@dataclass
class PreviewResult:
    outgoing: OutgoingMessage
    message_key: str
    note: str


def preview(con: duckdb.DuckDBPyConnection, loaded: LoadedCampaign, learner_id: str, *,
            when: datetime, message_key: str | None = None) -> PreviewResult:
    campaign = loaded.campaign
    if message_key and message_key not in campaign.messages:
        raise PreviewError(f"campaign {campaign.id} has no message {message_key!r}; its "
                           f"messages are: {', '.join(campaign.messages)}")
    con.execute("begin transaction")
    try:
        # (the managers' digests change no learner's message: not planned here, a fifth of
        # the evaluation on the demo; digest_preview.py shows them)
        evaluation = engine.evaluate(con, loaded, when, with_digests=False)
        engine.persist(evaluation, PREVIEW_RUN)
        decision = con.execute(
            "select stage, message_key, outcome, reason, course_id from eval_decisions "
            "where learner_id = ? order by outcome = 'no_message' limit 1", [learner_id]).fetchall()
        if not decision:
            raise PreviewError(f"learner {learner_id!r} is not in the audience of {campaign.id} "
                               f"as of {when:%Y-%m-%d %H:%M} UTC")
        stage, chosen, outcome, reason, course_id = decision[0]
        if message_key is None:
            if outcome not in ("planned", "deferred"):
                raise PreviewError(
                    f"{learner_id} (stage {stage}) gets no message as of {when:%Y-%m-%d %H:%M} "
                    f"UTC: {explain(reason)}. Pass --message to render one anyway "
                    f"({', '.join(campaign.messages)}).")
            message_key = chosen
            note = f"{learner_id} is in stage {stage} and would get {message_key!r} ({outcome})."
        else:
            note = (f"{learner_id} is in stage {stage}; rendering {message_key!r} on request "
                    f"(the engine's own choice: {chosen or 'none'}, {explain(reason) or outcome}).")
        rows = con.execute("select message_id from messages where run_id = ? and learner_id = ? "
                           "and message_key = ?", [PREVIEW_RUN, learner_id, message_key]).fetchall()
        if rows:
            message_id = rows[0][0]
        else:
            message_id = "preview-" + learner_id
            con.execute(
                "insert into messages (message_id, idempotency_key, run_id, campaign_id, "
                "message_key, trigger, learner_id, course_id, channel, locale, to_email, status, "
                "not_before, planned_at) select ?, ?, ?, ?, ?, ?, s.learner_id, s.course_id, "
                "'preview', s.msg_locale, l.email, 'planned', ?, ? from eval_state s "
                "join learners l using (learner_id) where s.learner_id = ? and s.course_id = ?",
                [message_id, message_id, PREVIEW_RUN, campaign.id, message_key,
                 _trigger(con, loaded, message_key, learner_id), when, when, learner_id,
                 course_id]).fetchall()
        context = context_rows(con, [message_id], campaign.timezone)
        out = outgoing(loaded, Renderer(loaded), context[0])
        return PreviewResult(out, message_key, note)
    finally:
        con.execute("rollback")


def _trigger(con, loaded: LoadedCampaign, key: str, learner_id: str) -> str:
    msg = loaded.campaign.messages[key]
    if msg.on_milestone:
        progress = con.execute("select max(progress) from eval_state where learner_id = ?",
                               [learner_id]).fetchall()[0][0] or 0
        crossed = [m for m in sorted(msg.on_milestone) if m <= progress]
        return f"milestone:{(crossed[-1] if crossed else min(msg.on_milestone)):g}"
    if msg.on_activity:
        return f"activity:{msg.on_activity[0]}"
    return msg.trigger
