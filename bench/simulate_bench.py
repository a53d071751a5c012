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

    python bench/simulate_bench.py --weeks 3 --statements 30

profiles instead (no plain runs, no RESULT): every SQL statement the season's connections
execute is counted and timed by the season's part it ran in (syncs, runs, deliveries,
checks on their own connection...; "other": migrations, the cohort's load, the clock's own
queries; the few queries built as relations, `con.sql`, are not counted), and the
statements that took longest in all are printed with how many times they ran. A 20-week demo season runs about 34,000 on its main connection
and 5,000 on the checks', most of them planned in more time than they take to run: its
seconds follow their number (ARCHITECTURE.md).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import threading
import time
from collections import defaultdict
from contextlib import contextmanager
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


class _Counted:
    """A DuckDB connection whose statements are counted and timed, by season part."""

    def __init__(self, con, profile: "_Profile"):
        object.__setattr__(self, "_con", con)
        object.__setattr__(self, "_profile", profile)

    def __getattr__(self, name):
        return getattr(self._con, name)

    @property
    def __class__(self):
        # passes for a DuckDB connection (warehouse.parsed: statements parsed once)
        return type(self._con)

    def __setattr__(self, name, value):
        setattr(self._con, name, value)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self._con.__exit__(*exc)

    def execute(self, sql, params=None):
        started = time.perf_counter()
        self._con.execute(sql) if params is None else self._con.execute(sql, params)
        self._profile.add(getattr(sql, "query", sql), time.perf_counter() - started)
        return self

    def cursor(self):
        return _Counted(self._con.cursor(), self._profile)


class _Profile:
    def __init__(self):
        self.local = threading.local()
        self.lock = threading.Lock()
        self.parts: dict[str, list] = defaultdict(lambda: [0, 0.0])
        self.statements: dict[tuple[str, str], list] = defaultdict(lambda: [0, 0.0])

    def part(self) -> str:
        # outside the parts: migrations, the cohort's load, the clock's own queries
        part = getattr(self.local, "part", "other")
        return part if threading.current_thread() is threading.main_thread() else \
            f"{part} (checks' conn.)"

    def add(self, sql: str, seconds: float) -> None:
        text = re.sub(r"\s+", " ", re.sub(r"--[^\n]*", "", sql)).strip()[:100]
        part = self.part()
        with self.lock:
            for entry in (self.parts[part], self.statements[(part, text)]):
                entry[0] += 1
                entry[1] += seconds

    def install(self) -> None:
        import duckdb
        from relance.workbench import simulate as sim
        connect, timed, profile = duckdb.connect, sim._timed, self
        duckdb.connect = lambda *a, **k: _Counted(connect(*a, **k), profile)

        @contextmanager
        def _timed(season, part):
            before = getattr(profile.local, "part", "other")
            profile.local.part = part
            try:
                with timed(season, part):
                    yield
            finally:
                profile.local.part = before
        sim._timed = _timed

    def show(self, top: int) -> None:
        print("SQL statements by part of the season (count, seconds):")
        for part, (n, seconds) in sorted(self.parts.items(), key=lambda x: -x[1][1]):
            print(f"  {part:<32} {n:7d} {seconds:8.1f} s")
        print(f"the {top} statements that took longest in all (seconds, times, ms each):")
        for (part, text), (n, seconds) in sorted(self.statements.items(),
                                                 key=lambda x: -x[1][1])[:top]:
            print(f"  {seconds:7.1f} s {n:6d} {1000 * seconds / n:7.1f}  {part:<22} {text}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--weeks", type=int, default=20)
    ap.add_argument("--statements", type=int, default=0, metavar="N",
                    help="profile: count and time the season's SQL statements, print the N "
                         "that took longest (no plain runs, no RESULT)")
    args = ap.parse_args()
    profile = _Profile() if args.statements else None
    if profile:
        profile.install()
    season = simulate(ROOT / "campaigns", scale=args.scale, weeks=args.weeks, start=START)
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
    if profile:
        profile.show(args.statements)
        return
    plain, plain_sent = plain_weeks(args.scale, args.weeks)
    print(f"plain: one run per campaign per week ({len(season.campaigns) * args.weeks} runs), "
          f"{plain_sent} messages sent: {plain:.1f} s")
    record("5.season", season.seconds, 60, "<=", unit="s",
           scale=f"demo scale {args.scale:g}, {args.weeks} weeks", script="simulate_bench.py",
           detail=f"plain weekly runs {plain:.1f} s")
    print(f"ratio season / plain weekly runs: {season.seconds / plain:.2f} "
          f"(goal: season <= 60 s at scale 1, 20 weeks: {'met' if season.seconds <= 60 else 'not met'})")


if __name__ == "__main__":
    main()
