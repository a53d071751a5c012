"""Learners' replies (issue 18): each message carries a signed reply address; a reply is
matched to its learner, sorted by the campaign's rules, routed, acknowledged once, counted
as activity; forged tokens, strangers, automatic mail and "stop" are handled as users expect."""

from __future__ import annotations

from datetime import timedelta
from email import message_from_bytes

from relance import clock
from relance.channels.outbox import OutboxChannel
from relance.delivery import deliver_due
from relance.replies import ingest
from relance.replies.mail import from_bytes
from relance.runs.steps import run_campaign
from tests.conftest import MONDAY
from tests.replies_fixtures import reply, sent_relance

LATER = MONDAY + timedelta(hours=2)


def store(wh, campaigns, raw: bytes, at=LATER):
    with clock.at(at):
        return ingest.store(wh, from_bytes(raw, "imap"), ingest.Campaigns(campaigns.root))


def test_every_message_carries_a_signed_reply_address_naming_it(wh, cohort, campaigns, tmp_path):
    lid, mid, reply_to, _ = sent_relance(wh, cohort, campaigns, tmp_path)
    assert reply_to.startswith(f"replies+{mid}.") and reply_to.endswith("@example.org")
    assert len(reply_to.partition("@")[0]) <= 64


def test_a_technical_question_reaches_support_counts_as_activity_and_is_thanked_once(
        wh, cohort, campaigns, tmp_path):
    lid, mid, reply_to, loaded = sent_relance(wh, cohort, campaigns, tmp_path)
    raw = reply(reply_to, "Bonjour,\nje n'arrive pas à me connecter depuis lundi.\n\n"
                          "Le 23 nov. 2026, Julie a écrit :\n> Vous en êtes à 0 %")
    got = store(wh, campaigns, raw)
    assert (got.status, got.learner_id, got.category, got.routed_to) == (
        "routed", lid, "technical", "support@example.org")
    again = store(wh, campaigns, raw, at=LATER + timedelta(minutes=5))     # posted twice
    assert again.already and again.reply_id == got.reply_id
    assert wh.execute("select count(*) from learner_replies").fetchall()[0][0] == 1

    out = OutboxChannel(tmp_path / "out")
    report = deliver_due(wh, loaded, out, now=LATER + timedelta(minutes=10))
    assert report.sent == 2 and report.failed == 0     # the forward and the thank-you
    files = {message_from_bytes(p.read_bytes())["To"]: message_from_bytes(p.read_bytes())
             for p in (tmp_path / "out" / loaded.id).glob("*.eml")}
    forward = files["support@example.org"]
    assert "je n'arrive pas" in forward.get_payload(decode=True).decode()
    assert forward["Reply-To"] == f"{lid.lower()}@example.org"
    thanks = next(m for to, m in files.items() if to.endswith(f"<{lid.lower()}@example.org>"))
    assert str(thanks["Subject"]).startswith("=?") or "Merci" in thanks["Subject"]
    # nothing more on a second delivery, nor after the same mail comes again
    store(wh, campaigns, raw, at=LATER + timedelta(hours=1))
    assert deliver_due(wh, loaded, out, now=LATER + timedelta(hours=2)).sent == 0

    # the next run sees the learner as active today (the reply is a sign of life)
    run_campaign(wh, loaded, as_of=MONDAY + timedelta(days=1), channel=out)
    inactive = wh.execute("select inactive_days from decisions where learner_id = ? "
                          "order by as_of desc limit 1", [lid]).fetchall()[0][0]
    assert inactive == 0
