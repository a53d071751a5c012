"""One delivery per campaign at a time.

Two deliveries of the same campaign at once would read the same planned messages and send
them twice. DuckDB already keeps a second process from opening the warehouse for writing
while one has it open (a second relance process waits for the file, or says who holds it:
warehouse/holder.py), but a process opens and closes it between steps, threads of one
process share it, and a network file system may not honour DuckDB's lock; so each delivery
holds an exclusive lock on a file beside the warehouse
(`<warehouse>.<campaign>.delivery.lock`) for as long as it sends. The operating system
releases it when the process dies, even by SIGKILL, so a crash never leaves a stale lock.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from relance.channels.base import DeliveryError


class DeliveryBusy(DeliveryError):
    pass


def database_path(con: duckdb.DuckDBPyConnection) -> str | None:
    """The warehouse file of `con`; None in memory."""
    rows = con.execute("select path from duckdb_databases() "
                       "where database_name = current_database()").fetchall()
    return rows[0][0] if rows else None


def lock_path(con: duckdb.DuckDBPyConnection, campaign_id: str) -> Path | None:
    path = database_path(con)
    return Path(f"{path}.{campaign_id}.delivery.lock") if path else None


@contextmanager
def campaign_lock(con: duckdb.DuckDBPyConnection, campaign_id: str, *, wait_seconds: float = 0.0):
    """Hold the campaign's delivery lock; wait up to `wait_seconds` for another delivery to
    finish, then raise DeliveryBusy naming it. An in-memory warehouse belongs to one
    connection: nothing to lock."""
    path = lock_path(con, campaign_id)
    if path is None:
        yield
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise DeliveryBusy(_busy_message(path, campaign_id, wait_seconds)) from None
                time.sleep(0.1)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "since": datetime.now(timezone.utc)
                                  .isoformat(timespec="seconds")}).encode(), 0)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _busy_message(path: Path, campaign_id: str, waited: float) -> str:
    try:
        holder = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        holder = {}
    who = (f"process {holder['pid']} (since {holder['since']})" if holder.get("pid")
           else "another process")
    return (f"campaign {campaign_id!r} is already being delivered by {who}; nothing was sent "
            f"by this run{f' after waiting {waited:g} s' if waited else ''}. Its messages stay "
            "planned: run again once it has finished (or set RELANCE_LOCK_WAIT_SECONDS to wait).")
