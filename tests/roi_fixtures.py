"""Hand-built cohorts for the ROI tests: a few rows each, with answers known by hand."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import warehouse

T0 = datetime(2026, 1, 5, tzinfo=timezone.utc)        # a Monday: the course starts
CLOCK = datetime(2026, 2, 2, 9, 0, tzinfo=timezone.utc)  # KPI clock: four weeks later


def day(n: float, hour: int = 10) -> datetime:
    return T0 + timedelta(days=n, hours=hour)


class Builder:
    """Inserts rows of the source model, the engine's tables and the ledger."""

    def __init__(self, con=None, *, clock: datetime = CLOCK, course: str = "c1"):
        self.con = con or warehouse.connect(":memory:")
        self.course = course
        self.n_events = 0
        self.con.execute("insert or replace into warehouse_meta values ('kpi_as_of', ?)",
                         [clock.isoformat()]).fetchall()
        self.con.execute(
            "insert into courses values (?, 'Cours', null, null, ?, ?, 'test', now())",
            [course, T0.date(), (T0 + timedelta(weeks=12)).date()]).fetchall()

    def activity(self, activity_id: str, *, kind: str = "quiz", due: datetime | None = None,
                 week: int = 1) -> None:
        self.con.execute(
            "insert into activities values (?, ?, ?, ?, ?, null, ?, 1, true, null, 'test', now())",
            [self.course, activity_id, activity_id, kind, week, due]).fetchall()

    def learner(self, lid: str, *, enrolled: datetime = T0, status: str = "enrolled",
                completed_at: datetime | None = None, withdrawn_at: datetime | None = None,
                cohort: str = "2026-01", events: tuple = ()) -> str:
        self.con.execute(
            "insert into learners values (?, ?, 'Zoé', 'Lefèvre', 'fr', 'Europe/Paris', null, "
            "'test', now()) on conflict do nothing", [lid, f"{lid.lower()}@example.org"]).fetchall()
        self.con.execute(
            "insert into enrolments values (?, ?, ?, ?, ?, ?, ?, 'test', now())",
            [lid, self.course, cohort, enrolled, status, completed_at, withdrawn_at]).fetchall()
        for when in events:
            self.event(lid, when)
        return lid

    def event(self, lid: str, when: datetime, *, verb: str = "accessed",
              activity: str | None = None) -> None:
        self.n_events += 1
        self.con.execute(
            "insert into progress_events values (?, ?, ?, ?, ?, ?, null, 'test', now())",
            [f"e{self.n_events}", lid, self.course, activity, verb, when]).fetchall()

    def decision(self, campaign: str, lid: str, *, holdout: bool, as_of: datetime = CLOCK,
                 stage: str = "active", inactive_days: int = 0) -> None:
        run_id = f"{campaign}-{as_of:%Y%m%d}"
        self.con.execute(
            "insert into campaign_runs (run_id, campaign_id, campaign_sha, as_of, started_at, "
            "status) values (?, ?, 'sha', ?, ?, 'succeeded') on conflict do nothing",
            [run_id, campaign, as_of, as_of]).fetchall()
        self.con.execute(
            "insert into decisions (run_id, campaign_id, learner_id, course_id, as_of, stage, "
            "inactive_days, is_holdout, outcome) values (?, ?, ?, ?, ?, ?, ?, ?, 'no_message')",
            [run_id, campaign, lid, self.course, as_of, stage, inactive_days, holdout]).fetchall()

    def candidate(self, campaign: str, lid: str, message: str, *, holdout: bool,
                  as_of: datetime = CLOCK, not_before: datetime | None = None) -> None:
        self.con.execute(
            "insert into candidates values (?, ?, ?, ?, ?, 'enter:at_risk', ?, ?, ?, ?)",
            [f"{campaign}-{as_of:%Y%m%d}", campaign, lid, self.course, message,
             f"{campaign}/{message}/{lid}", not_before, "suppressed" if holdout else "planned",
             "holdout" if holdout else None]).fetchall()

    def message(self, message_id: str, campaign: str, lid: str, *, not_before: datetime,
                status: str = "sent", key: str = "relance", events: tuple = ()) -> None:
        self.con.execute(
            "insert into messages (message_id, idempotency_key, run_id, campaign_id, message_key, "
            "trigger, learner_id, course_id, channel, locale, status, not_before, planned_at, "
            "sent_at) values (?, ?, 'r', ?, ?, 'enter:at_risk', ?, ?, 'outbox', 'fr', ?, ?, ?, ?)",
            [message_id, message_id, campaign, key, lid, self.course, status, not_before,
             not_before, not_before if status == "sent" else None]).fetchall()
        for i, event in enumerate(events):
            self.con.execute(
                "insert into message_events (event_id, message_id, campaign_id, event, occurred_at, "
                "source, payload) values (?, ?, ?, ?, ?, 'test', '{}')",
                [f"{message_id}-{i}", message_id, campaign, event,
                 not_before + timedelta(hours=i + 1)]).fetchall()

    def rows(self, sql: str, params=None) -> list[tuple]:
        return self.con.execute(sql, params or []).fetchall()


