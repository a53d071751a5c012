"""What a person records at the desk, written to `follow_up_actions` (one row each, never
updated: a later row supersedes). The engine reads them on its next run
(engine/sql/audience.sql: a recent contact pauses automated messages, `stopping` is a
withdrawal) and the daily lists leave the learner off for a while (team/daily_list.sql)."""

from __future__ import annotations

import uuid
from datetime import date

import duckdb

from relance import clock

CHANNELS = ("phone", "mail", "video")
OUTCOMES = ("back_on_track", "will_resume", "stopping", "no_answer")
MAX_NOTE = 2000


class ActionError(ValueError):
    """A form that cannot be recorded; the message is a key of the desk's words."""


def _date(text: str | None, field: str) -> date:
    try:
        return date.fromisoformat((text or "").strip())
    except ValueError:
        raise ActionError(f"{field}_date") from None


def record_contact(con: duckdb.DuckDBPyConnection, *, learner_id: str, course_id: str,
                   actor: str, channel: str, outcome: str, note: str = "",
                   resume_on: str | None = None, campaign_id: str | None = None) -> str:
    if channel not in CHANNELS:
        raise ActionError("bad_channel")
    if outcome not in OUTCOMES:
        raise ActionError("bad_outcome")
    resume = _date(resume_on, "resume") if outcome == "will_resume" else None
    if resume is not None and resume <= clock.now().date():
        raise ActionError("resume_past")
    return _insert(con, learner_id, course_id, campaign_id, actor, "contact", channel, outcome,
                   resume, None, note)


def snooze(con: duckdb.DuckDBPyConnection, *, learner_id: str, course_id: str, actor: str,
           until: str, note: str = "") -> str:
    day = _date(until, "snooze")
    if day <= clock.now().date():
        raise ActionError("snooze_past")
    return _insert(con, learner_id, course_id, None, actor, "snooze", None, None, None, day, note)


def _insert(con, learner_id, course_id, campaign_id, actor, kind, channel, outcome, resume,
            until, note) -> str:
    note = (note or "").strip()
    if len(note) > MAX_NOTE:
        raise ActionError("note_long")
    action_id = uuid.uuid4().hex
    now = clock.now()
    con.execute("insert into follow_up_actions (action_id, learner_id, course_id, campaign_id, "
                "actor_email, kind, channel, outcome, resume_on, snooze_until, note, "
                "occurred_at, recorded_at) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [action_id, learner_id, course_id, campaign_id, actor, kind, channel, outcome,
                 resume, until, note or None, now, now]).fetchall()
    return action_id
