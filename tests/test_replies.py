"""Learners' replies (issue 18): each message carries a signed reply address; a reply is
matched to its learner, sorted by the campaign's rules, routed, acknowledged once, counted
as activity; forged tokens, strangers, automatic mail and "stop" are handled as users expect."""

from __future__ import annotations

from datetime import timedelta

import pytest
from email import message_from_bytes
from email.header import decode_header, make_header

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
    # (the relance the learner answered is in the same folder, to the same address)
    before = set((tmp_path / "out" / loaded.id).glob("*.eml"))
    report = deliver_due(wh, loaded, out, now=LATER + timedelta(minutes=10))
    assert report.sent == 2 and report.failed == 0     # the forward and the thank-you
    files = {message_from_bytes(p.read_bytes())["To"]: message_from_bytes(p.read_bytes())
             for p in set((tmp_path / "out" / loaded.id).glob("*.eml")) - before}
    forward = files["support@example.org"]
    assert "je n'arrive pas" in forward.get_payload(decode=True).decode()
    assert forward["Reply-To"] == f"{lid.lower()}@example.org"
    assert forward["Auto-Submitted"] == "auto-generated"
    thanks = next(m for to, m in files.items() if to.endswith(f"<{lid.lower()}@example.org>"))
    assert "Merci" in str(make_header(decode_header(thanks["Subject"])))
    # RFC 3834: the learner's auto-responder does not answer a thank-you
    assert thanks["Auto-Submitted"] == "auto-replied"
    # nothing more on a second delivery, nor after the same mail comes again
    store(wh, campaigns, raw, at=LATER + timedelta(hours=1))
    assert deliver_due(wh, loaded, out, now=LATER + timedelta(hours=2)).sent == 0

    # the next run sees the learner as active today (the reply is a sign of life)
    run_campaign(wh, loaded, as_of=MONDAY + timedelta(days=1), channel=out)
    inactive = wh.execute("select inactive_days from decisions where learner_id = ? "
                          "order by as_of desc limit 1", [lid]).fetchall()[0][0]
    assert inactive == 0


# -- what is not a learner's words -----------------------------------------------------------

BOUNCE = (b"From: Mail Delivery System <MAILER-DAEMON@mx.example.org>\r\n"
          b"To: replies+{token}@example.org\r\nSubject: Undelivered Mail Returned to Sender\r\n"
          b"Message-ID: <bounce1@mx.example.org>\r\nMIME-Version: 1.0\r\n"
          b"Content-Type: multipart/report; report-type=delivery-status; boundary=b1\r\n\r\n"
          b"--b1\r\nContent-Type: text/plain\r\n\r\nThis is the mail system.\r\n"
          b"--b1\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n"
          b"Final-Recipient: rfc822; l00001@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n"
          b"--b1--\r\n")


def _automatic_cases(reply_to):
    token = reply_to.partition("+")[2].partition("@")[0].encode()
    return [
        ("bounce", BOUNCE.replace(b"{token}", token)),
        ("auto_submitted", reply(reply_to, "Je suis absente.", headers={"Auto-Submitted": "auto-replied"},
                                 message_id="<o1@x>")),
        ("auto_submitted", reply(reply_to, "Thanks", headers={"X-Autoreply": "yes"}, message_id="<o2@x>")),
        ("auto_submitted", reply(reply_to, "Newsletter", headers={"Precedence": "bulk"}, message_id="<o3@x>")),
        ("out_of_office", reply(reply_to, "I'm away until Monday.", subject="Out of Office: Re: relance",
                                message_id="<o4@x>")),
        ("out_of_office", reply(reply_to, "Je suis en congés.", subject="Absence du bureau",
                                message_id="<o5@x>")),
        ("bounce", reply(reply_to, "failed", sender="postmaster@mx.example.org", message_id="<o6@x>")),
    ]


def test_auto_replies_and_bounces_are_stored_but_are_no_activity_nor_thanked(
        wh, cohort, campaigns, tmp_path):
    lid, mid, reply_to, loaded = sent_relance(wh, cohort, campaigns, tmp_path)
    for expected, raw in _automatic_cases(reply_to):
        got = store(wh, campaigns, raw)
        assert (got.status, got.automatic) == ("automatic", expected), raw[:200]
    assert wh.execute("select count(*) from learner_replies where status = 'automatic' "
                      "and routed_to is null").fetchall() == [(7,)]
    assert wh.execute("select count(*) from progress_events where verb = 'replied'").fetchall() == [(0,)]
    assert wh.execute("select count(*) from messages where trigger like 'reply:%'").fetchall() == [(0,)]
    # a person's own mail with an ordinary subject is theirs
    assert store(wh, campaigns, reply(reply_to, "Merci !", headers={"Auto-Submitted": "no"},
                                      message_id="<p1@x>")).automatic is None


