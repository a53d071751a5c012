"""What one learner would get week after week: the real engine replayed as of each Monday
of their course, read-only.

Every Monday (09:00 in the campaign's timezone) from the learner's first week to the end of
the course (or `until`), the campaign is evaluated for this learner alone, its decisions
persisted and what it planned marked as sent, so the next week sees what this one did
(`on_enter` fires once, weekly caps count) — all inside one transaction that is rolled
back. The learner's real ledger entries for this campaign are set aside first, so the
replay starts from a clean slate, as if the campaign had been running since their first week.
"""

from __future__ import annotations

import dataclasses
import zoneinfo
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone

import duckdb

from relance import engine
from relance.delivery import context_rows, outgoing
from relance.campaign.loaded import LoadedCampaign
from relance.workbench.preview import PreviewError
from relance.campaign.reasons import explain
from relance.delivery.rendering import Renderer

MAX_WEEKS = 60


@dataclass
class Week:
    as_of: datetime
    course_week: int | None
    stage: str | None
    progress: float | None
    inactive_days: int | None
    message: str | None
    outcome: str
    reason: str | None
    not_before: datetime | None
    subject: str | None

    @property
    def why(self) -> str:
        return explain(self.reason) if self.reason else ""


def for_learner(loaded: LoadedCampaign, learner_id: str) -> LoadedCampaign:
    """The campaign with its audience narrowed to one learner (same engine, same SQL)."""
    campaign = loaded.campaign
    own = campaign.audience.where
    where = f"({own}) and learner_id = {engine.literal(learner_id)}" if own else \
        f"learner_id = {engine.literal(learner_id)}"
    narrowed = campaign.model_copy(update={"audience": campaign.audience.model_copy(
        update={"where": where})})
    return dataclasses.replace(loaded, campaign=narrowed)


def mondays(con, loaded: LoadedCampaign, learner_id: str, until: datetime) -> list[datetime]:
    campaign = loaded.campaign
    rows = con.execute(
        "select min(greatest(e.enrolled_at, coalesce(c.starts_on::timestamptz, e.enrolled_at))), "
        "max(c.ends_on) from enrolments e join courses c using (course_id) "
        "where e.learner_id = ? and (?::varchar[] is null or list_contains(?, e.course_id))",
        [learner_id, campaign.audience.course, campaign.audience.course]).fetchall()
    start, ends_on = rows[0] if rows else (None, None)
    if start is None:
        raise PreviewError(f"learner {learner_id!r} has no enrolment in the audience of "
                           f"{campaign.id}")
    tz = zoneinfo.ZoneInfo(campaign.timezone)
    local = start.astimezone(tz)
    first = datetime.combine(local.date() + timedelta(days=(7 - local.weekday()) % 7),
                             time(9, 0), tz)
    if first < local:
        first += timedelta(days=7)
    last = until
    if ends_on is not None:
        last = min(last, datetime.combine(ends_on, time(23, 59), tz))
    out = []
    moment = first
    while moment <= last and len(out) < MAX_WEEKS:
        out.append(moment.astimezone(timezone.utc))
        moment += timedelta(days=7)
    return out


def replay(con: duckdb.DuckDBPyConnection, loaded: LoadedCampaign, learner_id: str, *,
           until: datetime) -> list[Week]:
    narrowed = for_learner(loaded, learner_id)
    campaign = loaded.campaign
    weeks = mondays(con, loaded, learner_id, until)
    renderer = Renderer(loaded)
    out: list[Week] = []
    con.execute("begin transaction")
    try:
        for table in ("stage_state", "messages"):
            con.execute(f"delete from {table} where campaign_id = ? and learner_id = ?",
                        [campaign.id, learner_id]).fetchall()
        for n, moment in enumerate(weeks):
            run_id = f"replay-{n}"
            evaluation = engine.evaluate(con, narrowed, moment)
            engine.persist(evaluation, run_id)
            rows = con.execute(
                "select course_week, stage, progress, inactive_days, message_key, outcome, "
                "reason, not_before from eval_decisions where learner_id = ? "
                "order by outcome in ('planned', 'deferred') desc limit 1",
                [learner_id]).fetchall()
            if not rows:
                continue
            week, stage, progress, inactive, message, outcome, reason, not_before = rows[0]
            subject = None
            if outcome in ("planned", "deferred"):
                ids = [r[0] for r in con.execute(
                    "select message_id from messages where run_id = ? and learner_id = ? "
                    "and message_key = ?", [run_id, learner_id, message]).fetchall()]
                if ids:
                    subject = outgoing(loaded, renderer,
                                       context_rows(con, ids, campaign.timezone)[0]).subject
            # what this week planned goes out before next Monday
            con.execute("update messages set status = 'sent', sent_at = not_before, "
                        "attempts = 1 where run_id = ?", [run_id]).fetchall()
            out.append(Week(moment, week, stage, progress, inactive,
                            message if outcome in ("planned", "deferred") else None, outcome,
                            None if outcome in ("planned", "deferred") else reason,
                            not_before, subject))
    finally:
        con.execute("rollback")
    return out
