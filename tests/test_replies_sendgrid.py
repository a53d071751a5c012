"""Through SendGrid (the documented-shape local server), each learner's mail still carries
their own reply address, though SendGrid takes one Reply-To per request of up to 1,000
messages: the request's reply_to is a substitution tag each personalization fills; and
the thanks and forwards a reply plans go out through the same channel, once."""

from __future__ import annotations

from datetime import timedelta

from relance import clock
from relance.delivery import links
from relance.replies import ingest
from relance.replies.mail import from_bytes
from relance.runs.steps import run_campaign
from relance.channels.sendgrid import REPLY_KEY
from tests.conftest import MONDAY
from tests.delivery_fixtures import sendgrid, sendgrid_server  # noqa: F401
from tests.replies_fixtures import ACK, REPLIES_BLOCK, reply


def test_each_learner_of_one_request_gets_their_own_reply_address(wh, cohort, campaigns, sendgrid):
    overrides = {f"merci/{loc}/{f}": t for loc, (sub, body) in ACK.items()
                 for f, t in (("subject.txt", sub), ("body.txt", body))}
    campaigns.write(campaigns.base().replace("control_group: 0%\n",
                                             "control_group: 0%\nchannel: sendgrid\n")
                    + REPLIES_BLOCK, template_overrides=overrides)
    loaded = campaigns.load()
    learners = [cohort.learner(inactive_days=8) for _ in range(3)]
    assert run_campaign(wh, loaded, as_of=MONDAY).sent == 3
    assert len(sendgrid.requests()) == 1          # one request for the three
    mails = {m["to"][0]["email"]: m for m in sendgrid.mails()}
    ids = dict(wh.execute("select learner_id, message_id from messages").fetchall())
    for lid in learners:
        got = mails[f"{lid.lower()}@example.org"]["reply_to"]["email"]
        assert got == links.reply_address("replies@example.org", ids[lid])
        assert REPLY_KEY not in got

    # a reply comes back: its thank-you and forward go out through SendGrid, once each
    with clock.at(MONDAY + timedelta(hours=1)):
        ingest.store(wh, from_bytes(reply(mails[f"{learners[1].lower()}@example.org"]["reply_to"]["email"],
                                          "je n'arrive pas à me connecter",
                                          sender=f"{learners[1].lower()}@example.org"), "imap"),
                     ingest.Campaigns(campaigns.root))
    sendgrid.reset()
    from relance.channels import for_campaign
    from relance.delivery import deliver_due
    report = deliver_due(wh, loaded, for_campaign(loaded), now=MONDAY + timedelta(hours=2))
    assert report.sent == 2 and report.failed == 0
    sent = {m["to"][0]["email"]: m for m in sendgrid.mails()}
    assert sent["support@example.org"]["reply_to"]["email"] == f"{learners[1].lower()}@example.org"
    assert "je n'arrive pas" in sent["support@example.org"]["text"]
    assert sent[f"{learners[1].lower()}@example.org"]["subject"].startswith("Merci")
    assert deliver_due(wh, loaded, for_campaign(loaded), now=MONDAY + timedelta(hours=3)).sent == 0
