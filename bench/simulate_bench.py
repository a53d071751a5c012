"""Season simulator benchmark: `relance simulate` against one plain run per week, same run.

    python bench/simulate_bench.py [--scale 1] [--weeks 20]

Plays a season of the repo's campaigns on the demo cohort (2,000 learners at scale 1:
daily syncs, every scheduled run, hourly deliveries, invariants at every tick), then, on
the whole export loaded once, runs each campaign once a week (`run_campaign`, Monday
09:00 Paris, no checks, no syncs) over the same weeks, and prints both wall times and
their ratio: what the simulator's clock, daily syncs, extra deliveries and checks cost
over the plain weekly job (the ratio is what to compare; the machines here are noisy),
and where the season's seconds went (syncs, runs, hourly deliveries, checks...).
The issue's goal: a 20-week season at scale 1 in at most 60 s on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

from bench.results import record  # noqa: E402
import warehouse  # noqa: E402
from connectors import open_source, sync  # noqa: E402
from relance import demo  # noqa: E402
from relance.campaign.loader import load_all  # noqa: E402
from relance.channels import for_campaign  # noqa: E402
from relance.runs.steps import run_campaign  # noqa: E402
from relance.workbench.simulate import PARTS, season_start, simulate  # noqa: E402

START = datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc)     # a Monday, 09:00 Paris


def plain_weeks(scale: float, weeks: int) -> tuple[float, int]:
    """One run of each campaign per week on the whole export: (seconds, messages sent)."""
    campaigns = load_all(ROOT / "campaigns")
    start = season_start(START)
    with tempfile.TemporaryDirectory(prefix="relance-bench-") as tmp:
        mapping = demo.generate(Path(tmp) / "export", as_of=start + timedelta(weeks=weeks),
                                starts=start, scale=scale)
        con = warehouse.connect(Path(tmp) / "plain.duckdb")
        sync(con, open_source(str(mapping)), now=start + timedelta(weeks=weeks))
        channels = {c.id: for_campaign(c, Path(tmp) / "outbox") for c in campaigns}
        t0 = time.perf_counter()
        sent = 0
        for week in range(weeks):
            as_of = START + timedelta(weeks=week)
            for c in campaigns:
                sent += run_campaign(con, c, as_of=as_of, channel=channels[c.id]).sent
        seconds = time.perf_counter() - t0
        con.close()
    return seconds, sent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--weeks", type=int, default=20)
    args = ap.parse_args()
    season = simulate(ROOT / "campaigns", scale=args.scale, weeks=args.weeks, start=START)
    plain, plain_sent = plain_weeks(args.scale, args.weeks)
    sent = season.status.get("sent", 0)
    print(f"season: {season.learners} learners, {len(season.campaigns)} campaigns, "
          f"{args.weeks} weeks: {season.ticks} ticks ({season.syncs} syncs, "
          f"{season.syncs_played} of them played, {season.runs} runs, "
          f"{season.deliveries} deliveries), {sent} messages sent, "
          f"{sum(season.violations.values())} violations: {season.seconds:.1f} s")
    print("where the season's seconds went:")
    for part, what in PARTS.items():
        seconds = season.timings.get(part, 0.0)
        print(f"  {part:<11} {seconds:7.1f} s  {100 * seconds / season.seconds:4.0f}%  {what}")
    print("  (*: beside the next ticks, on a second connection: their seconds overlap the others')")
    print(f"plain: one run per campaign per week ({len(season.campaigns) * args.weeks} runs), "
          f"{plain_sent} messages sent: {plain:.1f} s")
    record("5.season", season.seconds, 60, "<=", unit="s",
           scale=f"demo scale {args.scale:g}, {args.weeks} weeks", script="simulate_bench.py",
           detail=f"plain weekly runs {plain:.1f} s")
    print(f"ratio season / plain weekly runs: {season.seconds / plain:.2f} "
          f"(goal: season <= 60 s at scale 1, 20 weeks: {'met' if season.seconds <= 60 else 'not met'})")


if __name__ == "__main__":
    main()