# -- stop ------------------------------------------------------------------------------------

def test_a_reply_asking_to_stop_unsubscribes_and_cancels_what_was_planned(wh, cohort, campaigns, tmp_path):
    lid, mid, reply_to, loaded = sent_relance(wh, cohort, campaigns, tmp_path)
    got = store(wh, campaigns, reply(reply_to, "STOP", message_id="<s1@x>"))
    assert (got.status, got.category) == ("unsubscribed", "stop")
    assert wh.execute("select email, campaign_id, reason from suppressions").fetchall() == [
        (f"{lid.lower()}@example.org", loaded.id, "unsubscribe")]
    assert wh.execute("select count(*) from messages where trigger like 'reply:%'").fetchall() == [(0,)]
    # the next run plans nothing more for them (the policies read suppressions)
    from relance.runs.steps import run_campaign
    run_campaign(wh, loaded, as_of=MONDAY + timedelta(days=14), channel=OutboxChannel(tmp_path / "out"))
    assert wh.execute("select count(*) from messages where learner_id = ? and status = 'sent'",
                      [lid]).fetchall() == [(1,)]


def test_a_french_unsubscribe_request_and_a_long_question_that_says_stop(wh, cohort, campaigns, tmp_path):
    lid, mid, reply_to, _ = sent_relance(wh, cohort, campaigns, tmp_path)
    long_question = ("Bonjour, la vidéo du module 3 s'arrête toujours au même endroit, quand je "
                     "clique sur stop puis lecture elle repart du début et je dois tout revoir, "
                     "est-ce normal ? J'ai essayé avec deux navigateurs différents sans succès, "
                     "pouvez-vous m'aider ? Merci d'avance")
    assert store(wh, campaigns, reply(reply_to, long_question, message_id="<q1@x>")).status == "routed"
    assert store(wh, campaigns, reply(reply_to, "Merci de me désinscrire.",
                                      message_id="<q2@x>")).status == "unsubscribed"


# -- matching without a token ------------------------------------------------------------------

def test_the_sender_address_matches_only_when_one_learner_has_it(wh, cohort, campaigns, tmp_path):
    lid, mid, reply_to, loaded = sent_relance(wh, cohort, campaigns, tmp_path)
    got = store(wh, campaigns, reply("formation@example.org", "Une question sur le cours",
                                     sender=f"{lid.lower()}@example.org", message_id="<m1@x>"))
    assert (got.status, got.learner_id, got.campaign_id) == ("routed", lid, loaded.id)
    assert "only learner" in got.reason
    twin_a = cohort.learner(email="shared@example.org")
    twin_b = cohort.learner(email="SHARED@example.org")
    got = store(wh, campaigns, reply("formation@example.org", "Bonjour",
                                     sender="shared@example.org", message_id="<m2@x>"))
    assert got.status == "unmatched" and got.learner_id is None and "share" in got.reason
    assert twin_a != twin_b


def test_a_valid_token_of_a_message_this_warehouse_never_sent_is_unmatched(wh, cohort, campaigns, tmp_path):
    from relance.delivery import links
    sent_relance(wh, cohort, campaigns, tmp_path)
    address = links.reply_address("replies@example.org", "0" * 24)
    got = store(wh, campaigns, reply(address, "hello", message_id="<u1@x>"))
    assert got.status == "unmatched" and "does not hold" in got.reason


# -- the designer's rules ------------------------------------------------------------------------

RULES = """\
replies:
  address: replies@example.org
  counts_as_activity: false
  categories:
    certificat:
      patterns: {fr: ["attestation|certificat"], en: ["certificate"]}
      route: scolarite@example.org
    technique:
      keywords: {fr: [connecter], en: [log in]}
      route: desk
  otherwise: formateur@example.org
"""


