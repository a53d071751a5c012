"""The shared warehouse: every table in one PostgreSQL database, DuckDB as the query engine.

`RELANCE_WAREHOUSE=postgres:host=db.example dbname=relance user=relance` (a libpq
connection string after `postgres:`) makes `warehouse.connect()` open an in-memory DuckDB
that ATTACHes that database through DuckDB's postgres extension and puts it on its search
path: every query, view and SQL file runs unchanged, and every write lands in PostgreSQL,
whose primary and unique keys, check constraints, row locks and transactions hold across
machines. Why everything lives in PostgreSQL, not only the ledger, and why not DuckLake
(yet): ARCHITECTURE.md, "Several machines, one warehouse".

What differs from the embedded file, and how it is handled here so callers do not change:
- Schema: the same migration files run on the attached catalog (`migrate_shared`), under a
  PostgreSQL advisory lock so that machines starting together apply each one once. A
  statement the attached catalog cannot run (DuckDB's postgres extension supports only
  RENAME and ADD/DROP COLUMN among the ALTERs) has a native twin,
  `migrations/postgres/<same file name>`, run by PostgreSQL itself instead.
- Views and macros hold no data: they are made in the connection's own in-memory catalog
  at every connect (a few hundred ms), found before the attached tables on the search path.
- `UPDATE ... RETURNING` is not supported on attached tables: `SharedConnection.execute`
  runs such a statement as select-keys, update, read-back in one transaction
  (`_returning`).
- Locks: relance/delivery/lock.py holds PostgreSQL advisory locks on a connection of its
  own (`dsn()`), released by the server when the holder's connection ends.

The postgres extension exists as a wheel only for DuckDB 1.5.5 (`duckdb-extension-postgres-
scanner`; none yet for DuckDB 2.0): `pip install 'relance[shared]'` installs both; the
extension file is LOADed from the wheel's folder, so nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
from pathlib import Path

import duckdb

SCHEMES = ("postgres:", "postgresql:")
ALIAS = "wh"                                    # the attached database's name in DuckDB
POSTGRES_TWINS = Path(__file__).parent / "migrations" / "postgres"
# pg_advisory_lock's first key: relance's locks in the shared database (the second names
# what is locked: the migrations, a campaign's delivery, a campaign's run).
LOCK_CLASS = 0x7265_6C61                         # 'rela'


class SharedWarehouseError(RuntimeError):
    pass


def is_shared(target) -> bool:
    return str(target).startswith(SCHEMES + ("ducklake:",))


def dsn(target) -> str:
    """The libpq connection string of a `postgres:...` warehouse."""
    text = str(target)
    if text.startswith("ducklake:"):
        raise SharedWarehouseError(
            f"RELANCE_WAREHOUSE={text[:40]}...: a DuckLake warehouse is not supported: DuckLake "
            "enforces no primary or unique key, which the ledger's exactly-once promise rests "
            "on, and one DuckDB transaction cannot write to DuckLake and PostgreSQL together. "
            "Use `postgres:host=... dbname=... user=...` (docs/scheduling.md)")
    for scheme in SCHEMES:
        if text.startswith(scheme):
            rest = text[len(scheme):]
            return rest[2:] if rest.startswith("//") and "=" not in rest else rest
    raise SharedWarehouseError(f"{text!r} is not a shared warehouse (postgres:...)")


def shown(target) -> str:
    """The warehouse as it may be shown: the connection string without its password."""
    # DuckDB's own error repeats the connection string: this is applied to it too
    return re.sub(r"password\s*=\s*('[^']*'|[^\s\"]+)", "password=***", str(target))


def extension_file(name: str) -> Path:
    """The extension file inside its wheel's package (duckdb-extension-<name>)."""
    package = f"duckdb_extension_{name}"
    spec = importlib.util.find_spec(package)
    version = duckdb.__version__
    if spec is None or not spec.submodule_search_locations:
        raise SharedWarehouseError(
            f"the shared warehouse needs DuckDB's {name} extension: pip install "
            f"'relance[shared]' (duckdb==1.5.5 and duckdb-extension-{name.replace('_', '-')}"
            f"==1.5.5; DuckDB {version} is installed, and no wheel of the extension exists "
            "for DuckDB 2.0 yet)")
    folder = Path(list(spec.submodule_search_locations)[0]) / "extensions" / f"v{version}"
    path = folder / f"{name}.duckdb_extension"
    if not path.exists():
        found = sorted(p.name for p in folder.parent.glob("v*"))
        raise SharedWarehouseError(
            f"{path} is missing: the installed duckdb-extension-{name.replace('_', '-')} is "
            f"built for DuckDB {', '.join(found) or '?'}, this is DuckDB {version}. Install "
            "the same version of both (pip install 'relance[shared]')")
    return path


