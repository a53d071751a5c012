"""What each benchmark measured against its goal, one JSON line per figure, for
bench/summary.py to put in one table at the end of `make bench`.

Each bench script calls `record(...)` for every goal it measures; the line is appended to
bench/results/results.jsonl (or $RELANCE_BENCH_RESULTS; the folder is not committed) and
printed as `RESULT {...}` on the script's output, so a run's figures can also be read
from its log.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ROOT / "bench" / "results" / "results.jsonl"


def results_file() -> Path:
    return Path(os.environ.get("RELANCE_BENCH_RESULTS") or DEFAULT)


def record(goal: str, measured: float, limit: float, op: str, *, unit: str = "",
           scale: str = "", script: str = "", detail: str = "") -> dict:
    """One figure against its goal: `measured op limit` (op is "<=" or ">="). `goal` is
    the key bench/summary.py knows it by (e.g. "3.ratio"); `scale` says at what size it
    was measured (a goal holds at its own size only)."""
    if op not in ("<=", ">="):
        raise ValueError(f"op must be '<=' or '>=', not {op!r}")
    met = measured <= limit if op == "<=" else measured >= limit
    line = {"goal": goal, "measured": round(float(measured), 4), "limit": limit, "op": op,
            "met": met, "unit": unit, "scale": scale, "script": script, "detail": detail,
            "at": time.strftime("%Y-%m-%dT%H:%M:%S")}
    path = results_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(line, ensure_ascii=False) + "\n")
    print("RESULT " + json.dumps(line, ensure_ascii=False), flush=True)
    return line


def read(path: Path | None = None) -> list[dict]:
    path = path or results_file()
    if not path.exists():
        return []
    rows = []
    for n, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if text.strip():
            try:
                rows.append(json.loads(text))
            except json.JSONDecodeError as exc:
                raise SystemExit(f"{path}:{n}: not a result line ({exc}); delete the file "
                                 "and run the benchmarks again") from None
    return rows
