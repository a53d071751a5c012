"""Engine benchmark: a full campaign evaluation against a bare DuckDB aggregation, same run.

    python bench/engine_bench.py [--learners 1000000] [--events 50000000]

Generates (once, cached in bench/out/) a warehouse of N learners on one course and M
progress events, then, each in a fresh process on the same file:
  1. bare: last activity and max progress per learner (one GROUP BY over the events);
  2. evaluation: the full campaign evaluation `relance plan` does (audience, measures,
     stages, milestones, triggers, policies, decisions, follow-ups) with the warehouse's
     memory limit, and its peak memory (ru_maxrss of that process); the measures read the
     per-learner summaries the loaders keep (migration 0055), as a run as of now does;
  3. replay: the same evaluation scanning the events (`full_scan`, the path of a past
     date: backtests, `--as-of` in the past).
Prints the times, the ratio evaluation / bare (goal <= 2), the replay's, and the
evaluation's peak memory (goal <= 2 GiB); then, once, the time to rebuild the summaries
from every event (what a load of all 50M events at once adds to its sync: the ingest
cost; connectors_bench.py prints it against the connector's load).
Machines here are noisy: compare the ratio, not the seconds.
"""

from __future__ import annotations

import argparse
import json
import resource
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

CAMPAIGN = """
id: bench
description: Benchmark copy of a weekly relance campaign.
audience: {course: c1}
sender: {name: "Équipe formation", email: formation@example.org}
control_group: 10%
stages:
  completed: {completed: true}
  not_started: {started: false}
  dormant: {inactive_days: ">= 21"}
  at_risk:
    any_of: [{inactive_days: ">= 7"}, {overdue: ">= 4"}]
  active: {}
messages:
  felicitations: {on_enter: completed}
  bravo: {on_milestone: [25%, 50%, 75%]}
  remobilisation: {on_enter: dormant}
  relance: {on_enter: at_risk}
  recap: {every: monday 08:30, to: [active, at_risk]}
follow_up:
  call: {stage: dormant, reason: Silent for three weeks}
  stuck: {stage: [active, at_risk], stalled_days: ">= 21", reason: Stuck}
limits: {per_learner_per_week: 2, quiet_hours: "20:00-08:00"}
"""


def generate(path: Path, learners: int, events: int) -> None:
    import warehouse
    if path.exists():
        return
    print(f"generating {learners:,} learners and {events:,} events in {path} …", flush=True)
    t0 = time.perf_counter()
    con = warehouse.connect(path)
    con.execute("""
        insert into courses values ('c1', 'Bench course', null, null, date '2026-08-31',
                                    date '2027-01-17', 'bench', now());
        insert into activities
        select 'c1', 'a' || w, 'Activity ' || w, 'quiz', (w + 1) // 2,
               null, timestamptz '2026-08-31 00:00:00+00' + to_days(((w + 1) // 2) * 7 - 1), 1, true,
               null, 'bench', now()
        from range(1, 41) t(w);
    """).fetchall()
    tz = "['Europe/Paris','Europe/Paris','Europe/Paris','America/Montreal','Europe/London']"
    con.execute(f"""
        insert into learners
        select 'L' || i, 'l' || i || '@example.org', 'Zoé', 'Lefèvre',
               case when i % 5 = 0 then 'en' else 'fr' end,
               {tz}[1 + i % 5], null, 'bench', now()
        from range({learners}) t(i);
        insert into enrolments
        select 'L' || i, 'c1', '2026-09', timestamptz '2026-08-31 00:00:00+00' - to_days(i % 20),
               case when i % 97 = 0 then 'completed' else 'enrolled' end, null, null, 'bench', now()
        from range({learners}) t(i);
    """).fetchall()
    # Events: most learners active, a tail silent for weeks; one event in ten completes
    # the learner's next activity; some report an overall progress figure.
    con.execute(f"""
        insert into progress_events
        select i::varchar,
               'L' || (i % {learners}),
               'c1',
               case when i % 10 = 0 then 'a' || (1 + (i // {learners}) % 40) end,
               case when i % 10 = 0 then 'completed' when i % 10 = 1 then 'progressed' else 'accessed' end,
               timestamptz '2026-11-23 08:00:00+00'
                   - to_seconds(((hash(i) % 7257600) * (1 + (i % {learners}) % 4 * 0.5))::bigint),
               case when i % 10 = 1 then ((i // {learners}) % 50) / 50.0 end,
               'bench', timestamptz '2026-11-23 08:00:00+00'
        from range({events}) t(i);
    """).fetchall()
    # written around the loaders: the summaries they keep are built here, as a load would
    from connectors import summaries
    summaries.rebuild(con, AS_OF)
    con.execute("checkpoint").fetchall()
    con.close()
    print(f"generated in {time.perf_counter() - t0:.0f}s", flush=True)