def open_shared(target, *, read_only: bool = False, memory_limit: str | None = None,
                migrate: bool = True) -> "SharedConnection":
    connection_string = dsn(target)                 # a DuckLake address is refused first
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"load '{extension_file('postgres_scanner')}'")
        con.execute("set TimeZone = 'UTC'")
        if memory_limit:
            con.execute("set memory_limit = ?", [memory_limit])
        options = "TYPE postgres" + (", READ_ONLY" if read_only else "")
        try:
            literal = connection_string.replace("'", "''")     # ATTACH takes no parameter
            con.execute(f"attach '{literal}' as {ALIAS} ({options})")
        except duckdb.Error as exc:
            raise SharedWarehouseError(
                f"cannot open the shared warehouse {shown(target)}: "
                f"{shown(str(exc).splitlines()[0])}. Check that PostgreSQL runs there and accepts "
                "this user (docs/scheduling.md)") from None
        shared = SharedConnection(con, connection_string)
        if migrate and not read_only:
            migrate_shared(shared)
        shared.settle()
        return shared
    except BaseException:
        con.close()
        raise


def migrate_shared(shared: "SharedConnection") -> list[str]:
    """Apply the migrations not yet recorded in the shared database's schema_migrations,
    each in a transaction with its record, under an advisory lock: however many machines
    start at once, each migration is applied once, and the others wait for it."""
    import warehouse
    import psycopg

    con = shared.raw
    with psycopg.connect(shared.dsn, autocommit=True) as lock:
        lock.execute("select pg_advisory_lock(%s, 0)", [LOCK_CLASS])
        try:
            con.execute(f"use {ALIAS}")
            con.execute(
                "create table if not exists schema_migrations ("
                " version integer primary key, name varchar not null,"
                " checksum varchar not null, applied_at timestamptz not null default current_timestamp)")
            applied = dict(con.execute(
                "select version, checksum from schema_migrations").fetchall())
            done = []
            for m in warehouse.migrations():
                if m.version in applied:
                    if applied[m.version] != m.checksum:
                        raise warehouse.MigrationError(
                            f"warehouse/migrations/{m.path.name} was edited after it was applied "
                            f"to the shared warehouse (checksum {applied[m.version]} there, "
                            f"{m.checksum} on disk): add a new migration instead")
                    continue
                twin = POSTGRES_TWINS / m.path.name
                with warehouse.transaction(con):
                    if twin.exists():
                        # PostgreSQL's own SQL, on the transaction's connection
                        con.execute(f"call postgres_execute('{ALIAS}', ?)",
                                    [twin.read_text(encoding="utf-8")])
                    else:
                        for statement in warehouse.statements(m.sql):
                            try:
                                con.execute(statement)
                            except duckdb.Error as exc:
                                raise warehouse.MigrationError(
                                    f"warehouse/migrations/{m.path.name} cannot run on the shared "
                                    f"warehouse: {str(exc).splitlines()[0]}. Write its PostgreSQL "
                                    f"form in warehouse/migrations/postgres/{m.path.name}") from None
                    con.execute("insert into schema_migrations (version, name, checksum) "
                                "values (?, ?, ?)", [m.version, m.name, m.checksum])
                done.append(m.name)
            if done:
                _COLUMNS.clear()                  # push_aggregates reads them again
            return done
        finally:
            con.execute("use memory")
            lock.execute("select pg_advisory_unlock(%s, 0)", [LOCK_CLASS])


