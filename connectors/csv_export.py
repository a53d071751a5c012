"""CSV and Excel exports from an LMS, described by a mapping file (csv_mapping.py), staged
for the shared loader: every mapped column of an entity's file as text, typed by the
loader; a mapped column missing from the file is an error that names both.

Incremental: each entity's file has a cursor (its fingerprint, see files.py, with the row
count and the settings that read it). An unchanged file is skipped; a CSV file that only
grew (an append-only export) has only its new rows staged; any other change stages the
whole file again, and the loaders' keys keep what was already loaded from being loaded
twice (learners, courses, enrolments and activities are upserted, events deduplicated by
their id).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import duckdb

from connectors import excel
from connectors.base import (ENTITIES, SQL_DIR, TABLES, SourceError, _drop_staging, read_rejects,
                             staging_table, temp_views)
from connectors.csv_mapping import CsvSource, EntityMapping, mapping_of, read_mapping
from connectors.files import Fingerprint, file_fingerprint
from connectors.state import SourceState
from warehouse import execute_script, sql_file

# hashes files beside the load (hashlib lets go of the GIL while it hashes)
_HASHING = ThreadPoolExecutor(max_workers=1, thread_name_prefix="relance-fingerprint")

# The bytes of a file each of the read's parallel scans takes at a time (DuckDB's default:
# 8 MB). The load inserts what one scan read as one batch; a batch of 122,880 rows or more
# (a row group) is written as it is, its last, partial row group too, and the commit's
# checkpoint then writes those partial row groups again: at 10M events of 50 bytes (160,000
# rows a scan), 3 CPU-seconds of 13. Scans of 2 MB (fewer than 122,880 rows for rows of 17
# bytes or more) are merged into whole row groups as they are inserted: no such rewrite,
# and the read itself takes no longer (alternated, 10M events: 7.4-7.9 CPU-seconds against
# 10.4-11.9 for the read written to a table with its checkpoint).
READ_BUFFER = 2 * 1024 * 1024

# What an entity's rows name among the others a source loads: a row set aside because what
# it names is unknown ("unknown learner: A2") may load once that entity's file is read
# again (fixed, or re-exported with the learner), so its own file is then read again too.
NAMES = {"enrolments": ("learners", "courses"), "activities": ("courses",),
         "progress_events": ("enrolments",), "contributions": ("enrolments",),
         "outcomes": ("enrolments",)}


@dataclass
class Plan:
    """How much of an entity's file a sync reads."""
    cursor: "Cursor"
    skip: bool = False
    from_byte: int = 0        # > 0: the file grew; read from there (after the header)
    rows_before: int = 0      # rows already loaded from the part not read again
    # the file's fingerprint while it is being computed (a file read for the first time:
    # no decision waits for it, so it is hashed while the load reads the file)
    hashing: Future | None = None

    def fingerprint(self) -> Fingerprint:
        return self.hashing.result() if self.hashing is not None else self.cursor.fingerprint


@dataclass(frozen=True)
class Cursor:
    fingerprint: Fingerprint | None     # None while a Plan's `hashing` computes it
    rows: int
    settings: str
    # rows of the file were set aside for an unknown learner, course or enrolment (NAMES)
    waiting: bool = False

    def __str__(self) -> str:
        return (f"{self.fingerprint};rows={self.rows};settings={self.settings}"
                + (";waiting=1" if self.waiting else ""))

    @classmethod
    def parse(cls, text: str | None) -> "Cursor | None":
        fp = Fingerprint.parse(text)
        if fp is None:
            return None
        fields = dict(part.split("=", 1) for part in text.split(";") if "=" in part)
        try:
            return cls(fp, int(fields["rows"]), fields["settings"], fields.get("waiting") == "1")
        except (KeyError, ValueError):
            return None


