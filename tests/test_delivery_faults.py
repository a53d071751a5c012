"""Exactly once under faults: the sender is killed (SIGKILL) at many points of a 10,000-
message send to the local SendGrid-compatible server and run again until it finishes.
Nothing is accepted twice, nothing planned is lost, and every message whose fate the
sender could not know is uncertain and reported, then resolved by a person."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time

import pytest

import warehouse
from relance import delivery
from relance.channels.sendgrid import SendGridChannel
from relance.delivery.lock import DeliveryBusy, campaign_lock
from tests.conftest import MONDAY, REPO
from tests.delivery_fixtures import (FakeSendGrid, kill_when, planned_warehouse, run_cli,
                                     self_signed, sendgrid_campaign)

N = 10_000


def start_child(db, campaigns, server, *args: str) -> subprocess.Popen:
    """A sender delivering campaign 'test' (tests/delivery_fixtures.py); `args`: its batch
    size and its wait for an answer."""
    env = {**os.environ, "SENDGRID_API_KEY": server.key, "RELANCE_SENDGRID_HOST": server.url,
           "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "tests.delivery_fixtures", str(db),
                             str(campaigns.root), *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


@pytest.fixture(scope="module")
def server():
    s = FakeSendGrid(details=False)
    yield s
    s.stop()


def test_sigkill_at_many_points_never_duplicates_never_loses(tmp_path, campaigns, server):
    sendgrid_campaign(campaigns)
    db = tmp_path / "w.duckdb"
    planned_warehouse(db, campaigns, N)
    rng = random.Random(7)
    kills = {"answer held": 0, "request hanging": 0, "anywhere": 0}
    # the targeted kills first (each costs one request of 1,000), then kills at random
    # moments: starting up, rendering, writing the ledger, between or during requests
    plan = ["answer held", "request hanging"] * 2 + ["anywhere"] * 5
    runs = 0
    while True:
        runs += 1
        assert runs < 30, "the delivery never finished"
        child = start_child(db, campaigns, server)
        mode = plan[runs - 1] if runs <= len(plan) else None
        before = server.state()
        if mode == "answer held":        # accepted by SendGrid, the 202 never reaches the sender
            server.script({"status": 202, "hold": 60})
            killed = kill_when(child, lambda: server.state()["holding"] > 0)
        elif mode == "request hanging":  # the request is at SendGrid, not accepted yet
            server.script({"hang": 60})
            killed = kill_when(child, lambda: server.state()["requests"] > before["requests"])
        elif mode == "anywhere":         # rendering, writing the ledger, between requests...
            delay = rng.uniform(0.3, 3.0)
            started = time.monotonic()
            killed = kill_when(child, lambda: time.monotonic() - started > delay)
        else:
            out, errors = child.communicate(timeout=300)
            assert child.returncode == 0, errors
            final = json.loads(out.strip().splitlines()[-1])
            break
        if killed:
            kills[mode] += 1
        server.clear_script()     # a kill point not reached must not hit the next run
    assert kills["answer held"] >= 2 and kills["request hanging"] >= 2 and kills["anywhere"] >= 3, kills

    con = warehouse.connect(db)
    status = dict(con.execute("select message_id, status from messages").fetchall())
    accepted = server.accepted()
    assert len(status) == N
    assert {n for n in accepted.values()} == {1}, "a message was accepted twice"
    sent = {m for m, s in status.items() if s == "sent"}
    uncertain = {m for m, s in status.items() if s == "uncertain"}
    assert sent | uncertain == set(status), "a planned message was lost (neither sent nor uncertain)"
    assert sent <= set(accepted), "the ledger says sent, SendGrid never accepted it"
    assert set(accepted) <= sent | uncertain
    # both kinds of unknown fate happened, and each is reported, none resent blindly
    assert uncertain & set(accepted) and uncertain - set(accepted)
    assert final["uncertain_pending"] == len(uncertain)
    in_flight = {r[0] for r in con.execute(
        "select message_id from send_attempt_messages join send_attempts using (attempt_id) "
        "where state = 'uncertain'").fetchall()}
    assert uncertain <= in_flight
    con.close()

    # a person checks SendGrid's activity: confirms what it accepted, resends the rest
    confirm = sorted(uncertain & set(accepted))
    (tmp_path / "confirm.txt").write_text("\n".join(confirm) + "\n")
    out = run_cli("uncertain", "list", "--warehouse", str(db))
    assert f"{len(uncertain)} uncertain messages" in out
    out = run_cli("uncertain", "confirm", "--file", str(tmp_path / "confirm.txt"), "--warehouse", str(db))
    assert f"{len(confirm)} marked sent" in out
    out = run_cli("uncertain", "resend", "--all", "--warehouse", str(db))
    assert f"{len(uncertain) - len(confirm)} planned again" in out
    child = start_child(db, campaigns, server)
    out, errors = child.communicate(timeout=300)
    assert child.returncode == 0, errors
    assert json.loads(out.strip().splitlines()[-1])["sent"] == len(uncertain) - len(confirm)
    accepted = server.accepted()
    assert len(accepted) == N and set(accepted.values()) == {1}       # every one, once


def test_a_kill_while_waiting_to_retry_leaves_nothing_uncertain(tmp_path, campaigns, server):
    """SendGrid refuses a request (429, Retry-After: 30) and the sender is killed while it
    waits: the refusal was recorded before the wait, so no message of that request is
    uncertain (none was accepted), and the next delivery sends every message once."""
    sendgrid_campaign(campaigns)
    db = tmp_path / "w.duckdb"
    planned_warehouse(db, campaigns, 1500)          # two requests: 1,000 and 500
    server.reset()
    server.script({"status": 429, "retry_after": 30})
    child = start_child(db, campaigns, server)
    waiting = threading.Event()

    def watch() -> None:            # the sender says when it starts waiting
        for line in child.stderr:
            if "retrying in 30.0 s" in line:
                waiting.set()
    threading.Thread(target=watch, daemon=True).start()
    assert kill_when(child, waiting.is_set), "the sender finished before it was killed"
    assert server.state()["statuses"] == {"429": 1} and server.accepted() == {}

    child = start_child(db, campaigns, server)
    out, errors = child.communicate(timeout=300)
    assert child.returncode == 0, errors
    final = json.loads(out.strip().splitlines()[-1])
    assert (final["sent"], final["uncertain"], final["uncertain_pending"]) == (1500, 0, 0)
    accepted = server.accepted()
    assert len(accepted) == 1500 and set(accepted.values()) == {1}      # every one, once
    con = warehouse.connect(db)
    assert con.execute("select count(*) from messages where status <> 'sent'").fetchall() == [(0,)]
    # the refused request is in the attempts' log as such, with SendGrid's answer
    refused = con.execute("select n_messages, note from send_attempts "
                          "where state = 'refused'").fetchall()
    assert len(refused) == 1 and refused[0][0] == 1000 and "status_code=429" in refused[0][1]
    con.close()
    server.reset()


def test_a_kill_while_connecting_leaves_nothing_uncertain(tmp_path, campaigns, monkeypatch):
    """SendGrid over TLS answers the first request, then holds the next connection's TLS
    handshake; the sender is killed during it. That request never left, and the first
    one's answer had come: the next delivery finds no message uncertain (none waits for a
    person) and sends each of the others once."""
    certs = self_signed(tmp_path / "certs")
    server = FakeSendGrid(tls=certs)
    try:
        sendgrid_campaign(campaigns)
        db = tmp_path / "w.duckdb"
        loaded = planned_warehouse(db, campaigns, 30)       # requests of 10 (batches of 10)
        server.script({}, {"tls": "hold", "hold": 120})
        monkeypatch.setenv("SSL_CERT_FILE", str(certs / "cert.pem"))
        child = start_child(db, campaigns, server, "10", "5")
        # killed once the second handshake is held, giving the sender its own pace to
        # record the first answer
        assert kill_when(child, lambda: any(h["n"] == 2 for h in server.state()["held"]),
                         settle=0.5), "the sender finished by itself"
        assert server.state()["accepted_messages"] == 10

        server.clear_script()
        con = warehouse.connect(db)
        report = delivery.deliver_due(con, loaded, SendGridChannel(server.key, host=server.url),
                                      now=MONDAY, batch_size=10)
        assert (report.sent, report.failed, report.uncertain, report.uncertain_pending) == (20, 0, 0, 0)
        assert con.execute("select status, count(*) from messages group by all").fetchall() == [("sent", 30)]
        # the attempts' log says what became of the request cut off while connecting
        assert con.execute("select n_messages, note from send_attempts where state <> 'done'"
                           ).fetchall() == [(10, "its delivery stopped before its connection "
                                                 "was up: nothing was sent")]
        con.close()
        accepted = server.accepted()
        assert len(accepted) == 30 and set(accepted.values()) == {1}      # every one, once
    finally:
        server.stop()


def test_a_second_delivery_of_the_same_campaign_exits_with_a_clear_message(tmp_path, campaigns, server, monkeypatch):
    monkeypatch.setenv("SENDGRID_API_KEY", server.key)
    monkeypatch.setenv("RELANCE_SENDGRID_HOST", server.url)
    sendgrid_campaign(campaigns)
    db = tmp_path / "w.duckdb"
    loaded = planned_warehouse(db, campaigns, 5)
    server.reset()
    con = warehouse.connect(db)
    from relance.channels import for_campaign
    with campaign_lock(con, "test"):                   # a delivery under way (another thread)
        with pytest.raises(DeliveryBusy, match=(
                rf"campaign 'test' is already being delivered by process {os.getpid()} "
                r"\(since .*\); nothing was sent by this run")):
            delivery.deliver_due(con, loaded, for_campaign(loaded), now=MONDAY)
        assert con.execute("select count(*) from messages where status = 'planned'").fetchall() == [(5,)]
    report = delivery.deliver_due(con, loaded, for_campaign(loaded), now=MONDAY)
    assert report.sent == 5 and len(server.accepted()) == 5
    con.close()
