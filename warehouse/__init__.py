"""The DuckDB warehouse: one file, schema built by named, ordered migrations.

`connect()` is the only way in: it opens the file (waiting for it while another process
holds it, if asked: `holder.py`), applies any migration not yet
recorded in `schema_migrations` (each in a transaction with its record), and refreshes
the analyst views in `views/`.
"""

from __future__ import annotations

import functools
import hashlib
import re
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import duckdb

from warehouse import shared
from warehouse.holder import WarehouseBusy, wait_for, write_note  # noqa: F401  (callers catch it)

HERE = Path(__file__).parent
STORAGE_VERSION = "v1.4.0"
MIGRATIONS = HERE / "migrations"
VIEWS = HERE / "views"


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()[:16]


def migrations() -> list[Migration]:
    found = []
    for path in sorted(MIGRATIONS.glob("*.sql")):
        number, _, name = path.stem.partition("_")
        found.append(Migration(int(number), name, path))
    return found


def connect(path: str | Path = ":memory:", *, read_only: bool = False,
            memory_limit: str | None = None,
            wait_seconds: float = 0.0) -> duckdb.DuckDBPyConnection:
    """Open (creating if needed) the warehouse at `path`, migrated to the latest schema.

    While another process holds the file, wait up to `wait_seconds` for it, then raise
    WarehouseBusy naming that process.

    `path` may also name a shared warehouse, `postgres:<libpq connection string>`
    (RELANCE_WAREHOUSE or the settings file): every table in PostgreSQL, which many
    machines share (warehouse/shared.py)."""
    if shared.is_shared(path):
        return shared.open_shared(path, read_only=read_only, memory_limit=memory_limit)
    # Written in a storage format the DuckDB CLI on PyPI (duckdb-cli 1.5) can open, so an
    # analyst can `duckdb -readonly relance.duckdb`; it only applies when the file is created.
    config = {"storage_compatibility_version": STORAGE_VERSION}
    in_file = str(path) != ":memory:"
    if in_file:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    con = wait_for(path, lambda: duckdb.connect(str(path), read_only=read_only, config=config),
                   wait_seconds, read_only)
    if in_file and not read_only:
        write_note(path)
    # Timestamps are stored as timestamptz and shown in UTC; each learner's own timezone is
    # applied explicitly where it matters (quiet hours, send windows, weeks).
    con.execute("set TimeZone = 'UTC'")
    if memory_limit:
        # A setting, not a connect() option: DuckDB refuses a second connection to the same
        # file in one process with a different configuration.
        con.execute("set memory_limit = ?", [memory_limit])
    if not read_only:
        migrate(con)
    return con


# How much log a scratch warehouse keeps before DuckDB checkpoints it (as_scratch).
SCRATCH_CHECKPOINT = "4GB"


def as_scratch(con: duckdb.DuckDBPyConnection) -> None:
    """A scratch warehouse (a backtest's, a simulated season's: thrown away after use, or
    kept to look at) is checkpointed when it closes, not every 16 MB of log as DuckDB does
    by default: those checkpoints rewrote its growing tables (decisions, messages) again
    and again, a seventh of a backtest's replay time on OULAD 2013J."""
    con.execute(f"set checkpoint_threshold = '{SCRATCH_CHECKPOINT}'")


