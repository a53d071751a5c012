"""Running a campaign's `tests:` block: each example learner in a throwaway warehouse,
evaluated by the real engine (the same SQL as production), compared with what the designer
expected.

Each example has the warehouse to itself, so examples never disturb each other (a course
calendar that gives one learner three overdue activities would give them to all): an
in-memory warehouse, where the example runs in a transaction rolled back after it when a
`Scratch` serves several (building one is 15 migrations, a quarter of a second an
example). Unless the example says
`first_run: true`, the campaign also runs a week before, as it would in production: what
was due then is recorded as sent, and milestones and activities count from then on.
"""

from __future__ import annotations

import hashlib
import threading
import zoneinfo
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Iterator

import warehouse
from relance import engine
from relance.campaign.testcases import NONE, CampaignTest
from relance.campaign.loaded import LoadedCampaign
from relance.campaign.problems import CampaignError, Problem

PREVIOUS_RUN = "previous-week"
SOURCE = "relance-test"
COMPARED = ("stage", "message", "send", "reason", "follow_up")


@dataclass
class CaseResult:
    campaign_id: str
    index: int
    name: str
    location: str                      # file:line of the example, for the failure report
    as_of: datetime
    expected: dict[str, str] = field(default_factory=dict)
    actual: dict[str, str] = field(default_factory=dict)
    measures: dict[str, object] = field(default_factory=dict)

    @property
    def mismatches(self) -> list[str]:
        return [k for k, v in self.expected.items() if self.actual.get(k) != v]

    @property
    def passed(self) -> bool:
        return not self.mismatches


def cases(loaded: LoadedCampaign) -> list[CampaignTest]:
    tests = loaded.campaign.tests
    return list(tests.cases) if tests else []


class Scratch:
    """One in-memory warehouse for example after example, each in a transaction rolled
    back after it: what it wrote, what its runs recorded, the engine's temp tables, all
    gone, as if the warehouse were new."""

    def __init__(self):
        self.con = warehouse.connect(":memory:")

    def close(self) -> None:
        self.con.close()


@contextmanager
def scratch():
    """A Scratch for a series of examples (run_case's `fresh`), closed at the end."""
    fresh = Scratch()
    try:
        yield fresh
    finally:
        fresh.close()


def run_in_order(jobs: list[tuple[LoadedCampaign, int]], workers: int = 2) -> Iterator[CaseResult]:
    """The examples `jobs` names (campaign, index), each as run_case runs it, on `workers`
    scratch warehouses in as many threads (DuckDB runs a query without Python's lock, so
    two examples' evaluations use two cores), yielded in the order of `jobs` as they
    finish. An example that raises (a CampaignError about its `given`) raises here, in
    its turn."""
    local = threading.local()
    made: list[Scratch] = []
    guard = threading.Lock()

    def one(job: tuple[LoadedCampaign, int]) -> CaseResult:
        if not hasattr(local, "scratch"):
            local.scratch = Scratch()
            with guard:
                made.append(local.scratch)
        return run_case(job[0], job[1], local.scratch)

    pool = ThreadPoolExecutor(max(1, min(workers, len(jobs))), thread_name_prefix="relance-test")
    futures = [pool.submit(one, job) for job in jobs]
    try:
        for future in futures:
            yield future.result()
    finally:
        for future in futures:
            future.cancel()
        pool.shutdown(wait=True)
        for fresh in made:
            fresh.close()


def run_all(loaded: LoadedCampaign) -> list[CaseResult]:
    with scratch() as fresh:
        return [run_case(loaded, i, fresh) for i in range(len(cases(loaded)))]


def run_case(loaded: LoadedCampaign, index: int, fresh: Scratch | None = None) -> CaseResult:
    """Example `index` in a warehouse of its own: `fresh`'s, rolled back after it, or a new one."""
    case = cases(loaded)[index]
    as_of = moment(loaded, case)
    con = fresh.con if fresh else warehouse.connect(":memory:")
    if fresh:
        con.execute("begin transaction")
    try:
        learner_id = build(con, loaded, index, as_of)
        # (the managers' digests change no learner's decision, and no example looks at them)
        if not case.first_run:
            previous = engine.evaluate(con, loaded, as_of - timedelta(days=7), with_digests=False)
            engine.persist(previous, PREVIOUS_RUN)
            # what last week's run planned went out last week (delivery is not under test)
            con.execute("update messages set status = 'sent', sent_at = not_before, attempts = 1 "
                        "where run_id = ?", [PREVIOUS_RUN]).fetchall()
        engine.evaluate(con, loaded, as_of, with_digests=False)
        return _compare(loaded, index, case, as_of, con, learner_id)
    finally:
        if fresh:
            con.execute("rollback")
        else:
            con.close()


