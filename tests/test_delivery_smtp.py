"""The smtp channel against a real SMTP server (aiosmtpd) the tests start: TLS both ways,
authentication, a refused recipient, a connection dropped before and after the message."""

from __future__ import annotations

import email
import os
import signal
import subprocess
import sys
from email import policy

import pytest

import warehouse
from relance.channels import ChannelConfigError, for_campaign
from relance.delivery import deliver_due
from relance.runs.steps import run_campaign
from tests.conftest import MONDAY, REPO
from tests.delivery_fixtures import certs  # noqa: F401
from tests.delivery_fixtures import kill_when, planned_warehouse


class SmtpServer:
    def __init__(self, maildir, *args: str):
        self.maildir = maildir
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.fakes.smtp_server", "--maildir", str(maildir), *args],
            cwd=REPO, stdout=subprocess.PIPE, text=True, start_new_session=True)
        line = self.proc.stdout.readline()
        assert line.startswith("listening on "), line
        self.port = int(line.split()[-1])

    def received(self) -> list:
        return [email.message_from_bytes(p.read_bytes(), policy=policy.default)
                for p in sorted(self.maildir.glob("*.eml"))]

    def stop(self):
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(timeout=10)
        self.proc.stdout.close()


@pytest.fixture(scope="module")
def starttls_server(tmp_path_factory, certs):
    s = SmtpServer(tmp_path_factory.mktemp("starttls"), "--security", "starttls",
                   "--cert", str(certs / "cert.pem"), "--key", str(certs / "key.pem"),
                   "--user", "relance", "--password", "s3cret")
    yield s
    s.stop()


def smtp_campaign(campaigns, block: str) -> None:
    campaigns.write(campaigns.base().replace(
        "control_group: 0%\n", f"control_group: 0%\nchannel: smtp\nsmtp: {block}\n"))


