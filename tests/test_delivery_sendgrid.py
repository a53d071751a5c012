"""The sendgrid channel against the local SendGrid-compatible server: what each learner
gets, how many requests it takes, and what the ledger says when SendGrid says no."""

from __future__ import annotations

import logging
import socket
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlparse

import pytest

from relance.delivery import links
from relance.channels import ChannelConfigError, OutgoingMessage, for_campaign
from relance.channels.sendgrid import SendGridChannel
from relance.delivery import deliver_due, send_chunks
from relance.campaign.problems import CampaignError
from relance.runs.steps import run_campaign
from tests.conftest import MONDAY
from tests.delivery_fixtures import (API_KEY, FakeSendGrid, big_cohort, certs,  # noqa: F401
                                     sendgrid, sendgrid_campaign, sendgrid_server)


def ledger(wh) -> dict[str, tuple]:
    return {r[0]: r[1:] for r in wh.execute(
        "select message_id, status, error, provider_message_id, attempts from messages").fetchall()}


def channel(server, **kw) -> tuple[SendGridChannel, list[float]]:
    sleeps: list[float] = []
    return SendGridChannel(API_KEY, host=server.url, sleep=sleeps.append, **kw), sleeps


def test_each_learner_gets_their_own_mail_with_unsubscribe_headers_and_ids(wh, cohort, campaigns, sendgrid):
    sendgrid_campaign(campaigns, "sendgrid: {categories: [relance]}\n")
    fr = cohort.learner(inactive_days=8, first_name="Zoé")
    en = cohort.learner(inactive_days=8, first_name="Siobhán", locale="en")
    summary = run_campaign(wh, campaigns.load(), as_of=MONDAY)
    assert summary.sent == 2
    mails = {m["to"][0]["email"]: m for m in sendgrid.mails()}
    assert set(mails) == {f"{fr.lower()}@example.org", f"{en.lower()}@example.org"}
    zoe = mails[f"{fr.lower()}@example.org"]
    assert zoe["subject"] == "Bonjour Zoé — at_risk"
    assert "Vous en êtes à 0" in zoe["text"] and "« Anglais B2 — démo »" in zoe["text"]
    assert zoe["html"].startswith("<p>Zoé,")
    assert mails[f"{en.lower()}@example.org"]["subject"] == "Hello Siobhán — at_risk"
    assert zoe["to"][0]["name"] == "Zoé Lefèvre"
    assert zoe["from"] == {"email": "formation@example.org", "name": "Julie, équipe formation"}
    # the one-click unsubscribe link is the learner's own, signed
    link = zoe["headers"]["List-Unsubscribe"].split(",")[0].strip("<> ")
    q = parse_qs(urlparse(link).query)
    assert q["l"] == [fr] and q["c"] == ["test"] and links.verify(fr, "test", q["t"][0])
    assert zoe["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert zoe["categories"][0] == "test" and "relance" in zoe["categories"]
    # custom_args carry the ledger's message id: events come back joined to it
    rows = dict(wh.execute("select learner_id, message_id from messages").fetchall())
    assert zoe["custom_args"] == {"relance_campaign": "test", "relance_message_id": rows[fr]}
    status, _err, provider_id, attempts = ledger(wh)[rows[fr]]
    assert (status, attempts) == ("sent", 1) and provider_id == zoe["x_message_id"]


def test_the_ledger_keeps_the_subject_sendgrid_got(wh, cohort, campaigns, sendgrid):
    sendgrid_campaign(campaigns)
    cohort.learner(inactive_days=8, first_name="Zoé\u202e\u0085")
    run_campaign(wh, campaigns.load(), as_of=MONDAY)
    (mail,) = sendgrid.mails()
    assert mail["subject"] == "Bonjour Zoé — at_risk"
    assert wh.execute("select subject from messages").fetchall() == [(mail["subject"],)]


@pytest.mark.parametrize("concurrency", [1, 3])
def test_thousands_of_messages_go_in_requests_of_at_most_1000(wh, campaigns, sendgrid, concurrency):
    sendgrid_campaign(campaigns, f"sendgrid: {{concurrency: {concurrency}}}\n")
    big_cohort(wh, 2500)                      # 1667 in French, 833 in English
    summary = run_campaign(wh, campaigns.load(), as_of=MONDAY)
    assert summary.sent == 2500
    state = sendgrid.state()
    # delivery reads batches of 2,000 then 500; each goes out 1,000 at most (the server
    # refuses more), French and English together: their content is per personalization
    assert state["requests"] == state["accepted_requests"] == 3
    accepted = sendgrid.accepted()
    assert len(accepted) == 2500 and set(accepted.values()) == {1}
    ledger = dict(wh.execute("select message_id, status from messages").fetchall())
    assert set(ledger) == set(accepted) and set(ledger.values()) == {"sent"}
    assert wh.execute("select state, count(*), sum(n_messages) from send_attempts "
                      "group by all").fetchall() == [("done", 3, 2500)]


def test_an_address_shared_by_two_learners_goes_in_separate_requests(wh, cohort, campaigns, sendgrid):
    """SendGrid refuses a request naming an address twice: the channel never builds one."""
    sendgrid_campaign(campaigns)
    cohort.learner(inactive_days=8, email="famille@example.org")
    cohort.learner(inactive_days=8, email="Famille@example.org")
    assert run_campaign(wh, campaigns.load(), as_of=MONDAY).sent == 2
    assert sendgrid.state()["accepted_requests"] == 2


def test_429_waits_what_sendgrid_asks_then_sends(wh, cohort, campaigns, sendgrid):
    sendgrid_campaign(campaigns)
    cohort.learner(inactive_days=8)
    sendgrid.script({"status": 429, "retry_after": 7}, {"status": 429, "reset_in": 30})
    ch, sleeps = channel(sendgrid)
    assert run_campaign(wh, campaigns.load(), as_of=MONDAY, channel=ch).sent == 1
    assert sleeps[0] == 7 and 25 <= sleeps[1] <= 31
    assert sum(sendgrid.accepted().values()) == 1


def test_5xx_is_retried_with_growing_backoff(wh, cohort, campaigns, sendgrid):
    sendgrid_campaign(campaigns)
    cohort.learner(inactive_days=8)
    sendgrid.script({"status": 500}, {"status": 503}, {"status": 503})
    ch, sleeps = channel(sendgrid)
    assert run_campaign(wh, campaigns.load(), as_of=MONDAY, channel=ch).sent == 1
    assert len(sleeps) == 3
    assert 0.5 <= sleeps[0] <= 1 and 1 <= sleeps[1] <= 2 and 2 <= sleeps[2] <= 4


def test_while_it_waits_to_retry_nothing_is_in_flight(wh, cohort, campaigns, sendgrid):
    """A refused request (503, 429) is recorded as ended before the wait: were the sender
    killed then, no message would be found in flight (and become uncertain); each request
    is in the attempts' log, the refused ones with SendGrid's answer."""
    sendgrid_campaign(campaigns)
    for _ in range(3):
        cohort.learner(inactive_days=8)
    sendgrid.script({"status": 503}, {"status": 429, "retry_after": 2})
    probe = wh.cursor()         # what a delivery starting now would find
    in_flight_while_waiting = []
    ch, _ = channel(sendgrid)
    ch.sleep = lambda seconds: in_flight_while_waiting.append(probe.execute(
        "select count(*) from send_attempts where state = 'in_flight'").fetchall()[0][0])
    assert run_campaign(wh, campaigns.load(), as_of=MONDAY, channel=ch).sent == 3
    assert in_flight_while_waiting == [0, 0]
    log = wh.execute("select state, n_messages, note from send_attempts order by started_at, "
                     "state desc").fetchall()
    assert [(state, n) for state, n, _ in log] == [("refused", 3), ("refused", 3), ("done", 3)]
    assert "status_code=503" in log[0][2] and "status_code=429" in log[1][2]
    assert sum(sendgrid.accepted().values()) == 3


def test_5xx_beyond_the_retry_budget_fails_the_messages_for_the_next_delivery(wh, cohort, campaigns, sendgrid):
    sendgrid_campaign(campaigns)
    cohort.learner(inactive_days=8)
    loaded = campaigns.load()
    sendgrid.script({"status": 503, "times": 100})
    ch, sleeps = channel(sendgrid, max_retry_seconds=20)
    summary = run_campaign(wh, loaded, as_of=MONDAY, channel=ch)
    assert summary.failed == 1 and sum(sleeps) <= 20
    ((status, error, _pid, attempts),) = ledger(wh).values()
    assert status == "failed" and attempts == 1
    assert error.startswith("Recoverable SendGrid error (status_code=503): service unavailable")
    assert "gave up after retrying for 20 s" in error
    sendgrid.reset()
    assert deliver_due(wh, loaded, channel(sendgrid)[0], now=MONDAY).sent == 1   # next delivery
    assert sum(sendgrid.accepted().values()) == 1


def test_a_400_fails_the_personalizations_sendgrid_names_and_sends_the_others(wh, cohort, campaigns, sendgrid):
    sendgrid_campaign(campaigns)
    ids = [cohort.learner(inactive_days=8) for _ in range(3)]
    sendgrid.script({"status": 400, "errors": [{
        "message": "Does not contain a valid address.", "field": "personalizations.1.to.0.email",
        "help": "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html"}]})
    summary = run_campaign(wh, campaigns.load(), as_of=MONDAY, channel=channel(sendgrid)[0])
    assert (summary.sent, summary.failed) == (2, 1)
    by_learner = dict(wh.execute("select learner_id, error from messages where status = 'failed'").fetchall())
    assert list(by_learner) == [ids[1]]
    assert by_learner[ids[1]] == ("SendGrid refused the request (status_code=400): Does not "
                                  "contain a valid address. (personalizations.1.to.0.email)")
    assert sorted(sendgrid.accepted()) == sorted(
        r[0] for r in wh.execute("select message_id from messages where status = 'sent'").fetchall())


def test_a_400_naming_one_personalization_only_in_its_message_fails_it_alone(
        wh, cohort, campaigns, sendgrid):
    """SendGrid's newer validation errors name the personalization only at the end of their
    message, `field` null: the one named fails, the 20 others of the request go once."""
    sendgrid_campaign(campaigns)
    for _ in range(21):
        cohort.learner(inactive_days=8)
    sendgrid.script({"status": 400, "errors": [{
        "message": "Validation error(s): Does not contain a valid address. for field "
                   "personalizations.7", "field": None, "help": None}]})
    summary = run_campaign(wh, campaigns.load(), as_of=MONDAY, channel=channel(sendgrid)[0])
    assert (summary.sent, summary.failed) == (20, 1)
    (error,) = [r[1] for r in ledger(wh).values() if r[0] == "failed"]
    assert error == ("SendGrid refused the request (status_code=400): Validation error(s): "
                     "Does not contain a valid address. for field personalizations.7")
    sent = {r[0] for r in wh.execute("select message_id from messages where status = 'sent'").fetchall()}
    assert sendgrid.accepted() == {m: 1 for m in sent}           # each innocent one, once
    assert sendgrid.state()["requests"] == 2


@pytest.mark.parametrize("form", ["field", "message"])
def test_personalizations_sendgrid_refuses_fail_alone_in_either_error_form(sendgrid, form):
    """The local server refuses what SendGrid refuses (here a personalization without a
    subject) and names it in `field` or, like SendGrid's newer answers, in `message`."""
    sendgrid.error_form(form)
    ch, _ = channel(sendgrid)
    messages = [_message(i, subject="" if i in (1, 3) else "Bonjour") for i in range(5)]
    (chunk,) = ch.chunks(messages)
    results = {r.message_id: r for r in ch.send(chunk, ch.prepare(chunk))}
    assert {m: r.status for m, r in results.items()} == {
        "m0000": "sent", "m0001": "failed", "m0002": "sent", "m0003": "failed", "m0004": "sent"}
    assert "The subject is required" in results["m0001"].error
    assert sendgrid.accepted() == {"m0000": 1, "m0002": 1, "m0004": 1}
    assert sendgrid.state()["requests"] == 2
    # an error about the request itself (its sender) beside one about a recipient: the
    # others would be refused the same way, so all of them fail
    sendgrid.script({"status": 400, "errors": [
        {"message": "Validation error(s): Does not contain a valid address. for field "
                    "personalizations.1", "field": None, "help": None},
        {"message": "Validation error(s): The from object must be provided for every email "
                    "send. for field from", "field": None, "help": None}]})
    (chunk,) = ch.chunks([_message(i) for i in range(5, 8)])
    results = ch.send(chunk, ch.prepare(chunk))
    assert {r.status for r in results} == {"failed"} and "for field from" in results[0].error
    assert sendgrid.state()["requests"] == 3 and len(sendgrid.accepted()) == 3


@pytest.mark.parametrize("status, text", [
    (401, "The provided authorization grant is invalid, expired, or revoked"),
    (403, "access forbidden"),
    (413, "Payload Too Large"),
])
def test_401_403_413_fail_every_message_with_sendgrids_text(wh, cohort, campaigns, sendgrid, status, text):
    sendgrid_campaign(campaigns)
    for _ in range(3):
        cohort.learner(inactive_days=8)
    sendgrid.script({"status": status, "times": 5})
    ch, sleeps = channel(sendgrid)
    summary = run_campaign(wh, campaigns.load(), as_of=MONDAY, channel=ch)
    assert (summary.sent, summary.failed) == (0, 3) and sleeps == []
    errors = {r[1] for r in ledger(wh).values()}
    assert errors == {f"SendGrid refused the request (status_code={status}): {text}"}
    assert sendgrid.accepted() == {}


def test_the_key_is_never_logged_or_shown_and_a_wrong_one_is_refused(wh, cohort, campaigns, sendgrid, caplog):
    sendgrid_campaign(campaigns)
    cohort.learner(inactive_days=8)
    loaded = campaigns.load()
    sendgrid.script({"status": 503})                            # one retry, logged
    good = SendGridChannel(API_KEY, host=sendgrid.url, sleep=lambda s: None)
    with caplog.at_level(logging.DEBUG):
        assert run_campaign(wh, loaded, as_of=MONDAY, channel=good).sent == 1
    assert "retrying" in caplog.text and API_KEY not in caplog.text and API_KEY not in repr(good)
    cohort.learner(inactive_days=8)
    wrong = "SG.wrong-key-" + "x" * 20
    with caplog.at_level(logging.DEBUG):
        summary = run_campaign(wh, loaded, as_of=MONDAY,
                               channel=SendGridChannel(wrong, host=sendgrid.url, sleep=lambda s: None))
    assert summary.failed == 1
    (error,) = [r[1] for r in ledger(wh).values() if r[0] == "failed"]
    assert error == ("SendGrid refused the request (status_code=401): The provided "
                     "authorization grant is invalid, expired, or revoked")
    assert wrong not in caplog.text


def test_a_refused_connection_is_retried_then_failed(wh, cohort, campaigns):
    sendgrid_campaign(campaigns)
    cohort.learner(inactive_days=8)
    with socket.socket() as s:                                   # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sleeps: list[float] = []
    ch = SendGridChannel(API_KEY, host=f"http://127.0.0.1:{port}", sleep=sleeps.append,
                         max_retry_seconds=10)
    assert run_campaign(wh, campaigns.load(), as_of=MONDAY, channel=ch).failed == 1
    ((status, error, _p, _a),) = ledger(wh).values()
    assert status == "failed" and error.startswith("Recoverable SendGrid error (connection): ")
    assert len(sleeps) >= 3 and sum(sleeps) <= 10


def test_no_answer_after_sending_makes_the_messages_uncertain_never_resent(wh, cohort, campaigns, sendgrid):
    sendgrid_campaign(campaigns)
    cohort.learner(inactive_days=8)
    loaded = campaigns.load()
    sendgrid.script({"hold": 3, "status": 202})           # accepted, the answer comes too late
    ch, _ = channel(sendgrid, timeout=0.5)
    summary = run_campaign(wh, loaded, as_of=MONDAY, channel=ch)
    assert (summary.sent, summary.failed) == (0, 0)
    ((status, error, _p, _a),) = ledger(wh).values()
    assert status == "uncertain" and "may have been accepted" in error
    report = deliver_due(wh, loaded, channel(sendgrid)[0], now=MONDAY)
    assert report.sent == 0 and report.uncertain_pending == 1
    assert sum(sendgrid.accepted().values()) == 1               # once, never twice


def test_sandbox_mode_is_validated_not_delivered(wh, cohort, campaigns, sendgrid):
    sendgrid_campaign(campaigns, "sendgrid: {sandbox: true}\n")
    cohort.learner(inactive_days=8)
    assert run_campaign(wh, campaigns.load(), as_of=MONDAY).sent == 1
    (mail,) = sendgrid.mails()
    assert mail["sandbox"] is True and sendgrid.state()["statuses"] == {"200": 1}


def test_dynamic_templates_get_the_context_as_template_data(wh, cohort, campaigns, sendgrid):
    template = "d-" + "0123456789abcdef" * 2
    sendgrid_campaign(campaigns, f"sendgrid: {{templates: {{relance: {template}}}}}\n")
    lid = cohort.learner(inactive_days=8, first_name="Zoé")
    assert run_campaign(wh, campaigns.load(), as_of=MONDAY).sent == 1
    (mail,) = sendgrid.mails()
    assert mail["template_id"] == template and mail["text"] is None
    data = mail["dynamic_template_data"]
    assert data["learner"]["first_name"] == "Zoé" and data["learner"]["id"] == lid
    assert data["course"]["title"] == "Anglais B2 — démo" and data["subject"] == "Bonjour Zoé — at_risk"


def test_without_a_key_nothing_is_sent_and_the_error_says_how_to_fix_it(wh, cohort, campaigns, monkeypatch):
    monkeypatch.delenv("SENDGRID_API_KEY", raising=False)
    sendgrid_campaign(campaigns)
    cohort.learner(inactive_days=8)
    with pytest.raises(ChannelConfigError, match=r"SENDGRID_API_KEY is not set: the sendgrid "
                                                 r"channel is disabled; set it .*Nothing was sent"):
        for_campaign(campaigns.load())


@pytest.mark.parametrize("extra, expected", [
    ("channel: mailgun\n", "channel: input should be 'outbox', 'sendgrid', 'smtp', 'moodle' or 'canvas', got 'mailgun'"),
    ("channel: smtp\n", "channel: `channel: smtp` needs an `smtp:` block with at least `host:`"),
    ("sendgrid: {templates: {relanse: d-0123456789abcdef0123456789abcdef}}\n",
     "sendgrid.templates.relanse: unknown message 'relanse'; the messages are: bravo, relance"),
    ("sendgrid: {templates: {relance: tpl-1}}\n",
     "sendgrid.templates.relance: string should match pattern '^d-[0-9a-f]{32}$', got 'tpl-1'"),
    ("smtp: {host: mail.example.org, security: ssl}\n",
     "smtp.security: input should be 'starttls', 'tls' or 'none', got 'ssl'"),
])
def test_channel_options_are_checked_with_file_line_and_field(campaigns, extra, expected):
    campaigns.write(campaigns.base().replace("control_group: 0%\n", "control_group: 0%\n" + extra))
    with pytest.raises(CampaignError) as caught:
        campaigns.load()
    text = str(caught.value)
    assert expected in text, text
    assert "test.yaml:7:" in text or "test.yaml:8:" in text, text


def test_the_run_summary_artifact_reports_uncertain_messages():
    from flows.run_campaign import summary_markdown
    planned = {"run_id": "r1", "totals": {"evaluated": 10, "planned": 10, "deferred": 0,
                                          "suppressed": 0},
               "stages": [("at_risk", 10, 0)], "outcomes": []}
    delivered = {"sent": 7, "failed": 0, "cancelled": 0, "errors": {}, "cancel_reasons": {},
                 "uncertain": 3, "uncertain_pending": 3}
    text = summary_markdown("test", MONDAY, planned, delivered, [])
    assert "## Uncertain messages\n\n3 messages were handed to the provider, which never answered" in text
    assert "`relance uncertain list`" in text


def test_addresses_no_channel_can_send_to_are_never_planned_nor_sent(wh, cohort, campaigns, sendgrid):
    sendgrid_campaign(campaigns)
    good = cohort.learner(inactive_days=8)
    bad = [cohort.learner(inactive_days=8, email=a)
           for a in ("zoe lefevre@example.org", "x<y>@example.org", "élodie@example.org")]
    summary = run_campaign(wh, campaigns.load(), as_of=MONDAY)
    assert (summary.sent, summary.failed) == (1, 0)
    assert [r[0] for r in wh.execute("select learner_id from messages").fetchall()] == [good]
    assert {r[0] for r in wh.execute("select reason from decisions where learner_id in ?",
                                     [bad]).fetchall()} == {"invalid_email"}
    assert len(sendgrid.accepted()) == 1 and sendgrid.state()["requests"] == 1


def test_a_message_to_an_address_no_channel_can_send_to_fails_alone_before_the_request(sendgrid):
    """Planned by a relance without the rule: it fails with why, the others go, once."""
    ch, _ = channel(sendgrid)
    messages = [_message(0), _message(1, to_email="élodie@example.org"), _message(2)]
    (chunk,) = ch.chunks(messages)
    results = {r.message_id: r for r in ch.send(chunk, ch.prepare(chunk))}
    assert {m: r.status for m, r in results.items()} == {"m0000": "sent", "m0001": "failed",
                                                          "m0002": "sent"}
    assert results["m0001"].error.startswith(
        "invalid message: cannot send to 'élodie@example.org': not ASCII: a non-ASCII name "
        "before the @ needs SMTPUTF8")
    assert sendgrid.accepted() == {"m0000": 1, "m0002": 1} and sendgrid.state()["requests"] == 1


def _message(i: int, **kw) -> OutgoingMessage:
    fields = dict(message_id=f"m{i:04d}", campaign_id="test", to_email=f"l{i}@example.org",
                  to_name="Zoé Lefèvre", from_email="formation@example.org", from_name="Julie",
                  reply_to=None, subject="Bonjour", text="Bonjour Zoé,\n", html="<p>Zoé</p>",
                  unsubscribe_url=f"https://relance.example/u?l=L{i}&t=x",
                  unsubscribe_mailto="mailto:formation@example.org?subject=unsubscribe",
                  message_key="relance", locale="fr")
    return OutgoingMessage(**(fields | kw))


def test_names_subjects_and_texts_arrive_exactly_as_written(sendgrid):
    """The request body is assembled from escaped values (channel._personalization):
    quotes, backslashes, emoji, markup and line breaks must arrive as they were written,
    and a line separator in a name or subject never reaches a header."""
    ch, _ = channel(sendgrid)
    tricky = _message(1, to_name='Zoé "Zazou" O\'Brien \\ 😀', subject='« 75 % » \\o/ "bravo"\u2028ok',
                      text='Ligne 1\n"citée" \\ \t</script>\u2028fin\n', html='<p onclick="x">&amp;</p>')
    plain = _message(2, to_name="", html=None)
    for chunk in ch.chunks([tricky, plain]):      # with and without HTML: two requests
        assert {r.status for r in ch.send(chunk, ch.prepare(chunk))} == {"sent"}
    mails = {m["to"][0]["email"]: m for m in sendgrid.mails()}
    got = mails["l1@example.org"]
    assert got["to"] == [{"email": "l1@example.org", "name": 'Zoé "Zazou" O\'Brien \\ 😀'}]
    assert got["subject"] == '« 75 % » \\o/ "bravo" ok'
    assert got["text"] == tricky.text and got["html"] == tricky.html
    assert got["custom_args"]["relance_message_id"] == "m0001"
    # no name: no name field (SendGrid refuses an empty one); no HTML: text only
    assert mails["l2@example.org"]["to"] == [{"email": "l2@example.org"}]
    assert mails["l2@example.org"]["html"] is None and mails["l2@example.org"]["text"] == plain.text


@pytest.mark.parametrize("long_text", [
    "Votre semaine, en détail. " * 500,             # 13,000 bytes: over SendGrid's 10,000
    # 7,500 bytes of UTF-8 but 18,000 as the JSON SendGrid reads and counts (3,000 é as
    # \u00e9, quotes and newlines escaped): with substitutions, as its UTF-8 size
    # suggested, it was refused with a 400
    "é" * 3000 + '"' * 1000 + "\n" * 500,
], ids=["over in utf-8", "over once escaped"])
def test_a_message_too_long_for_substitutions_goes_alone_with_its_own_content(sendgrid, long_text):
    ch, _ = channel(sendgrid)
    messages = [_message(1), _message(2, text=long_text), _message(3)]
    chunks = list(ch.chunks(messages))
    assert sorted(len(c) for c in chunks) == [1, 2]
    for c in chunks:
        assert {r.status for r in ch.send(c, ch.prepare(c))} == {"sent"}
    mails = {m["to"][0]["email"]: m for m in sendgrid.mails()}
    assert mails["l2@example.org"]["text"] == long_text
    assert mails["l1@example.org"]["text"] == mails["l3@example.org"]["text"] == "Bonjour Zoé,\n"


def test_when_reading_the_next_batch_fails_the_request_on_the_wire_is_still_recorded(sendgrid):
    """The pipeline reads the next batch while a request is on the wire; if that read
    fails, the request's verdict is still recorded before the error goes up, so it is not
    left in flight (which would make its messages 'uncertain')."""
    ch, _ = channel(sendgrid)
    begun, ended = [], []

    def chunks():
        yield [_message(1), _message(2)]
        raise RuntimeError("the warehouse went away")

    with ThreadPoolExecutor(1) as pool, pytest.raises(RuntimeError, match="went away"):
        send_chunks(ch, chunks(), lambda c: begun.append(len(c)) or "a1",
                    lambda a, c, results: ended.append((a, sorted(r.status for r in results))),
                    pool)
    assert begun == [2] and ended == [("a1", ["sent", "sent"])]
    assert sum(sendgrid.accepted().values()) == 2


def test_over_https_as_sendgrid_serves_it(certs, monkeypatch):
    """SendGrid is HTTPS only: the channel's own connection classes (they tell delivery
    when a request is written) must verify and speak TLS like the SDK's defaults."""
    server = FakeSendGrid(tls=certs)
    try:
        monkeypatch.setenv("SSL_CERT_FILE", str(certs / "cert.pem"))   # trust the test's CA
        ch = SendGridChannel(API_KEY, host=server.url)
        chunk = [_message(1), _message(2)]
        prepared = ch.prepare(chunk)
        assert [r.status for r in ch.send(chunk, prepared)] == ["sent", "sent"]
        assert prepared.on_the_wire.is_set() and server.state()["accepted_messages"] == 2
        # a server that does not speak TLS, then a certificate nobody vouches for: refused
        # before anything is sent, at once (trying again for minutes would meet the same
        # server), saying what to check
        server.script({"tls": "garbage"})
        sleeps: list[float] = []
        results = SendGridChannel(API_KEY, host=server.url, sleep=sleeps.append).send([_message(3)])
        assert results[0].status == "failed" and "WRONG_VERSION_NUMBER" in results[0].error
        monkeypatch.delenv("SSL_CERT_FILE")
        results = SendGridChannel(API_KEY, host=server.url, sleep=sleeps.append).send([_message(4)])
        assert results[0].status == "failed" and "CERTIFICATE_VERIFY_FAILED" in results[0].error
        assert "nothing was sent" in results[0].error and "SSL_CERT_FILE" in results[0].error
        assert sleeps == [] and server.state()["accepted_messages"] == 2
    finally:
        server.stop()


def test_a_key_ending_in_a_line_break_is_refused_when_the_channel_opens_never_shown(
        wh, cohort, campaigns, sendgrid, monkeypatch):
    """A Windows-edited env file gives the key a trailing \\r: http.client would refuse it at
    the first request with the key in its message. The channel refuses it as it opens,
    before any attempt is recorded, naming the fix and never the key; nothing is sent,
    no message is sent or uncertain."""
    sendgrid_campaign(campaigns)
    cohort.learner(inactive_days=8)
    loaded = campaigns.load()
    monkeypatch.setenv("SENDGRID_API_KEY", sendgrid.key + "\r")
    with pytest.raises(ChannelConfigError) as refused:
        run_campaign(wh, loaded, as_of=MONDAY)
    assert "line break" in str(refused.value) and "SENDGRID_API_KEY" in str(refused.value)
    assert sendgrid.key not in str(refused.value)
    # refused as the channel opened: nothing was handed over, nothing is uncertain
    assert wh.execute("select count(*) from messages where status <> 'planned'").fetchall() == [(0,)]
    assert wh.execute("select count(*) from send_attempts").fetchall() == [(0,)]
    assert sendgrid.state()["accepted_messages"] == 0


def test_an_error_before_the_request_leaves_is_a_failure_with_no_key_in_it(
        wh, cohort, campaigns, sendgrid, monkeypatch):
    """Whatever the HTTP library raises before a byte is written (here, as http.client does
    for a bad header, with the key in its text), SendGrid got nothing: the messages fail
    and are retried by the next delivery; none is 'uncertain'; the key is in no row."""
    sendgrid_campaign(campaigns)
    for _ in range(2):
        cohort.learner(inactive_days=8)
    loaded = campaigns.load()
    key = sendgrid.key

    def refuses(self, data):
        raise ValueError(f"Invalid header value b'Bearer {key}'")
    monkeypatch.setattr(SendGridChannel, "_request", refuses)
    summary = run_campaign(wh, loaded, as_of=MONDAY)
    assert (summary.sent, summary.failed) == (0, 2)
    rows = wh.execute("select status, error from messages").fetchall()
    assert {status for status, _ in rows} == {"failed"}
    assert all("ValueError" in error and key not in error and "<the API key>" in error
               for _, error in rows)
    assert wh.execute("select count(*) from send_attempts where state <> 'done'").fetchall() == [(0,)]
    monkeypatch.undo()
    monkeypatch.setenv("SENDGRID_API_KEY", key)
    monkeypatch.setenv("RELANCE_SENDGRID_HOST", sendgrid.url)
    assert deliver_due(wh, loaded, for_campaign(loaded), now=MONDAY).sent == 2   # the retry

