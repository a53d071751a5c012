"""What learners' replies add to the ledger (relance/replies/ingest.py plans them), as
delivery sends them: the acknowledgement thanking the learner (the campaign's
`replies.acknowledgement` templates, in the learner's locale) and the forward of the reply
to the address its category routes to (a fixed text in the campaign's locale, Reply-To the
learner, so support answers them directly). Sent in the same batches as the campaign's
other messages, with its channel; one query per batch (reply_context.sql).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb

from relance.delivery import links
from warehouse import sql_file

HERE = Path(__file__).parent
TRIGGERS = ("reply:ack", "reply:forward")


def context_rows(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """The replies' messages of delivery_batch (the temp table delivery fills)."""
    return con.sql(sql_file(HERE, "reply_context")).to_arrow_table().to_pylist()


def template_context(loaded, row: dict) -> dict:
    campaign = loaded.campaign
    return {
        "learner": {"id": row["reply_learner_id"], "first_name": row["first_name"],
                    "last_name": row["last_name"], "name": row["learner_name"],
                    "email": row["learner_email"], "locale": row["locale"],
                    "timezone": row["timezone"]},
        "reply": {"subject": row["reply_subject"], "category": row["category"],
                  "received_at": row["received_at"]},
        "campaign": {"id": campaign.id},
        "sender": {"name": campaign.sender.name, "email": campaign.sender.email},
    }


_FORWARD = {
    "fr": ("[{category}] {name} : {subject}",
           "{name} <{email}> a répondu à un message de la campagne {campaign} ; sa réponse "
           "est classée « {category} » et vous est transmise.\n"
           "Répondez à ce message pour lui écrire directement.\n\n"
           "Objet : {subject}\nReçu le : {received}\n\n{body}\n"),
    "en": ("[{category}] {name}: {subject}",
           "{name} <{email}> replied to a message of the {campaign} campaign; the reply is "
           "sorted as \"{category}\" and passed on to you.\n"
           "Reply to this message to write to them directly.\n\n"
           "Subject: {subject}\nReceived: {received}\n\n{body}\n"),
}


def outgoing(loaded, renderer, row: dict, *, date: datetime | None = None):
    from relance.channels import OutgoingMessage
    campaign = loaded.campaign
    if campaign.replies is None:
        raise KeyError("replies (the campaign has no `replies:` block any more)")
    common = dict(message_id=row["message_id"], campaign_id=campaign.id,
                  from_email=campaign.sender.email, from_name=campaign.sender.name,
                  unsubscribe_mailto=links.mailto(campaign.sender.email, campaign.id),
                  date=date or row["not_before"], locale=row["locale"],
                  message_key=row["trigger"])
    if row["trigger"] == "reply:ack":
        ctx = template_context(loaded, row)
        folder = campaign.replies.acknowledgement
        if not folder:
            raise KeyError("replies.acknowledgement (removed from the campaign file)")
        rendered = renderer.render_folder(folder, row["locale"], ctx)
        return OutgoingMessage(
            to_email=row["to_email"], to_name=row["learner_name"] or "",
            # a reply to the thank-you comes back as a reply too
            reply_to=links.reply_address(campaign.replies.address, row["message_id"]),
            subject=rendered.subject, text=rendered.text, html=rendered.html,
            unsubscribe_url=links.url(row["learner_id"], campaign.id),
            # RFC 3834: an automatic answer, so the learner's own auto-responder stays silent
            # (no loop of out-of-office and thank-you)
            headers={"Auto-Submitted": "auto-replied"}, **common)
    subject, body = _FORWARD["fr" if row["locale"].startswith("fr") else "en"]
    values = {"category": row["category"] or "other", "name": row["learner_name"] or "",
              "email": row["learner_email"] or "", "campaign": campaign.id,
              "subject": row["reply_subject"] or "", "received": row["received_at"],
              "body": row["body_text"] or ""}
    from relance.channels.email import clean_text
    return OutgoingMessage(
        to_email=row["to_email"], to_name="", reply_to=row["learner_email"] or None,
        subject=clean_text(subject.format(**values))[:250], text=body.format(**values),
        html=None, unsubscribe_url=links.url(row["learner_id"], campaign.id),
        headers={"Auto-Submitted": "auto-generated"}, **common)
