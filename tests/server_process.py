"""A real server the tests run as a process of their own on loopback (Dovecot, PostgreSQL):
started from a command, waited for until its port answers, stopped by its PID, the folder
it was given removed once it is stopped. What each server needs besides (its
configuration, its users) stays with its fixtures (imap_fixtures.py, pg_fixtures.py)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable


def free_port() -> int:
    """A port no one listens on now, on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ServerProcess:
    """A started server: `pid` is the server's own (the one to signal), `runner` the
    process started, while it waits for the server (None: the server went to the
    background); `folder`, removed once the server is stopped."""
    name: str
    pid: int
    runner: subprocess.Popen | None = None
    folder: Path | None = None
    stop_signal: int = signal.SIGTERM
    grace: float = 5.0               # seconds it has to stop before it is killed

    def stop(self) -> None:
        try:
            os.kill(self.pid, self.stop_signal)
            if not self._gone(self.grace):
                os.kill(self.pid, signal.SIGKILL)
                self._gone(10.0)
        except ProcessLookupError:
            pass
        finally:
            if self.folder is not None:
                shutil.rmtree(self.folder, ignore_errors=True)

    def _gone(self, timeout: float) -> bool:
        if self.runner is not None:
            try:
                self.runner.wait(timeout=timeout)
                return True
            except subprocess.TimeoutExpired:
                return False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            os.kill(self.pid, 0)             # ProcessLookupError once it is gone
            time.sleep(0.05)
        return False


def _tail(logs: list[Path]) -> str:
    return "\n".join(log.read_text(errors="replace")[-2000:] for log in logs if log.exists())


def start_server(name: str, command: list[str], *, port: int, output: Path, pidfile: Path,
                 logs: tuple[Path, ...] = (), answers: Callable[[socket.socket], bool] | None = None,
                 folder: Path | None = None, stop_signal: int = signal.SIGTERM,
                 grace: float = 5.0, timeout: float = 30.0) -> ServerProcess:
    """Runs `command` (its output to the file `output`: a pipe would never end), and waits
    until the server's `pidfile` names it and its `port` on 127.0.0.1 takes a connection
    (`answers`: and says what the server says first). A command that ends with status 0
    has put the server in the background (a daemon); any other end is a failure. Errors
    quote the end of `output` and of `logs`; a server that does not start, or does not
    answer in `timeout` seconds, is stopped and `folder` removed."""
    with output.open("wb") as out:
        runner = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out,
                                  stderr=subprocess.STDOUT)
    deadline, text = time.monotonic() + timeout, ""
    while time.monotonic() < deadline:
        if runner.poll():
            why = f"{name} did not start (status {runner.returncode}): {_tail([output, *logs])}"
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)
            raise RuntimeError(why)
        text = pidfile.read_text().strip() if pidfile.exists() else ""
        if text:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                    if answers is None or answers(s):
                        break
            except OSError:
                pass
        time.sleep(0.05)
    else:
        why = f"{name} did not answer on port {port} within {timeout:g} s: {_tail([output, *logs])}"
        if text:
            _started(name, text, runner, folder, stop_signal, grace).stop()
        if runner.poll() is None:
            runner.kill()
            runner.wait()
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
        raise RuntimeError(why)
    return _started(name, text, runner, folder, stop_signal, grace)


def _started(name, pidfile_text, runner, folder, stop_signal, grace) -> ServerProcess:
    # the runner is waited for while it runs (the server, or `runuser` waiting for it)
    return ServerProcess(name, int(pidfile_text.split()[0]),
                         runner if runner.poll() is None else None, folder, stop_signal, grace)
