"""Waiting for the warehouse file, and saying who holds it.

DuckDB lets one process open a file for writing, or any number of processes for reading,
never both; the process refused gets an IOException that names the holder's PID. relance
waits for the file (`connect(wait_seconds=)`, polling with a short backoff), then raises
`WarehouseBusy`, whose message names the holder, what it runs, and what to do.

What the holder runs comes from a note each relance process writes beside the warehouse
when it opens it for writing (`<warehouse>.holder.json`: pid, command, since). It is not
removed on close: a process's connections share the file, so closing one does not release
it, and a process killed by SIGKILL removes nothing. So the note never decides anything:
it is believed only when DuckDB names the same PID and, where /proc tells, that process
still runs the command the note records. A stale note can neither block anyone nor name the
wrong process; without a note that holds, the PID's own command line is shown (an
analyst's `duckdb -readonly` session holds the file too).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, TypeVar

import duckdb

T = TypeVar("T")

# The first retry comes quickly (a step of another process often ends within a second);
# later ones at most a second apart, so a waiting process starts soon after the file is free.
FIRST_DELAY, MAX_DELAY = 0.05, 1.0


class WarehouseBusy(RuntimeError):
    """Another process holds the warehouse file."""

    def __init__(self, message: str, pid: int | None = None):   # one argument: picklable
        super().__init__(message)
        self.pid = pid


def note_path(path: str | Path) -> Path:
    return Path(f"{path}.holder.json")


def wait_for(path: str | Path, open_file: Callable[[], T], wait_seconds: float,
             read_only: bool) -> T:
    """`open_file()`, tried again while another process holds `path`, for up to
    `wait_seconds`; then WarehouseBusy. Nothing is held while waiting."""
    deadline = time.monotonic() + wait_seconds
    delay = FIRST_DELAY
    while True:
        try:
            return open_file()
        except duckdb.IOException as exc:
            if "Could not set lock on file" not in str(exc):
                raise                      # not a conflict: a missing folder, permissions
            left = deadline - time.monotonic()
            if left <= 0:
                raise _busy(path, str(exc), wait_seconds, read_only) from None
            time.sleep(min(delay, left))
            delay = min(delay * 2, MAX_DELAY)


def write_note(path: str | Path) -> None:
    """Record this process as the warehouse's holder (called once it has the file for
    writing, so no other process writes the note meanwhile)."""
    note = note_path(path)
    argv = _own_argv()
    if _read_note(path).get("pid") == os.getpid():
        # Already ours: another connection of this process (a flow's step inside a command
        # that holds the file), or a reopening no other process came between; "since"
        # stays when this process took the file.
        return
    tmp = note.with_name(f"{note.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps({
            "pid": os.getpid(), "argv": argv, "command": _shown(argv),
            "since": datetime.now(timezone.utc).isoformat(timespec="seconds")}), encoding="utf-8")
        os.replace(tmp, note)              # a reader sees the old note or the new, never half
    except OSError:
        pass                               # a read-only folder: the message shows the PID only


def _busy(path: str | Path, error: str, waited: float, read_only: bool) -> WarehouseBusy:
    found = re.search(r"\(PID (\d+)\)", error)
    pid = int(found.group(1)) if found else None
    who = _holder(path, pid) if pid else "another process"
    # DuckDB offers read-only access when the holder only reads
    reading = " (reading it)" if "open this database in read-only mode" in error else ""
    mode = "for reading" if read_only else "for writing"
    after = f" after waiting {waited:g} s" if waited else ""
    return WarehouseBusy(
        f"the warehouse {path} is in use by {who}{reading}: could not open it {mode}{after}. "
        "Run again once that process has finished, or set RELANCE_LOCK_WAIT_SECONDS (e.g. "
        "RELANCE_LOCK_WAIT_SECONDS=600) to wait for it.", pid)


def _holder(path: str | Path, pid: int) -> str:
    running = _argv_of(pid)
    note = _read_note(path)
    if (note.get("pid") == pid
            and (running is None or running == note.get("argv"))):
        return f"process {pid} (`{note.get('command')}`, since {note.get('since')})"
    return f"process {pid} (`{_shown(running)}`)" if running else f"process {pid}"


def _read_note(path: str | Path) -> dict:
    try:
        note = json.loads(note_path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return note if isinstance(note, dict) else {}


def _own_argv() -> list[str]:
    return list(getattr(sys, "orig_argv", None) or [sys.executable, *sys.argv])


def _argv_of(pid: int) -> list[str] | None:
    """The command line of a running process, where /proc tells (Linux); else None."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0")[:-1]] or None


def _shown(argv: list[str]) -> str:
    """A command line as a person typed it: `relance deliver --now …` rather than the
    interpreter's path and the console script's."""
    if len(argv) > 1 and Path(argv[0]).name.startswith("python"):
        argv = ["python", *argv[1:]] if argv[1].startswith("-") else argv[1:]
    # on one line: a `python -c` script's newlines would break the error line
    shown = " ".join(shlex.join([Path(argv[0]).name, *argv[1:]]).split())
    return shown if len(shown) <= 160 else shown[:159] + "…"
