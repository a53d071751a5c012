"""A real PostgreSQL 15 (Debian's package) for the shared-warehouse tests: its own data folder,
a free port on loopback, started once per test session and stopped by its PID.

PostgreSQL refuses to run as root: as root (CI, this machine) the server runs as the
`postgres` user the Debian package creates, in a folder it owns.

`fresh_database()` gives each test a database of its own, copied from a template that the
migrations were applied to once (CREATE DATABASE ... TEMPLATE: ~0.1 s instead of migrating
again)."""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.server_process import ServerProcess, free_port, start_server

PG_BIN = Path("/usr/lib/postgresql/15/bin")
TEMPLATE = "relance_template"


def shared_backend_available() -> str | None:
    """Why the shared backend cannot run here (None: it can)."""
    if not (PG_BIN / "postgres").exists():
        return f"PostgreSQL 15 is not installed at {PG_BIN} (make postgresql, or apt-get install postgresql-15)"
    try:
        from warehouse.shared import extension_file
        extension_file("postgres_scanner")
    except Exception as exc:             # the DuckDB 1.5.5 overlay is not on the path
        return str(exc)
    return None


@dataclass
class PostgresServer:
    folder: Path
    port: int
    process: ServerProcess
    _names = itertools.count(1)

    def url(self, dbname: str) -> str:
        return f"postgres:host=127.0.0.1 port={self.port} dbname={dbname} user=postgres"

    def psql(self, sql: str, dbname: str = "postgres") -> None:
        import psycopg
        with psycopg.connect(host="127.0.0.1", port=self.port, dbname=dbname, user="postgres",
                             autocommit=True) as con:
            con.execute(sql)

    def fresh_database(self, prefix: str = "t") -> str:
        """A new database with the whole schema (from the migrated template); its URL."""
        name = f"{prefix}_{os.getpid()}_{next(self._names)}"
        self.psql(f"create database {name} template {TEMPLATE}")
        return self.url(name)

    def copy_database(self, url: str, prefix: str = "c") -> str:
        """A copy of the database at `url` (nobody may be connected to it meanwhile), as
        a test copies a warehouse file to change it without touching the original."""
        source = dict(part.split("=", 1) for part in url.removeprefix("postgres:").split())["dbname"]
        name = f"{prefix}_{os.getpid()}_{next(self._names)}"
        self.psql(f"create database {name} template {source}")
        return self.url(name)

    def empty_database(self, prefix: str = "e") -> str:
        name = f"{prefix}_{os.getpid()}_{next(self._names)}"
        self.psql(f"create database {name}")
        return self.url(name)


def start_postgres(folder: Path) -> PostgresServer:
    folder.mkdir(parents=True, exist_ok=True)
    run_as: list[str] = []
    if os.geteuid() == 0:
        # initdb and postgres refuse root: run them as the Debian package's user
        pwd.getpwnam("postgres")
        shutil.chown(folder, "postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
    data = folder / "data"
    subprocess.run(run_as + [str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust",
                             "-U", "postgres", "--no-sync"],
                   check=True, capture_output=True)
    port = free_port()
    # postgres stays in the foreground (as root, runuser's child): its own PID is the data
    # folder's postmaster.pid's, the one to stop (SIGINT: a fast shutdown)
    process = start_server("PostgreSQL", run_as + [
        str(PG_BIN / "postgres"), "-D", str(data), "-p", str(port), "-h", "127.0.0.1",
        "-k", str(folder), "-c", "fsync=off", "-c", "max_connections=200"],
        port=port, output=folder / "postgres.log", pidfile=data / "postmaster.pid",
        folder=folder, stop_signal=signal.SIGINT, grace=30)
    server = PostgresServer(folder, port, process)
    _ready(server)
    return server


def _ready(server: PostgresServer) -> None:
    import psycopg
    deadline = time.monotonic() + 30
    while True:
        try:
            server.psql("select 1")
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def stop_postgres(server: PostgresServer) -> None:
    server.process.stop()


def make_template(server: PostgresServer) -> None:
    import warehouse
    server.psql(f"create database {TEMPLATE}")
    warehouse.connect(server.url(TEMPLATE)).close()


@pytest.fixture(scope="session")
def postgres_server():
    why = shared_backend_available()
    if why:
        # `make test` sets RELANCE_REQUIRE_SHARED: there, not running them is a failure
        (pytest.fail if os.environ.get("RELANCE_REQUIRE_SHARED") else pytest.skip)(
            f"the shared warehouse cannot run here: {why}")
    folder = Path(tempfile.mkdtemp(prefix="relance-pg-"))
    server = start_postgres(folder)
    try:
        make_template(server)
        yield server
    finally:
        stop_postgres(server)
        shutil.rmtree(folder, ignore_errors=True)
