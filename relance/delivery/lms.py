"""For the LMS message channels (moodle, canvas): each rendered message of a batch gets its
learner's user id in the channel's source (lms_accounts, written by that source's syncs), in
one query for the batch. A learner the source never listed gets none: the channel fails that
message, saying to sync the source (retried by the next delivery)."""

from __future__ import annotations

from dataclasses import replace

import duckdb

from relance.channels import OutgoingMessage


def with_accounts(con: duckdb.DuckDBPyConnection, batch: list[OutgoingMessage],
                  source: str) -> list[OutgoingMessage]:
    found = dict(con.execute(
        "select m.message_id, a.lms_user_id from messages m "
        "join lms_accounts a on a.learner_id = m.learner_id and a.source = ? "
        "where m.message_id in (select unnest(?::varchar[]))",
        [source, [m.message_id for m in batch]]).fetchall())
    return [replace(m, lms_user_id=found.get(m.message_id)) for m in batch]
