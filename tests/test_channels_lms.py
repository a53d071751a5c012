"""The moodle and canvas channels: messages in the learner's LMS inbox, through the local
servers answering as Moodle's web services and Canvas's Conversations API document
(tests/fakes/), with the connectors' credentials (the sources file), the same ledger and
the same exactly-once promise as the e-mail channels, every documented error included, and
a sender killed mid-request or while waiting out a rate limit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import httpx
import pytest

import warehouse
from connectors import sync
from relance.channels import ChannelConfigError, for_campaign
from relance.delivery import deliver_due
from relance.runs import steps
from tests.conftest import MONDAY, REPO, Cohort
from tests.delivery_fixtures import kill_when
from tests.lms_channel_fixtures import learners_with_accounts, lms_campaign, sources_env
from tests.lms_fixtures import (CANVAS_TOKEN, MOODLE_TOKEN, canvas_site, canvas_source,
                                moodle_site, moodle_source, start_fake)


@pytest.fixture(scope="module")
def moodle():
    server = start_fake("tests.fakes.moodle_server")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def canvas():
    server = start_fake("tests.fakes.canvas_server")
    yield server
    server.stop()


@pytest.fixture
def env(tmp_path, moodle, canvas, monkeypatch):
    values = sources_env(tmp_path, moodle.url, canvas.url)
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    moodle.set(moodle_site())
    canvas.set(canvas_site())
    return values


def state(server) -> dict:
    return httpx.get(f"{server.url}/__control__/state", timeout=5).json()


def ledger(con, order: str = "learner_id") -> list[tuple]:
    return con.execute(f"select learner_id, status, provider_message_id, error from messages "
                       f"order by {order}").fetchall()


def deliver(con, loaded, **kwargs):
    return deliver_due(con, loaded, for_campaign(loaded), now=MONDAY, **kwargs)


def planned(con, campaigns):
    loaded = campaigns.load()
    steps.plan_step(con, loaded, MONDAY)
    return loaded


# -- Moodle -------------------------------------------------------------------------------------


def test_moodle_messages_reach_each_learners_inbox_once(wh, cohort, campaigns, env, moodle):
    lms_campaign(campaigns, "moodle")
    learners = learners_with_accounts(cohort, ["31", "32", "33"], "moodle-prod")
    loaded = planned(wh, campaigns)

    report = deliver(wh, loaded)

    assert (report.sent, report.failed, report.uncertain) == (3, 0, 0)
    sent = state(moodle)["sent"]
    assert sorted(m["touserid"] for m in sent) == [31, 32, 33]
    # the subject heads the text; body.txt in Moodle's auto-format (0: links made clickable)
    first = sent[0]
    assert first["textformat"] == 0 and first["text"].startswith("Bonjour Zoé — at_risk\n\n")
    assert "Vous en êtes à" in first["text"]
    # one request for the three, the ledger's ids as clientmsgid, the token in the form only
    calls = moodle.calls("core_message_send_instant_messages")
    assert len(calls) == 1 and "wstoken" not in calls[0]
    rows = ledger(wh)
    assert [r[:2] for r in rows] == [(lid, "sent") for lid in learners]
    assert sorted(r[2] for r in rows) == sorted(str(m["msgid"]) for m in sent)
    from relance.channels.moodle_messages import client_id
    assert sorted(m["clientmsgid"] for m in sent) == sorted(
        client_id(r[0]) for r in wh.execute("select message_id from messages").fetchall())
    # the next delivery finds nothing due: nothing is sent twice
    assert deliver(wh, loaded).sent == 0
    assert len(state(moodle)["sent"]) == 3


def test_moodle_html_format_sends_the_inside_of_body_html(wh, cohort, campaigns, env, moodle):
    lms_campaign(campaigns, "moodle", ", format: html")
    learners_with_accounts(cohort, ["31"], "moodle-prod")
    deliver(wh, planned(wh, campaigns))
    (sent,) = state(moodle)["sent"]
    assert sent["textformat"] == 1
    assert sent["text"] == "<p><strong>Bonjour Zoé — at_risk</strong></p>\n<p>Zoé, 0\u00a0%</p>"


def test_a_message_moodle_refuses_fails_alone(wh, cohort, campaigns, env, moodle):
    site = moodle_site()
    site["blocked"] = [32]                  # messages from the token's user are refused
    moodle.set(site)
    lms_campaign(campaigns, "moodle")
    ok, blocked, unknown, never_synced = learners_with_accounts(
        cohort, ["31", "32", "99", None], "moodle-prod")
    loaded = planned(wh, campaigns)

    report = deliver(wh, loaded)

    assert (report.sent, report.failed) == (1, 3)
    rows = {r[0]: r for r in ledger(wh)}
    assert rows[ok][1] == "sent"
    assert rows[blocked][1:] == ("failed", None, "Moodle did not send it: You can't message "
                                 "Marc Durand due to their message preferences. Try adding "
                                 "them as a contact.")
    assert rows[unknown][3] == ("Moodle did not send it: You can not send a message to a user "
                                "id (99) that doesn't exist")
    assert rows[never_synced][3] == ("moodle: no Moodle user id is known for this learner in "
                                     "source 'moodle-prod': sync the source (relance sync), then "
                                     "deliver again")
    assert [m["touserid"] for m in state(moodle)["sent"]] == [31]


def test_a_message_too_long_for_moodle_fails_alone(wh, cohort, campaigns, env, moodle):
    campaigns.write(campaigns.base().replace(
        "control_group: 0%\n", "control_group: 0%\nchannel: moodle\nmoodle: {source: moodle-prod}\n"),
        template_overrides={f"relance/{loc}/body.txt": "{{ 'x' * 5000 }}" for loc in ("fr", "en")})
    learners_with_accounts(cohort, ["31"], "moodle-prod")
    report = deliver(wh, planned(wh, campaigns))
    assert report.failed == 1
    assert ledger(wh)[0][3] == "Moodle did not send it: The message is longer than the maximum allowed."


@pytest.mark.parametrize("change, expected", [
    ({"token": "another-token"}, "Moodle refused the request (invalidtoken: Invalid token - "
                                 "token not found); set the source's token to a valid web "
                                 "service token"),
    ({"messaging": False}, "Moodle refused the request (disabled: Messaging is disabled on this "
                           "site); messaging is disabled on the site: enable it"),
    ({"can_send": False}, "Moodle refused the request (nopermissions: Sorry, but you do not "
                          "currently have permissions to do that (Send a message to any "
                          "user).); give the token's user the capability "
                          "moodle/site:sendmessage"),
    ({"functions": ["core_course_get_courses"]},
     "Moodle refused the request (accessexception: Access control exception); add "
     "core_message_send_instant_messages to the token's external service"),
])
def test_a_request_moodle_refuses_fails_every_message_with_the_fix(
        wh, cohort, campaigns, env, moodle, change, expected):
    moodle.set({**moodle_site(), **change})
    lms_campaign(campaigns, "moodle", ", batch: 1")
    learners_with_accounts(cohort, ["31", "32"], "moodle-prod")
    report = deliver(wh, planned(wh, campaigns))
    assert (report.sent, report.failed) == (0, 2)
    errors = [r[3] for r in ledger(wh)]
    assert all(e.startswith(expected) for e in errors), errors
    assert not any(MOODLE_TOKEN in e for e in errors)
    # the channel stopped after the first answer: the second message was not asked
    assert len(moodle.calls("core_message_send_instant_messages")) == 1


def test_moodle_429_5xx_and_maintenance_are_retried(wh, cohort, campaigns, env, moodle):
    site = moodle_site()
    send = {"wsfunction": "core_message_send_instant_messages"}
    site["failures"] = [
        {"match": send, "times": 1, "status": 503, "body": {"error": "busy"}},
        {"match": send, "times": 1, "status": 429, "headers": {"Retry-After": "0"}},
        {"match": send, "times": 1, "status": 200,
         "body": {"exception": "moodle_exception", "errorcode": "sitemaintenance",
                  "message": "Site is under maintenance"}}]
    moodle.set(site)
    lms_campaign(campaigns, "moodle")
    learners_with_accounts(cohort, ["31", "32"], "moodle-prod")
    loaded = planned(wh, campaigns)
    channel = for_campaign(loaded)
    channel.http.sleep = lambda seconds: None
    report = deliver_due(wh, loaded, channel, now=MONDAY)
    assert (report.sent, report.failed) == (2, 0)
    assert len(state(moodle)["sent"]) == 2
    # each refused request is an attempt of its own, ended before the retry
    assert wh.execute("select state, count(*) from send_attempts group by 1 order by 1"
                      ).fetchall() == [("done", 1), ("refused", 3)]


def test_the_moodle_channel_reads_its_site_from_the_sources_file(campaigns, env, monkeypatch):
    lms_campaign(campaigns, "moodle")
    loaded = campaigns.load()
    assert repr(for_campaign(loaded)).startswith("MoodleMessagesChannel(http://127.0.0.1:")
    monkeypatch.delenv("MOODLE_TOKEN")
    with pytest.raises(ChannelConfigError, match="the environment variable MOODLE_TOKEN is not set"):
        for_campaign(loaded)
    lms_campaign(campaigns, "moodle")
    campaigns.write(campaigns.base().replace(
        "control_group: 0%\n", "control_group: 0%\nchannel: moodle\nmoodle: {source: canvas}\n"))
    with pytest.raises(ChannelConfigError, match="the source 'canvas' in .* is of kind 'canvas', not moodle"):
        for_campaign(campaigns.load())


def test_validate_asks_for_the_lms_block(campaigns):
    from relance.campaign.problems import CampaignError
    campaigns.write(campaigns.base().replace("control_group: 0%\n",
                                             "control_group: 0%\nchannel: canvas\n"))
    with pytest.raises(CampaignError, match="`channel: canvas` needs a `canvas:` block"):
        campaigns.load()
    campaigns.write(campaigns.base().replace(
        "control_group: 0%\n", "control_group: 0%\nchannel: moodle\nmoodle: {source: m}\n"
        "digest: {every: monday 09:00, groups: {stalled: [at_risk]}}\n"))
    with pytest.raises(CampaignError, match="managers' digests go by e-mail"):
        campaigns.load()


# -- Canvas -------------------------------------------------------------------------------------


def test_canvas_conversations_one_per_message(wh, cohort, campaigns, env, canvas):
    lms_campaign(campaigns, "canvas")
    learners = learners_with_accounts(cohort, ["501", "502"], "canvas")
    loaded = planned(wh, campaigns)

    report = deliver(wh, loaded)

    assert (report.sent, report.failed) == (2, 0)
    made = sorted(state(canvas)["conversations"], key=lambda c: c["recipients"])
    assert [c["recipients"] for c in made] == [["501"], ["502"]]
    assert made[0]["subject"] == "Bonjour Zoé — at_risk"
    assert made[0]["body"].startswith("Vous en êtes à") and made[0]["force_new"] == "true"
    rows = ledger(wh)
    assert [(r[0], r[1], r[2]) for r in rows] == [(learners[0], "sent", str(made[0]["id"])),
                                                  (learners[1], "sent", str(made[1]["id"]))]
    calls = canvas.calls("conversations")
    assert all(c["group_conversation"] == "false" and c["mode"] == "sync" for c in calls)
    assert deliver(wh, loaded).sent == 0 and len(state(canvas)["conversations"]) == 2


def test_a_learner_canvas_will_not_let_us_message_fails_alone(wh, cohort, campaigns, env, canvas):
    site = canvas_site()
    site["unmessageable"] = [502]
    canvas.set(site)
    lms_campaign(campaigns, "canvas")
    ok, refused, unknown = learners_with_accounts(cohort, ["501", "502", "999"], "canvas")
    report = deliver(wh, planned(wh, campaigns))
    assert (report.sent, report.failed) == (1, 2)
    rows = {r[0]: r for r in ledger(wh)}
    assert rows[ok][1] == "sent"
    for lid in (refused, unknown):
        assert rows[lid][3].startswith("Canvas refused the message (400: recipients invalid)")


@pytest.mark.parametrize("change, expected", [
    ({"token": "another"}, "Canvas answered 401 (Invalid access token.); the token was refused"),
    ({"can_send_messages": False}, "Canvas answered 403 (user not authorized to perform that "
                                   "action); the token's user may not send messages here"),
])
def test_a_refusal_for_every_message_stops_the_canvas_channel(
        wh, cohort, campaigns, env, canvas, change, expected):
    canvas.set({**canvas_site(), **change})
    lms_campaign(campaigns, "canvas")
    learners_with_accounts(cohort, ["501", "502"], "canvas")
    report = deliver(wh, planned(wh, campaigns))
    assert (report.sent, report.failed) == (0, 2)
    errors = [r[3] for r in ledger(wh)]
    assert all(e.startswith(expected) for e in errors), errors
    assert not any(CANVAS_TOKEN in e for e in errors)
    assert len(canvas.calls("conversations")) == 1


def test_canvas_rate_limits_and_5xx_are_retried(wh, cohort, campaigns, env, canvas):
    site = canvas_site()
    site["failures"] = [
        {"match": {"route": "conversations"}, "times": 1, "status": 403,
         "body": {"errors": [{"message": "403 Forbidden (Rate Limit Exceeded)"}]},
         "headers": {"X-Rate-Limit-Remaining": "0", "Retry-After": "0"}},
        {"match": {"route": "conversations"}, "times": 1, "status": 429,
         "headers": {"Retry-After": "0"}},
        {"match": {"route": "conversations"}, "times": 1, "status": 502}]
    canvas.set(site)
    lms_campaign(campaigns, "canvas")
    learners_with_accounts(cohort, ["501"], "canvas")
    loaded = planned(wh, campaigns)
    channel = for_campaign(loaded)
    channel.http.sleep = lambda seconds: None
    report = deliver_due(wh, loaded, channel, now=MONDAY)
    assert (report.sent, report.failed) == (1, 0)
    assert len(state(canvas)["conversations"]) == 1


# -- the learner's LMS id, from the connectors ----------------------------------------------------


def test_syncs_keep_each_learners_lms_user_id(wh, tmp_path, env, moodle, canvas):
    (tmp_path / "m").mkdir()
    (tmp_path / "c").mkdir()
    sync(wh, moodle_source(tmp_path / "m", moodle.url))
    sync(wh, canvas_source(tmp_path / "c", canvas.url))
    assert wh.execute("select source, learner_id, lms_user_id from lms_accounts order by 1, 2"
                      ).fetchall() == [
        ("canvas", "ines", "503"), ("canvas", "marc", "502"), ("canvas", "zoe", "501"),
        ("moodle-prod", "ines", "33"), ("moodle-prod", "marc", "32"),
        ("moodle-prod", "zoe", "31")]
    # paul's address is refused (quarantined with his learner row): no account either


# -- a sender killed ----------------------------------------------------------------------------


def _start_child(db, campaigns, env) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.lms_channel_fixtures", str(db), str(campaigns.root)],
        cwd=REPO, env={**os.environ, **env, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


def _planned_file(tmp_path, campaigns, channel, accounts, source, options="", plan=True):
    db = tmp_path / "w.duckdb"
    con = warehouse.connect(db)
    cohort = Cohort(con)
    lms_campaign(campaigns, channel, options)
    learners_with_accounts(cohort, accounts, source)
    if plan:
        steps.plan_step(con, campaigns.load(), MONDAY)
    con.close()
    return db


@pytest.mark.parametrize("channel", ["moodle", "canvas"])
def test_a_sender_killed_mid_request_sends_nothing_twice(tmp_path, campaigns, env, moodle,
                                                         canvas, channel):
    server, source, accounts, name, match, holds = (
        (moodle, "moodle-prod", ["31", "32", "33", "34"], "core_message_send_instant_messages",
         {"wsfunction": "core_message_send_instant_messages"}, "sent")
        if channel == "moodle" else
        (canvas, "canvas", ["501", "502", "503", "504"], "conversations",
         {"route": "conversations"}, "conversations"))
    site = moodle_site() if channel == "moodle" else canvas_site()
    # the second request is held 3 s, then served: the LMS acts on it after its sender died
    site["failures"] = [{"match": match, "skip": 1, "times": 1, "sleep": 3, "pass": True}]
    server.set(site)
    db = _planned_file(tmp_path, campaigns, channel, accounts, source,
                       ", batch: 1" if channel == "moodle" else "")
    child = _start_child(db, campaigns, env)
    assert kill_when(child, lambda: len(server.calls(name)) >= 2, settle=0.5)
    time.sleep(3)                           # the held request is served meanwhile

    con = warehouse.connect(db)
    loaded = campaigns.load()
    report = deliver_due(con, loaded, for_campaign(loaded), now=MONDAY)

    # the message in flight is uncertain (reported, not resent); the others go once
    assert (report.sent, report.uncertain, report.uncertain_pending) == (2, 1, 1)
    held = state(server)[holds]
    recipients = ([m["touserid"] for m in held] if channel == "moodle"
                  else [int(c["recipients"][0]) for c in held])
    assert sorted(recipients) == sorted(int(a) for a in accounts)     # each exactly once
    (uncertain,) = con.execute("select error from messages where status = 'uncertain'").fetchall()
    assert f"({channel}, process {child.pid}," in uncertain[0]
    con.close()


@pytest.mark.parametrize("channel", ["moodle", "canvas"])
def test_a_sender_killed_while_it_waits_out_a_429_leaves_nothing_uncertain(
        tmp_path, campaigns, env, moodle, canvas, channel):
    server, source, accounts, name, match, holds = (
        (moodle, "moodle-prod", ["31", "32", "33"], "core_message_send_instant_messages",
         {"wsfunction": "core_message_send_instant_messages"}, "sent")
        if channel == "moodle" else
        (canvas, "canvas", ["501", "502", "503"], "conversations",
         {"route": "conversations"}, "conversations"))
    site = moodle_site() if channel == "moodle" else canvas_site()
    site["failures"] = [{"match": match, "skip": 1, "times": 1, "status": 429,
                         "headers": {"Retry-After": "60"}}]
    server.set(site)
    db = _planned_file(tmp_path, campaigns, channel, accounts, source,
                       ", batch: 1" if channel == "moodle" else "")
    child = _start_child(db, campaigns, env)
    assert kill_when(child, lambda: len(server.calls(name)) >= 2, settle=0.5)

    con = warehouse.connect(db)
    loaded = campaigns.load()
    report = deliver_due(con, loaded, for_campaign(loaded), now=MONDAY)
    assert (report.sent, report.uncertain, report.uncertain_pending) == (2, 0, 0)
    assert con.execute("select count(*) from messages where status = 'sent'").fetchall() == [(3,)]
    held = state(server)[holds]
    assert len(held) == 3                   # the refused one went once, after the restart
    con.close()


def test_relance_run_writes_to_moodle_and_says_where(tmp_path, campaigns, env, moodle):
    """The command a user runs: the week planned and delivered to the learners' Moodle
    inboxes, the summary saying so; run again, nothing more is sent."""
    from typer.testing import CliRunner
    from relance.cli.main import app
    db = _planned_file(tmp_path, campaigns, "moodle", ["31", "32"], "moodle-prod", plan=False)
    args = ["run", "test", "--as-of", MONDAY.isoformat(), "--warehouse", str(db),
            "--campaigns", str(campaigns.root), "--outbox", str(tmp_path / "outbox")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert f"2 messages delivered to the learners' Moodle inboxes at {moodle.url}" in \
        " ".join(result.output.split())
    assert sorted(m["touserid"] for m in state(moodle)["sent"]) == [31, 32]
    assert CliRunner().invoke(app, args).exit_code == 0
    assert len(state(moodle)["sent"]) == 2


def test_a_server_that_does_not_speak_tls_fails_at_once_without_retrying(
        wh, cohort, campaigns, tmp_path, moodle, canvas, monkeypatch):
    https = {"moodle": moodle.url.replace("http://", "https://"),
             "canvas": canvas.url.replace("http://", "https://")}
    for key, value in sources_env(tmp_path, https["moodle"], https["canvas"]).items():
        monkeypatch.setenv(key, value)
    moodle.set(moodle_site())
    lms_campaign(campaigns, "moodle")
    learners_with_accounts(cohort, ["31"], "moodle-prod")
    loaded = planned(wh, campaigns)
    channel = for_campaign(loaded)

    def no_wait(seconds):
        raise AssertionError("retried a TLS failure")
    channel.http.sleep = no_wait
    report = deliver_due(wh, loaded, channel, now=MONDAY)
    assert report.failed == 1
    assert ledger(wh)[0][3].startswith(f"no TLS session with Moodle at {https['moodle']}:")
    assert "nothing was sent" in ledger(wh)[0][3]
