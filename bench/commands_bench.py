"""Command latency: the interactive commands against `relance --help` (Python and import
start-up), on the demo warehouse, in one run.

    python bench/commands_bench.py [--repeat 3] [--campaign parcours-anglais]

Builds the demo (`relance demo`, not timed) in a temporary folder, then times each
command as a person types it, in a fresh process: `--help`, `validate`, `plan`,
`preview` of one learner's message, `test`, `run` with nothing left to do (the demo already ran the
week; a first run, not timed, takes whatever was left) and `deliver` with nothing due (a
first delivery, not timed, sends what was). Each `--repeat` times, interleaved; the median
of each is compared with the median of `--help`. Issue 19's goal: each at most 3x
`--help`. Machines here are noisy: compare the ratios, not the seconds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.results import record  # noqa: E402


def commands(campaign: str, w: Path, c: Path, outbox: Path, learner: str,
             message: str) -> dict[str, list[str]]:
    where = ["--warehouse", str(w), "--campaigns", str(c)]
    return {
        "help": ["--help"],
        "validate": ["validate", campaign, *where],
        "plan": ["plan", campaign, *where],
        "preview": ["preview", campaign, learner, "--message", message, *where],
        "test": ["test", campaign, "--campaigns", str(c)],
        "run": ["run", campaign, *where, "--outbox", str(outbox)],
        "deliver": ["deliver", *where, "--outbox", str(outbox)],
    }


def relance(args: list[str], cwd: Path, env: dict) -> float:
    """Wall seconds of one `relance ...` in a fresh process; fails loudly on an error."""
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "relance.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"relance {' '.join(args)} exited {done.returncode}:\n"
                         f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--campaign", default="parcours-anglais")
    ap.add_argument("--learner", default="L00042")
    ap.add_argument("--message", default="recap-hebdo", help="the message previewed")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="relance-commands-") as tmp:
        tmp = Path(tmp)
        env = os.environ | {"PYTHONPATH": str(ROOT), "PREFECT_HOME": str(tmp / "prefect"),
                            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                            # a loaded machine can take longer than Prefect's 20 s to start
                            # the temporary server of the commands that still start one
                            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120"}
        w, outbox, c = tmp / "relance.duckdb", tmp / "outbox", ROOT / "campaigns"
        print("building the demo warehouse (relance demo, not timed) …", flush=True)
        t = time.perf_counter()
        relance(["demo", "--warehouse", str(w), "--campaigns", str(c), "--outbox", str(outbox)],
                tmp, env)
        print(f"  demo built in {time.perf_counter() - t:.1f} s", flush=True)
        todo = commands(args.campaign, w, c, outbox, args.learner, args.message)
        # what the demo left to do is done first, untimed: then run and deliver have nothing
        relance(todo["run"], tmp, env)
        relance(todo["deliver"], tmp, env)
        times: dict[str, list[float]] = {name: [] for name in todo}
        for _ in range(args.repeat):                   # interleaved: noise spreads evenly
            for name, cmd in todo.items():
                times[name].append(relance(cmd, tmp, env))
    help_s = statistics.median(times["help"])
    print(f"\nmedian of {args.repeat} runs each, on the demo warehouse ({args.campaign}):")
    print(f"  {'relance --help':<32} {help_s:6.2f} s")
    for name, values in times.items():
        if name == "help":
            continue
        median = statistics.median(values)
        label = f"relance {name}" + (" (nothing to do)" if name in ("run", "deliver") else "")
        print(f"  {label:<32} {median:6.2f} s  = {median / help_s:5.2f} x --help  "
              f"(runs: {', '.join(f'{v:.2f}' for v in values)})", flush=True)
        record(f"1.{name}", median / help_s, 3, "<=", scale="demo warehouse",
               script="commands_bench.py", detail=f"{median:.2f} s vs --help {help_s:.2f} s")


if __name__ == "__main__":
    main()
