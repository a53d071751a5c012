"""A spool: what the receiver could not write while a delivery held the warehouse (an
unsubscribe, a "was this helpful?" answer), one JSON object a line, in a file beside the
warehouse (`<warehouse>.<kind>.jsonl`), read by the next delivery before it sends anything.

Taking a spool renames it first, so new items go to a fresh one meanwhile and two readers
never take the same file; a file taken is removed only once all its items were handed
over, so a spool left half-read by a crash is read again (its readers record idempotently).
"""

from __future__ import annotations

import json
import os
import time
from datetime import datetime
from pathlib import Path
from typing import Iterator

from relance import clock


def spool_file(warehouse_path: str | Path, kind: str) -> Path:
    return Path(f"{warehouse_path}.{kind}.jsonl")


def append(path: Path, item: dict) -> None:
    """`item`, with the clock's now as its `at` (when it happened, not when it is read)."""
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps({**item, "at": clock.now().isoformat()}) + "\n")


def take(path: Path) -> Iterator[tuple[dict, datetime | None]]:
    """Each item of the spool `path` and of any taken before and left (a crash), in the
    order written, with its `at`."""
    if path.exists():
        try:
            path.rename(path.parent / f"{path.name}.{os.getpid()}-{int(time.time() * 1000)}.importing")
        except FileNotFoundError:
            pass      # another delivery took it first
    for taken in sorted(path.parent.glob(f"{path.name}.*.importing")):
        for line in taken.read_text(encoding="utf-8").splitlines():
            if line.strip():
                item = json.loads(line)
                yield item, datetime.fromisoformat(item["at"]) if item.get("at") else None
        taken.unlink(missing_ok=True)
