"""Digest benchmark: what the managers' digests add to a campaign evaluation, same run.

    python bench/digest_bench.py [--learners 200000] [--events 5000000] [--team 10]

Builds (once, cached in bench/out/) the engine benchmark's warehouse at this size, gives
every learner a manager (one per `--team` learners, so learners/team managers), then
evaluates the engine benchmark's campaign with and without a `digest:` section, in the
same process, alternately, and prints the digest step's time against the whole
evaluation's (the ratio is what to compare; the machines here are noisy).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.engine_bench import AS_OF, CAMPAIGN, generate  # noqa: E402

DIGEST = """
digest:
  every: monday 08:00
  groups: {on_track: [active], stalled: [not_started, at_risk, dormant], finished: [completed]}
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--learners", type=int, default=200_000)
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--team", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    import warehouse
    from relance import engine
    from relance.campaign.loader import load

    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"digest-{args.learners}-{args.events}.duckdb"
    generate(path, args.learners, args.events)
    con = warehouse.connect(path)
    con.execute("update learners set manager_email = 'm' || (hash(learner_id) % ?) || "
                "'@example.org'", [max(1, args.learners // args.team)]).fetchall()
    folder = Path(tempfile.mkdtemp())
    (folder / "plain.yaml").write_text(CAMPAIGN.replace("id: bench", "id: plain"), "utf-8")
    (folder / "digest.yaml").write_text(CAMPAIGN.replace("id: bench", "id: digest") + DIGEST,
                                        "utf-8")
    plain = load(folder / "plain.yaml", check_templates=False)
    with_digest = load(folder / "digest.yaml", check_templates=False)
    best: dict[str, float] = {}
    step = float("inf")
    for _ in range(args.rounds):
        for name, loaded in (("plain", plain), ("digest", with_digest)):
            t0 = time.perf_counter()
            ev = engine.evaluate(con, loaded, AS_OF)
            best[name] = min(best.get(name, float("inf")), time.perf_counter() - t0)
            if name == "digest":
                step = min(step, ev.timings["digests"])
    managers = con.execute("select count(*), sum(n_listed) from eval_digests").fetchall()[0]
    print(f"{args.learners:,} learners, {args.events:,} events, {managers[0]:,} managers "
          f"({managers[1]:,} learners listed); best of {args.rounds}:")
    print(f"  evaluation without digest  {best['plain']:.2f}s")
    print(f"  evaluation with digest     {best['digest']:.2f}s")
    print(f"  digest step                {step:.2f}s = {step / best['plain']:.2f}x the "
          "evaluation without it")


if __name__ == "__main__":
    main()
