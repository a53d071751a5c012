"""Running a campaign's `tests:` block: its example learners in a throwaway warehouse,
evaluated by the real engine (the same SQL as production), compared with what the designer
expected.

Examples never disturb each other (a course calendar that gives one learner three overdue
activities must not give them to all), yet the engine runs once for all of a campaign's
examples, not once each: an evaluation of a handful of learners costs what DuckDB takes to
plan its statements (about 20 ms each, whatever the rows), so eleven examples evaluated
one by one took eleven times what one pass takes. In one pass, each example has what it
could share made its own: its own copy of each course (`anglais-b2~3`: its dates, its
calendar, its overdue activities; the campaign's audience names every copy), its own
learner id, and an unsubscribed example its own address (`learner+t11@example.org`, so
that its suppression reaches nobody else). Examples that cannot be kept apart that way run
in passes of their own (`batches`): another moment (`as_of`), a learner id met twice (two
examples given one, or given another's generated id), a shared address that cannot be told
apart, or an `audience.where` that reads the course or the address. Unless the example
says `first_run: true`, the campaign also runs a week before, as it would in production:
what was due then is recorded as sent, and milestones and activities count from then on
(`first_run` examples are written after that run, so it never sees them).

The warehouse is in memory; a `Scratch` serves pass after pass, each in a transaction
rolled back after it (building one is 15 migrations, a quarter of a second).
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
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
from relance.campaign.model import Audience
from relance.campaign.problems import CampaignError, Problem
from relance.campaign.values import email_problem

PREVIOUS_RUN = "previous-week"
SOURCE = "relance-test"
COMPARED = ("stage", "message", "send", "reason", "follow_up")
# what an `audience.where` may read that a pass of several examples makes each its own
_NAMESPACED_COLUMNS = re.compile(r"\b(course_id|email)\b", re.IGNORECASE)


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
    """One in-memory warehouse for pass after pass, each in a transaction rolled back
    after it: what it wrote, what its runs recorded, the engine's temp tables, all gone, as
    if the warehouse were new."""

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
    """The examples `jobs` names (campaign, index), as run_case would give them, yielded in
    the order of `jobs`. Each campaign's examples are evaluated together (`batches`), the
    passes on `workers` scratch warehouses in as many threads (DuckDB runs a query without
    Python's lock, so two passes use two cores). An example that raises (a CampaignError
    about its `given`) raises here, in its turn."""
    local = threading.local()
    made: list[Scratch] = []
    guard = threading.Lock()

    def one(loaded: LoadedCampaign, batch: list[int]) -> list[CaseResult | Exception]:
        if not hasattr(local, "scratch"):
            local.scratch = Scratch()
            with guard:
                made.append(local.scratch)
        return run_batch(loaded, batch, local.scratch)

    # consecutive jobs of one campaign, cut into passes
    groups: list[tuple[LoadedCampaign, list[int]]] = []
    for loaded, index in jobs:
        if groups and groups[-1][0] is loaded:
            groups[-1][1].append(index)
        else:
            groups.append((loaded, [index]))
    passes = [(loaded, batch) for loaded, indexes in groups for batch in batches(loaded, indexes)]
    pool = ThreadPoolExecutor(max(1, min(workers, len(passes))), thread_name_prefix="relance-test")
    futures = {}
    for loaded, batch in passes:
        future = pool.submit(one, loaded, batch)
        for index in batch:
            futures[(id(loaded), index)] = (future, batch.index(index))
    try:
        for loaded, index in jobs:
            future, k = futures[(id(loaded), index)]
            outcome = future.result()[k]
            if isinstance(outcome, Exception):
                raise outcome
            yield outcome
    finally:
        for future, _ in futures.values():
            future.cancel()
        pool.shutdown(wait=True)
        for fresh in made:
            fresh.close()


def run_all(loaded: LoadedCampaign) -> list[CaseResult]:
    return list(run_in_order([(loaded, i) for i in range(len(cases(loaded)))], workers=1))


def run_case(loaded: LoadedCampaign, index: int, fresh: Scratch | None = None) -> CaseResult:
    """Example `index` alone in a warehouse: `fresh`'s, rolled back after it, or a new one."""
    outcome = run_batch(loaded, [index], fresh)[0]
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def batches(loaded: LoadedCampaign, indexes: list[int]) -> list[list[int]]:
    """The examples `indexes`, cut into passes of examples that can share a warehouse (see
    the module's docstring): those at the same moment, with distinct learner ids, whose
    unsubscribed addresses can be made their own. Every example alone when the campaign's
    audience (or one it excludes) reads the course or the address in its `where`."""
    audiences = [loaded.campaign.audience, *loaded.excluded.values()]
    if any(a.where and _NAMESPACED_COLUMNS.search(a.where) for a in audiences):
        return [[i] for i in indexes]
    passes: list[tuple[datetime, set[str], set[str], set[str], list[int]]] = []
    for index in indexes:
        case = cases(loaded)[index]
        try:
            lid = learner_id_for(loaded, index)
        except CampaignError:
            passes.append((None, set(), set(), set(), [index]))    # it raises, alone
            continue
        as_of = moment(loaded, case)
        email = (case.given.email or "").lower()
        # the address its suppression names: its own (tagged), or one others may have
        suppressed = set()
        if case.given.unsubscribed and case.given.email:
            suppressed = {(_tagged(case.given.email, index) or email).lower()}
        for when, ids, emails, blocked, members in passes:
            if (when == as_of and lid not in ids and email not in blocked
                    and not suppressed & emails):
                break
        else:
            passes.append((as_of, set(), set(), set(), []))
            when, ids, emails, blocked, members = passes[-1]
        ids.add(lid)
        emails.add(email)
        blocked.update(suppressed)
        members.append(index)
    return [members for *_, members in passes]