def child(kind: str, path: str, memory_limit: str) -> None:
    """Runs in its own process; prints one JSON line."""
    import warehouse
    con = warehouse.connect(path, memory_limit=memory_limit)
    t0 = time.perf_counter()
    if kind == "bare":
        con.execute("create temp table bare as select learner_id, max(occurred_at) as last_at, "
                    "max(progress) as best from progress_events group by learner_id").fetchall()
        n = con.execute("select count(*) from bare").fetchall()[0][0]
        detail = {}
    elif kind == "rebuild":
        from connectors import summaries
        summaries.rebuild(con, AS_OF)
        n = con.execute("select count(*) from progress_summaries").fetchall()[0][0]
        detail = {}
    else:
        from relance import engine
        from relance.campaign.loader import load
        folder = Path(tempfile.mkdtemp())
        (folder / "bench.yaml").write_text(CAMPAIGN, encoding="utf-8")
        loaded = load(folder / "bench.yaml", check_templates=False)
        evaluation = engine.evaluate(con, loaded, AS_OF, full_scan=kind == "replay")
        assert evaluation.summaries is (kind == "evaluate"), "the summaries do not cover AS_OF"
        n = evaluation.totals()["evaluated"]
        detail = {"steps": {k: round(v, 2) for k, v in evaluation.timings.items()},
                  "totals": evaluation.totals()}
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"kind": kind, "seconds": seconds, "rows": n, "peak_bytes": peak, **detail}))


def measure(kind: str, path: Path, memory_limit: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", kind, "--db", str(path),
                          "--memory-limit", memory_limit],
                         check=True, capture_output=True, text=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--learners", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=50_000_000)
    parser.add_argument("--memory-limit", default="2GB")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child")
    parser.add_argument("--db")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.db, args.memory_limit)
        return
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"engine-{args.learners}-{args.events}.duckdb"
    generate(path, args.learners, args.events)
    measure("bare", path, args.memory_limit)                  # warm the page cache
    # Interleaved rounds, best of each: other work on a shared machine only ever slows a
    # round down, so the fastest round of each is the fairest pair to compare.
    bares, evaluations, replays = [], [], []
    for _ in range(args.rounds):
        bares.append(measure("bare", path, args.memory_limit))
        evaluations.append(measure("evaluate", path, args.memory_limit))
        replays.append(measure("replay", path, args.memory_limit))
    bare = min(bares, key=lambda r: r["seconds"])
    evaluation = min(evaluations, key=lambda r: r["seconds"])
    evaluation["peak_bytes"] = max(r["peak_bytes"] for r in evaluations)
    replay = min(replays, key=lambda r: r["seconds"])
    assert replay["totals"] == evaluation["totals"], (replay["totals"], evaluation["totals"])
    ratio = evaluation["seconds"] / bare["seconds"]
    gib = evaluation["peak_bytes"] / 2**30
    print(f"learners {args.learners:,}, events {args.events:,}, DuckDB memory_limit {args.memory_limit}")
    print(f"best of {args.rounds} interleaved rounds each")
    rounds = {kind: ", ".join(f"{r['seconds']:.2f}" for r in rs)
              for kind, rs in (("bare", bares), ("evaluate", evaluations), ("replay", replays))}
    print(f"bare aggregation (last activity, max progress): {bare['seconds']:.2f}s "
          f"(rounds: {rounds['bare']})")
    print(f"full campaign evaluation:                       {evaluation['seconds']:.2f}s "
          f"(rounds: {rounds['evaluate']}) {evaluation['steps']}")
    print(f"replay (events scanned, as of a past date):    {replay['seconds']:.2f}s "
          f"(rounds: {rounds['replay']}) {replay['steps']}")
    print(f"ratio evaluation / bare: {ratio:.2f} (goal <= 2); replay / bare: "
          f"{replay['seconds'] / bare['seconds']:.2f}")
    print(f"evaluation peak memory: {gib:.2f} GiB (goal <= 2 GiB); bare: "
          f"{bare['peak_bytes'] / 2**30:.2f} GiB")
    print(f"decisions (the same both ways): {evaluation['totals']}")
    rebuild = measure("rebuild", path, args.memory_limit)
    print(f"summaries rebuilt from all {args.events:,} events (a load of all of them at once "
          f"adds this to its sync): {rebuild['seconds']:.2f}s = "
          f"{rebuild['seconds'] / bare['seconds']:.2f} x bare")
    scale = f"{args.learners:,} learners, {args.events:,} events"
    record("3.ratio", ratio, 2, "<=", scale=scale, script="engine_bench.py",
           detail=f"bare {bare['seconds']:.2f} s, evaluation {evaluation['seconds']:.2f} s "
                  f"(from the loaders' summaries; replay scanning the events "
                  f"{replay['seconds']:.2f} s)")
    record("3.peak", gib, 2, "<=", unit="GiB", scale=scale, script="engine_bench.py")


if __name__ == "__main__":
    main()