def test_the_designers_categories_route_in_order_and_activity_can_be_off(wh, cohort, campaigns, tmp_path):
    from tests.replies_fixtures import write_campaign
    lid, mid, reply_to, _ = sent_relance(wh, cohort, campaigns, tmp_path)
    write_campaign(campaigns, RULES)
    cases = [("Pouvez-vous m'envoyer mon ATTESTATION ?", "certificat", "scolarite@example.org"),
             ("I cannot log in", "technique", "desk"),
             ("Quelle belle formation", "other", "formateur@example.org")]
    for i, (text, category, route) in enumerate(cases):
        got = store(wh, campaigns, reply(reply_to, text, message_id=f"<r{i}@x>"))
        assert (got.category, got.routed_to) == (category, route), text
    assert wh.execute("select count(*) from progress_events where verb = 'replied'").fetchall() == [(0,)]
    assert wh.execute("select to_email from messages where trigger = 'reply:forward' "
                      "order by to_email").fetchall() == [("formateur@example.org",),
                                                           ("scolarite@example.org",)]


@pytest.mark.parametrize("block, where, says", [
    ("replies:\n  address: replies@example.org\n  categories:\n    tech:\n      patterns: {fr: ['(a+)+b']}\n      route: desk\n",
     "replies.categories.tech.patterns.fr", "repeats a repetition"),
    ("replies:\n  address: replies@example.org\n  categories:\n    tech:\n      patterns: {en: ['([a-z']}\n      route: desk\n",
     "replies.categories.tech.patterns.en", "not a valid regular expression"),
    ("replies:\n  address: replies@example.org\n  categories:\n    tech:\n      keywords: {fr: [bug]}\n      route: support\n",
     "replies.categories.tech.route", "`replies.support` is not set"),
    ("replies:\n  address: replies@example.org\n  otherwise: team\n",
     "replies.otherwise", "no `team:` block"),
    ("replies:\n  address: replies@example.org\n  categories:\n    tech:\n      keywords: {fr: [bug]}\n      route: nobody\n",
     "replies.categories.tech.route", "expected an e-mail address or one of"),
    ("replies:\n  address: replies@example.org\n  acknowledgement: absent\n",
     "replies.acknowledgement", "missing template"),
])
def test_a_wrong_replies_block_is_a_located_error(campaigns, block, where, says):
    from relance.campaign.problems import CampaignError
    campaigns.write(campaigns.base() + block)
    with pytest.raises(CampaignError) as exc:
        campaigns.load()
    found = [p for p in exc.value.problems if p.field == where]
    assert found and says in found[0].message and found[0].line, [str(p) for p in exc.value.problems]


def test_the_learners_own_plus_address_in_cc_is_no_forged_token(wh, cohort, campaigns, tmp_path):
    lid, mid, reply_to, loaded = sent_relance(wh, cohort, campaigns, tmp_path)
    raw = reply("formation@example.org", "Une question sur le module 2",
                sender=f"{lid.lower()}@example.org", headers={"Cc": "zoe+cours@gmail.example"},
                message_id="<cc1@x>")
    got = store(wh, campaigns, raw)
    assert (got.status, got.learner_id) == ("routed", lid)


def test_a_reply_routed_to_team_is_posted_to_the_channel_once(wh, cohort, campaigns, tmp_path, monkeypatch):
    """The team channel route: posted by the replies step (relance replies fetch, the
    hourly flow) through the channel's webhook, once; without the webhook it waits."""
    import json
    import os
    import signal
    import subprocess
    import sys
    import urllib.request
    from relance.replies import team
    from tests.conftest import REPO
    from tests.replies_fixtures import write_campaign
    lid, mid, reply_to, _ = sent_relance(wh, cohort, campaigns, tmp_path)
    write_campaign(campaigns, "team: {webhook_env: TEST_REPLIES_WEBHOOK}\n"
                              "replies:\n  address: replies@example.org\n  otherwise: team\n")
    store(wh, campaigns, reply(reply_to, "Quelle belle formation, merci <!channel>",
                               message_id="<t1@x>"))
    assert team.post_pending(wh, campaigns.root) == {"waiting": 1}
    proc = subprocess.Popen([sys.executable, "-m", "tests.fakes.webhook_server"], cwd=REPO,
                            stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{int(proc.stdout.readline().split()[-1])}"
        monkeypatch.setenv("TEST_REPLIES_WEBHOOK", url + "/services/T0/B0/x")
        assert team.post_pending(wh, campaigns.root) == {"posted": 1}
        assert team.post_pending(wh, campaigns.root) == {}
        with urllib.request.urlopen(url + "/_control/posts") as r:
            (post,) = json.loads(r.read())
        text = post["body"]["text"]
        assert "Quelle belle formation" in text and "<!channel>" not in text
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
        proc.stdout.close()