def moment(loaded: LoadedCampaign, case: CampaignTest) -> datetime:
    when = case.as_of or loaded.campaign.tests.as_of
    if when.tzinfo is None:
        when = when.replace(tzinfo=zoneinfo.ZoneInfo(loaded.campaign.timezone))
    return when.astimezone(timezone.utc)


def learner_id_for(loaded: LoadedCampaign, index: int) -> str:
    """The example's learner id: its own, or the first `T<n>-<k>` whose control-group draw
    (the engine's: md5 of campaign and learner, stages.sql) puts it where the example says."""
    case = cases(loaded)[index]
    if case.given.id:
        return case.given.id
    share = loaded.campaign.control_group
    for k in range(1000):
        candidate = f"T{index + 1}-{k}"
        draw = int(hashlib.md5(f"{loaded.id}:{candidate}".encode()).hexdigest()[:8], 16)
        if (draw / 4294967296.0 * 100 < share) == case.given.control_group:
            return candidate
    raise CampaignError([_problem(loaded, index, ("given", "control_group"),
                                  "found no learner id on that side of the control group")])


def _problem(loaded: LoadedCampaign, index: int, loc: tuple, text: str) -> Problem:
    full = ("tests", "cases", index) + loc
    from relance.campaign.problems import display, dotted
    probe = full
    while probe and probe not in loaded.columns:
        probe = probe[:-1]
    column = loaded.columns[probe][1] if probe else None
    return Problem(display(loaded.path), loaded.line_of(full), dotted(full), text, column)


def build(con, loaded: LoadedCampaign, index: int, as_of: datetime) -> str:
    """Write the one learner of example `index`: learner, course and calendar, enrolment,
    events; return their id."""
    campaign = loaded.campaign
    case = cases(loaded)[index]
    g = case.given
    lid = learner_id_for(loaded, index)
    course_id = g.course or (campaign.audience.course or ["course-1"])[0]
    cohort = g.cohort or (campaign.audience.cohort or [None])[0]
    tz = zoneinfo.ZoneInfo(g.timezone or campaign.timezone)
    today = as_of.astimezone(tz).date()
    enrolled_at = (_aware(g.enrolled_at, campaign.timezone) if g.enrolled_at
                   else as_of - timedelta(days=g.enrolled_days))
    last_active = (_aware(g.last_active_at, campaign.timezone) if g.last_active_at
                   else as_of - timedelta(days=g.inactive_days))
    if enrolled_at > as_of:
        raise CampaignError([_problem(loaded, index, ("given", "enrolled_at"),
                                      f"is after the test's as_of ({as_of:%Y-%m-%d %H:%M} UTC): "
                                      "the learner would not be enrolled yet")])
    if g.started and not enrolled_at <= last_active <= as_of:
        field = "last_active_at" if g.last_active_at else "inactive_days"
        raise CampaignError([_problem(loaded, index, ("given", field),
                                      "the last activity must fall between the enrolment and "
                                      "the test's as_of")])
    starts_on = (today - timedelta(days=7 * (g.course_week - 1)) if g.course_week
                 else enrolled_at.astimezone(tz).date())
    ends_on = (today + timedelta(days=g.days_left) if g.days_left is not None
               else max(starts_on + timedelta(weeks=26), today + timedelta(weeks=8)))
    # every course the audience names exists (the engine checks), the learner's with its dates
    for course in dict.fromkeys([course_id] + (campaign.audience.course or [])):
        con.execute("insert into courses values (?, ?, ?, ?, ?, ?, ?, now())",
                    [course, f"Cours {course}", f"https://lms.example/{course}",
                     f"https://lms.example/{course}/forum", starts_on, ends_on, SOURCE]).fetchall()
    # and so does every activity a message is triggered by
    for msg in campaign.messages.values():
        for activity in msg.on_activity or []:
            _activity(con, course_id, activity, None, required=False)
    con.execute("insert into learners values (?, ?, ?, 'Exemple', ?, ?, null, ?, now())",
                [lid, g.email, g.first_name, g.locale or campaign.locale,
                 g.timezone or campaign.timezone, SOURCE]).fetchall()
    progressed = (as_of - timedelta(days=g.stalled_days) if g.stalled_days is not None
                  else last_active)
    completed_at = progressed if g.completed else None
    con.execute("insert into enrolments values (?, ?, ?, ?, ?, ?, null, ?, now())",
                [lid, course_id, cohort, enrolled_at, "completed" if g.completed else "enrolled",
                 completed_at, SOURCE]).fetchall()
    # Overdue: that many required activities that fell due since enrolment, not done.
    due = as_of - timedelta(minutes=1)
    if g.overdue and due.date() <= enrolled_at.date():
        raise CampaignError([_problem(loaded, index, ("given", "overdue"),
                                      "needs enrolled_days of 1 or more, so that activities "
                                      "could fall due since enrolment")])
    for n in range(g.overdue):
        _activity(con, course_id, f"overdue-{n + 1}", due, required=True)
    # Activities done are outside the required work, so they leave `progress` as given.
    for activity in g.activities_done:
        _activity(con, course_id, activity, None, required=False)
    if g.started:
        _event(con, lid, course_id, None, "accessed", last_active, None)
        if g.progress or g.stalled_days is not None:
            _event(con, lid, course_id, None, "progressed", progressed, g.progress / 100)
        for activity in g.activities_done:
            _event(con, lid, course_id, activity, "completed", progressed, None)
    if g.unsubscribed and g.email:
        con.execute("insert into suppressions values (?, null, 'unsubscribed', ?, ?)",
                    [g.email, SOURCE, as_of - timedelta(days=1)]).fetchall()
    return lid