def pending(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The migrations a warehouse has not had yet (one opened read-only is not migrated: a
    file an older relance wrote may lack the tables and views this version reads)."""
    if not con.execute("select count(*) from duckdb_tables() "
                       "where table_name = 'schema_migrations'").fetchall()[0][0]:
        return [m.path.stem for m in migrations()]
    applied = {v for (v,) in con.execute("select version from schema_migrations").fetchall()}
    return [m.path.stem for m in migrations() if m.version not in applied]


def migrate(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Apply pending migrations; return the names applied."""
    con.execute(
        "create table if not exists schema_migrations ("
        " version integer primary key, name varchar not null,"
        " checksum varchar not null, applied_at timestamptz not null default current_timestamp)"
    )
    applied = dict(con.execute("select version, checksum from schema_migrations").fetchall())
    done = []
    for m in migrations():
        if m.version in applied:
            if applied[m.version] != m.checksum:
                raise MigrationError(
                    f"warehouse/migrations/{m.path.name} was edited after it was applied "
                    f"(checksum {applied[m.version]} in the warehouse, {m.checksum} on disk): "
                    "add a new migration instead of changing an applied one"
                )
            continue
        with transaction(con):
            con.execute(m.sql)
            con.execute(
                "insert into schema_migrations (version, name, checksum) values (?, ?, ?)",
                [m.version, m.name, m.checksum],
            )
        done.append(m.name)
    refresh_views(con, force=bool(done))
    return done


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """All or nothing: the block's writes are committed when it ends, rolled back if it
    raises."""
    con.execute("begin transaction")
    try:
        yield con
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise


def refresh_views(con: duckdb.DuckDBPyConnection, *, force: bool = False) -> None:
    """Recreate the macros and views when their SQL changed since they were last made in
    this warehouse (or a migration just ran, or a view is missing).

    Views and macros hold no data, so they follow their files the way dbt rebuilds view
    models: editing one needs no migration. Rebuilding all of them took 0.1 to 0.3 s of
    every command that opens the warehouse; the fingerprint of their SQL is kept in
    warehouse_meta, so that is done once per change."""
    scripts = [(HERE / "macros.sql").read_text(encoding="utf-8")]
    views = sorted(VIEWS.glob("*.sql"))
    scripts += [path.read_text(encoding="utf-8") for path in views]
    stamp = hashlib.sha256("\0".join(scripts).encode()).hexdigest()[:16]
    if not force and meta(con, "views_sha") == stamp:
        present = {r[0] for r in con.execute(
            "select view_name from duckdb_views() where not internal and database_name = "
            "current_database() and schema_name = 'main'").fetchall()}
        if {path.stem for path in views} <= present:
            return
    execute_script(con, scripts[0])
    for sql in scripts[1:]:
        con.execute(sql)
    set_meta(con, "views_sha", stamp)


def meta(con: duckdb.DuckDBPyConnection, key: str) -> str | None:
    rows = con.execute("select value from warehouse_meta where key = ?", [key]).fetchall()
    return rows[0][0] if rows else None


def set_meta(con: duckdb.DuckDBPyConnection, key: str, value: str) -> None:
    con.execute("insert or replace into warehouse_meta values (?, ?)", [key, value]).fetchall()


def statements(sql: str) -> list[str]:
    """Split SQL into statements at each `;` outside string literals, quoted names and
    comments. Comments stay with the statement that follows them."""
    return [s.strip() for s, _ in _split(sql) if any(
        line.strip() and not line.strip().startswith("--") for line in s.splitlines())]


# the same few dozen scripts run at every load (a character at a time: ~30 ms a sync)
@functools.lru_cache(maxsize=512)
def _split(sql: str) -> tuple[tuple[str, str], ...]:
    """(statement, its code without literals and comments) pairs."""
    out, current, code, i, n = [], [], [], 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch in ("'", '"'):                       # a literal or quoted name ('' escapes ')
            j = i + 1
            while j < n:
                if sql[j] == ch:
                    if j + 1 < n and sql[j + 1] == ch:
                        j += 2
                        continue
                    break
                j += 1
            current.append(sql[i:j + 1])
            i = j + 1
        elif sql.startswith("/*", i):              # a block comment
            j = sql.find("*/", i + 2)
            j = n if j == -1 else j + 2
            current.append(sql[i:j])
            i = j
        elif sql.startswith("--", i):              # a comment, to the end of the line
            j = sql.find("\n", i)
            j = n if j == -1 else j
            current.append(sql[i:j])
            i = j
        elif ch == ";":
            out.append(("".join(current), "".join(code)))
            current, code = [], []
            i += 1
        else:
            current.append(ch)
            code.append(ch)
            i += 1
    out.append(("".join(current), "".join(code)))
    return tuple(out)


def execute_script(con: duckdb.DuckDBPyConnection, sql: str, params: dict | None = None) -> None:
    """Run every statement of `sql`, binding to each the named parameters it uses
    (DuckDB refuses parameters a statement does not name)."""
    params = params or {}
    for statement, code in _split(sql):
        if not code.strip():
            continue
        # named in the code itself, not in a comment or a string
        used = {k: v for k, v in params.items() if re.search(rf"\${k}\b", code)}
        run(con, statement, used)


def run(con: duckdb.DuckDBPyConnection, statement: str, params=None):
    """`con.execute(statement, params)`, the statement parsed once per thread for all the
    times it runs (`parsed`). Returns the connection, as `execute` does."""
    return con.execute(parsed(con, statement), params) if params is not None else \
        con.execute(parsed(con, statement))


# The same statements run thousands of times (a simulated season: the engine's, the
# delivery's and the loaders' at every run, delivery and sync), and DuckDB parsed each of
# them again every time: 6.6 ms of the 15-20 ms of the engine's largest (eval_candidates,
# 8 KB of SQL) before a plan is made. A parsed statement runs as its text does (it is bound
# and planned at every execution, on the catalog and parameters of that moment); kept per
# thread, so that two connections never use one parsed statement at once.
_PARSED = threading.local()
_PARSED_KEEP = 512


def parsed(con, statement: str):
    """`statement` (one SQL statement) parsed by DuckDB, from this thread's cache; the text
    itself for a connection that is not DuckDB's own (the shared warehouse's rewrites the
    text it is given: warehouse/shared.py) or a text that is not exactly one statement."""
    if not isinstance(con, duckdb.DuckDBPyConnection) or not isinstance(statement, str):
        return statement
    cache = getattr(_PARSED, "statements", None)
    if cache is None:
        cache = _PARSED.statements = {}
    found = cache.get(statement)
    if found is None:
        found = con.extract_statements(statement)
        found = found[0] if len(found) == 1 else statement
        if len(cache) >= _PARSED_KEEP:
            cache.pop(next(iter(cache)))            # the oldest first
        cache[statement] = found
    return found


_INCLUDE = re.compile(r"/\*@include (\w+)\*/")


def sql_file(directory: Path, name: str, **fragments: str) -> str:
    """The SQL file `<directory>/<name>.sql`, with each `/*@key*/` marker replaced by a
    compiled fragment (identifiers and designer conditions; values are always bound), and
    each `/*@include other*/` by the file `<directory>/other.sql` (statements several files
    share, written once; its markers are filled as the including file's)."""
    text = (Path(directory) / f"{name}.sql").read_text(encoding="utf-8")
    text = _INCLUDE.sub(lambda m: (Path(directory) / f"{m[1]}.sql").read_text(encoding="utf-8"),
                        text)
    for key in fragments:
        marker = f"/*@{key}*/"
        if marker not in text:
            raise KeyError(f"{name}.sql has no marker {marker}")
    for key, value in fragments.items():          # markers first: fragments may hold markers
        text = text.replace(f"/*@{key}*/", value)
    return text
