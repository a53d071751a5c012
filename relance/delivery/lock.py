"""One delivery per campaign at a time.

Two deliveries of the same campaign at once would read the same planned messages and send
them twice. DuckDB already keeps a second process from opening the warehouse for writing
while one has it open (a second relance process waits for the file, or says who holds it:
warehouse/holder.py), but a process opens and closes it between steps, threads of one
process share it, and a network file system may not honour DuckDB's lock; so each delivery
holds an exclusive lock on a file beside the warehouse
(`<warehouse>.<campaign>.delivery.lock`) for as long as it sends. The operating system
releases it when the process dies, even by SIGKILL, so a crash never leaves a stale lock.

On the shared warehouse (warehouse/shared.py), where the processes run on several machines,
the lock is a PostgreSQL advisory lock instead, held by a connection of its own for as long
as the delivery runs (`advisory_lock`): PostgreSQL releases it when that connection ends —
at once when the process dies, and when its machine dies, as soon as the server's TCP
keepalives find the connection dead (docs/scheduling.md says how to set them). A campaign's
run (evaluate, plan, deliver) holds another such lock (`run_lock`), so two runs of one
campaign never overlap, on any number of machines.
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
    shared_dsn = getattr(con, "dsn", None)          # warehouse/shared.py's connection
    if shared_dsn is not None:
        with advisory_lock(shared_dsn, "delivery", campaign_id, wait_seconds=wait_seconds):
            yield
        return
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


@contextmanager
def advisory_lock(dsn: str, kind: str, campaign_id: str, *, wait_seconds: float = 0.0):
    """Hold PostgreSQL's advisory lock (relance, `kind` of `campaign_id`) on a connection of
    its own; wait up to `wait_seconds` for its holder, then raise DeliveryBusy naming it
    (its host and process, from the holder's application_name)."""
    import socket

    import psycopg

    from warehouse.shared import LOCK_CLASS, lock_key

    key = lock_key(kind, campaign_id)
    me = f"relance {kind} {campaign_id} pid {os.getpid()} on {socket.gethostname()}"[:63]
    lock = psycopg.connect(dsn, autocommit=True, application_name=me)
    try:
        deadline = time.monotonic() + wait_seconds
        while not lock.execute("select pg_try_advisory_lock(%s, %s)",
                               [LOCK_CLASS, key]).fetchone()[0]:
            if time.monotonic() >= deadline:
                holder = lock.execute(
                    "select a.application_name, a.backend_start from pg_locks l "
                    "join pg_stat_activity a using (pid) where l.locktype = 'advisory' "
                    "and l.classid = %s::oid and l.objid = %s::oid and l.granted",
                    [LOCK_CLASS & 0xFFFFFFFF, key & 0xFFFFFFFF]).fetchone()
                who = (f"{holder[0]!r} (connected since {holder[1]:%Y-%m-%d %H:%M:%S %Z})"
                       if holder else "another process")
                action = "delivered" if kind == "delivery" else "run"
                raise DeliveryBusy(
                    f"campaign {campaign_id!r} is already being {action} by {who}; nothing "
                    f"was done by this one{f' after waiting {wait_seconds:g} s' if wait_seconds else ''}. "
                    "Its messages stay planned: run again once it has finished (or set "
                    "RELANCE_LOCK_WAIT_SECONDS to wait).")
            time.sleep(0.2)
        try:
            yield
        finally:
            if not lock.closed:
                lock.execute("select pg_advisory_unlock(%s, %s)", [LOCK_CLASS, key])
    finally:
        lock.close()


@contextmanager
def run_lock(con, campaign_id: str, *, wait_seconds: float = 0.0):
    """A campaign's whole run, on the shared warehouse: two runs of one campaign never
    overlap, whichever machines start them. On a DuckDB file nothing to do: one process
    writes it at a time, and each delivery holds its campaign's lock (campaign_lock)."""
    from warehouse import shared
    if isinstance(con, (str, os.PathLike)):         # the warehouse setting (a flow's)
        shared_dsn = shared.dsn(con) if shared.is_shared(con) else None
    else:                                           # a connection: warehouse/shared.py's has one
        shared_dsn = getattr(con, "dsn", None)
    if shared_dsn is None:
        yield
        return
    with advisory_lock(shared_dsn, "run", campaign_id, wait_seconds=wait_seconds):
        yield
