"""What comes back after sending: SendGrid events (signed webhook, files) and unsubscribes
(one-click links, imports) stop further mail, and who got what stays answerable."""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import urlparse

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

import warehouse
from relance.delivery import links
from relance.runs.steps import deliver as deliver_due
from relance.runs.steps import run_campaign
from tests.conftest import MONDAY, Cohort
from tests.delivery_fixtures import (PUBLIC_B64, SERVER_NOW, Receiver, run_cli,  # noqa: F401
                                     sendgrid, sendgrid_campaign, sendgrid_server, signed)

NEXT_MONDAY = MONDAY + timedelta(days=7)


def event(kind: str, mail: dict, n: int, **extra) -> dict:
    """A SendGrid event as its webhook posts it: custom_args at the top level."""
    return {"email": mail["to"][0]["email"], "timestamp": 1764000000 + n, "event": kind,
            "sg_event_id": f"ev-{kind}-{n}", "sg_message_id": f"{mail['x_message_id']}.filter0001",
            **mail["custom_args"], **extra}


@pytest.fixture
def sent_world(tmp_path, campaigns, sendgrid):
    """Four learners of a sendgrid campaign, each sent their relance; the warehouse is a
    file (closed), so the receiver process can write it."""
    sendgrid_campaign(campaigns)
    db = tmp_path / "w.duckdb"
    con = warehouse.connect(db)
    cohort = Cohort(con)
    ids = [cohort.learner(inactive_days=8) for _ in range(4)]
    loaded = campaigns.load()
    assert run_campaign(con, loaded, as_of=MONDAY).sent == 4
    con.close()
    mails = {m["custom_args"]["relance_message_id"]: m for m in sendgrid.mails()}
    con = warehouse.connect(db)
    by_learner = dict(con.execute("select learner_id, message_id from messages").fetchall())
    con.close()
    return db, loaded, ids, {lid: mails[by_learner[lid]] for lid in ids}


def next_week_recipients(db, loaded) -> set[str]:
    con = warehouse.connect(db)
    try:
        run_campaign(con, loaded, as_of=NEXT_MONDAY)
        return {r[0] for r in con.execute(
            "select learner_id from messages where status = 'sent' and not_before >= ?",
            [NEXT_MONDAY]).fetchall()}
    finally:
        con.close()


def test_signed_webhook_events_are_stored_joined_and_stop_mail(sent_world, sendgrid):
    db, loaded, (a, b, c, d), mails = sent_world
    receiver = Receiver(db, {"SENDGRID_WEBHOOK_PUBLIC_KEY": PUBLIC_B64}, args=("--now", SERVER_NOW))
    try:
        payload = json.dumps([
            event("processed", mails[a], 1), event("delivered", mails[a], 2),
            event("open", mails[a], 3), event("click", mails[a], 4, url="https://lms.example/c1"),
            event("bounce", mails[b], 5, type="bounce", reason="550 5.1.1 unknown user"),
            event("spamreport", mails[c], 6),
            event("deferred", mails[d], 7, response="451 try later"),
        ]).encode()
        assert receiver.post("/events/sendgrid", payload, signed(payload))[0] == 200
        # SendGrid retries until it gets a 2xx: the same events again change nothing
        status, body = receiver.post("/events/sendgrid", payload, signed(payload))
        assert status == 200 and json.loads(body) == {"stored": 0, "suppressed": 0}
        # a forged or altered payload is refused, nothing stored
        forged = json.dumps([event("unsubscribe", mails[d], 8)]).encode()
        status, body = receiver.post("/events/sendgrid", forged,
                                     signed(forged, key=ec.generate_private_key(ec.SECP256R1())))
        assert status == 401 and "signature does not match" in body
        status, body = receiver.post("/events/sendgrid", forged, {"Content-Type": "application/json"})
        assert status == 401 and "unsigned request" in body
    finally:
        receiver.stop()
    con = warehouse.connect(db)
    stored = con.execute("select m.learner_id, e.event, e.reason from message_events e "
                         "join messages m using (message_id) order by e.occurred_at").fetchall()
    assert stored == [(a, "processed", None), (a, "delivered", None), (a, "open", None),
                      (a, "click", "https://lms.example/c1"),
                      (b, "bounce", "550 5.1.1 unknown user"), (c, "spamreport", None),
                      (d, "deferred", "451 try later")]
    assert sorted(con.execute("select email, campaign_id, reason from suppressions").fetchall()) == [
        (f"{b.lower()}@example.org", None, "bounce"), (f"{c.lower()}@example.org", None, "spamreport")]
    con.close()
    # the very next plan does not target them; the others get next week's recap
    assert next_week_recipients(db, loaded) == {a, d}


