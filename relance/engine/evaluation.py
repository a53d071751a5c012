"""One evaluation of a campaign: its compiled steps run in order on the caller's connection,
each building a temp table (`eval_*`); `evaluate()` leaves them for `plan` to show,
`persist()` writes them to the warehouse in one transaction.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime

import duckdb

from relance import clock
from relance.campaign.loaded import LoadedCampaign
from relance.campaign.model import Campaign
from relance.campaign.types import WEEKDAYS
from relance.engine import digests
from relance.engine.compile import (candidate_selects, clock_columns, clock_derived, done_sql,
                                    exclusion_sql, follow_up_selects, load_sql, measures_sql,
                                    stage_case, uses_measure, variant_case)
from relance.engine.risk_score import has_model
from warehouse import execute_script

# A failed send is tried again by the next deliveries, up to this many attempts in all; the
# policies count messages still to be retried against the weekly caps.
MAX_ATTEMPTS = 3


@dataclass
class Evaluation:
    """The result of evaluating a campaign, held in eval_* temp tables on `con`."""

    con: duckdb.DuckDBPyConnection
    loaded: LoadedCampaign
    as_of: datetime
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)
    # whether the measures read the loaders' per-learner summaries (else: the events scanned)
    summaries: bool = False
    # whether the managers' digests were planned (eval_digests, eval_digest_members)
    digests: bool = False
    _totals: dict[str, int] | None = field(default=None, repr=False, compare=False)

    @property
    def campaign(self) -> Campaign:
        return self.loaded.campaign

    def stage_counts(self) -> list[tuple[str | None, int, int]]:
        """(stage, learners, of whom in the control group), in the campaign's stage order."""
        rows = dict(((r[0]), (r[1], r[2])) for r in self.con.execute(
            "select stage, count(*), count(*) filter (where is_holdout) "
            "from eval_state group by all").fetchall())
        ordered = [s for s in self.campaign.stages if s in rows] + (
            [None] if None in rows else [])
        return [(s, *rows[s]) for s in ordered]

    def outcome_counts(self) -> list[tuple[str, str | None, str | None, int]]:
        """(outcome, message, reason, learners) from the decisions."""
        return self.con.execute(
            "select outcome, message_key, reason, count(*) from eval_decisions "
            "group by all order by outcome, message_key nulls last, count(*) desc").fetchall()

    def totals(self) -> dict[str, int]:
        # read once: a run records them and then reports them (the eval_* tables do not
        # change after the evaluation; persisting reads them)
        if self._totals is None:
            self._totals = self._count_totals()
        return dict(self._totals)

    def _count_totals(self) -> dict[str, int]:
        row = self.con.execute(
            "select count(*), count(*) filter (where is_holdout), "
            "count(*) filter (where outcome = 'planned'), "
            "count(*) filter (where outcome = 'deferred'), "
            "count(*) filter (where outcome = 'suppressed') from eval_decisions").fetchall()[0]
        follow = self.con.execute("select count(*) from eval_follow_ups").fetchall()[0][0]
        return dict(zip(("evaluated", "holdout", "planned", "deferred", "suppressed"), row)) | {
            "follow_ups": follow}


def _params(campaign: Campaign, as_of: datetime) -> dict:
    quiet = campaign.limits.quiet_span
    return {
        "campaign_id": campaign.id,
        "as_of": as_of,
        "courses": campaign.audience.course,
        "cohorts": campaign.audience.cohort,
        "timezone": campaign.timezone,
        "locales": list(campaign.locales),
        "default_locale": campaign.locale,
        "control_group": campaign.control_group,
        "send_days": [WEEKDAYS.index(d) + 1 for d in campaign.limits.send_days],
        "quiet_start": quiet[0] if quiet else None,
        "quiet_end": quiet[1] if quiet else None,
        "open_minutes": quiet[1].hour * 60 + quiet[1].minute if quiet else 0,
        "per_week": campaign.limits.per_learner_per_week,
        "per_campaign": campaign.limits.per_campaign_per_week,
        "quiet_after_contact_days": campaign.limits.quiet_after_contact_days,
        "max_attempts": MAX_ATTEMPTS,
        "completion_stages": [n for n, st in campaign.stages.items() if st.requires_completion]
                             or [""],
    }


