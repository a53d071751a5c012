"""A real Prefect server for the deployment tests: `prefect server start` on loopback with
its own PREFECT_HOME, the process work pool, `prefect deploy --all` from the repository
root, and workers started and stopped by PID. One server per test module."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.conftest import REPO
from tests.server_process import free_port

BIN = Path(sys.executable).parent
PREFECT = str(BIN / "prefect")
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def _stop(proc: subprocess.Popen, grace: float = 10) -> None:
    """Stop a process we started, and its children, by its process group (its own PID)."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(grace)
    except ProcessLookupError:
        pass


@dataclass
class PrefectServer:
    root: Path
    port: int
    env: dict
    proc: subprocess.Popen | None = None
    workers: list = field(default_factory=list)

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def start(self, timeout: float = 90) -> None:
        log = open(self.root / "server.log", "wb")
        self.proc = subprocess.Popen(
            [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(self.port)],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prefect server exited: {(self.root / 'server.log').read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.api}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"prefect server did not answer in {timeout} s")

    def stop(self) -> None:
        for worker in self.workers:
            _stop(worker)
        if self.proc:
            _stop(self.proc)

    def cli(self, *args: str, timeout: float = 180, env: dict | None = None) -> str:
        done = subprocess.run([PREFECT, *args], env={**self.env, **(env or {})}, cwd=REPO,
                              capture_output=True, text=True, timeout=timeout)
        assert done.returncode == 0, f"prefect {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def worker(self, *args: str, name: str) -> subprocess.Popen:
        """A process worker on pool `relance`, in its own process group (stopped at teardown)."""
        log = open(self.root / f"worker-{name}.log", "ab")
        proc = subprocess.Popen([PREFECT, "worker", "start", "--pool", "relance", "--type",
                                 "process", "--name", name, *args],
                                env=self.env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.workers.append(proc)
        return proc

    def run_once(self, timeout: float = 480) -> None:
        """One worker that takes every run due now, waits for them, and exits."""
        proc = self.worker("--run-once", name="once")
        try:
            proc.wait(timeout)
        finally:
            _stop(proc)

    # -- the REST API, as a user's script would call it --------------------------------

    def _send(self, method: str, path: str, **kwargs) -> httpx.Response:
        # as Prefect's own client does: a server busy with its database (SQLite, on a
        # loaded machine) answers 503, 502 or 429 for a moment
        for attempt in range(6):
            r = httpx.request(method, f"{self.api}{path}", timeout=120, **kwargs)
            if r.status_code not in (429, 502, 503) or attempt == 5:
                break
            time.sleep(float(r.headers.get("Retry-After") or 2 ** attempt * 0.5))
        r.raise_for_status()
        return r

    def get(self, path: str) -> dict | list:
        return self._send("GET", path).json()

    def post(self, path: str, body: dict) -> dict | list | None:
        r = self._send("POST", path, json=body)
        return r.json() if r.content else None

    def deployment(self, name: str, flow: str = "run-campaign") -> dict:
        return self.get(f"/deployments/name/{flow}/{name}")

    def trigger(self, deployment: str, flow: str = "run-campaign", **parameters) -> str:
        dep = self.deployment(deployment, flow)
        run = self.post(f"/deployments/{dep['id']}/create_flow_run",
                        {"parameters": parameters, "state": {"type": "SCHEDULED"}})
        return run["id"]

    def flow_run(self, run_id: str) -> dict:
        return self.get(f"/flow_runs/{run_id}")

    def wait(self, run_ids: list[str], timeout: float = 480) -> list[dict]:
        deadline = time.monotonic() + timeout
        while True:
            runs = [self.flow_run(r) for r in run_ids]
            if all(r["state_type"] in TERMINAL for r in runs) or time.monotonic() > deadline:
                return runs
            time.sleep(1)

    def states(self, run_id: str) -> list[str]:
        return [s["name"] for s in self.get(f"/flow_run_states/?flow_run_id={run_id}")]

    def artifacts(self, run_id: str) -> list[dict]:
        return self.post("/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [run_id]}}})


def start_server(root: Path, **extra_env: str) -> PrefectServer:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update({
        "PREFECT_HOME": str(root / "prefect-home"),
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "INFO",
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        # the scheduler looks for new schedules every 2 s instead of every minute
        "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "2",
        # a run waiting for its campaign's slot asks again after 2 s instead of 30
        "PREFECT_SERVER_DEPLOYMENTS_CONCURRENCY_SLOT_WAIT_SECONDS": "2",
        "PYTHONPATH": str(REPO),
        "RELANCE_HOME": str(REPO),
        **extra_env,
    })
    server = PrefectServer(root, port, env)
    server.start()
    return server