def test_events_from_a_file_unsubscribe_and_confirm_uncertain_messages(sent_world, tmp_path):
    db, loaded, (a, b, c, d), mails = sent_world
    con = warehouse.connect(db)
    con.execute("update messages set status = 'uncertain', error = 'no answer' "
                "where learner_id = ?", [a]).fetchall()
    con.close()
    events_file = tmp_path / "events.json"
    events_file.write_text(json.dumps([
        event("processed", mails[a], 1), event("unsubscribe", mails[b], 2),
        event("group_unsubscribe", mails[c], 3, asm_group_id=42),
        event("dropped", mails[d], 4, reason="Bounced Address"),
        {"email": "someone@else.org", "timestamp": 1764000005, "event": "delivered",
         "sg_event_id": "ev-other"}]))
    out = run_cli("events", "import", str(events_file), "--warehouse", str(db))
    assert " ".join(out.split()) == ("5 events (delivered 1, dropped 1, group_unsubscribe 1, processed 1, "
                           "unsubscribe 1): 5 new, 1 not from relance; 3 addresses suppressed; "
                           "1 uncertain messages confirmed sent")
    con = warehouse.connect(db)
    assert con.execute("select status, error from messages where learner_id = ?", [a]).fetchall() == [
        ("sent", "was uncertain; SendGrid reported it (processed)")]
    assert sorted(con.execute("select email, campaign_id, reason from suppressions").fetchall()) == [
        (f"{b.lower()}@example.org", None, "unsubscribe"),
        (f"{c.lower()}@example.org", "test", "unsubscribe"),
        (f"{d.lower()}@example.org", None, "dropped")]
    con.close()
    assert next_week_recipients(db, loaded) == {a}


def test_a_bad_events_file_is_refused_with_where_and_why(tmp_path, wh):
    from relance.feedback import events
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"email": "x@example.org", "timestamp": 1, "event": "opened"}]))
    with pytest.raises(events.EventError, match=r"bad.json: event 0: unknown event type 'opened'"):
        events.import_file(wh, bad)
    assert wh.execute("select count(*) from message_events").fetchall() == [(0,)]


def test_one_click_unsubscribe_link_stops_that_campaign_and_a_forged_one_is_refused(sent_world, monkeypatch):
    db, loaded, (a, b, c, d), mails = sent_world
    receiver = Receiver(db, {})
    try:
        link = mails[a]["headers"]["List-Unsubscribe"].split(",")[0].strip("<> ")
        path = link[len(urlparse(link)._replace(path="", query="").geturl()):]
        status, page = receiver.get(path)
        assert status == 200 and 'name="scope" value="all"' in page
        # RFC 8058: the mail client posts List-Unsubscribe=One-Click to the link
        status, page = receiver.post(path, b"List-Unsubscribe=One-Click",
                                     {"Content-Type": "application/x-www-form-urlencoded"})
        assert status == 200 and "no more of these messages" in page
        # b chooses "all campaigns" on the page
        link_b = mails[b]["headers"]["List-Unsubscribe"].split(",")[0].strip("<> ")
        path_b = link_b[link_b.index("/unsubscribe"):]
        assert receiver.post(path_b, b"scope=all")[0] == 200
        forged = path_b.replace(f"l={b}", f"l={c}")
        status, page = receiver.post(forged, b"List-Unsubscribe=One-Click")
        assert status == 400 and "Invalid link" in page
    finally:
        receiver.stop()
    con = warehouse.connect(db)
    assert sorted(con.execute("select email, campaign_id, source from suppressions").fetchall()) == [
        (f"{a.lower()}@example.org", "test", "link"), (f"{b.lower()}@example.org", None, "link")]
    con.close()
    assert next_week_recipients(db, loaded) == {c, d}


def test_an_unsubscribe_while_a_delivery_holds_the_warehouse_is_kept_and_applied(sent_world):
    db, loaded, (a, b, c, d), mails = sent_world
    receiver = Receiver(db, {})
    con = warehouse.connect(db)           # this process holds the warehouse, as a delivery does
    try:
        path = links.url(a, "test")[len(links.base_url()):]
        status, page = receiver.post("/unsubscribe" + path, b"List-Unsubscribe=One-Click")
        assert status == 200 and "no more of these messages" in page
    finally:
        receiver.stop()
    assert con.execute("select count(*) from suppressions").fetchall() == [(0,)]
    deliver_due(con, loaded, sendgrid_channel(), now=MONDAY)      # reads the spool first
    assert con.execute("select email, campaign_id from suppressions").fetchall() == [
        (f"{a.lower()}@example.org", "test")]
    con.close()


def sendgrid_channel():
    from relance.channels import get_channel
    return get_channel("sendgrid")


def test_unsubscribes_imported_from_a_file_report_bad_rows_by_line(sent_world, tmp_path):
    db, loaded, (a, b, c, d), mails = sent_world
    f = tmp_path / "unsub.csv"
    f.write_text(f"email;learner_id;campaign_id\n{a.lower()}@example.org;;test\n;{b};\n"
                 "not-an-address;;\n;L99999;\n", encoding="utf-8")
    from typer.testing import CliRunner
    from relance.cli.main import app
    result = CliRunner().invoke(app, ["unsubscribe", "import", str(f), "--warehouse", str(db)])
    assert result.exit_code == 1
    assert "2 unsubscribes recorded" in result.output
    assert f"{f}:4: email: expected an e-mail address or a learner_id, got 'not-an-address'" in result.output
    assert f"{f}:5: learner_id: unknown learner 'L99999'" in result.output
    assert next_week_recipients(db, loaded) == {c, d}