class CsvConnector:
    kind = "csv"

    def __init__(self, source: CsvSource, base_dir: Path, kind: str = "csv"):
        self.kind = kind
        self.source = source
        self.name = source.name
        self.timezone = source.timezone
        self.datetime_formats = source.datetime_formats
        self.date_formats = source.date_formats
        self.progress_scale = source.progress_scale
        self.directory = (base_dir / source.directory).resolve()
        self._tmp: tempfile.TemporaryDirectory | None = None
        self._views: dict[str, Path] = {}       # staging view -> the file it reads
        # staging view -> its read's rejects table and the rows before the part it reads
        self._rejects: dict[str, tuple[str, int]] = {}

    @classmethod
    def from_file(cls, mapping_path: str | Path) -> "CsvConnector":
        path = Path(mapping_path)
        return cls(read_mapping(path), path.parent)

    def _settings(self, mapping: EntityMapping) -> str:
        """What, besides the file, decides the rows read from it."""
        settings = {"mapping": mapping.model_dump(), **self.source.model_dump(
            exclude={"name", "directory", "entities"})}
        return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]

    def _plan(self, file: Path, mapping: EntityMapping, previous: Cursor | None,
              again: bool = False) -> Plan:
        """`again`: read the whole file, changed or not (rows of it wait for what a file
        read in this sync may have brought)."""
        settings = self._settings(mapping)
        if previous is None or previous.settings != settings:
            # hashed while the load reads the file: only the bytes there before the read,
            # so that rows appended meanwhile (an export still being written), whether the
            # load read them or not, are read at the next sync rather than taken as loaded
            size = file.stat().st_size
            return Plan(Cursor(None, 0, settings),
                        hashing=_HASHING.submit(lambda: file_fingerprint(file, limit=size)[0]))
        fp, head = file_fingerprint(file, prefix=previous.fingerprint.size)
        if fp == previous.fingerprint and not again:
            return Plan(Cursor(fp, previous.rows, settings), skip=True)
        grew = (not again and fp.size > previous.fingerprint.size and head == previous.fingerprint.sha256
                and not excel.is_workbook(file.name) and self.source.encoding != "utf-16"
                and _ends_a_line(file, previous.fingerprint.size))
        if grew:
            # the rows read before and set aside still wait
            return Plan(Cursor(fp, 0, settings, previous.waiting),
                        from_byte=previous.fingerprint.size, rows_before=previous.rows)
        return Plan(Cursor(fp, 0, settings))

    def _tmpdir(self) -> Path:
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="relance-csv-")
        return Path(self._tmp.name)

    def _copy(self, kind: str, file: Path) -> Path:
        """Where a temporary copy of `file` goes: named by the file's whole path too, as
        two folders may each hold an `export.csv` (and a staged view reads its copy only
        when the load runs)."""
        where = hashlib.sha256(str(file).encode()).hexdigest()[:8]
        return self._tmpdir() / f"{kind}-{where}-{file.name}"

    def _read(self, con: duckdb.DuckDBPyConnection, file: Path,
              rejects: str) -> tuple[list[str], str, list[str]]:
        """The file's columns, the SQL of its read as text (for the staging view), and
        the names its header holds more than once.
        A row the read cannot split into the header's columns is set aside in `rejects`
        (and `<rejects>_scans`), not an error: the loader quarantines it (`rejected`), as
        one bad row of an export must not stop the sync. (Measured on the 10M-event
        export: no difference to the read's time.)
        Quotes are `"` whatever the sniffed sample holds: a sample without quoted values
        would otherwise read the file as having none, and fail on the first `"0,5"`
        further down. (Writing the sniffed dialect into the view's read, to spare the
        sniffs each query of the view makes, was measured: the load got slower.)"""
        path = str(self._utf8(file))

        def read_csv(header: bool) -> str:
            options = {"header": header, "all_varchar": True, "quote": '"', "escape": '"',
                       "buffer_size": READ_BUFFER}
            if header:
                options |= {"store_rejects": True, "rejects_table": rejects,
                            "rejects_scan": f"{rejects}_scans"}
            if self.source.delimiter != "auto":
                options["delim"] = self.source.delimiter
            return f"read_csv({_literal(path)}, " + ", ".join(
                f"{k} = {_literal(v)}" for k, v in options.items()) + ")"

        read = read_csv(True)
        columns = con.sql(f"select * from {read} limit 0").columns
        doubled = []
        # DuckDB renames a name met again, regardless of case (`mail`, `Mail` read as
        # `mail`, `Mail_1`): the header as written says which, looked at only then
        if any(re.fullmatch(r".+_[0-9]+", c) for c in columns):
            names = [(n or "").lstrip("\ufeff").strip() for n in
                     con.execute(f"select * from {read_csv(False)} limit 1").fetchall()[0]]
            doubled = sorted({n for n in names if [m.lower() for m in names].count(n.lower()) > 1})
        return columns, read, doubled

    def _tail(self, file: Path, from_byte: int) -> Path:
        """The header line and what was appended after `from_byte`, as a file of its own."""
        # named by where it starts: another entity may stage another tail of the same file,
        # and a staged view reads its file when the load runs
        target = self._copy(f"tail-{from_byte}", file)
        with file.open("rb") as src, target.open("wb") as dst:
            dst.write(src.readline())
            src.seek(from_byte)
            shutil.copyfileobj(src, dst, 1 << 20)
        return target

    def _utf8(self, file: Path) -> Path:
        """DuckDB reads UTF-8 only (other encodings need an extension that cannot be
        fetched offline): other encodings are transcoded in chunks to a temporary copy."""
        if self.source.encoding == "utf-8":
            return file
        with file.open("rb") as f:
            # Excel's "CSV UTF-8" starts with a BOM, which says the encoding whatever the
            # mapping's (a team saving as CSV UTF-8 one day, Latin-1 the next)
            if f.read(3) == b"\xef\xbb\xbf":
                return file
        target = self._copy("utf8", file)
        try:
            with file.open("r", encoding=self.source.encoding, newline="") as src, \
                    target.open("w", encoding="utf-8", newline="") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        except UnicodeError as exc:     # UTF-16 cut in the middle of a character, no BOM ...
            raise SourceError(f"source {self.name}: {file}: cannot be read as "
                              f"{self.source.encoding} ({exc}): set `encoding:` to the "
                              "file's (utf-8, latin-1 or utf-16), or export it again") from None
        return target

    def _open(self, con: duckdb.DuckDBPyConnection, file: Path, mapping: EntityMapping,
              plan: Plan, table: str) -> tuple[list[str], str, str]:
        """The file's columns, the SQL that reads its rows as text, and the SQL of each
        row's number in the file (as staged in `table`)."""
        if file.suffix.lower() == ".xls":
            raise SourceError(f"source {self.name}: {file}: an Excel 97-2003 workbook (.xls) "
                              f"cannot be read; save it as .xlsx, or export it as CSV")
        if excel.is_workbook(file.name):
            rel = excel.read_sheet(con, file, mapping.sheet, where=f"source {self.name}")
            return [c for c in rel.columns if c != "_row"], "xlsx_input", "_row"
        if file.stat().st_size == 0:
            raise SourceError(f"source {self.name}: {file}: the file is empty: expected a "
                              f"header row naming its columns ({', '.join(mapping.columns.values())})")
        path = self._tail(file, plan.from_byte) if plan.from_byte else file
        try:
            # rejects of an earlier sync on this connection are not this one's
            rejects = f"{table}_rejects"
            con.execute(f"drop table if exists {rejects}; drop table if exists {rejects}_scans")
            self._rejects[table] = (rejects, plan.rows_before)
            columns, read, doubled = self._read(con, path, rejects)
        except duckdb.Error as exc:
            raise self._unreadable(file, exc) from None
        mapped = {c.lower() for c in mapping.columns.values()}
        if any(name.lower() in mapped for name in doubled):
            # which of them the mapping means cannot be told
            raise SourceError(f"source {self.name}: {file.name}: the header names "
                              f"{', '.join(n for n in doubled if n.lower() in mapped)} more "
                              f"than once (names are compared regardless of case); rename them")
        return columns, read, f"{plan.rows_before} + row_number() over ()"

    def rejected(self, con: duckdb.DuckDBPyConnection, table: str, params: dict) -> int:
        """Quarantine the rows of a staging view that its read set aside (too many or too
        few values, a stray quote, bytes that are not UTF-8; see `_read`), once the loader
        has read the view; the number of them."""
        if table not in self._rejects:
            return 0
        rejects, rows_before = self._rejects.pop(table)
        present = con.execute("select count(*) from duckdb_tables() where table_name = ?",
                              [rejects]).fetchall()[0][0]
        if not present:
            return 0
        if not read_rejects(con, rejects, rows_before, f"source {self.name}: {self._views[table]}"):
            return 0        # nothing to quarantine, no row number to put back
        execute_script(con, sql_file(SQL_DIR, "quarantine_rejects"),
                       {**params, "file": str(self._views[table])})
        n = con.execute("select n from rejected_count").fetchall()[0][0]
        con.execute("drop table rejected_count")
        return n

    def unreadable(self, table: str, exc: Exception) -> SourceError | None:
        """The error to report when the loader cannot read a staging view of this
        source's (None: not one of its views)."""
        file = self._views.get(table)
        return self._unreadable(file, exc) if file is not None else None

    def _unreadable(self, file: Path, exc: Exception) -> SourceError:
        return SourceError(f"source {self.name}: {file}: cannot be read as CSV "
                           f"({self.source.encoding}, delimiter {self.source.delimiter!r}): {exc}")

    def stage(self, con: duckdb.DuckDBPyConnection,
              state: SourceState | None = None) -> dict[str, int | None]:
        state = state or SourceState(self.name)
        counts = {}
        staged: set[str] = set()
        views: set[str] | None = None       # asked of the catalog once, when needed
        # in load order, so that what an entity's rows name is known to be read again first
        for entity in ENTITIES:
            mapping = self.source.entities.get(entity)
            if mapping is None:
                continue
            file = self.directory / mapping.file
            if not file.exists():
                raise SourceError(f"source {self.name}: {entity}: file {file} not found")
            stream = f"{entity}:{mapping.file}"
            previous = Cursor.parse(state.get(stream))
            again = bool(previous and previous.waiting and (
                staged & set(NAMES.get(entity, ()))
                or _brought_since(con, NAMES.get(entity, ()), state.written_at(stream))))
            plan = self._plan(file, mapping, previous, again)
            if plan.skip:
                continue
            staged.add(entity)
            table = staging_table(self.kind, entity)
            columns, read, row_number = self._open(con, file, mapping, plan, table)
            # the BOM of UTF-8 exports from Excel sticks to the first header
            clean = {c.lstrip("\ufeff").strip(): c for c in columns}
            projection = []
            for column in ENTITIES[entity]:
                source_col = mapping.columns.get(column)
                if source_col is None:
                    projection.append(f"null::varchar as {column}")
                    continue
                if source_col not in clean:
                    where = f"{file.name}" + (f" (sheet {mapping.sheet})" if mapping.sheet else "")
                    # one column holding a delimiter: DuckDB's sniffing found none
                    hint = ("; the file was read as one column: set `delimiter:` (with "
                            "`auto`, a row with more or fewer values than the header among "
                            "the first rows hides it)"
                            if len(clean) == 1 and any(d in next(iter(clean)) for d in ",;\t|")
                            else "")
                    raise SourceError(
                        f"source {self.name}: {where}: column {source_col!r} (mapped to "
                        f"{entity}.{column}) is not in the file; its columns are: "
                        f"{', '.join(clean)}{hint}")
                quoted = '"' + clean[source_col].replace('"', '""') + '"'
                projection.append(f"{quoted} as {column}")
            select = (f"select {', '.join(projection)}, {_literal(str(file))} as _file, "
                      f"{row_number} as _row from {read}")
            # a sync that stopped keeps what it staged (for inspection) until the next: a
            # view over a CSV file then, a sheet's table now (or the other way round)
            if views is None:
                views = temp_views(con)
            _drop_staging(con, table, views)
            if read == "xlsx_input":
                # the next sheet read replaces xlsx_input: its rows are copied
                con.execute(f"create or replace temp table {table} as {select}")
                counts[entity] = con.execute(f"select count(*) from {table}").fetchall()[0][0]
            else:
                # A CSV file is staged as a view over its read, not copied: the loader's one
                # pass over it parses the file (a copy of tens of millions of rows as text
                # costs about as much as DuckDB's whole typed read of the file). Its rows are
                # counted by the loader too (None until then), and its cursor, which holds
                # the count, is made when they are; a file that cannot be parsed is
                # reported by `unreadable`, naming it.
                con.execute(f"create or replace temp view {table} as {select}")
                self._views[table] = file
                counts[entity] = None
            # made once the load knows how many rows it read and set aside as waiting
            state.advance(stream, lambda rows, waiting, plan=plan:
                          str(Cursor(plan.fingerprint(), plan.rows_before + rows,
                                     plan.cursor.settings, plan.cursor.waiting or waiting > 0)),
                          rows_of=entity)
        return counts


