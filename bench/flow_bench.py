"""Flow benchmark: the whole weekly job as Prefect flows on a running server against the
same steps as plain library calls, in one run.

    python bench/flow_bench.py [--learners 100000] [--prefect-first]

Generates the demo export at that size (relance/demo.py, scaled), starts a local
`prefect server` (its own PREFECT_HOME, on a free port; not timed), then on two fresh
warehouses from the same export:
  1. library: connectors.sync, then relance.runs.run_campaign for each campaign in
     campaigns/ (evaluate, plan, send to the outbox, log in campaign_runs);
  2. prefect: one parent flow running the sync_progress flow and each campaign's
     run_campaign flow (their tasks, artifacts and warehouse slot) on the server.
Prints both times and their ratio (goal <= 1.3). Machines here are noisy and shared:
compare the ratio, not the seconds.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.results import record  # noqa: E402

AS_OF = datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc)
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(home: Path) -> tuple[subprocess.Popen, str]:
    import httpx
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    proc = subprocess.Popen([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1",
                             "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    for _ in range(240):
        try:
            if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                return proc, api
        except httpx.HTTPError:
            time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGTERM)
    raise SystemExit("prefect server did not start")


def library(mapping: Path, wh_path: Path, campaigns: Path, outbox: Path) -> list[tuple]:
    import warehouse
    from connectors import open_source, sync
    from relance.runs import steps
    from relance.campaign.loader import load_all
    from relance.settings import Settings
    con = warehouse.connect(wh_path, memory_limit=Settings().memory_limit)
    try:
        sync(con, open_source(str(mapping)))
        for loaded in load_all(campaigns):
            steps.run_campaign(con, loaded, as_of=AS_OF, outbox_dir=str(outbox))
        return con.execute("select campaign_id, n_evaluated, n_sent, evaluate_ms, deliver_ms from campaign_runs "
                           "order by campaign_id").fetchall()
    finally:
        con.close()


def with_prefect(mapping: Path, wh_path: Path, campaigns: Path, outbox: Path) -> list[tuple]:
    from prefect import flow

    import warehouse
    from flows.run_campaign import run_campaign
    from flows.sync_progress import sync_progress
    from relance.campaign.loader import load_all

    @flow(name="weekly-bench")
    def weekly() -> None:
        sync_progress(str(mapping), str(wh_path))
        for loaded in load_all(campaigns):
            run_campaign(loaded.id, AS_OF.isoformat(), str(wh_path), str(campaigns), str(outbox))

    weekly()
    con = warehouse.connect(wh_path, read_only=True)
    try:
        return con.execute("select campaign_id, n_evaluated, n_sent, evaluate_ms, deliver_ms from campaign_runs "
                           "order by campaign_id").fetchall()
    finally:
        con.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, default=100_000)
    parser.add_argument("--prefect-first", action="store_true",
                        help="Run the Prefect half first (to see what the order costs).")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="flow-bench-"))
    server = None
    try:
        from relance import demo
        t = time.perf_counter()
        mapping = demo.generate(work / "export", as_of=AS_OF, scale=args.learners / 2000)
        print(f"export of ~{args.learners:,} learners generated in {time.perf_counter() - t:.1f} s")
        server, api = start_server(work / "prefect-home")
        # before the first import of prefect, so that the flows report to this server
        os.environ.update(PREFECT_API_URL=api, PREFECT_HOME=str(work / "prefect-home"),
                          PREFECT_SERVER_ANALYTICS_ENABLED="false",
                          PREFECT_LOGGING_LEVEL="WARNING")
        campaigns = ROOT / "campaigns"

        def timed(fn, name):
            t = time.perf_counter()
            rows = fn(mapping, work / f"{name}.duckdb", campaigns, work / f"{name}-outbox")
            return rows, time.perf_counter() - t

        if args.prefect_first:
            pre, pre_s = timed(with_prefect, "prefect")
            lib, lib_s = timed(library, "lib")
        else:
            lib, lib_s = timed(library, "lib")
            pre, pre_s = timed(with_prefect, "prefect")

        for (cid, n, sent, ev, de), (_, n2, sent2, ev2, de2) in zip(lib, pre):
            print(f"  {cid}: {n:,} learners evaluated, {sent:,} sent; evaluate {ev / 1000:.1f} s, "
                  f"deliver {de / 1000:.1f} s (prefect: {n2:,}, {sent2:,}; {ev2 / 1000:.1f} s, "
                  f"{de2 / 1000:.1f} s)")
        assert [r[1:3] for r in lib] == [r[1:3] for r in pre], "the two paths disagree"
        print(f"library calls : {lib_s:7.1f} s")
        print(f"prefect flows : {pre_s:7.1f} s  (server at {api})")
        print(f"ratio         : {pre_s / lib_s:7.2f}  (goal <= 1.3)")
        key = {30_000: "4.30k", 100_000: "4.100k"}.get(args.learners, f"4.{args.learners}")
        record(key, pre_s / lib_s, 1.3, "<=", scale=f"{args.learners:,} learners",
               script="flow_bench.py", detail=f"library {lib_s:.1f} s, prefect {pre_s:.1f} s")
    finally:
        if server is not None and server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
