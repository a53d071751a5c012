"""The last step of `make bench`: one table of every goal of issue 19 (and the other
benchmarks' goals), the figure the bench scripts measured in this run (bench/results.py),
and whether it is met. A goal no script measured says so.

    python bench/summary.py [--results bench/results/results.jsonl]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.results import read, results_file  # noqa: E402

# (key, what, goal as said, the size it holds at); the keys are those the scripts record
COMMANDS = ("validate", "plan", "preview", "test", "run", "deliver")
GOALS = [
    *[(f"1.{c}", f"1 `relance {c}`{' (nothing to do)' if c in ('run', 'deliver') else ''} "
       "/ `relance --help`", "<= 3", "demo warehouse") for c in COMMANDS],
    ("2.outbox", "2 weekly job to the outbox / bare render-and-write loop", ">= 0.5",
     "100,000 learners"),
    ("2.sendgrid", "2 SendGrid channel, warehouse to ledger / bare render loop", ">= 0.7",
     "100,000 learners"),
    # the issue says "flat": read here as at most a fifth more at ten times the messages
    ("2.memory", "2 delivery peak memory, 1,000,000 / 100,000 messages (flat)", "<= 1.2",
     "100,000 and 1,000,000 messages"),
    ("3.ratio", "3 full evaluation / bare aggregation", "<= 2",
     "1,000,000 learners, 50,000,000 events"),
    ("3.peak", "3 evaluation peak memory (GiB)", "<= 2",
     "1,000,000 learners, 50,000,000 events"),
    ("3.ingest", "3 ingest with per-learner summaries / bare load (if summaries)", "<= 1.5",
     "1,000,000 learners, 50,000,000 events"),
    ("4.30k", "4 weekly flows on Prefect / library calls", "<= 1.3", "30,000 learners"),
    ("4.100k", "4 weekly flows on Prefect / library calls", "<= 1.3", "100,000 learners"),
    ("5.backtest", "5 `relance backtest`, one OULAD presentation (s)", "<= 10",
     "OULAD 2013J, 39 Mondays"),
    ("5.season", "5 `relance simulate`, 20-week season of the demo (s)", "<= 60",
     "demo scale 1, 20 weeks"),
]
OTHER = [
    ("connectors.oulad", "connector sync / DuckDB read_csv, OULAD 2013", "<= 1.5"),
    ("connectors.csv", "connector sync / DuckDB read_csv, CSV export", "<= 1.5"),
    ("connectors.csv-events", "events file alone / DuckDB read_csv", "<= 1.5"),
    ("xapi", "xAPI sync / bare paging of the LRS", "<= 2"),
    ("sendgrid.channel", "SendGrid channel / raw requests, messages per second", ">= 0.9"),
    # issue 21: the shared warehouse (bench/shared_bench.py; its goal for delivery and two
    # workers is ours: no slower than half the file, and a second worker never a loss)
    ("21.evaluation", "shared warehouse / embedded file, evaluation (replay: events scanned)",
     "<= 1.5"),
    ("21.evaluation_now", "shared warehouse / embedded file, evaluation as of now (summaries)",
     "<= 1.5"),
    # the same, PostgreSQL on a core of its own and the evaluator on the other, both sides
    # (shared_bench.py --separate-host: a database host of its own, emulated on one host)
    ("21.evaluation_separate_host", "shared / embedded, evaluation (replay), PostgreSQL on a "
     "core of its own (separate host emulated), evaluator 1 core both sides", "<= 1.5"),
    ("21.evaluation_now_separate_host", "shared / embedded, evaluation as of now, PostgreSQL "
     "on a core of its own (separate host emulated), evaluator 1 core both sides", "<= 1.5"),
    ("21.delivery", "shared warehouse / embedded file, delivery messages per second", ">= 0.5"),
    ("21.two_workers", "two workers / one on the shared warehouse, messages per second", ">= 1.0"),
]


def _figure(value: float, unit: str) -> str:
    text = f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    return f"{text} {unit}".strip()


def rows(results: list[dict]) -> list[tuple[str, str, str, str, str]]:
    """(what, measured, goal, at, verdict), the issue's goals first, then the others."""
    last = {r["goal"]: r for r in results}            # a later run of a script wins
    out = []
    for key, what, goal, scale in GOALS:
        r = last.get(key)
        if r is None:
            out.append((what, "not measured", goal, scale, "not measured"))
        elif r.get("scale") and r["scale"] != scale:
            out.append((what, _figure(r["measured"], r.get("unit", "")), goal, r["scale"],
                        "not at the goal's size"))
        else:
            out.append((what, _figure(r["measured"], r.get("unit", "")), goal,
                        r.get("scale") or scale, "met" if r["met"] else "NOT MET"))
    for key, what, goal in OTHER:
        r = last.get(key)
        if r is not None:
            out.append((what, _figure(r["measured"], r.get("unit", "")), goal,
                        r.get("scale", ""), "met" if r["met"] else "NOT MET"))
    return out


def table(lines: list[tuple[str, ...]]) -> str:
    head = ("goal", "measured", "goal is", "at", "verdict")
    widths = [max(len(x[i]) for x in [head, *lines]) for i in range(len(head))]
    fmt = "  ".join(f"{{:{'<' if i in (0, 3, 4) else '>'}{w}}}" for i, w in enumerate(widths))
    rule = "  ".join("-" * w for w in widths)
    return "\n".join(line.rstrip() for line in
                     [fmt.format(*head), rule, *(fmt.format(*x) for x in lines)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--results", type=Path, default=None)
    args = ap.parse_args()
    path = args.results or results_file()
    results = read(path)
    lines = rows(results)
    print(f"\nIssue 19's goals, measured in this run ({path}; one run each on a shared "
          "machine: compare ratios, not seconds)\n")
    print(table(lines))
    verdicts = ("met", "NOT MET", "not measured", "not at the goal's size")
    counts = {v: sum(x[4] == v for x in lines) for v in verdicts}
    print("\n" + ", ".join(f"{n} {v.lower()}" for v, n in counts.items() if n))


if __name__ == "__main__":
    main()
