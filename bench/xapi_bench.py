"""xAPI connector benchmark: a sync from a real Ralph LRS against bare paging, same run.

    python bench/xapi_bench.py [--statements 20000] [--page 500]

Starts Ralph (from .venv-ralph, built from requirements-ralph.lock if missing) over a
file-system store seeded with N statements (200 learners, 5 courses), then, alternately
three times each:
  1. bare: GET /xAPI/statements page by page to the end (`more` links), JSON decoded,
     nothing kept;
  2. sync: the connector's full sync into a fresh in-memory warehouse (paging, staging,
     mapping in SQL, loading with checks and quarantine).
Prints statements per second of each (best round) and their ratio. Goal: the sync costs
at most twice the bare paging, i.e. the LRS, not relance, sets the pace.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from bench.results import record  # noqa: E402

import warehouse  # noqa: E402
from connectors import sync  # noqa: E402
from connectors.xapi import XapiConnector, XapiSource  # noqa: E402
from tests.lms_fixtures import (COURSE_IRI, RALPH_PASSWORD, RALPH_USER, T0,  # noqa: E402
                                start_ralph, statement)

VERBS = ["experienced", "completed", "progressed", "passed", "failed", "commented"]


def statements(n: int) -> list[dict]:
    out = []
    for i in range(n):
        learner = f"learner{i % 200:03d}@example.org"
        verb = VERBS[i % len(VERBS)]
        course = f"{COURSE_IRI}-{i % 5}"
        out.append(statement(i, learner, verb, at=T0 + timedelta(seconds=37 * i), course=course,
                             obj=f"{course}/activity/{i % 40}",
                             progress=(i % 100) if verb == "progressed" else None))
    return out


def bare(url: str, page: int) -> int:
    n = 0
    with httpx.Client(base_url=url, auth=(RALPH_USER, RALPH_PASSWORD), timeout=60,
                      headers={"X-Experience-API-Version": "1.0.3"}) as client:
        next_url: str | None = f"/xAPI/statements?limit={page}"
        while next_url:
            data = client.get(next_url).json()
            n += len(data["statements"])
            next_url = data.get("more") or None
    return n


def synced(url: str, page: int) -> int:
    os.environ["BENCH_LRS_USER"], os.environ["BENCH_LRS_PASSWORD"] = RALPH_USER, RALPH_PASSWORD
    connector = XapiConnector("bench", XapiSource.model_validate({
        "url": url, "username": {"env": "BENCH_LRS_USER"},
        "password": {"env": "BENCH_LRS_PASSWORD"}, "page_size": page,
        "cursor_field": "timestamp", "filter_on_server": False}))
    con = warehouse.connect(":memory:")
    try:
        sync(con, connector)
        return con.execute("select count(*) from stg_xapi__statements").fetchall()[0][0]
    finally:
        con.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--statements", type=int, default=20_000)
    parser.add_argument("--page", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="relance-xapi-bench-") as tmp:
        print(f"seeding Ralph with {args.statements:,} statements ...", flush=True)
        ralph = start_ralph(Path(tmp), statements(args.statements))
        try:
            times: dict[str, list[float]] = {"bare": [], "sync": []}
            for _ in range(3):
                for name, run in (("bare", bare), ("sync", synced)):
                    start = time.perf_counter()
                    n = run(ralph.url, args.page)
                    times[name].append(time.perf_counter() - start)
                    assert n == args.statements, (name, n)
        finally:
            ralph.stop()
    best = {k: min(v) for k, v in times.items()}
    for name in ("bare", "sync"):
        print(f"{name:>5}: {best[name]:6.2f} s  {args.statements / best[name]:9,.0f} statements/s")
    print(f"ratio sync / bare paging: {best['sync'] / best['bare']:.2f} (goal <= 2)")
    record("xapi", best["sync"] / best["bare"], 2, "<=",
           scale=f"{args.statements:,} statements", script="xapi_bench.py")


if __name__ == "__main__":
    main()