def _aware(moment: datetime, default_tz: str) -> datetime:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zoneinfo.ZoneInfo(default_tz))
    return moment.astimezone(timezone.utc)


def _activity(con, course_id: str, activity_id: str, due_at, *, required: bool) -> None:
    con.execute("insert into activities values (?, ?, ?, 'quiz', null, null, ?, ?, ?, null, ?, "
                "now()) on conflict do nothing",
                [course_id, activity_id, f"Activité {activity_id}", due_at,
                 1.0 if required else 0.0, required, SOURCE]).fetchall()


def _event(con, lid, course_id, activity_id, verb, at, progress) -> None:
    con.execute("insert into progress_events values (?, ?, ?, ?, ?, ?, ?, ?, now())",
                [f"{lid}-{verb}-{activity_id}", lid, course_id, activity_id, verb, at, progress,
                 SOURCE]).fetchall()


def _compare(loaded, index, case: CampaignTest, as_of, con, learner_id) -> CaseResult:
    from relance.campaign.problems import display
    line = loaded.line_of(("tests", "cases", index))
    result = CaseResult(loaded.id, index, case.name, f"{display(loaded.path)}:{line}", as_of)
    result.expected = {k: getattr(case.expect, k) for k in COMPARED
                       if getattr(case.expect, k) is not None}
    rows = con.execute(
        "select stage, message_key, outcome, reason, progress, inactive_days, enrolled_days, "
        "stalled_days, overdue, course_week, is_started, is_completed, is_holdout, not_before "
        "from eval_decisions where learner_id = ?", [learner_id]).fetchall()
    if not rows:
        result.actual = {k: "(not in the audience)" for k in COMPARED}
        return result
    (stage, message, outcome, reason, progress, inactive, enrolled, stalled, overdue, week,
     started, completed, holdout, not_before) = rows[0]
    sends = outcome in ("planned", "deferred")
    follow = con.execute("select rule from eval_follow_ups where learner_id = ?",
                         [learner_id]).fetchall()
    result.actual = {
        "stage": stage or NONE,
        "message": message if sends else NONE,
        "reason": NONE if sends else (reason or "").split(":")[0],
        "follow_up": follow[0][0] if follow else NONE,
        "send": {"planned": "now", "deferred": "later"}.get(outcome, NONE),
    }
    result.measures = {
        "learner": learner_id, "progress": f"{progress:g}%", "inactive_days": inactive,
        "enrolled_days": enrolled, "stalled_days": stalled, "overdue": overdue,
        "course_week": week, "started": started, "completed": completed,
        "control group": holdout,
        "outcome": (f"{outcome} ({not_before:%a %d %b %H:%M} UTC)"
                    if outcome == "deferred" and not_before else outcome),
    }
    return result
