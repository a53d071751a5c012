"""Messages whose fate is unknown: handed to a provider that never answered (a crash
mid-request, a dropped connection). They are never resent blindly: a person checks the
provider's activity log and confirms them (accepted: 'sent') or resends them ('planned'
again); a SendGrid event about one (processed, delivered...) confirms it by itself."""

from __future__ import annotations

from relance import clock


import duckdb
import pyarrow as pa


def pending(con: duckdb.DuckDBPyConnection, campaign_id: str | None = None) -> list[tuple]:
    """(message_id, campaign_id, learner_id, to_email, channel, planned_at, error) of each
    uncertain message, oldest first."""
    return con.execute(
        "select message_id, campaign_id, learner_id, to_email, channel, planned_at, error "
        "from messages where status = 'uncertain' and (? is null or campaign_id = ?) "
        "order by planned_at, message_id", [campaign_id, campaign_id]).fetchall()


def resolve(con: duckdb.DuckDBPyConnection, message_ids: list[str], *, accepted: bool,
            by: str) -> int:
    """Confirm (accepted: sent) or plan again (not accepted) these uncertain messages;
    returns how many changed. Messages that are not uncertain are left alone."""
    con.register("resolved_ids", pa.table({"message_id": pa.array(message_ids, pa.string())}))
    try:
        rows = con.execute(
            "update messages set status = ?, sent_at = case when ? then ? end, error = ? "
            "where status = 'uncertain' and message_id in (select message_id from resolved_ids) "
            "returning message_id",
            ["sent" if accepted else "planned", accepted, clock.now(),
             f"was uncertain; {'confirmed sent' if accepted else 'planned again'} by {by}"]).fetchall()
    finally:
        con.unregister("resolved_ids")
    return len(rows)
