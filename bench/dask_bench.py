"""Does a Dask task runner help run several campaigns at once? Measured in one run.

    python bench/dask_bench.py [--learners 20000]

Builds one synced warehouse from the demo export (scaled), copies it twice, starts a local
`prefect server` (not timed), then for every campaign of campaigns/ plans (in sequence:
the weekly cap across campaigns reads what the others planned) and delivers to the outbox,
one Prefect task per campaign and step:
  1. delivering in sequence (a task runner of one thread);
  2. delivering every campaign at once through prefect-dask's DaskTaskRunner on a local
     cluster of threads in this one process (DuckDB allows one writing process; its
     connections may share it).
Prints both times and the speed-up. Processes are not tried: a second process cannot
even open the warehouse file while the first has it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.flow_bench import AS_OF, start_server  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, default=20_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dask-bench-"))
    server = None
    try:
        import warehouse
        from connectors import open_source, sync
        from relance import demo
        mapping = demo.generate(work / "export", as_of=AS_OF, scale=args.learners / 2000)
        con = warehouse.connect(work / "base.duckdb")
        sync(con, open_source(str(mapping)))
        con.close()
        for name in ("sequence", "dask"):
            shutil.copy(work / "base.duckdb", work / f"{name}.duckdb")
        server, api = start_server(work / "prefect-home")
        os.environ.update(PREFECT_API_URL=api, PREFECT_HOME=str(work / "prefect-home"),
                          PREFECT_SERVER_ANALYTICS_ENABLED="false",
                          PREFECT_LOGGING_LEVEL="WARNING")

        import logging
        logging.getLogger("distributed").setLevel(logging.WARNING)   # its INFO lines drown the figures
        from prefect import flow, task
        from prefect.task_runners import ThreadPoolTaskRunner
        from prefect_dask import DaskTaskRunner

        from relance.runs import steps
        from relance.campaign.loader import load_all
        campaigns = ROOT / "campaigns"
        ids = [c.id for c in load_all(campaigns)]

        def session(wh_path: str):
            return warehouse.connect(wh_path)        # same process: one DuckDB instance

        def loaded_campaign(campaign_id: str):
            from relance.campaign import loader
            return loader.load(loader.find(campaigns, campaign_id), campaigns_dir=campaigns)

        @task(name="plan-campaign")
        def plan_one(campaign_id: str, wh_path: str) -> str:
            con = session(wh_path)
            try:
                return steps.plan_step(con, loaded_campaign(campaign_id), AS_OF)[0]
            finally:
                con.close()

        @task(name="deliver-campaign")
        def deliver_one(campaign_id: str, run_id: str, wh_path: str, outbox: str) -> int:
            from relance.channels import get_channel
            con = session(wh_path)
            try:
                return steps.deliver_step(con, loaded_campaign(campaign_id), run_id, AS_OF,
                                         get_channel("outbox", outbox_dir=outbox)).sent
            finally:
                con.close()

        def all_campaigns(name: str) -> int:
            wh_path, outbox = str(work / f"{name}.duckdb"), str(work / f"{name}-outbox")
            # Planning stays in sequence: the weekly cap across campaigns reads what the
            # campaigns planned before, so two plans at once could exceed it.
            run_ids = [plan_one.submit(c, wh_path).result() for c in ids]
            futures = [deliver_one.submit(c, r, wh_path, outbox) for c, r in zip(ids, run_ids)]
            return sum(f.result() for f in futures)

        sequence = flow(name="campaigns-in-sequence",
                        task_runner=ThreadPoolTaskRunner(max_workers=1))(all_campaigns)
        parallel = flow(name="campaigns-on-dask", task_runner=DaskTaskRunner(
            cluster_kwargs={"n_workers": 1, "threads_per_worker": len(ids), "processes": False,
                            "dashboard_address": None}))(all_campaigns)
        t = time.perf_counter()
        sent_seq = sequence("sequence")
        seq_s = time.perf_counter() - t
        t = time.perf_counter()
        sent_par = parallel("dask")
        par_s = time.perf_counter() - t
        assert sent_seq == sent_par, (sent_seq, sent_par)
        print(f"{len(ids)} campaigns, ~{args.learners:,} learners, {sent_seq:,} messages sent")
        print(f"in sequence          : {seq_s:6.1f} s")
        print(f"DaskTaskRunner (threads, one process): {par_s:6.1f} s")
        print(f"speed-up             : {seq_s / par_s:6.2f}x  (cores: {os.cpu_count()})")
    finally:
        if server is not None and server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(15)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
