"""The fault matrix: every fault the local SendGrid-compatible server can give (a 400 naming
one recipient, 401, 403, 413, 429 with and without Retry-After, 500, 503, a hang, a reset
half-way through the request or the answer, a TLS failure), each crossed with a SIGKILL of
the sender before, during and after the faulty request; then a delivery runs to its end.

In every cell:
- nothing is accepted twice;
- nothing is lost: each planned message ends sent (SendGrid has it), failed with the
  provider's reason, or uncertain and reported;
- a message is uncertain exactly when its fate is unknown: its request was at SendGrid
  when the sender died, or got no answer (a hang, a reset); never after a definitive
  answer (400/401/403/413, which end failed with SendGrid's text) nor while a refused
  request waits to be tried again (429/5xx, which are retried and sent).

Each cell delivers 40 messages in requests of 10 (batches of 10). The first request goes
through; the second is the faulty one, so "before" kills the sender while the first is at
SendGrid (its answer held), "during" while the faulty one is at SendGrid (its answer held,
or its handshake), "after" once the sender has its answer (for 429/5xx: in the wait before
trying again; otherwise while the next request is at SendGrid). A fault the provider keeps
giving (a revoked key, an address it refuses, a certificate nobody trusts) is still there
for the final delivery; a passing one (429, 5xx, a hang, a reset) is met again by the
final delivery of a "before" cell only.

docs/delivery.md ("What relance promises") links each promise to its cells.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

import pytest

import warehouse
from relance.channels.sendgrid import SendGridChannel
from relance.delivery import deliver_due
from tests.conftest import MONDAY, REPO, CampaignFolder
from tests.delivery_fixtures import API_KEY, FakeSendGrid, planned_warehouse, self_signed

N, BATCH = 40, 10
TIMEOUT = 2.0        # the sender's wait for an answer (the channel's 30 s, shortened)
GRACE = 0.5          # after the kill point: the sender records the answer before (its own pace)
HOLD = 120           # a held answer outlasts any cell (the server lets go at its reset)
X = 14               # the message (in the 2nd request) whose address SendGrid refuses
DEFINITIVE = (400, 401, 403, 413)
NO_ANSWER = ("hang", "reset while reading the request", "reset while writing the answer")

ADDRESS = "Does not contain a valid address."
AUTH = "The provided authorization grant is invalid, expired, or revoked"


@dataclass(frozen=True)
class Fault:
    # what the provider answers to the faulty request (and the ones after, for a lasting
    # fault): script entries of tests/fakes/sendgrid_server.py
    answers: tuple[dict, ...] = ()
    # the provider refuses message X's address: 400 naming it, or 413 for its request
    refuse: int | None = None
    form: str = "field"          # the 400's form: older `field`, newer message
    lasting: bool = False        # a revoked key, a refused address, an untrusted certificate
    tls: bool = False
    # which messages end failed: those SendGrid refused by name or request ('refused'),
    # every one not sent nor uncertain ('rest': the channel gave up on all), none
    fails: str = "none"
    reason: tuple[str, ...] = ()  # what a failed message's error says
    retried: int = 0             # 429/5xx: answers before the wait an 'after' kill lands in


FAULTS = {
    "400 naming one recipient (field)": Fault(
        refuse=400, lasting=True, fails="refused", reason=("status_code=400", ADDRESS)),
    "400 naming one recipient (message)": Fault(
        refuse=400, form="message", lasting=True, fails="refused",
        reason=("status_code=400", ADDRESS)),
    "401": Fault(({"status": 401, "times": 999},), lasting=True, fails="rest",
                 reason=("status_code=401", AUTH)),
    "403": Fault(({"status": 403, "times": 999},), lasting=True, fails="rest",
                 reason=("status_code=403", "access forbidden")),
    "413": Fault(refuse=413, lasting=True, fails="refused",
                 reason=("status_code=413", "Payload Too Large")),
    "429 with Retry-After": Fault(({"status": 429, "retry_after": 2},), retried=1),
    "429 with X-RateLimit-Reset only": Fault(({"status": 429, "reset_in": 3},), retried=1),
    "500": Fault(({"status": 500, "times": 2},), retried=2),
    "503": Fault(({"status": 503, "times": 2},), retried=2),
    "hang": Fault(({"hang": HOLD},)),
    "reset while reading the request": Fault(({"reset": "request"},)),
    "reset while writing the answer": Fault(({"reset": "answer"},)),
    "TLS: untrusted certificate": Fault(({"tls": "untrusted", "times": 999},), lasting=True,
                                        tls=True, fails="rest", reason=("TLS", "CERTIFICATE_VERIFY_FAILED")),
}


def cells():
    for name in FAULTS:
        for moment in ("before", "during", "after"):
            yield pytest.param(name, moment, id=f"{name} x kill {moment}")


@dataclass
class Cell:
    """What the server saw, for the expectations."""
    on_the_wire: set[str] = field(default_factory=set)    # at SendGrid when the sender died
    killed: bool = False


@pytest.fixture(scope="module")
def planned(tmp_path_factory):
    """A warehouse with N planned sendgrid messages, copied for each cell; X's address."""
    root = tmp_path_factory.mktemp("matrix")
    campaigns = CampaignFolder(root / "campaigns")
    campaigns.root.mkdir()
    campaigns.write(campaigns.base().replace("control_group: 0%\n",
                                             "control_group: 0%\nchannel: sendgrid\n"))
    loaded = planned_warehouse(root / "planned.duckdb", campaigns, N)
    con = warehouse.connect(root / "planned.duckdb")
    ids = [r[0] for r in con.execute(
        "select message_id from messages order by message_id").fetchall()]
    x_email = con.execute("select to_email from messages where message_id = ?",
                          [ids[X]]).fetchall()[0][0]
    con.close()
    return root, campaigns, loaded, ids, x_email


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    certs = tmp_path_factory.mktemp("matrix-certs")
    trusted, untrusted = self_signed(certs / "trusted"), self_signed(certs / "untrusted")
    plain = FakeSendGrid()
    tls = FakeSendGrid(tls=trusted, untrusted=untrusted)
    yield {"plain": plain, "tls": tls, "ca": trusted / "cert.pem"}
    plain.stop()
    tls.stop()


