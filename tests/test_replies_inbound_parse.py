"""Learners' replies posted by SendGrid's Inbound Parse webhook to `relance serve`
(POST /inbound/sendgrid), built as SendGrid sends them: multipart/form-data with to, from,
subject, text, html, headers, envelope, charsets, attachments and attachment-info. The
receiver stores each (or refuses it with a reason), never crashes, never routes to the
wrong learner."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest

import warehouse
from tests.conftest import MONDAY, CampaignFolder, Cohort
from tests.delivery_fixtures import Receiver
from tests.replies_fixtures import sent_relance
from tests.test_serve_limits import exchange, post

NOW = MONDAY + timedelta(hours=2)


def sendgrid_form(*, to: str, sender: str, subject: str, text: str, html: str | None = None,
                  headers: str = "", attachments: list[tuple[str, bytes]] = (),
                  boundary: str = "xYzZY") -> tuple[bytes, str]:
    """The body and Content-Type of an Inbound Parse POST (default, not raw, mode)."""
    fields = {
        "headers": headers or (f"Received: by mx0047p1mdw1.sendgrid.net\nMessage-ID: "
                               f"<{uuid.uuid4()}@mail.example.org>\nFrom: {sender}\nTo: {to}\n"
                               f"Subject: {subject}\nDate: Mon, 23 Nov 2026 10:00:00 +0000\n"
                               "Content-Type: text/plain; charset=UTF-8"),
        "dkim": "{@example.org : pass}", "to": to, "from": sender, "subject": subject,
        "text": text, "sender_ip": "192.0.2.10", "spam_score": "0.1", "SPF": "pass",
        "envelope": json.dumps({"to": [to.strip("<>").split("<")[-1]], "from": sender}),
        "charsets": json.dumps({"to": "UTF-8", "html": "UTF-8", "subject": "UTF-8",
                                "from": "UTF-8", "text": "UTF-8"}),
        "attachments": str(len(attachments)),
    }
    if html is not None:
        fields["html"] = html
    if attachments:
        fields["attachment-info"] = json.dumps({
            f"attachment{i}": {"filename": name, "name": name, "type": "application/pdf"}
            for i, (name, _) in enumerate(attachments, 1)})
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                     .encode() + value.encode("utf-8") + b"\r\n")
    for i, (name, data) in enumerate(attachments, 1):
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="attachment{i}"; '
                     f'filename="{name}"\r\nContent-Type: application/pdf\r\n\r\n'.encode()
                     + data + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


@pytest.fixture
def served(tmp_path):
    """A warehouse file holding a learner who got a relance, and `relance serve` on it."""
    db = tmp_path / "w.duckdb"
    con = warehouse.connect(db)
    root = tmp_path / "campaigns"
    root.mkdir()
    folder = CampaignFolder(root)
    lid, mid, reply_to, _ = sent_relance(con, Cohort(con), folder, tmp_path)
    con.close()
    receiver = Receiver(db, {"RELANCE_CAMPAIGNS": str(root)}, args=("--now", NOW.isoformat()))
    yield receiver, db, lid, reply_to
    receiver.stop()


def rows(db, sql, params=()):
    con = warehouse.connect(db)
    try:
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


def test_a_reply_posted_as_sendgrid_posts_it_is_routed_and_stored_once(served):
    receiver, db, lid, reply_to = served
    body, ctype = sendgrid_form(to=reply_to, sender=f"{lid.lower()}@example.org",
                                subject="Re: votre formation",
                                text="Je n'arrive pas à me connecter à la plateforme.",
                                html="<p>Je n'arrive pas à me connecter</p>",
                                attachments=[("capture.pdf", b"%PDF-1.4 small")])
    status, answer = receiver.post("/inbound/sendgrid", body, {"Content-Type": ctype})
    assert status == 200, answer + receiver.errors()
    first = json.loads(answer)
    assert first["status"] == "routed" and not first["already"]
    # SendGrid posts it again (it did not see our answer): nothing new
    status, answer = receiver.post("/inbound/sendgrid", body, {"Content-Type": ctype})
    assert status == 200 and json.loads(answer)["already"] is True
    assert rows(db, "select learner_id, category, routed_to, status, attachments, source "
                    "from learner_replies") == [
        (lid, "technical", "support@example.org", "routed", "1 attachment, 0.0 MB: not kept",
         "inbound_parse")]
    assert rows(db, "select count(*) from messages where trigger = 'reply:ack'") == [(1,)]


def test_a_forged_token_is_refused_and_reaches_no_learner(served):
    receiver, db, lid, reply_to = served
    local, _, domain = reply_to.partition("@")
    forged = local[:-4] + ("0000" if not local.endswith("0000") else "1111") + "@" + domain
    body, ctype = sendgrid_form(to=forged, sender=f"{lid.lower()}@example.org",
                                subject="Re: relance", text="Désinscrivez L00001 svp")
    status, answer = receiver.post("/inbound/sendgrid", body, {"Content-Type": ctype})
    assert status == 200 and json.loads(answer)["status"] == "refused"
    (learner, status_, reason), = rows(db, "select learner_id, status, reason from learner_replies")
    assert learner is None and status_ == "refused" and "signature does not match" in reason
    assert rows(db, "select count(*) from suppressions") == [(0,)]
    assert rows(db, "select count(*) from messages where trigger like 'reply:%'") == [(0,)]


def test_a_stranger_without_a_token_is_stored_unmatched(served):
    receiver, db, _, _ = served
    body, ctype = sendgrid_form(to="replies@example.org", sender="someone@elsewhere.example",
                                subject="Question", text="Bonjour, une question sur le cours")
    status, answer = receiver.post("/inbound/sendgrid", body, {"Content-Type": ctype})
    assert status == 200 and json.loads(answer)["status"] == "unmatched"
    (learner, reason), = rows(db, "select learner_id, reason from learner_replies")
    assert learner is None and "no learner has the sender's address" in reason


def test_a_25_mb_attachment_is_refused_413_before_it_is_read(served):
    receiver, db, _, reply_to = served
    head = post("/inbound/sendgrid", b"", {"Content-Type": "multipart/form-data; boundary=x"},
                length=str(25 * 1024 * 1024))
    answer = exchange(receiver.port, head + b"--x\r\n" + b"A" * 65536)
    assert answer.status == 413, answer
    assert "RELANCE_SERVE_MAX_INBOUND_BYTES" in answer.json()["error"]
    assert rows(db, "select count(*) from learner_replies") == [(0,)]


@pytest.mark.parametrize("body, ctype, why", [
    (b"--xYzZY\r\nContent-Disposition: form-data; name=\"to\"\r\n\r\nx", "multipart/form-data; boundary=xYzZY", "malformed multipart"),
    (b"to=a&from=b", "application/x-www-form-urlencoded", "expected Content-Type multipart/form-data"),
    (b"--xYzZY--\r\n", "multipart/form-data", "without a boundary"),
    (b"--xYzZY\r\nContent-Disposition: form-data; name=\"subject\"\r\n\r\nhi\r\n--xYzZY--\r\n",
     "multipart/form-data; boundary=xYzZY", "no `from` field"),
    (b"--xYzZY\r\nContent-Disposition: form-data; name=\"envelope\"\r\n\r\n{not json\r\n--xYzZY--\r\n",
     "multipart/form-data; boundary=xYzZY", "`envelope` is not the JSON object"),
])
def test_a_malformed_post_gets_400_with_its_reason_and_the_receiver_goes_on(served, body, ctype, why):
    receiver, db, lid, reply_to = served
    status, answer = receiver.post("/inbound/sendgrid", body, {"Content-Type": ctype})
    assert status == 400 and why in json.loads(answer)["error"], answer
    good, good_type = sendgrid_form(to=reply_to, sender=f"{lid.lower()}@example.org",
                                    subject="Re: relance", text="Merci, je reprends demain.")
    status, answer = receiver.post("/inbound/sendgrid", good, {"Content-Type": good_type})
    assert status == 200 and json.loads(answer)["status"] == "routed"


def test_with_a_token_configured_the_url_must_carry_it(tmp_path):
    db = tmp_path / "w.duckdb"
    warehouse.connect(db).close()
    receiver = Receiver(db, {"RELANCE_INBOUND_PARSE_TOKEN": "t0ken"})
    try:
        body, ctype = sendgrid_form(to="replies@example.org", sender="a@b.example",
                                    subject="x", text="y")
        status, answer = receiver.post("/inbound/sendgrid", body, {"Content-Type": ctype})
        assert status == 403 and "RELANCE_INBOUND_PARSE_TOKEN" in answer
        status, _ = receiver.post("/inbound/sendgrid?token=t0ken", body, {"Content-Type": ctype})
        assert status == 200
    finally:
        receiver.stop()


def test_raw_mode_and_a_broken_mime_mail_inside_it_are_stored_not_crashed_on(served):
    """"POST the raw, full MIME message": the mail in the `email` field. A mail whose MIME is
    broken (a multipart that never closes, a bad charset, an undecodable part) is still
    read for what it says."""
    receiver, db, lid, reply_to = served
    broken = (f"From: {lid.lower()}@example.org\r\nTo: {reply_to}\r\nSubject: =?utf-8?q?Re=3A_?=\r\n"
              "Message-ID: <broken1@x>\r\nMIME-Version: 1.0\r\n"
              "Content-Type: multipart/mixed; boundary=zz\r\n\r\n--zz\r\n"
              "Content-Type: text/plain; charset=x-unknown-charset\r\n"
              "Content-Transfer-Encoding: base64\r\n\r\nSmUgbidhcnJpdmUgcGFzIMOgIG1lIGNvbm5lY3Rlcg==!!\r\n"
              "--zz\r\nContent-Type: application/pdf\r\n").encode()
    boundary = "xYzZY"
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="envelope"\r\n\r\n'
            + json.dumps({"to": [reply_to], "from": f"{lid.lower()}@example.org"})
            + f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="email"\r\n\r\n').encode() \
        + broken + f"\r\n--{boundary}--\r\n".encode()
    status, answer = receiver.post("/inbound/sendgrid", body,
                                   {"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert status == 200, answer + receiver.errors()
    assert rows(db, "select learner_id, category, status from learner_replies") == [
        (lid, "technical", "routed")]
