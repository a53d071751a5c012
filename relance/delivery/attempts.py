"""The ledger's side of a send: each request a provider is handed is first recorded in
`send_attempts` (and committed), its verdicts and the attempt's end are written together,
and what a dead delivery left in flight becomes 'uncertain' (recover.sql), unless the
channel recognises what it already delivered.

A request is recorded 'connecting' before its connection is made and becomes 'in_flight'
once the connection is up, just before its first byte is written, written by the thread
that sends it (`ChunkAttempts.sending`); a request the provider refused as a whole (a 429,
a 5xx, no connection) is recorded as ended, 'refused', before the channel waits to try
again, and the retry is a new attempt. So only a request that may have reached the
provider can leave its messages uncertain: one killed while connecting or waiting to
retry leaves them due again.
"""

from __future__ import annotations

import os
import secrets
import threading
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from relance.channels import Channel, OutgoingMessage, SendResult
from warehouse import run, transaction

HERE = Path(__file__).parent


def _sql(name: str) -> str:
    return (HERE / f"{name}.sql").read_text(encoding="utf-8")


def recover_in_flight(con: duckdb.DuckDBPyConnection, campaign_id: str, channel: Channel) -> int:
    """Attempts a dead delivery left in flight: their messages become 'uncertain', unless
    the channel recognises what it already delivered (then they are simply sent again).
    Attempts it left 'connecting' end 'abandoned': nothing of them left, their messages
    are due as they were. Returns how many messages became uncertain."""
    # almost always none: one look at the campaign's open attempts, rather than the two
    # updates (and their commit) that join the whole ledger of attempts to find nothing
    # (a sixth of an hourly delivery's SQL time in a simulated season)
    if not con.execute("select count(*) from send_attempts where campaign_id = ? "
                       "and state in ('connecting', 'in_flight')", [campaign_id]).fetchall()[0][0]:
        return 0
    with transaction(con):
        resend = channel.name if getattr(channel, "recognises_resends", False) else ""
        rows = con.execute(_sql("recover"), {"campaign_id": campaign_id,
                                              "resend_channel": resend}).fetchall()
        con.execute(_sql("recover_attempts"), {"campaign_id": campaign_id,
                                                "resend_channel": resend,
                                                "now": datetime.now(timezone.utc)}).fetchall()
    return len(rows)


def begin_attempt(con: duckdb.DuckDBPyConnection, campaign_id: str, channel_name: str,
                  chunk: list[OutgoingMessage], state: str = "in_flight") -> str:
    """Record (and commit) that this chunk is about to be handed to the provider: 'in_flight',
    or 'connecting' for a channel that says when its request starts to leave."""
    attempt_id = f"{campaign_id}-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{secrets.token_hex(4)}"
    with transaction(con):
        con.execute("insert into send_attempts (attempt_id, campaign_id, channel, started_at, "
                    "state, n_messages, pid) values (?, ?, ?, ?, ?, ?, ?)",
                    [attempt_id, campaign_id, channel_name, datetime.now(timezone.utc),
                     state, len(chunk), os.getpid()])
        # the ids as one list parameter: no Arrow table registered and unregistered around
        # it (a third of this function's time)
        con.execute("insert into send_attempt_messages select ?, unnest(?::varchar[])",
                    [attempt_id, [m.message_id for m in chunk]])
    return attempt_id


class Writer:
    """The connection request threads write through (a request leaving, a refusal, a
    retry), one at a time: a cursor of the delivery's connection, which its own thread
    keeps using meanwhile (DuckDB: a connection per thread; the rows each writes are its
    own, so they never conflict). Made on the delivery thread."""

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self._cursor = con.cursor()
        self._lock = threading.Lock()

    def __enter__(self) -> duckdb.DuckDBPyConnection:
        self._lock.acquire()
        return self._cursor

    def __exit__(self, *exc) -> None:
        self._lock.release()

    def close(self) -> None:
        self._cursor.close()


class ChunkAttempts:
    """One chunk's requests in the ledger, the `Attempts` its channel reports to. The first
    is begun by the delivery thread before the chunk is handed over: 'connecting' if the
    channel reports (`reports_attempts`), else 'in_flight' at once. The request thread
    writes the rest through `writer`, each before it returns: `sending` (the connection is
    up, the first byte about to leave: 'in_flight', one row updated), a refusal before it
    waits, the retry before it connects. A retry's messages go in with one insert, like
    the first's."""

    def __init__(self, con: duckdb.DuckDBPyConnection, writer: Writer, campaign_id: str,
                 channel_name: str, chunk: list[OutgoingMessage], connecting: bool = True):
        self.writer, self.campaign_id, self.channel_name = writer, campaign_id, channel_name
        self.in_flight = not connecting
        self.attempt_id = begin_attempt(con, campaign_id, channel_name, chunk,
                                        "connecting" if connecting else "in_flight")

    def sending(self) -> None:
        if self.in_flight:          # (an SMTP chunk's second message, say)
            return
        with self.writer as cur:
            cur.execute("update send_attempts set state = 'in_flight' where attempt_id = ?",
                        [self.attempt_id]).fetchall()
        self.in_flight = True

    def refused(self, why: str) -> None:
        with self.writer as cur:
            cur.execute("update send_attempts set state = 'refused', finished_at = ?, note = ? "
                        "where attempt_id = ?",
                        [datetime.now(timezone.utc), why[:1000], self.attempt_id]).fetchall()

    def again(self, messages: list[OutgoingMessage]) -> None:
        with self.writer as cur:
            self.attempt_id = begin_attempt(cur, self.campaign_id, self.channel_name, messages,
                                            "connecting")
        self.in_flight = False


def record(con: duckdb.DuckDBPyConnection, results: list[SendResult], subjects: dict[str, str],
           now: datetime, attempt_id: str | None = None) -> None:
    """The verdicts in the ledger and, with them in the same transaction, the attempt's end.
    `now` is the delivery's moment: what was sent is sent then (`sent_at`), and when the
    channel really took it is kept beside (`sent_wall_at`)."""
    # the verdicts as list parameters: no Arrow table built, registered and unregistered
    # for each request (a quarter of this function's time)
    with transaction(con):
        run(con, _sql("record"), {
            "now": now,
            "ids": [r.message_id for r in results],
            "statuses": [r.status for r in results],
            "subjects": [subjects.get(r.message_id) for r in results],
            "sent_at": [r.sent_at for r in results],
            "errors": [r.error for r in results],
            "provider_ids": [r.provider_message_id for r in results]})
        if attempt_id:
            con.execute("update send_attempts set state = 'done', finished_at = ? "
                        "where attempt_id = ?", [datetime.now(timezone.utc), attempt_id])
