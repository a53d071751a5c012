"""Backtest benchmark: `relance backtest` of one OULAD 2013 presentation, as a person
runs it, in one run.

    python bench/backtest_bench.py [--campaign oulad-retard-pondere] [--presentation 2013J]

Runs the command in a fresh process on a fresh warehouse (the OULAD files read in place
from ../shared/data/oulad-2013, the scratch warehouse loaded, every Monday of the
presentation replayed with the real engine, the results written), with no Prefect server
configured, and prints its wall time, the CPU time of the process (less sensitive to the
machine's other work) and the figures it printed. Issue 19's goal: at most 10 s.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.results import record  # noqa: E402

OULAD = ROOT.parent / "shared" / "data" / "oulad-2013"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--campaign", default="oulad-retard-pondere")
    ap.add_argument("--presentation", default="2013J")
    args = ap.parse_args()
    if not OULAD.is_dir():
        raise SystemExit(f"no OULAD data at {OULAD}: the backtest bench reads it in place")
    with tempfile.TemporaryDirectory(prefix="relance-backtest-bench-") as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
        env |= {"PYTHONPATH": str(ROOT), "PREFECT_HOME": str(Path(tmp) / "prefect"),
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "COLUMNS": "120"}
        cmd = [sys.executable, "-m", "relance.cli", "backtest", args.campaign, "--campaigns",
               str(ROOT / "campaigns" / "backtests"), "--source", "oulad", "--presentation",
               args.presentation, "--warehouse", str(Path(tmp) / "relance.duckdb")]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"relance backtest exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    weeks = re.search(r"replayed over (\d+) Mondays", done.stdout)
    print(done.stdout)
    print(f"relance backtest {args.campaign} --source oulad --presentation {args.presentation}: "
          f"{seconds:.1f} s wall, {cpu:.1f} s CPU (goal <= 10 s)")
    record("5.backtest", seconds, 10, "<=", unit="s",
           scale=f"OULAD {args.presentation}, {weeks.group(1) if weeks else '?'} Mondays",
           script="backtest_bench.py", detail=f"{cpu:.1f} s CPU")


if __name__ == "__main__":
    main()