def _tagged(email: str | None, index: int) -> str | None:
    """`email` made the example's own (`name+t<n>@domain`), when both are addresses the
    engine accepts alike (values.email_problem is the engine's rule); else None."""
    if not email or email_problem(email) is not None:
        return None
    local, _, domain = email.rpartition("@")
    tagged = f"{local}+t{index + 1}@{domain}"
    return tagged if email_problem(tagged) is None else None


def run_batch(loaded: LoadedCampaign, indexes: list[int],
              fresh: Scratch | None = None) -> list[CaseResult | Exception]:
    """Examples `indexes` (one pass of `batches`) evaluated together in a warehouse:
    `fresh`'s, rolled back after, or a new one. Per example, its result, or the
    CampaignError its `given` raises (such an example is left out of the pass). Should the
    engine fail on the pass, each example runs alone, so that the error is the one it
    would meet alone."""
    examples: list[_Example | CampaignError] = []
    together = len(indexes) > 1
    for index in indexes:
        try:
            examples.append(_example(loaded, index, together))
        except CampaignError as exc:
            examples.append(exc)
    good = [x for x in examples if isinstance(x, _Example)]
    results: dict[int, CaseResult | Exception] = {}
    if good:
        try:
            results = _evaluate(loaded, good, fresh)
        except Exception as exc:
            for x in good:
                results[x.index] = _alone(loaded, x.index, fresh) if together else exc
    return [results[x.index] if isinstance(x, _Example) else x for x in examples]


def _alone(loaded: LoadedCampaign, index: int, fresh: Scratch | None) -> CaseResult | Exception:
    try:
        return run_case(loaded, index, fresh)
    except Exception as exc:
        return exc


def _evaluate(loaded: LoadedCampaign, examples: list[_Example],
              fresh: Scratch | None) -> dict[int, CaseResult]:
    as_of = examples[0].as_of
    earlier = [x for x in examples if not x.case.first_run]
    later = [x for x in examples if x.case.first_run]
    con = fresh.con if fresh else warehouse.connect(":memory:")
    if fresh:
        con.execute("begin transaction")
    try:
        _write(con, earlier)
        # (the managers' digests change no learner's decision, and no example looks at them)
        if earlier:
            previous = engine.evaluate(con, _own_courses(loaded, earlier),
                                       as_of - timedelta(days=7), with_digests=False)
            engine.persist(previous, PREVIOUS_RUN)
            # what last week's run planned went out last week (delivery is not under test)
            con.execute("update messages set status = 'sent', sent_at = not_before, attempts = 1 "
                        "where run_id = ?", [PREVIOUS_RUN]).fetchall()
        # `first_run` examples, unseen by last week's run
        _write(con, later)
        engine.evaluate(con, _own_courses(loaded, examples), as_of, with_digests=False)
        return {x.index: _compare(loaded, x.index, x.case, as_of, con, x.learner_id)
                for x in examples}
    finally:
        if fresh:
            con.execute("rollback")
        else:
            con.close()


def _own_courses(loaded: LoadedCampaign, examples: list[_Example]) -> LoadedCampaign:
    """The campaign as `examples` see it: its audience (and those it excludes) naming each
    example's copy of each course (the campaign itself for an example alone)."""
    suffixes = [x.suffix for x in examples]
    if not any(suffixes):
        return loaded

    def own(audience: Audience) -> Audience:
        if audience.course is None:
            return audience
        return audience.model_copy(update={"course": [c + s for c in audience.course
                                                      for s in suffixes]})
    campaign = loaded.campaign.model_copy(update={"audience": own(loaded.campaign.audience)})
    return dataclasses.replace(loaded, campaign=campaign,
                               excluded={k: own(a) for k, a in loaded.excluded.items()})


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


@dataclass
class _Example:
    """One example as rows of the warehouse's tables (`_example`), written by `_write`."""
    index: int
    case: CampaignTest
    as_of: datetime
    learner_id: str
    suffix: str                         # what makes its courses its own ('' alone)
    rows: dict[str, list[list]] = field(default_factory=dict)


