"""Fixtures for delivery tests: the local SendGrid-compatible server, and a warehouse file
holding many planned messages (built set-based, then planned by the real engine)."""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import MONDAY, REPO

API_KEY = "SG.test-key-not-secret"


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1, and the file the channel trusts."""
    return self_signed(tmp_path_factory.mktemp("certs"))


def self_signed(d: Path) -> Path:
    """d/cert.pem (a self-signed certificate for 127.0.0.1) and d/key.pem; returns d."""
    d.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "relance test server")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    (d / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (d / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                  serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
    return d


class FakeSendGrid:
    """tests/fakes/sendgrid_server.py in its own process group, on a free port."""

    def __init__(self, *, details: bool = True, key: str = API_KEY, tls: Path | None = None,
                 untrusted: Path | None = None):
        """`tls`: a directory with cert.pem and key.pem (the `certs` fixture) to serve
        HTTPS, as SendGrid does (the control endpoints stay plain HTTP, on their own port);
        `untrusted`: another such directory, the certificate a `tls: untrusted` fault
        presents."""
        self.key = key
        args = [sys.executable, "-m", "tests.fakes.sendgrid_server", "--key", key]
        if tls:
            args += ["--cert", str(tls / "cert.pem"), "--cert-key", str(tls / "key.pem")]
        if untrusted:
            args += ["--untrusted-cert", str(untrusted / "cert.pem"),
                     "--untrusted-key", str(untrusted / "key.pem")]
        self.proc = subprocess.Popen(args + (["--details"] if details else []), cwd=REPO,
                                     stdout=subprocess.PIPE, text=True, start_new_session=True)
        line = self.proc.stdout.readline()
        assert line.startswith("listening on "), line
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{int(line.split()[-1])}"
        self.control_url = self.url
        if tls:
            line = self.proc.stdout.readline()
            assert line.startswith("control on "), line
            self.control_url = f"http://127.0.0.1:{int(line.split()[-1])}"

    def _call(self, path: str, payload=None):
        data = json.dumps(payload).encode() if payload is not None else None
        req = urllib.request.Request(self.control_url + path, data=data,
                                     method="POST" if data else "GET",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read() or b"null")

    def script(self, *entries: dict) -> None:
        self._call("/_control/script", list(entries))

    def refuse(self, emails: dict[str, int], form: str = "field") -> None:
        """SendGrid refuses these addresses (400 naming them, in its older `field` form or
        its newer message form; or 413) until the next reset."""
        self._call("/_control/refuse", {"emails": emails, "form": form})

    def requests(self) -> list[dict]:
        """With details: each mail/send request's number, message ids and answer."""
        return self._call("/_control/requests")

    def clear_script(self) -> None:
        self._call("/_control/clear-script", {})

    def error_form(self, form: str) -> None:
        """How its 400s name what they refuse: "field" (SendGrid's documented errors, the
        default) or "message" (its newer validation errors: in the text, `field` null)."""
        self._call("/_control/error-form", {"form": form})

    def reset(self) -> None:
        self._call("/_control/reset", {})

    def state(self) -> dict:
        return self._call("/_control/state")

    def accepted(self) -> dict[str, int]:
        return self._call("/_control/accepted")["accepted"]

    def mails(self) -> list[dict]:
        return self._call("/_control/accepted")["mails"]

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(timeout=10)
        self.proc.stdout.close()


@pytest.fixture(scope="module")
def sendgrid_server():
    server = FakeSendGrid()
    yield server
    server.stop()


@pytest.fixture
def sendgrid(sendgrid_server, monkeypatch):
    """The fake server, emptied, with the environment pointing the channel at it."""
    sendgrid_server.reset()
    monkeypatch.setenv("SENDGRID_API_KEY", sendgrid_server.key)
    monkeypatch.setenv("RELANCE_SENDGRID_HOST", sendgrid_server.url)
    return sendgrid_server


# SendGrid's Signed Event Webhook, as the tests' SendGrid signs it.
PRIVATE = ec.generate_private_key(ec.SECP256R1())
PUBLIC_B64 = base64.b64encode(PRIVATE.public_key().public_bytes(
    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()
SIGNED_AT = "1764000000"                # when requests are signed by default...
SERVER_NOW = "2025-11-24T16:01:00Z"     # ...and a receiver's clock (--now) a minute later


def signed(payload: bytes, timestamp: str = SIGNED_AT, key=PRIVATE) -> dict:
    """The headers of SendGrid's POST of `payload`, signed at `timestamp` (Unix seconds)."""
    signature = key.sign(timestamp.encode() + payload, ec.ECDSA(hashes.SHA256()))
    return {"X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
            "Content-Type": "application/json"}


class Receiver:
    """`relance serve` in its own process group, on a free port; `args`: more options
    (`--now`, limits); what it prints on stderr is kept in `errors()`."""

    def __init__(self, db: Path, env: dict, busy_wait: float = 0.3, args: tuple = ()):
        self.stderr_path = Path(db).with_name(f"serve-{os.getpid()}-{id(self)}.stderr")
        self.stderr = self.stderr_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "relance.cli", "serve", "--port", "0", "--warehouse", str(db),
             "--busy-wait", str(busy_wait), *args], cwd=REPO, stdout=subprocess.PIPE,
            stderr=self.stderr, text=True,
            env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200", **env},
            start_new_session=True)
        line = self.proc.stdout.readline()
        assert line.startswith("listening on "), line + self.errors()
        self.url = line.split()[2]
        self.port = int(self.url.rsplit(":", 1)[1])

    def errors(self) -> str:
        return self.stderr_path.read_text()

    def post(self, path: str, body: bytes, headers: dict | None = None) -> tuple[int, str]:
        req = urllib.request.Request(self.url + path, data=body, method="POST", headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=30) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(timeout=10)
        self.proc.stdout.close()
        self.stderr.close()


