"""Incremental sync: what a source has already delivered, as cursors per stream.

A connector reads its cursors when it starts staging and proposes new ones; they are
written by the shared loader in the transaction that loads the rows (`source_cursors`),
never before. A sync killed half-way therefore restarts from the last cursor that has its
rows in the warehouse: nothing is skipped, and what is fetched twice is deduplicated by
the loaders' keys.
"""

from __future__ import annotations

from datetime import datetime
from typing import Callable

import duckdb

from relance import clock


class SourceState:
    def __init__(self, source: str, cursors: dict[str, str] | None = None,
                 written: dict[str, datetime] | None = None):
        self.source = source
        self._committed = dict(cursors or {})
        self._written = dict(written or {})
        self._pending: dict[str, str] = {}
        self._deferred: dict[str, tuple[str, Callable[[int, int], str]]] = {}

    @classmethod
    def read(cls, con: duckdb.DuckDBPyConnection, source: str) -> "SourceState":
        rows = con.execute("select stream, cursor, updated_at from source_cursors "
                           "where source = ?", [source]).fetchall()
        return cls(source, {s: c for s, c, _ in rows}, {s: w for s, _, w in rows})

    def get(self, stream: str, default: str | None = None) -> str | None:
        """The cursor of the last committed load (not the pending one)."""
        return self._committed.get(stream, default)

    def written_at(self, stream: str) -> datetime | None:
        """When the last committed load wrote the stream's cursor."""
        return self._written.get(stream)

    def advance(self, stream: str, cursor: str | Callable[[int, int], str], *,
                rows_of: str | None = None) -> None:
        """Propose a new cursor; it is written only if the load that follows commits.
        A cursor that depends on what the loader made of an entity's rows (a file's row
        count, known only once the loader has read it) is a function of the rows it read
        and of how many of them it set aside for an unknown learner, course or enrolment,
        with `rows_of` naming the entity."""
        if rows_of is not None:
            self._deferred[stream] = (rows_of, cursor)
            self._pending.pop(stream, None)
        else:
            self._pending[stream] = str(cursor)
            self._deferred.pop(stream, None)

    @property
    def pending(self) -> dict[str, str]:
        return dict(self._pending)

    def write(self, con: duckdb.DuckDBPyConnection, load_id: str,
              rows: dict[str, int] | None = None, waiting: dict[str, int] | None = None) -> None:
        """Called by the loader inside its transaction, with the rows it read per entity
        and those it set aside for an unknown learner, course or enrolment."""
        for stream, (entity, cursor) in self._deferred.items():
            self._pending[stream] = str(cursor((rows or {})[entity], (waiting or {}).get(entity, 0)))
        self._deferred.clear()
        now = clock.now()
        if self._pending:
            # every stream's cursor in one statement (a file connector has one per file:
            # a statement each took 2-6 ms of every sync)
            rows = list(self._pending.items())
            con.execute(
                "insert or replace into source_cursors (source, stream, cursor, load_id, updated_at) "
                "values " + ", ".join(["(?, ?, ?, ?, ?)"] * len(rows)),
                [v for stream, cursor in rows for v in (self.source, stream, cursor, load_id, now)]
            ).fetchall()
        self._committed.update(self._pending)
        self._pending.clear()
