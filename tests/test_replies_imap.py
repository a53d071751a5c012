"""Learners' replies read from a real IMAP mailbox: Dovecot from Debian's dovecot-imapd,
started by the tests on loopback (tests/imap_fixtures.py). Each mail is read once across
fetches, over TLS checked against the server's certificate; wrong settings say what to fix."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import pytest

from relance import clock
from relance.replies import imap
from relance.settings import Settings
from tests.conftest import MONDAY, REPO
from tests.imap_fixtures import append, start
from tests.replies_fixtures import reply, sent_relance


@pytest.fixture
def dovecot(tmp_path):
    server = start(tmp_path / "dovecot")
    yield server
    server.stop()


def settings_for(server, security="tls", **more) -> Settings:
    return Settings(imap_host="127.0.0.1" if security != "tls" else "localhost",
                    imap_port=server.tls_port if security == "tls" else server.port,
                    imap_security=security, imap_user=server.user,
                    imap_ca_file=server.ca_file, **more)


def test_each_mail_is_read_once_across_fetches(wh, cohort, campaigns, tmp_path, dovecot, monkeypatch):
    monkeypatch.setenv("RELANCE_IMAP_PASSWORD", dovecot.password)
    lid, mid, reply_to, _ = sent_relance(wh, cohort, campaigns, tmp_path)
    append(dovecot, reply(reply_to, "je n'arrive pas à me connecter", message_id="<a1@x>"))
    append(dovecot, reply(reply_to, "Réponse automatique : je suis absente",
                          subject="Réponse automatique : absente jusqu'au 30",
                          headers={"Auto-Submitted": "auto-replied"}, message_id="<a2@x>"))
    s = settings_for(dovecot)
    with clock.at(MONDAY + timedelta(hours=3)):
        first = imap.fetch(wh, campaigns.root, s)
    assert first.read == 2 and first.by_status == {"routed": 1, "automatic": 1}
    with clock.at(MONDAY + timedelta(hours=4)):
        assert imap.fetch(wh, campaigns.root, s).read == 0        # nothing new: nothing read
    append(dovecot, reply(reply_to, "question sur l'exercice 3", message_id="<a3@x>"))
    with clock.at(MONDAY + timedelta(hours=5)):
        third = imap.fetch(wh, campaigns.root, s)
    assert third.read == 1 and third.by_status == {"routed": 1}
    assert wh.execute("select category, status from learner_replies order by received_at").fetchall() == [
        ("technical", "routed"), (None, "automatic"), ("content", "routed")]
    # the same mail posted by SendGrid's Inbound Parse too (raw mode) is the same reply
    from relance.replies import ingest
    from relance.replies.inbound_parse import parse
    raw = reply(reply_to, "je n'arrive pas à me connecter", message_id="<a1@x>")
    form = (b'--b\r\nContent-Disposition: form-data; name="email"\r\n\r\n' + raw
            + b'\r\n--b--\r\n')
    with clock.at(MONDAY + timedelta(hours=6)):
        again = ingest.store(wh, parse(form, "multipart/form-data; boundary=b"),
                             ingest.Campaigns(campaigns.root))
    assert again.already and again.status == "routed"
    # the automatic one is no activity and gets no thank-you
    assert wh.execute("select count(*) from progress_events where verb = 'replied'").fetchall() == [(2,)]
    assert wh.execute("select count(*) from messages where trigger = 'reply:ack'").fetchall() == [(2,)]


def test_starttls_works_and_a_wrong_password_or_certificate_says_what_to_fix(
        wh, tmp_path, dovecot, monkeypatch):
    monkeypatch.setenv("RELANCE_IMAP_PASSWORD", dovecot.password)
    append(dovecot, reply("replies@example.org", "hello", sender="nobody@else.example"))
    report = imap.fetch(wh, tmp_path, settings_for(dovecot, "starttls"))
    assert report.read == 1 and report.by_status == {"unmatched": 1}
    monkeypatch.setenv("RELANCE_IMAP_PASSWORD", "wrong")
    with pytest.raises(imap.ImapError, match="refused the login") as exc:
        imap.fetch(wh, tmp_path, settings_for(dovecot))
    assert "wrong" not in str(exc.value)
    monkeypatch.setenv("RELANCE_IMAP_PASSWORD", dovecot.password)
    with pytest.raises(imap.ImapError, match="RELANCE_IMAP_CA_FILE"):
        imap.fetch(wh, tmp_path, Settings(imap_host="localhost", imap_port=dovecot.tls_port,
                                          imap_user=dovecot.user))


def test_relance_replies_fetch_reads_the_mailbox(tmp_path, dovecot):
    import warehouse
    db = tmp_path / "w.duckdb"
    warehouse.connect(db).close()
    append(dovecot, reply("replies@example.org", "hello", sender="nobody@else.example"))
    env = {"PYTHONPATH": str(REPO), "RELANCE_IMAP_HOST": "localhost",
           "RELANCE_IMAP_PORT": str(dovecot.tls_port), "RELANCE_IMAP_USER": dovecot.user,
           "RELANCE_IMAP_PASSWORD": dovecot.password, "RELANCE_IMAP_CA_FILE": str(dovecot.ca_file),
           "PATH": "/usr/bin:/bin"}
    run = lambda: subprocess.run([sys.executable, "-m", "relance.cli", "replies", "fetch",
                                  "--warehouse", str(db), "--campaigns", str(tmp_path)],
                                 capture_output=True, text=True, env=env, timeout=120)
    first = run()
    assert first.returncode == 0, first.stderr
    assert "1 new reply read" in first.stdout and "1 unmatched" in first.stdout
    assert "0 new replies read" in run().stdout
    listed = subprocess.run([sys.executable, "-m", "relance.cli", "replies", "list", "--status",
                             "unmatched", "--warehouse", str(db)], capture_output=True, text=True,
                            env=env | {"COLUMNS": "250"}, timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert "nobody@else.example" in listed.stdout and "no learner has the sender" in listed.stdout


def test_the_hourly_flow_reads_the_mailbox_then_sends_the_thanks_and_forwards(
        tmp_path, dovecot, monkeypatch):
    """deliver-due (Prefect, a temporary server) fetches replies first, then delivers: the
    reply read at 10:00 is thanked and forwarded by the same flow run."""
    import warehouse
    from prefect.testing.utilities import prefect_test_harness
    from tests.conftest import CampaignFolder, Cohort
    db = tmp_path / "w.duckdb"
    con = warehouse.connect(db)
    root = tmp_path / "campaigns"
    root.mkdir()
    lid, mid, reply_to, loaded = sent_relance(con, Cohort(con), CampaignFolder(root), tmp_path)
    con.close()
    append(dovecot, reply(reply_to, "Bonjour, je n'arrive pas à me connecter."))
    for key, value in {"RELANCE_IMAP_HOST": "localhost", "RELANCE_IMAP_PORT": str(dovecot.tls_port),
                       "RELANCE_IMAP_USER": dovecot.user, "RELANCE_IMAP_PASSWORD": dovecot.password,
                       "RELANCE_IMAP_CA_FILE": str(dovecot.ca_file)}.items():
        monkeypatch.setenv(key, value)
    from flows.deliver_due import deliver_due
    with prefect_test_harness(server_startup_timeout=120):
        deliver_due(now=(MONDAY + timedelta(hours=2)).isoformat(), warehouse_path=str(db),
                    campaigns_dir=str(root), outbox_dir=str(tmp_path / "out"))
    con = warehouse.connect(db)
    try:
        assert con.execute("select trigger, to_email, status from messages where trigger like "
                           "'reply:%' order by trigger").fetchall() == [
            ("reply:ack", f"{lid.lower()}@example.org", "sent"),
            ("reply:forward", "support@example.org", "sent")]
    finally:
        con.close()