def lock_key(kind: str, name: str) -> int:
    """A stable 32-bit key for pg_advisory_lock(LOCK_CLASS, key)."""
    return int.from_bytes(hashlib.sha256(f"{kind}\0{name}".encode()).digest()[:4], "big",
                          signed=True)


class SharedConnection:
    """A DuckDB connection to the shared warehouse, used as one: every method is DuckDB's,
    except `execute` and `cursor`, which run UPDATE ... RETURNING for it."""

    def __init__(self, con: duckdb.DuckDBPyConnection, dsn: str):
        self.raw = con
        self.dsn = dsn
        self._in_transaction = False

    def settle(self) -> None:
        """Views and macros in this connection's memory, found before the shared tables."""
        import warehouse
        con = self.raw
        con.execute("use memory")
        con.execute(f"set search_path = 'memory.main,{ALIAS}.public'")
        warehouse.execute_script(con, (warehouse.HERE / "macros.sql").read_text(encoding="utf-8"))
        for path in sorted(warehouse.VIEWS.glob("*.sql")):
            con.execute(path.read_text(encoding="utf-8"))

    def __getattr__(self, name):
        return getattr(self.raw, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        self.raw.close()

    def cursor(self) -> "SharedConnection":
        cursor = self.raw.cursor()
        # the search path is the connection's own: a cursor starts from DuckDB's default
        cursor.execute("set TimeZone = 'UTC'")
        cursor.execute(f"set search_path = 'memory.main,{ALIAS}.public'")
        return SharedConnection(cursor, self.dsn)

    def begin(self):
        self._in_transaction = True
        return self.raw.begin()

    def commit(self):
        self._in_transaction = False
        return self.raw.commit()

    def rollback(self):
        self._in_transaction = False
        return self.raw.rollback()

    def execute(self, query, parameters=None):
        if isinstance(query, str) and len(query) < 40:
            # DuckDB says no way whether a transaction is open (and a BEGIN inside one aborts
            # it): the statements that open and end one are watched instead
            word = query.strip().split(None, 1)[0].lower().rstrip(";") if query.strip() else ""
            if word in ("begin", "start"):
                self._in_transaction = True
            elif word in ("commit", "rollback", "abort", "end"):
                self._in_transaction = False
        if isinstance(query, str):
            query = pushed(self.raw, query)
        if isinstance(query, str) and _RETURNING.search(query):
            parts = _update_parts(query)
            if parts is not None:
                return self._returning(parts, parameters)
        if parameters is None:
            return self.raw.execute(query)
        return self.raw.execute(query, parameters)

    def sql(self, query, *args, **kwargs):
        """DuckDB's relation API (`con.sql(...)`), with the same pushdown as `execute`."""
        if isinstance(query, str):
            query = pushed(self.raw, query)
        return self.raw.sql(query, *args, **kwargs)

    def _returning(self, parts: dict, parameters):
        """UPDATE ... RETURNING on an attached table: the target rows' keys first, then the
        update, then the returned expressions read back by key; in one transaction (the
        caller's, or one of its own), so what is returned is what was updated."""
        con = self.raw
        table, alias = parts["table"], parts["alias"] or parts["table"]
        keys = self._primary_key(table)
        key_list = ", ".join(f"{alias}.{k}" for k in keys)
        select = (f"select distinct {key_list} from {parts['target']}"
                  + (f", {parts['from']}" if parts["from"] else "")
                  + (f" where {parts['where']}" if parts["where"] else ""))
        select_params = parameters
        if isinstance(parameters, (list, tuple)):
            select_params = list(parameters)[parts["set_positional"]:]
        elif isinstance(parameters, dict):
            select_params = {k: v for k, v in parameters.items()
                             if re.search(rf"\${k}\b", select)}
        own = not self._in_transaction
        if own:
            con.execute("begin transaction")
        try:
            con.execute("create or replace temp table _relance_returning as " + select,
                        select_params if select_params else None)
            con.execute(parts["update"], parameters if parameters else None)
            result = con.execute(
                f"select {parts['returning']} from {parts['target']} "
                f"where ({key_list}) in (select ({', '.join(keys)}) from _relance_returning)"
                if len(keys) > 1 else push_keys(con,
                f"select {parts['returning']} from {parts['target']} "
                f"where {key_list} in (select {keys[0]} from _relance_returning)")).fetchall()
            con.execute("drop table _relance_returning")
            if own:
                con.execute("commit")
        except BaseException:
            if own:
                con.execute("rollback")
            raise
        return _Rows(result)

    _keys: dict = {}

    def _primary_key(self, table: str) -> list[str]:
        found = SharedConnection._keys.get((self.dsn, table))
        if found is None:
            rows = self.raw.execute(
                f"select * from postgres_query('{ALIAS}', ?)",
                ["select a.attname from pg_index i join pg_attribute a on a.attrelid = i.indrelid "
                 "and a.attnum = any(i.indkey) where i.indisprimary and i.indrelid = "
                 f"'public.{table}'::regclass order by array_position(i.indkey, a.attnum)"]
            ).fetchall()
            if not rows:
                raise SharedWarehouseError(f"UPDATE ... RETURNING on {table}, which has no "
                                           "primary key, cannot run on the shared warehouse")
            found = SharedConnection._keys[(self.dsn, table)] = [r[0] for r in rows]
        return found


class _Rows:
    """What a RETURNING statement gave, read as DuckDB's result is."""

    def __init__(self, rows: list[tuple]):
        self._rows = rows

    def fetchall(self):
        rows, self._rows = self._rows, []
        return rows

    def fetchone(self):
        return self._rows.pop(0) if self._rows else None


_RETURNING = re.compile(r"\breturning\b", re.IGNORECASE)
_KEYWORDS = ("update", "set", "from", "where", "returning")


def _update_parts(sql: str) -> dict | None:
    """An UPDATE ... RETURNING statement cut at its top-level clauses (outside parentheses,
    literals and comments); None for any other statement."""
    code, depth, i, n = [], 0, 0, len(sql)
    marks: dict[str, int] = {}
    while i < n:
        ch = sql[i]
        if ch in "'\"":
            j = sql.find(ch, i + 1)
            while j != -1 and j + 1 < n and sql[j + 1] == ch:
                j = sql.find(ch, j + 2)
            i = n if j == -1 else j + 1
            continue
        if sql.startswith("--", i):
            j = sql.find("\n", i)
            i = n if j == -1 else j
            continue
        if sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            i = n if j == -1 else j + 2
            continue
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif depth == 0 and (i == 0 or not (sql[i - 1].isalnum() or sql[i - 1] == "_")):
            for word in _KEYWORDS:
                end = i + len(word)
                if (sql[i:end].lower() == word and word not in marks
                        and (end == n or not (sql[end].isalnum() or sql[end] == "_"))):
                    marks[word] = i
                    break
        i += 1
    if "update" not in marks or "set" not in marks or "returning" not in marks:
        return None
    before = re.sub(r"--[^\n]*|/\*.*?\*/", "", sql[:marks["update"]], flags=re.S)
    if before.strip():
        return None                                     # a WITH ... UPDATE: not handled
    order = sorted(marks.items(), key=lambda kv: kv[1])

    def clause(word):
        if word not in marks:
            return None
        start = marks[word] + len(word)
        later = [pos for w, pos in order if pos > marks[word]]
        return sql[start:later[0] if later else n].strip().rstrip(";").strip()

    target = clause("update")
    words = target.split()
    set_clause = clause("set")
    return {
        "target": target, "table": words[0],
        "alias": words[-1] if len(words) > 1 else None,
        "from": clause("from"), "where": clause("where"), "returning": clause("returning"),
        "update": sql[:marks["returning"]].rstrip(),
        "set_positional": _positional(set_clause),
    }


def _positional(code: str) -> int:
    """How many `?` parameters `code` holds outside its literals."""
    return len(re.findall(r"\?", re.sub(r"'(?:[^']|'')*'", "", code)))


# `in (select <column> from <table>)` and `(select min|max(<column>) from <table>)` over a
# table of this connection's own (a temp table): what push_keys writes as literals
_KEY_LIST = re.compile(
    r"(?<![\w.])(?P<left>[a-z_][\w.]*)\s+(?P<not>not\s+)?in\s*\(\s*select\s+(?P<column>\w+)"
    r"\s+from\s+(?P<table>\w+)\s*\)", re.IGNORECASE)
_KEY_BOUND = re.compile(
    r"\(\s*select\s+(?P<fn>min|max)\s*\(\s*(?P<column>\w+)\s*\)\s+from\s+(?P<table>\w+)\s*\)",
    re.IGNORECASE)


# beyond this many keys a list is left as a subquery: the statement's text grows by ~15
# bytes a key and DuckDB binds it in O(keys) (60,000 keys: ~4 s, about what reading 10M
# events whole costs)
MAX_PUSHED_KEYS = 50_000


def push_keys(con: duckdb.DuckDBPyConnection, statement: str) -> str:
    """`statement` as it is sent to the shared warehouse (SharedConnection.execute): each
    `in (select c from t)` and `(select min(c) from t)` / `max` over a temp table of the
    connection is replaced by the values it holds, as literals.

    Why: DuckDB's postgres extension sends a table's own constant filters down to
    PostgreSQL (`learner_id in ('a', 'b')`, `occurred_at > timestamptz '...'`) but not a
    join's keys nor a subquery's, so a query that joins a delivery's 5,000 learners to the
    events pulled all of them (10M rows at 1M learners) to filter them in DuckDB. The
    result is the same: the subquery was over a table only this connection sees, read now.
    Left as they are: `not in`, and a list of more than MAX_PUSHED_KEYS keys."""
    if not (_KEY_LIST.search(statement) or _KEY_BOUND.search(statement)):
        return statement
    # (asked, not tried: a failed statement would abort the caller's transaction)
    temp = {r[0].lower() for r in con.execute(
        "select table_name from duckdb_tables() where database_name = 'temp'").fetchall()}

    def values(table: str, query: str) -> list | None:
        if table.lower() not in temp:
            return None
        return [r[0] for r in con.execute(query.format(table=f"temp.main.{table}")).fetchall()]

    def as_list(m: re.Match) -> str:
        if m["not"]:
            return m[0]
        found = values(m["table"], f"select distinct {m['column']} from {{table}} "
                                   f"limit {MAX_PUSHED_KEYS + 1}")
        literals = None if found is None else [_literal(v) for v in found]
        if literals is None or None in literals or len(literals) > MAX_PUSHED_KEYS:
            return m[0]
        if not literals:
            # no key: no row (`in (null)` would still read the whole table)
            return "false"
        return f"{m['left']} in ({', '.join(sorted(literals))})"

    def as_bound(m: re.Match) -> str:
        found = values(m["table"], f"select {m['fn']}({m['column']}) from {{table}}")
        literal = None if found is None else _literal(found[0])
        return m[0] if literal is None else f"({literal})"

    return _KEY_BOUND.sub(as_bound, _KEY_LIST.sub(as_list, statement))


def pushed(con: duckdb.DuckDBPyConnection, statement: str) -> str:
    """`statement` as it is sent to the shared warehouse: a temp table's keys as literals
    (push_keys), then the keys a shared table gives for those (push_derived_keys), then a
    whole table's count, min or max asked of PostgreSQL (push_aggregates)."""
    return push_aggregates(con, push_derived_keys(con, push_keys(con, statement)))


# `<column> in (select <key> from <table> where <condition>)`: the subquery's head; its
# condition runs to the parenthesis that closes it
_DERIVED_HEAD = re.compile(
    r"(?<![\w.])(?P<left>[a-z_][\w.]*)\s+in\s*\(\s*select\s+(?P<column>\w+)\s+from\s+"
    r"(?P<table>\w+)\s+where\s+", re.IGNORECASE)
# a condition made of literal key lists only (what push_keys wrote): `c in ('a', 'b')`,
# `false`, `c is not null`, joined by `or` / `and`, in one level of parentheses at most
_LITERAL = r"(?:'(?:[^']|'')*'|-?\d+)"
_TERM = (rf"(?:\w+\s+in\s*\(\s*{_LITERAL}(?:\s*,\s*{_LITERAL})*\s*\)|false"
         rf"|\w+\s+is\s+not\s+null)")
_TERMS = rf"\s*{_TERM}(?:\s+(?:or|and)\s+{_TERM})*\s*"
_GROUP = rf"(?:{_TERM}|\({_TERMS}\))"
_LITERAL_LISTS = re.compile(rf"\s*{_GROUP}(?:\s+(?:or|and)\s+{_GROUP})*\s*", re.IGNORECASE)


def push_derived_keys(con: duckdb.DuckDBPyConnection, statement: str) -> str:
    """`statement` with each `x in (select k from t where <literal key lists>)` over a table
    of the shared database replaced by the keys that subquery gives, as literals: the keys
    one step from a temp table's (the learners of a batch's replies, read by the replies'
    message ids), which push_keys leaves as a subquery the extension does not send down.
    The subquery is read first, by PostgreSQL, on the same connection (in the caller's
    transaction if one is open: the same rows the statement would have read). Left as it
    is: any other condition, a null among the keys, and more than MAX_PUSHED_KEYS keys."""
    out, at, asked = [], 0, {}
    for m in _DERIVED_HEAD.finditer(statement):
        if m.start() < at:
            continue
        end = _closing(statement, m.end())
        if end is None:
            continue
        condition = statement[m.end():end]
        if (m["left"].lower() in ("not", "and", "or", "where", "on")
                or not _LITERAL_LISTS.fullmatch(condition)
                or not _shared_table(con, m["table"], m["column"])):
            continue                            # (`not in` among them: left as it is)
        # asked of PostgreSQL itself (the condition is literals, the same SQL there): the
        # extension would not send down an `or` of two columns' lists
        query = (f'select distinct "{m["column"].lower()}" as k from public."{m["table"].lower()}" '
                 f"where {condition} limit {MAX_PUSHED_KEYS + 1}")
        if query not in asked:                  # (a file may name the same keys twice)
            asked[query] = [r[0] for r in con.execute(
                f"select k from postgres_query('{ALIAS}', ?)", [query]).fetchall()]
        found = asked[query]
        literals = [_literal(v) for v in found]
        # a null among the keys makes `in` null, not false, where nothing matches: kept
        if None in literals or "null" in literals or len(literals) > MAX_PUSHED_KEYS:
            continue
        replaced = (f"{m['left']} in ({', '.join(sorted(literals))})" if literals else "false")
        out.append(statement[at:m.start()] + replaced)
        at = end + 1
    return "".join(out) + statement[at:] if out else statement


def _closing(text: str, start: int) -> int | None:
    """The index of the parenthesis closing the one open before `start` (literals skipped)."""
    depth, i, n = 1, start, len(text)
    while i < n:
        ch = text[i]
        if ch == "'":
            j = text.find("'", i + 1)
            while j != -1 and j + 1 < n and text[j + 1] == "'":
                j = text.find("'", j + 2)
            if j == -1:
                return None
            i = j + 1
            continue
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return None


# `(select count(*) from <table>)`, `(select min|max(<column>) from <table>)`, and a statement
# that is only `select count(*) from <table>`: over a table of the shared database, what
# push_aggregates asks PostgreSQL for
_WHOLE_AGGREGATE = re.compile(
    r"(?P<open>\(\s*)?\bselect\s+(?:(?P<count>count\s*\(\s*\*\s*\))|(?P<fn>min|max)\s*\(\s*"
    r"(?P<column>\w+)\s*\))\s+from\s+(?P<table>\w+)\s*(?(open)\)|;?\s*$)", re.IGNORECASE)


def push_aggregates(con: duckdb.DuckDBPyConnection, statement: str) -> str:
    """`statement` with each count, min or max of a whole table of the shared database
    (`(select count(*) from progress_events)`, `select count(*) from t` alone, `(select
    max(occurred_at) from progress_events)`) asked of PostgreSQL through postgres_query.

    Why: DuckDB's postgres extension computes an aggregate in DuckDB, after copying the
    table's rows: counting 10M events copied 10M rows (a NULL each) out of PostgreSQL, in
    every evaluation (engine/evaluation.py, summaries_cover) and every load. PostgreSQL
    counts them where they are. postgres_query runs on the transaction's connection, so it
    sees the transaction's own writes, as the statement would have. Left as they are: a
    name that is a temp table or a view of this connection, or not a table of the shared
    database (or a column it does not have)."""
    if not _WHOLE_AGGREGATE.search(statement):
        return statement

    def ask(m: re.Match) -> str:
        if not m["open"] and m.start() != len(statement) - len(statement.lstrip()):
            return m[0]                         # `select count(*) from t` inside a statement
        table = m["table"]
        if not _shared_table(con, table, m["column"]):
            return m[0]
        what = "count(*)" if m["count"] else f'{m["fn"].lower()}("{m["column"].lower()}")'
        query = f'select {what} as v from public."{table.lower()}"'
        asked = f"select v from postgres_query('{ALIAS}', '{query}')"
        return f"({asked})" if m["open"] else asked
    return _WHOLE_AGGREGATE.sub(ask, statement)


# the shared database's tables and their columns, per database: read once per process
# (migrate_shared forgets them when it applies a migration)
_COLUMNS: dict[str, dict[str, set[str]]] = {}


def _shared_table(con: duckdb.DuckDBPyConnection, table: str, column: str | None) -> bool:
    """Whether `table`, as the search path finds it (temp tables, then this connection's
    views and tables, then the shared database's), is a table of the shared database, with
    `column` if one is named."""
    key = con.execute("select path from duckdb_databases() where database_name = ?",
                      [ALIAS]).fetchall()
    key = key[0][0] if key else ""
    if key not in _COLUMNS:
        columns: dict[str, set[str]] = {}
        for t, c in con.execute(
                "select lower(table_name), lower(column_name) from duckdb_columns() "
                "where database_name = ? and schema_name = 'public'", [ALIAS]).fetchall():
            columns.setdefault(t, set()).add(c)
        _COLUMNS[key] = columns
    found = _COLUMNS[key].get(table.lower())
    if found is None or (column is not None and column.lower() not in found):
        return False
    # not hidden by a temp table, or a view or table of this connection's own
    return not con.execute(
        "select 1 from duckdb_tables() where database_name in ('temp', 'memory') "
        "and lower(table_name) = lower($t) union all select 1 from duckdb_views() "
        "where not internal and database_name in ('temp', 'memory') "
        "and lower(view_name) = lower($t)", {"t": table}).fetchall()


def _literal(value) -> str | None:
    """A SQL literal of `value` that DuckDB folds to a constant; None for a type not handled
    (its subquery is then left as it is)."""
    from datetime import date, datetime
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, datetime):
        kind = "timestamptz" if value.tzinfo is not None else "timestamp"
        return f"{kind} '{value.isoformat()}'"
    if isinstance(value, date):
        return f"date '{value.isoformat()}'"
    return None