class EvaluationError(RuntimeError):
    pass


# At send time, the learners and messages to judge again are in the temp table
# recheck_messages (message_id, learner_id) on the evaluating connection.
RECHECKED = "select message_id from recheck_messages"


def summaries_cover(con: duckdb.DuckDBPyConnection, as_of: datetime) -> bool:
    """Whether the loaders' per-learner summaries (migration 0055) give the answer a scan of
    progress_events as of `as_of` would: they hold every row of the table (its count is
    the one they were last brought up to date at: rows written another way make it differ)
    and no event is later than `as_of` (a past date is replayed from the events)."""
    try:
        row = con.execute(
            "select n_events = (select count(*) from progress_events) "
            "and coalesce(max_occurred_at <= ?, true) from progress_summary_state",
            [as_of]).fetchall()
    except duckdb.CatalogException:     # a warehouse opened read-only, before migration 0055
        return False
    return bool(row and row[0][0])


def evaluate(con: duckdb.DuckDBPyConnection, loaded: LoadedCampaign,
             as_of: datetime | None = None, *, recheck: bool = False,
             full_scan: bool = False, with_digests: bool = True,
             decisions: bool = True) -> Evaluation:
    """Evaluate every learner of the campaign's audience as of `as_of` (default: now).

    With `recheck`, only the learners of `recheck_messages` are evaluated, and those
    messages are judged as if they were not in the ledger yet: the verdict each would get
    now (delivery re-checks what it is about to send). No follow-ups or digests then.
    The measures read the loaders' summaries when they cover `as_of`, the events
    otherwise or with `full_scan` (the same decisions either way). Without
    `with_digests`, the managers' digests are left empty (they change no learner's
    decision: the workbench's examples skip them). Without `decisions`, the evaluation
    stops at the candidates and the policies' verdicts on them (eval_audience, eval_state,
    eval_candidates): no decisions, follow-ups or digests, which read those and change
    none of them (a season's premise check reads no more: two of its largest statements)."""
    campaign = loaded.campaign
    as_of = clock.or_now(as_of)
    params = _params(campaign, as_of)
    summaries = not full_scan and summaries_cover(con, as_of)
    started = time.perf_counter()
    timings = {}
    # a recheck's learners: their enrolments, learners' rows and events only (on the shared
    # warehouse, key lists sent to PostgreSQL: warehouse/shared.py, push_keys)
    narrowed = {"learners": "and e.learner_id in (select learner_id from recheck_messages)\n"
                            "      and l.learner_id in (select learner_id from recheck_messages)",
                "locale_learners": "where learner_id in (select learner_id from recheck_messages)"} \
        if recheck else {}
    only = "recheck_messages" if recheck else None
    policies = {"recheck": f"and message_id not in ({RECHECKED})",
                "recheck_led": f"and led.message_id not in ({RECHECKED})"} if recheck else {}
    steps = [
        ("audience", load_sql("audience", where=campaign.audience.where or "true",
                              exclude=exclusion_sql(loaded.excluded), **narrowed)),
        ("clock", load_sql("clock", every=clock_columns(campaign),
                           every_derived=clock_derived(campaign))),
        ("measures and stages", load_sql("stages", stage_case=stage_case(campaign),
                                         measures=measures_sql(campaign, summaries, only),
                                         state_learners=f"and p.learner_id in (select learner_id "
                                                        f"from {only})" if only else "")),
    ]
    if any(m.on_activity for m in campaign.messages.values()):
        steps.append(("done", "create or replace temp table eval_done as\n"
                      + done_sql(campaign, summaries, only)))
    steps += [
        ("triggers and policies", load_sql("policies", triggers=candidate_selects(campaign),
                                           **policies)),
    ]
    if not recheck and decisions:
        steps.append(("decisions", load_sql("decisions")))
        steps.append(("follow_ups", follow_up_selects(campaign)))
        if campaign.digest and with_digests:
            # the managers' digests, from the same eval_state and policies (engine/digests.py)
            steps.append(("digests", digests.plan_sql(campaign)))
            params |= digests.params(campaign)
        else:
            digests.empty_tables(con)
    # The eval_* tables' row order is never relied on (whatever is shown is ordered), and
    # letting DuckDB drop it makes their CREATE TABLE AS parallel and lighter on memory.
    # Loaders do rely on it (row numbers of source files), hence restored afterwards.
    preserve = con.execute("select current_setting('preserve_insertion_order')").fetchall()[0][0]
    con.execute("set preserve_insertion_order = false")
    try:
        _run_steps(con, loaded, steps, params, timings)
    finally:
        con.execute(f"set preserve_insertion_order = {'true' if preserve else 'false'}")
    return Evaluation(con, loaded, as_of, time.perf_counter() - started, timings,
                      summaries=summaries,
                      digests=bool(campaign.digest) and with_digests and not recheck
                      and decisions)


