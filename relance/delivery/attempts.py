"""The ledger's side of a send: each chunk handed to a provider is first recorded in
`send_attempts` as in flight (and committed), its verdicts and the attempt's end are written
together, and what a dead delivery left in flight becomes 'uncertain' (recover.sql), unless
the channel recognises what it already delivered.
"""

from __future__ import annotations

import os
import secrets
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pyarrow as pa

from relance.channels import Channel, OutgoingMessage, SendResult
from warehouse import transaction

HERE = Path(__file__).parent


def _sql(name: str) -> str:
    return (HERE / f"{name}.sql").read_text(encoding="utf-8")


def recover_in_flight(con: duckdb.DuckDBPyConnection, campaign_id: str, channel: Channel) -> int:
    """Attempts a dead delivery left in flight: their messages become 'uncertain', unless
    the channel recognises what it already delivered (then they are simply sent again).
    Returns how many messages became uncertain."""
    with transaction(con):
        resend = channel.name if getattr(channel, "recognises_resends", False) else ""
        rows = con.execute(_sql("recover"), {"campaign_id": campaign_id,
                                              "resend_channel": resend}).fetchall()
        con.execute(
            "update send_attempts set state = case when channel = ? then 'abandoned' "
            "else 'uncertain' end, finished_at = ? where campaign_id = ? and state = 'in_flight'",
            [resend, datetime.now(timezone.utc), campaign_id]).fetchall()
    return len(rows)


def begin_attempt(con: duckdb.DuckDBPyConnection, campaign_id: str, channel_name: str,
                   chunk: list[OutgoingMessage]) -> str:
    """Record (and commit) that this chunk is about to be handed to the provider."""
    attempt_id = f"{campaign_id}-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{secrets.token_hex(4)}"
    members = pa.table({"attempt_id": [attempt_id] * len(chunk),
                        "message_id": [m.message_id for m in chunk]})
    con.register("attempt_members", members)
    try:
        with transaction(con):
            con.execute("insert into send_attempts (attempt_id, campaign_id, channel, started_at, "
                        "state, n_messages, pid) values (?, ?, ?, ?, 'in_flight', ?, ?)",
                        [attempt_id, campaign_id, channel_name, datetime.now(timezone.utc),
                         len(chunk), os.getpid()])
            con.execute("insert into send_attempt_messages select * from attempt_members")
    finally:
        con.unregister("attempt_members")
    return attempt_id


def record(con: duckdb.DuckDBPyConnection, results: list[SendResult], subjects: dict[str, str],
           now: datetime, attempt_id: str | None = None) -> None:
    """The verdicts in the ledger and, with them in the same transaction, the attempt's end.
    `now` is the delivery's moment: what was sent is sent then (`sent_at`), and when the
    channel really took it is kept beside (`sent_wall_at`)."""
    table = pa.table({
        "message_id": [r.message_id for r in results],
        "status": [r.status for r in results],
        "subject": [subjects.get(r.message_id) for r in results],
        "sent_at": pa.array([r.sent_at for r in results], type=pa.timestamp("us", tz="UTC")),
        "error": [r.error for r in results],
        "provider_message_id": [r.provider_message_id for r in results],
    })
    con.register("delivery_results", table)
    try:
        with transaction(con):
            con.execute(_sql("record"), {"now": now})
            if attempt_id:
                con.execute("update send_attempts set state = 'done', finished_at = ? "
                            "where attempt_id = ?", [datetime.now(timezone.utc), attempt_id])
    finally:
        con.unregister("delivery_results")