def _brought_since(con: duckdb.DuckDBPyConnection, entities: tuple[str, ...],
                   since) -> bool:
    """Whether any source (another one: an HR roster beside an LMS's events) loaded rows
    of `entities` after `since`: rows set aside for want of one of them may load now."""
    if since is None:
        return False
    return any(con.execute(f"select exists (select 1 from {TABLES[e]} where loaded_at > ?)",
                           [since]).fetchall()[0][0] for e in entities)


def _literal(value) -> str:
    """A SQL literal of a string or a boolean (a view's SQL cannot bind parameters)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "'" + str(value).replace("'", "''") + "'"


def _ends_a_line(file: Path, size: int) -> bool:
    """Whether the first `size` bytes end with a line break (appended rows start a line)."""
    if size == 0:
        return False
    with file.open("rb") as f:
        f.seek(size - 1)
        return f.read(1) == b"\n"


def from_config(name: str, options: dict, base_dir: Path) -> CsvConnector:
    """A CSV source of the sources file: `mapping: path/to/mapping.yaml`, or the mapping's
    settings written inline (without `name`, which is the source's)."""
    kind = options.get("kind", "csv")
    options = {k: v for k, v in options.items() if k != "kind"}
    if "mapping" in options:
        if set(options) != {"mapping"}:
            raise SourceError(f"source {name}: with `mapping:`, write the other settings in "
                              f"the mapping file ({', '.join(sorted(set(options) - {'mapping'}))})")
        mapping = base_dir / options["mapping"]
        if not mapping.is_file():
            raise SourceError(f"source {name}: mapping: {mapping} ({mapping.absolute()}): "
                              "mapping file not found; `mapping:` is relative to the sources "
                              "file's folder")
        connector = CsvConnector.from_file(mapping)
        connector.name, connector.kind = name, kind
        return connector
    return CsvConnector(mapping_of({"name": name, **options}, f"source {name}"), base_dir, kind)