def kill_when(child: subprocess.Popen, ready, timeout: float = 60, settle: float = 0) -> bool:
    """SIGKILL the child's process group as soon as `ready()` (`settle` seconds after);
    False if it ended on its own first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.poll() is not None:
            return False
        if ready():
            time.sleep(settle)
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            return True
        time.sleep(0.01)
    raise AssertionError("the kill point was never reached")


def run_cli(*args: str) -> str:
    """The CLI's output; fails the test on a non-zero exit."""
    from typer.testing import CliRunner
    from relance.cli.main import app
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def sendgrid_campaign(campaigns, extra: str = "") -> None:
    campaigns.write(campaigns.base().replace(
        "control_group: 0%\n", "control_group: 0%\nchannel: sendgrid\n" + extra))


def big_cohort(con, n: int, *, course_id: str = "c1") -> None:
    """n learners on one course, all silent for 8 days (so the test campaign's `relance`
    goes to each), inserted set-based."""
    starts = MONDAY - timedelta(weeks=6)
    con.execute("insert into courses values (?, 'Anglais B2 — démo', 'https://lms.example/c1', "
                "'https://lms.example/f1', ?, ?, 'test', now())",
                [course_id, starts.date(), (starts + timedelta(weeks=20)).date()]).fetchall()
    con.execute(
        "insert into learners select 'L' || lpad(i::varchar, 6, '0'), "
        "'l' || lpad(i::varchar, 6, '0') || '@example.org', 'Zoé', 'Lefèvre', "
        "case when i % 3 = 0 then 'en' else 'fr' end, 'Europe/Paris', null, 'test', now() "
        "from range(?) t(i)", [n]).fetchall()
    con.execute(
        "insert into enrolments select learner_id, ?, 'co', ?, 'enrolled', null, null, 'test', now() "
        "from learners", [course_id, MONDAY - timedelta(days=40)]).fetchall()
    con.execute(
        "insert into progress_events select 'e-' || learner_id, learner_id, ?, null, 'accessed', "
        "?, null, 'test', now() from learners", [course_id, MONDAY - timedelta(days=8)]).fetchall()


def planned_warehouse(path: Path, campaigns, n: int):
    """A warehouse file with n planned `relance` messages of campaign 'test' (sendgrid)."""
    import warehouse
    from relance.runs import steps
    con = warehouse.connect(path)
    big_cohort(con, n)
    loaded = campaigns.load()
    steps.plan_step(con, loaded, MONDAY)
    con.close()
    return loaded


def _child_deliver(warehouse_path: str, campaigns_dir: str, batch_size: str | None = None,
                   timeout: str | None = None) -> None:
    """What the fault-injection tests run (and kill): one delivery of campaign 'test'
    through the sendgrid channel configured from the environment; the fault matrix gives
    a batch size and a shorter wait for SendGrid's answer (seconds) than the channel's 30."""
    import warehouse
    from relance.campaign import loader
    from relance.channels import for_campaign
    from relance.channels.sendgrid import SendGridChannel, api_key
    from relance.delivery import BATCH_SIZE, deliver_due
    from relance.settings import Settings
    loaded = loader.load(Path(campaigns_dir) / "test.yaml", campaigns_dir=Path(campaigns_dir))
    channel = (SendGridChannel(api_key(), host=Settings().sendgrid_host, timeout=float(timeout))
               if timeout else for_campaign(loaded))
    con = warehouse.connect(warehouse_path)
    report = deliver_due(con, loaded, channel, now=MONDAY,
                         batch_size=int(batch_size) if batch_size else BATCH_SIZE)
    con.close()
    print(json.dumps({"sent": report.sent, "failed": report.failed, "uncertain": report.uncertain,
                      "uncertain_pending": report.uncertain_pending}), flush=True)


if __name__ == "__main__":
    if sys.argv[1:] == ["--wait"]:
        # started ahead by a test (tests/test_delivery_fault_matrix.py): its imports done,
        # it waits for its arguments and environment, one JSON line on stdin
        import importlib
        for module in ("warehouse", "relance.campaign.loader", "relance.channels.sendgrid",
                       "relance.delivery"):
            importlib.import_module(module)
        given = json.loads(sys.stdin.readline())
        os.environ.update(given["env"])
        _child_deliver(*given["args"])
    else:
        _child_deliver(*sys.argv[1:])