class Senders:
    """Sender processes (tests/delivery_fixtures.py) started one ahead, imports done, each
    waiting for its delivery: a cell's kill point comes a second sooner, and the next
    sender starts while a cell waits on its server."""

    def __init__(self):
        self.ready = self._start()

    @staticmethod
    def _start() -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "tests.delivery_fixtures", "--wait"],
                                cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)

    def deliver(self, db, campaigns, server, ca) -> subprocess.Popen:
        """A sender delivering campaign 'test' of `db` through `server`, started now."""
        child, self.ready = self.ready, self._start()
        env = {"SENDGRID_API_KEY": API_KEY, "RELANCE_SENDGRID_HOST": server.url,
               "SSL_CERT_FILE": str(ca)}
        child.stdin.write(json.dumps({"env": env, "args": [
            str(db), str(campaigns.root), str(BATCH), str(TIMEOUT)]}) + "\n")
        child.stdin.close()
        return child

    def stop(self) -> None:
        os.killpg(self.ready.pid, signal.SIGKILL)
        self.ready.wait()


@pytest.fixture(scope="module")
def senders():
    s = Senders()
    yield s
    s.stop()


def held(server, n: int | None = None) -> list[dict]:
    return [h for h in server.state()["held"] if n is None or h["n"] == n]


def first_run(fault: Fault, moment: str, child, server) -> Cell:
    """Run the sender until the cell's kill point, and kill it there (SIGKILL)."""
    cell = Cell()
    deadline = time.monotonic() + 60

    def ready():
        if moment == "before":                       # the first request is at SendGrid
            return held(server, 1)
        if moment == "during":                       # the faulty one is at SendGrid
            if fault.answers and "hang" in fault.answers[0]:
                return [r for r in server.requests() if r["n"] == 2]
            return held(server, 2)
        if fault.retried:                            # answered; waiting to try again
            return server.state()["requests"] >= 1 + fault.retried
        return [h for h in held(server) if h["n"] > 2]   # the next request is at SendGrid

    while time.monotonic() < deadline:
        if child.poll() is not None:                 # it finished by itself (nothing to kill)
            assert child.returncode == 0, child.stderr.read()
            return cell
        if ready():
            if moment != "before":      # the request before has nothing left to record
                time.sleep(GRACE)
            state = server.state()
            if moment == "after" and fault.retried:
                assert state["requests"] == 1 + fault.retried, "the kill came after the retry"
            cell.on_the_wire = {i for h in state["held"] for i in h["ids"]}
            if moment == "during" and fault.answers and "hang" in fault.answers[0]:
                cell.on_the_wire |= {i for r in server.requests() if r["n"] == 2 for i in r["ids"]}
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            cell.killed = True
            return cell
        time.sleep(0.01)
    os.killpg(child.pid, signal.SIGKILL)
    child.wait()
    raise AssertionError(f"the kill point was never reached; the server saw {server.requests()}")


def script_of(fault: Fault, moment: str) -> list[dict]:
    """The first run's script: request 1 goes through, request 2 meets the fault."""
    answers = list(fault.answers) or [{}]      # a refused address: the refusal is the answer
    if moment == "before":
        return [{"hold": HOLD}]
    if moment == "during":
        if "hang" in answers[0]:
            return [{}, *answers]
        if "tls" in answers[0]:
            return [{}, {"tls": "hold", "hold": HOLD}, *answers]
        first = {**answers[0], "times": 1, "hold": HOLD}
        return [{}, first, *answers]
    return [{}, *answers, {"hold": HOLD}]