def small_cohort() -> Builder:
    """Six learners of course c1 with known outcomes at the clock (2026-02-02 09:00):

    L1 started day 1, passed the exam and completed on day 20;   L2 withdrew on day 10;
    L3 never started (silent since enrolment);                   L4 active on day 23;
    L5 enrolled on day 21, nothing yet (not silent: 12 days);     L6 last seen on day 5.
    """
    b = Builder()
    b.activity("exam", kind="exam")
    b.learner("L1", status="completed", completed_at=day(20), events=(day(1), day(15)))
    b.event("L1", day(19), verb="passed", activity="exam")
    b.learner("L2", status="withdrawn", withdrawn_at=day(10), events=(day(1),))
    b.learner("L3")
    b.learner("L4", events=(day(8), day(23)))
    b.learner("L5", enrolled=day(21, 0))
    b.learner("L6", events=(day(5),))
    return b


def synthetic_presentation(b: Builder, course: str, *, n: int = 240, seed: int = 1,
                           weeks: int = 10) -> None:
    """A course of `weeks` weekly assignments and `n` learners (bulk-inserted): about a
    third withdraw; in the weeks before leaving they hand in late or not at all, and their
    activity fades. The others mostly hand in on time; about half of them complete."""
    import random

    import pyarrow as pa
    rnd = random.Random(seed)
    b.con.execute("insert into courses values (?, ?, null, null, ?, ?, 'test', now())",
                  [course, course, T0.date(), (T0 + timedelta(weeks=weeks)).date()]).fetchall()
    for w in range(1, weeks + 1):
        b.con.execute("insert into activities values (?, ?, ?, 'assignment', ?, null, ?, 1, true, "
                      "null, 'test', now())",
                      [course, f"a{w}", f"a{w}", w, T0 + timedelta(days=7 * w)]).fetchall()
    learners, enrolments, events = [], [], []
    for i in range(n):
        lid = f"{course}-{i:04d}"
        withdraws = rnd.random() < 0.35
        leave_day = rnd.randint(20, 7 * weeks - 5) if withdraws else None
        registered = -rnd.randint(0, 40) if not withdraws else -rnd.randint(0, 10)
        diligence = rnd.uniform(0.6, 1.0) if not withdraws else rnd.uniform(0.3, 0.9)
        learners.append((lid, f"{lid}@example.org"))
        completes = not withdraws and rnd.random() < 0.6
        enrolments.append((lid, course, T0 + timedelta(days=registered),
                           "withdrawn" if withdraws else ("completed" if completes else "enrolled"),
                           T0 + timedelta(weeks=weeks) if completes else None,
                           T0 + timedelta(days=leave_day, hours=12) if withdraws else None))
        for w in range(1, weeks + 1):
            due = 7 * w
            fading = withdraws and due > leave_day - 14
            if withdraws and due - 3 > leave_day:
                break
            if rnd.random() > (diligence * (0.4 if fading else 1.0)):
                continue
            late = rnd.randint(1, 9) if (fading or rnd.random() > diligence) else -rnd.randint(0, 3)
            when = T0 + timedelta(days=due + late, hours=rnd.randint(8, 20))
            if withdraws and when > T0 + timedelta(days=leave_day):
                continue
            events.append((f"{lid}-a{w}", lid, course, f"a{w}", "submitted", when))
            events.append((f"{lid}-v{w}", lid, course, None, "accessed", when - timedelta(days=1)))
    learner_tab = pa.table({"learner_id": [r[0] for r in learners], "email": [r[1] for r in learners]})
    b.con.execute("insert into learners select learner_id, email, 'Zoé', 'Lefèvre', 'en', "
                  "'Europe/London', null, 'test', now() from learner_tab")
    enrol_tab = pa.table({k: [r[j] for r in enrolments] for j, k in enumerate(
        ["learner_id", "course_id", "enrolled_at", "status", "completed_at", "withdrawn_at"])})
    b.con.execute("insert into enrolments select learner_id, course_id, ?, enrolled_at, status, "
                  "completed_at, withdrawn_at, 'test', now() from enrol_tab", [course])
    event_tab = pa.table({k: [r[j] for r in events] for j, k in enumerate(
        ["event_id", "learner_id", "course_id", "activity_id", "verb", "occurred_at"])})
    b.con.execute("insert into progress_events select event_id, learner_id, course_id, "
                  "activity_id, verb, occurred_at, null, 'test', now() from event_tab")
