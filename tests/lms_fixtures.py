"""Peers of the network connectors' tests: a real Ralph LRS in its own virtualenv, and the
local Moodle and Canvas servers (tests/fakes/) started in their own processes.

Ralph (ralph-malph 5.1.0) pins a fastapi that prefect cannot live with, so it runs from
`.venv-ralph` at the repository root, built from `requirements-ralph.lock` the first time
(about a minute). Its file-system backend accepts one write per store (later writes
answer 500), so each server is seeded with all its statements in one POST; a second
batch of statements is a second server over a second store that holds both batches.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
RALPH_VENV = REPO / ".venv-ralph"
RALPH_LOCK = REPO / "requirements-ralph.lock"
RALPH_USER, RALPH_PASSWORD = "relance", "lrs-password-for-tests"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ralph_venv() -> Path:
    """The virtualenv's bin folder, built from the lock file if missing."""
    bin_dir = RALPH_VENV / "bin"
    if not (bin_dir / "uvicorn").exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(RALPH_VENV)], check=True)
        subprocess.run([str(bin_dir / "pip"), "install", "-q", "-r", str(RALPH_LOCK)], check=True)
    return bin_dir


def wait_until_up(url: str, process: subprocess.Popen, what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not answer {url} within {seconds} s")


def stop(process: subprocess.Popen) -> None:
    """Stop a server we started, by its own process group."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@dataclass
class Ralph:
    url: str
    process: subprocess.Popen

    def stop(self) -> None:
        stop(self.process)


def start_ralph(workdir: Path, statements: list[dict]) -> Ralph:
    """A Ralph LRS over a fresh file-system store holding `statements` (one write)."""
    bin_dir = ralph_venv()
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "store").mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RALPH_")}
    env.update({
        "RALPH_RUNSERVER_BACKEND": "fs",
        "RALPH_BACKENDS__LRS__FS__DEFAULT_DIRECTORY_PATH": str(workdir / "store"),
        "RALPH_AUTH_FILE": str(workdir / "auth.json"),
        "RALPH_RUNSERVER_MAX_SEARCH_HITS_COUNT": "500",
        "RALPH_APP_DIR": str(workdir / "app"),
    })
    subprocess.run([str(bin_dir / "ralph"), "auth", "-u", RALPH_USER, "-p", RALPH_PASSWORD,
                    "-s", "all", "-M", f"mailto:{RALPH_USER}@example.org", "-N", "relance",
                    "-w"], env=env, cwd=workdir, check=True, capture_output=True)
    port = free_port()
    process = subprocess.Popen(
        [str(bin_dir / "uvicorn"), "ralph.api:app", "--host", "127.0.0.1", "--port", str(port),
         "--log-level", "warning"],
        env=env, cwd=workdir, start_new_session=True,
        stdout=open(workdir / "ralph.log", "ab"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{url}/__lbheartbeat__", process, "Ralph")
        response = httpx.post(f"{url}/xAPI/statements", json=statements,
                              auth=(RALPH_USER, RALPH_PASSWORD),
                              headers={"X-Experience-API-Version": "1.0.3"}, timeout=60)
        response.raise_for_status()
    except BaseException:
        stop(process)
        raise
    return Ralph(url, process)


# -- xAPI statements --------------------------------------------------------------------------

ADL = "http://adlnet.gov/expapi/verbs/"
COURSE_IRI = "https://lms.example.org/course/anglais-b2"
T0 = datetime(2026, 10, 5, 8, 0, tzinfo=timezone.utc)


def statement(n: int, who: str, verb: str, *, at: datetime, obj: str | None = None,
              progress: int | None = None, course: str | None = COURSE_IRI,
              name: str = "Zoé Lefèvre", response: str | None = None,
              account: bool = False) -> dict:
    """One statement as a learning platform would send it."""
    actor = ({"objectType": "Agent", "name": name,
              "account": {"homePage": "https://lms.example.org", "name": who}}
             if account else {"objectType": "Agent", "name": name, "mbox": f"mailto:{who}"})
    object_id = obj or f"{COURSE_IRI}/activity/{n % 4 + 1}"
    s = {
        "id": str(uuid.UUID(int=n + 1)),
        "actor": actor,
        "verb": {"id": verb if verb.startswith("http") else ADL + verb,
                 "display": {"en-US": verb.rsplit("/", 1)[-1]}},
        "object": {"objectType": "Activity", "id": object_id,
                   "definition": {"name": {"en-US": f"Activity {object_id.rsplit('/', 1)[-1]}"},
                                  "type": "http://adlnet.gov/expapi/activities/lesson"}},
        "timestamp": at.isoformat(),
    }
    if course:
        s["context"] = {"contextActivities": {"parent": [
            {"objectType": "Activity", "id": course,
             "definition": {"name": {"en-US": "Anglais B2"},
                            "type": "http://adlnet.gov/expapi/activities/course"}}]}}
    if progress is not None:
        s["result"] = {"extensions": {"https://w3id.org/xapi/cmi5/result/extensions/progress": progress}}
    if response is not None:
        s.setdefault("result", {})["response"] = response
    return s


def first_batch() -> list[dict]:
    """Three learners' first weeks: 12 statements, and 2 the connector cannot load."""
    learners = ["zoe@example.org", "marc@example.org", "ines@example.org"]
    out = []
    for i, who in enumerate(learners):
        base = T0 + timedelta(hours=i)
        out.append(statement(10 * i + 0, who, "registered", at=base, obj=COURSE_IRI))
        out.append(statement(10 * i + 1, who, "experienced", at=base + timedelta(days=1)))
        out.append(statement(10 * i + 2, who, "completed", at=base + timedelta(days=2),
                             obj=f"{COURSE_IRI}/activity/1"))
        out.append(statement(10 * i + 3, who, "progressed", at=base + timedelta(days=2, minutes=1),
                             obj=COURSE_IRI, progress=25 * (i + 1)))
    out.append(statement(40, "zoe@example.org", "commented", at=T0 + timedelta(days=3),
                         obj=f"{COURSE_IRI}/forum/1", response="Voici ma présentation"))
    # no mapping for this verb: quarantined, with the verb named
    out.append(statement(41, "marc@example.org", "http://adlnet.gov/expapi/verbs/interacted",
                         at=T0 + timedelta(days=3, hours=1)))
    # no course in its context and no configured course matches: quarantined
    out.append(statement(42, "ines@example.org", "experienced", at=T0 + timedelta(days=3, hours=2),
                         obj="https://elsewhere.example.org/video/9", course=None))
    return out


def second_batch() -> list[dict]:
    """What happens the week after: a completion of the course, a new learner."""
    at = T0 + timedelta(days=8)
    return [
        statement(50, "zoe@example.org", "completed", at=at, obj=COURSE_IRI),
        statement(51, "L-0099", "registered", at=at + timedelta(hours=1), obj=COURSE_IRI,
                  account=True, name="Paul Martin"),
        statement(52, "L-0099", "experienced", at=at + timedelta(hours=2), account=True,
                  name="Paul Martin"),
    ]


def dump(statements: list[dict]) -> str:
    return json.dumps(statements)