@pytest.mark.parametrize("name, moment", list(cells()))
def test_fault_x_sigkill(name, moment, planned, servers, senders, tmp_path, monkeypatch):
    fault = FAULTS[name]
    root, campaigns, loaded, ids, x_email = planned
    server = servers["tls" if fault.tls else "plain"]
    db = tmp_path / "w.duckdb"
    shutil.copy(root / "planned.duckdb", db)
    server.reset()
    if fault.refuse:
        server.refuse({x_email: fault.refuse}, fault.form)
    server.script(*script_of(fault, moment))

    child = senders.deliver(db, campaigns, server, servers["ca"])
    cell = first_run(fault, moment, child, server)
    if moment in ("during", "after"):
        assert cell.killed or fault.fails == "rest", "the sender was not killed"

    # the final delivery, to its end: a lasting fault is still there, a passing one is met
    # again only if the kill came before it
    server.clear_script()
    if fault.answers and (fault.lasting or moment == "before"):
        server.script(*fault.answers)
    monkeypatch.setenv("SSL_CERT_FILE", str(servers["ca"]))
    con = warehouse.connect(db)
    report = deliver_due(con, loaded, SendGridChannel(API_KEY, host=server.url, timeout=TIMEOUT),
                         now=MONDAY, batch_size=BATCH)
    rows = con.execute("select message_id, status, error from messages").fetchall()
    log = server.requests()
    # a request reset half-way was read in part: SendGrid's half names some of its
    # messages, the ledger's attempt (one request) names them all
    partial = [i for r in log if r["answer"] == "reset while reading the request" for i in r["ids"]]
    whole = {r[0] for r in con.execute(
        "select distinct b.message_id from send_attempt_messages a "
        "join send_attempt_messages b using (attempt_id) where a.message_id in (select unnest(?))",
        [partial]).fetchall()}
    con.close()

    status = {m: s for m, s, _ in rows}
    error = {m: e for m, _, e in rows}
    sent = {m for m, s in status.items() if s == "sent"}
    failed = {m for m, s in status.items() if s == "failed"}
    uncertain = {m for m, s in status.items() if s == "uncertain"}
    accepted = server.accepted()
    seen = {i for r in log for i in r["ids"]} | whole
    no_answer = {i for r in log if r["answer"] in NO_ANSWER for i in r["ids"]} | whole
    # what SendGrid refused for good, in answers the sender heard (not the request it
    # was killed waiting for)
    heard = [r for r in log if r["answer"] in DEFINITIVE
             and not (cell.killed and set(r["ids"]) <= cell.on_the_wire)]
    refused = {i for r in heard for i in (r["named"] if r["answer"] == 400 else r["ids"])}

    # nothing lost, nothing twice
    assert len(status) == N and sent | failed | uncertain == set(ids), \
        f"a planned message was lost: {sorted(set(ids) - sent - failed - uncertain)}"
    assert set(accepted.values()) <= {1}, \
        f"accepted twice: {sorted(m for m, n in accepted.items() if n > 1)}"
    assert sent <= set(accepted), "the ledger says sent, SendGrid never accepted it"
    assert set(accepted) <= sent | uncertain, "SendGrid accepted it, the ledger says otherwise"
    # uncertain: exactly the messages whose fate the sender could not know, all reported
    assert uncertain == cell.on_the_wire | no_answer, (
        f"uncertain but not unknown: {sorted(uncertain - cell.on_the_wire - no_answer)}; "
        f"unknown but not uncertain: {sorted((cell.on_the_wire | no_answer) - uncertain)}")
    assert uncertain <= seen, "uncertain, though SendGrid never saw its request"
    assert report.uncertain_pending == len(uncertain)
    # a definitive answer is failed with SendGrid's reason, never uncertain; 429/5xx retried
    assert not refused & uncertain, f"refused by SendGrid, yet uncertain: {sorted(refused & uncertain)}"
    expected_failed = {"none": set(), "refused": refused - sent - uncertain,
                       "rest": set(ids) - sent - uncertain}[fault.fails]
    assert failed == expected_failed, (
        f"failed: {sorted(failed)}; expected {sorted(expected_failed)}; errors "
        f"{sorted({error[m] for m in failed})}")
    for m in failed:
        assert all(part in error[m] for part in fault.reason), error[m]
    if fault.refuse:
        assert ids[X] in failed | uncertain and ids[X] not in sent
    if fault.fails == "refused" and fault.refuse == 400:
        assert failed <= {ids[X]}, "an innocent recipient failed with the one SendGrid refused"
