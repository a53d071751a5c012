"""Fixtures for delivery tests: the local SendGrid-compatible server, and a warehouse file
holding many planned messages (built set-based, then planned by the real engine)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import signal
import ssl
import subprocess
import sys
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
    d = tmp_path_factory.mktemp("certs")
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

    def __init__(self, *, details: bool = True, key: str = API_KEY, tls: Path | None = None):
        """`tls`: a directory with cert.pem and key.pem (the `certs` fixture) to serve
        HTTPS, as SendGrid does; the control endpoints then are HTTPS too."""
        self.key = key
        args = [sys.executable, "-m", "tests.fakes.sendgrid_server", "--key", key]
        if tls:
            args += ["--cert", str(tls / "cert.pem"), "--cert-key", str(tls / "key.pem")]
        self.proc = subprocess.Popen(args + (["--details"] if details else []), cwd=REPO,
                                     stdout=subprocess.PIPE, text=True, start_new_session=True)
        line = self.proc.stdout.readline()
        assert line.startswith("listening on "), line
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{int(line.split()[-1])}"
        self._context = ssl.create_default_context(cafile=str(tls / "cert.pem")) if tls else None

    def _call(self, path: str, payload=None):
        data = json.dumps(payload).encode() if payload is not None else None
        req = urllib.request.Request(self.url + path, data=data, method="POST" if data else "GET",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30, context=self._context) as resp:
            return json.loads(resp.read() or b"null")

    def script(self, *entries: dict) -> None:
        self._call("/_control/script", list(entries))

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


class Receiver:
    """`relance serve` in its own process group, on a free port."""

    def __init__(self, db: Path, env: dict, busy_wait: float = 0.3):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "relance.cli", "serve", "--port", "0", "--warehouse", str(db),
             "--busy-wait", str(busy_wait)], cwd=REPO, stdout=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200", **env},
            start_new_session=True)
        line = self.proc.stdout.readline()
        assert line.startswith("listening on "), line
        self.url = line.split()[2]

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


def _child_deliver(warehouse_path: str, campaigns_dir: str) -> None:
    """What the fault-injection test runs (and kills): one delivery of campaign 'test'
    through the sendgrid channel configured from the environment."""
    import warehouse
    from relance.campaign import loader
    from relance.channels import for_campaign
    from relance.delivery import deliver_due
    loaded = loader.load(Path(campaigns_dir) / "test.yaml", campaigns_dir=Path(campaigns_dir))
    con = warehouse.connect(warehouse_path)
    report = deliver_due(con, loaded, for_campaign(loaded), now=MONDAY)
    con.close()
    print(json.dumps({"sent": report.sent, "failed": report.failed, "uncertain": report.uncertain,
                      "uncertain_pending": report.uncertain_pending}), flush=True)


if __name__ == "__main__":
    _child_deliver(sys.argv[1], sys.argv[2])