def test_starttls_with_login_delivers_real_messages(wh, cohort, campaigns, certs, starttls_server, monkeypatch):
    monkeypatch.setenv("RELANCE_SMTP_PASSWORD", "s3cret")
    smtp_campaign(campaigns, f"{{host: 127.0.0.1, port: {starttls_server.port}, security: starttls, "
                             f"username: relance, ca_file: {certs / 'cert.pem'}}}")
    a = cohort.learner(inactive_days=8, first_name="Zoé")
    b = cohort.learner(inactive_days=8, first_name="Siobhán", locale="en")
    assert run_campaign(wh, campaigns.load(), as_of=MONDAY).sent == 2
    got = {m["To"].addresses[0].addr_spec: m for m in starttls_server.received()}
    assert set(got) == {f"{a.lower()}@example.org", f"{b.lower()}@example.org"}
    zoe = got[f"{a.lower()}@example.org"]
    assert zoe["Subject"] == "Bonjour Zoé — at_risk"
    assert zoe["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "Vous en êtes à" in zoe.get_body(("plain",)).get_content()
    assert {r[0] for r in wh.execute("select status from messages").fetchall()} == {"sent"}


def test_a_wrong_password_fails_the_messages_and_a_missing_one_stops_before_sending(
        wh, cohort, campaigns, certs, starttls_server, monkeypatch):
    smtp_campaign(campaigns, f"{{host: 127.0.0.1, port: {starttls_server.port}, "
                             f"username: relance, ca_file: {certs / 'cert.pem'}}}")
    cohort.learner(inactive_days=8)
    cohort.learner(inactive_days=8)
    monkeypatch.delenv("RELANCE_SMTP_PASSWORD", raising=False)
    with pytest.raises(ChannelConfigError, match="RELANCE_SMTP_PASSWORD is not set: the smtp "
                                                 "channel cannot log in as 'relance'"):
        for_campaign(campaigns.load())
    monkeypatch.setenv("RELANCE_SMTP_PASSWORD", "wrong")
    before = len(starttls_server.received())
    summary = run_campaign(wh, campaigns.load(), as_of=MONDAY)
    assert (summary.sent, summary.failed) == (0, 2)
    errors = {r[0] for r in wh.execute("select error from messages").fetchall()}
    assert len(errors) == 1 and "refused the login of 'relance': 535" in errors.pop()
    assert len(starttls_server.received()) == before
    assert "wrong" not in repr(for_campaign(campaigns.load()))


def test_implicit_tls(wh, cohort, campaigns, certs, tmp_path):
    server = SmtpServer(tmp_path / "mail", "--security", "tls", "--cert", str(certs / "cert.pem"),
                        "--key", str(certs / "key.pem"))
    try:
        smtp_campaign(campaigns, f"{{host: 127.0.0.1, port: {server.port}, security: tls, "
                                 f"ca_file: {certs / 'cert.pem'}}}")
        cohort.learner(inactive_days=8)
        summary = run_campaign(wh, campaigns.load(), as_of=MONDAY)
        assert summary.sent == 1, wh.execute("select error from messages").fetchall()
        assert len(server.received()) == 1
    finally:
        server.stop()


def test_refused_recipient_and_dropped_connections(wh, cohort, campaigns, tmp_path):
    ok1, refused, dropped_before, dropped_after, ok2 = (
        cohort.learner(inactive_days=8) for _ in range(5))
    addr = {lid: f"{lid.lower()}@example.org" for lid in (ok1, refused, dropped_before, dropped_after, ok2)}
    server = SmtpServer(tmp_path / "mail", "--refuse", addr[refused], "--drop-on-mail",
                        addr[dropped_before], "--drop-after-data", addr[dropped_after])
    try:
        smtp_campaign(campaigns, f"{{host: 127.0.0.1, port: {server.port}, security: none}}")
        loaded = campaigns.load()
        summary = run_campaign(wh, loaded, as_of=MONDAY)
        assert (summary.sent, summary.failed) == (2, 2), wh.execute("select error from messages").fetchall()
        ledger = {r[0]: r[1:] for r in wh.execute(
            "select learner_id, status, error from messages").fetchall()}
        assert ledger[ok1][0] == ledger[ok2][0] == "sent"
        assert ledger[refused] == ("failed", f"SMTP recipient refused (550, permanent): 5.1.1 "
                                             f"<{addr[refused]}>: Recipient address rejected: User unknown")
        assert ledger[dropped_before][0] == "failed"
        assert ledger[dropped_before][1].startswith("SMTP server 127.0.0.1:")
        assert ledger[dropped_after][0] == "uncertain"
        assert "may have been accepted" in ledger[dropped_after][1]
        got = [m["To"].addresses[0].addr_spec for m in server.received()]
        assert sorted(got) == sorted([addr[ok1], addr[ok2], addr[dropped_after]])
        # the next delivery retries the failures, never the uncertain one
        report = deliver_due(wh, loaded, for_campaign(loaded), now=MONDAY)
        assert report.uncertain_pending == 1
        got = [m["To"].addresses[0].addr_spec for m in server.received()]
        assert got.count(addr[dropped_after]) == 1
    finally:
        server.stop()


def test_a_data_command_refused_or_dropped_fails_the_message_never_uncertain(wh, cohort, campaigns, tmp_path):
    """A server accepts a message only once it has its final dot: a DATA command refused
    (554) or a connection dropped at DATA leaves nothing accepted, so the message failed
    (tried again by the next delivery), and is not 'uncertain' (which would wait for a
    person, as one dropped once the whole message was written does)."""
    ok, refused, dropped = (cohort.learner(inactive_days=8) for _ in range(3))
    addr = {lid: f"{lid.lower()}@example.org" for lid in (ok, refused, dropped)}
    server = SmtpServer(tmp_path / "mail", "--refuse-data", addr[refused],
                        "--drop-on-data", addr[dropped])
    try:
        smtp_campaign(campaigns, f"{{host: 127.0.0.1, port: {server.port}, security: none}}")
        summary = run_campaign(wh, campaigns.load(), as_of=MONDAY)
        ledger = {r[0]: r[1:] for r in wh.execute(
            "select learner_id, status, error from messages").fetchall()}
        assert (summary.sent, summary.failed) == (1, 2), ledger
        assert ledger[ok][0] == "sent"
        assert ledger[refused] == ("failed", "SMTP DATA refused (554, permanent): 5.7.1 Message "
                                             "refused: sending policy")
        assert ledger[dropped][0] == "failed"
        assert ledger[dropped][1].startswith(f"SMTP server 127.0.0.1:{server.port} unreachable (data)")
        assert [m["To"].addresses[0].addr_spec for m in server.received()] == [addr[ok]]
    finally:
        server.stop()


def test_a_message_to_an_address_no_channel_can_send_to_fails_alone_never_reaching_the_server(
        tmp_path):
    """Planned by a relance without the rule: the server never sees it, the next one goes."""
    from relance.channels.base import OutgoingMessage
    from relance.channels.smtp import SmtpChannel
    server = SmtpServer(tmp_path / "mail")
    try:
        ch = SmtpChannel("127.0.0.1", server.port, security="none")
        out = [OutgoingMessage(f"m{i}", "test", to, "Zoé", "formation@example.org", "Julie",
                               None, "Bonjour", "Bonjour\n", None, "https://relance.example/u",
                               "mailto:formation@example.org")
               for i, to in enumerate(["élodie@example.org", "zoe..l@example", "zoe@example.org"])]
        results = {r.message_id: r for r in ch.send(out)}
        ch.close()
        assert results["m0"].status == "failed" and results["m0"].error.startswith(
            "invalid message: cannot send to 'élodie@example.org': not ASCII")
        assert results["m1"].status == "failed" and results["m1"].error == (
            "invalid message: cannot send to 'zoe..l@example': not a plain address such as "
            "name@example.org")
        assert results["m2"].status == "sent"
        assert [m["To"].addresses[0].addr_spec for m in server.received()] == ["zoe@example.org"]
    finally:
        server.stop()


def test_a_kill_while_connecting_to_the_server_leaves_nothing_uncertain(tmp_path, campaigns):
    """The mail server takes the connection and says nothing (too busy to greet); the
    sender is killed meanwhile. Nothing of the first 20 messages (recorded together) left:
    the next delivery finds none uncertain and sends each message once."""
    busy = SmtpServer(tmp_path / "busy", "--hold-greeting", "120")
    server = SmtpServer(tmp_path / "mail")
    try:
        smtp_campaign(campaigns, f"{{host: 127.0.0.1, port: {busy.port}, security: none}}")
        db = tmp_path / "w.duckdb"
        planned_warehouse(db, campaigns, 30)
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.delivery_fixtures", str(db), str(campaigns.root)],
            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, start_new_session=True)
        assert kill_when(child, lambda: any(busy.maildir.glob("held-*"))), \
            "the sender finished by itself"

        smtp_campaign(campaigns, f"{{host: 127.0.0.1, port: {server.port}, security: none}}")
        loaded = campaigns.load()
        con = warehouse.connect(db)
        report = deliver_due(con, loaded, for_campaign(loaded), now=MONDAY)
        assert (report.sent, report.uncertain, report.uncertain_pending) == (30, 0, 0)
        con.close()
        got = [m["To"].addresses[0].addr_spec for m in server.received()]
        assert len(got) == len(set(got)) == 30          # every one, once
    finally:
        busy.stop()
        server.stop()