def check_references(con: duckdb.DuckDBPyConnection, loaded: LoadedCampaign) -> None:
    """Courses and activities a campaign names must exist in the warehouse: a typo there
    would otherwise select nobody, silently."""
    campaign = loaded.campaign
    named = {key: msg.on_activity for key, msg in campaign.messages.items() if msg.on_activity}
    if not campaign.audience.course and not named:
        # nothing named (most campaigns): no query (two for every evaluation, each
        # send-time re-check's included)
        return
    known = {r[0] for r in con.execute("select course_id from courses").fetchall()}
    for course in campaign.audience.course or []:
        if course not in known:
            line = loaded.line_of(("audience", "course"))
            raise EvaluationError(
                f"{loaded.path}:{line}: audience.course: course {course!r} is not in the "
                f"warehouse; its courses are: {', '.join(sorted(known)) or 'none (load data first)'}")
    if not named:
        return
    courses = campaign.audience.course or sorted(known)
    activities = {r[0] for r in con.execute(
        "select activity_id from activities where list_contains(?, course_id)", [courses]).fetchall()}
    for key, on_activity in named.items():
        for activity in on_activity:
            if activity not in activities:
                line = loaded.line_of(("messages", key, "on_activity"))
                raise EvaluationError(
                    f"{loaded.path}:{line}: messages.{key}.on_activity: activity {activity!r} is "
                    f"not in the calendar of {', '.join(courses)}; fix the id or load the calendar")


def _run_steps(con, loaded: LoadedCampaign, steps, params: dict, timings: dict) -> None:
    campaign = loaded.campaign
    check_references(con, loaded)
    if uses_measure(campaign, "risk"):
        if not has_model(con):
            raise EvaluationError(
                f"{loaded.path}: a condition uses `risk` but the warehouse has no risk model: "
                "train one on a past presentation first (`relance risk train --source oulad "
                "--presentation 2013B`, see docs/roi.md)")
    for name, sql in steps:
        t0 = time.perf_counter()
        try:
            execute_script(con, sql, params)
        except duckdb.Error as exc:
            where = ""
            if name == "audience" and campaign.audience.where:
                line = loaded.line_of(("audience", "where"))
                where = (f"{loaded.path}:{line}: audience.where: the condition "
                         f"{campaign.audience.where!r} failed: ")
            raise EvaluationError(f"{where or f'campaign {campaign.id}, step {name}: '}{exc}") from exc
        timings[name] = time.perf_counter() - t0


def persist(evaluation: Evaluation, run_id: str) -> None:
    """Write an evaluation to the warehouse: decisions, candidates, the planned messages
    (the ledger), stage state and follow-ups, all stamped with the run's as_of (their
    logical moment, whatever the wall clock says). The caller holds the transaction."""
    campaign = evaluation.campaign
    params = {"run_id": run_id, "campaign_id": campaign.id, "as_of": evaluation.as_of,
              "channel": campaign.channel}
    execute_script(evaluation.con, load_sql("persist", variant=variant_case(campaign)), params)
    if evaluation.digests:
        execute_script(evaluation.con, digests.persist_sql(), params)