# the rows `_write` inserts, per table (`now()` is the loaded_at/updated_at column)
_INSERTS = {
    "courses": ("insert into courses values", "(?, ?, ?, ?, ?, ?, ?, now())", ""),
    "activities": ("insert into activities values",
                   "(?, ?, ?, 'quiz', null, null, ?, ?, ?, null, ?, now())",
                   " on conflict do nothing"),
    "learners": ("insert into learners values", "(?, ?, ?, 'Exemple', ?, ?, null, ?, now())", ""),
    "enrolments": ("insert into enrolments values", "(?, ?, ?, ?, ?, ?, null, ?, now())", ""),
    "progress_events": ("insert into progress_events values",
                        "(?, ?, ?, ?, ?, ?, ?, ?, now())", ""),
    "suppressions": ("insert into suppressions values", "(?, null, 'unsubscribed', ?, ?)", ""),
}


def _example(loaded: LoadedCampaign, index: int, together: bool) -> _Example:
    """Example `index` as rows: the learner, their courses and calendar, enrolment, events
    (a CampaignError when its `given` cannot be); `together`, made its own for a pass
    shared with other examples."""
    campaign = loaded.campaign
    case = cases(loaded)[index]
    g = case.given
    as_of = moment(loaded, case)
    lid = learner_id_for(loaded, index)
    suffix = f"~{index + 1}" if together else ""
    x = _Example(index, case, as_of, lid, suffix, {table: [] for table in _INSERTS})
    email = g.email
    if together and g.unsubscribed:
        email = _tagged(g.email, index) or g.email     # untaggable: a pass of its own
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
        field_ = "last_active_at" if g.last_active_at else "inactive_days"
        raise CampaignError([_problem(loaded, index, ("given", field_),
                                      "the last activity must fall between the enrolment and "
                                      "the test's as_of")])
    due = as_of - timedelta(minutes=1)
    if g.overdue and due.date() <= enrolled_at.date():
        raise CampaignError([_problem(loaded, index, ("given", "overdue"),
                                      "needs enrolled_days of 1 or more, so that activities "
                                      "could fall due since enrolment")])
    starts_on = (today - timedelta(days=7 * (g.course_week - 1)) if g.course_week
                 else enrolled_at.astimezone(tz).date())
    ends_on = (today + timedelta(days=g.days_left) if g.days_left is not None
               else max(starts_on + timedelta(weeks=26), today + timedelta(weeks=8)))
    own = course_id + suffix
    # every course the audience names exists (the engine checks), the learner's with its dates
    for course in dict.fromkeys([course_id] + (campaign.audience.course or [])):
        x.rows["courses"].append([course + suffix, f"Cours {course}",
                                  f"https://lms.example/{course}",
                                  f"https://lms.example/{course}/forum", starts_on, ends_on,
                                  SOURCE])
    calendar = x.rows["activities"]
    # and so does every activity a message is triggered by
    for msg in campaign.messages.values():
        for activity in msg.on_activity or []:
            calendar.append(_activity(own, activity, None, required=False))
    x.rows["learners"].append([lid, email, g.first_name, g.locale or campaign.locale,
                               g.timezone or campaign.timezone, SOURCE])
    progressed = (as_of - timedelta(days=g.stalled_days) if g.stalled_days is not None
                  else last_active)
    completed_at = progressed if g.completed else None
    x.rows["enrolments"].append([lid, own, cohort, enrolled_at,
                                 "completed" if g.completed else "enrolled", completed_at, SOURCE])
    # Overdue: that many required activities that fell due since enrolment, not done.
    for n in range(g.overdue):
        calendar.append(_activity(own, f"overdue-{n + 1}", due, required=True))
    # Activities done are outside the required work, so they leave `progress` as given.
    for activity in g.activities_done:
        calendar.append(_activity(own, activity, None, required=False))
    # an activity listed twice is the first one (the table's key is course and activity)
    x.rows["activities"] = list({(r[0], r[1]): r for r in reversed(calendar)}.values())[::-1]
    events = x.rows["progress_events"]
    if g.started:
        events.append(_event(lid, own, None, "accessed", last_active, None))
        if g.progress or g.stalled_days is not None:
            events.append(_event(lid, own, None, "progressed", progressed, g.progress / 100))
        for activity in g.activities_done:
            events.append(_event(lid, own, activity, "completed", progressed, None))
    if g.unsubscribed and email:
        x.rows["suppressions"].append([email, SOURCE, as_of - timedelta(days=1)])
    return x


def _write(con, examples: list[_Example]) -> None:
    """The examples' rows, one INSERT per table."""
    for table, (head, values, tail) in _INSERTS.items():
        rows = [row for x in examples for row in x.rows[table]]
        if rows:
            con.execute(f"{head} {', '.join([values] * len(rows))}{tail}",
                        [v for row in rows for v in row]).fetchall()


def _aware(moment: datetime, default_tz: str) -> datetime:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zoneinfo.ZoneInfo(default_tz))
    return moment.astimezone(timezone.utc)


def _activity(course_id: str, activity_id: str, due_at, *, required: bool) -> list:
    return [course_id, activity_id, f"Activité {activity_id}", due_at,
            1.0 if required else 0.0, required, SOURCE]


def _event(lid, course_id, activity_id, verb, at, progress) -> list:
    return [f"{lid}-{verb}-{activity_id}", lid, course_id, activity_id, verb, at, progress,
            SOURCE]
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
