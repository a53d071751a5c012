"""A campaign compiled to SQL: the few fragments of the engine's `.sql` files that depend on
the campaign (the stage CASE, one SELECT per message trigger, one per follow-up rule, the
weekly send moments, the measures it names), put in the files' `/*@marker*/` places.
"""

from __future__ import annotations

from pathlib import Path

from relance.campaign.model import Audience, Campaign
from relance.campaign.types import WEEKDAYS
from relance.engine.risk_score import score_sql
from warehouse import sql_file

SQL_DIR = Path(__file__).parent / "sql"


def load_sql(name: str, **fragments: str) -> str:
    return sql_file(SQL_DIR, name, **fragments)


def literal(value: str) -> str:
    """A SQL string literal, for the few designer-provided names compiled into SQL."""
    return "'" + str(value).replace("'", "''") + "'"


def stage_case(campaign: Campaign) -> str:
    whens = "\n".join(f"            when {stage.sql('m')} then {literal(name)}"
                      for name, stage in campaign.stages.items())
    return f"case\n{whens}\n            else null\n        end"


def audience_sql(audience: Audience) -> str:
    """An audience's filters as one condition over eval_audience's base rows; never null
    (a learner with no cohort is simply not in a cohort's audience)."""
    # the condition ends its line: a `-- comment` in it ends there too
    parts = [f"({audience.where}\n)"] if audience.where else []
    for column, values in (("course_id", audience.course), ("cohort", audience.cohort)):
        if values is not None:
            parts.append(f"{column} in ({', '.join(literal(v) for v in values)})")
    return f"coalesce({' and '.join(parts) or 'true'}, false)"


def exclusion_sql(excluded: dict[str, Audience]) -> str:
    """The learners of the campaigns a campaign excludes (`audience.exclude`)."""
    return " or ".join(audience_sql(a) for a in excluded.values()) or "false"


def candidate_selects(campaign: Campaign) -> str:
    """The triggers, as one query (a SELECT per message, unioned): the learners each
    message's trigger proposes it to, with the occasion
    that makes its idempotency key (an entry, a week, a milestone, an activity), and the
    earliest moment it may go (`base_at`, and the same in the learner's local time)."""
    parts = []
    now = "s.tz, s.local_as_of as base_local, $as_of as base_at"
    for priority, (key, msg) in enumerate(campaign.messages.items()):
        allows_completed = "true" if campaign.allows_completed(key) else "false"
        after_end = "true" if msg.after_course_end else "false"
        head = (f"select s.learner_id, s.course_id, {literal(key)} as message_key, "
                f"{priority} as priority")
        # what the policies need of the learner travels with the candidate (no second join)
        tail = (f"{allows_completed} as allows_completed, {after_end} as after_course_end, "
                "s.local_week_start, s.is_holdout, s.email_refusal, s.is_suppressed, "
                "s.recently_contacted, "
                "s.course_ended, s.completed")
        source = "from eval_state s"
        if msg.on_enter:
            occasion = (f"'enter:{msg.on_enter}:' || "
                        "strftime(s.stage_entered_at, '%Y-%m-%dT%H:%M:%SZ')")
            parts.append(
                f"{head}, 'enter:{msg.on_enter}' as trigger, {occasion} as occasion, {now}, "
                f"null::double as milestone, {tail}, null::timestamp as occasion_week\n"
                # not for an entry long before the campaign first saw them (a course
                # completed months ago is not congratulated when the campaign starts)
                f"{source} where s.stage = {literal(msg.on_enter)} "
                f"and s.stage_entered_at >= s.first_seen_at - interval 7 day")
        elif msg.while_in:
            stages = ", ".join(literal(x) for x in msg.while_in)
            parts.append(
                f"{head}, 'while_in' as trigger, 'week:' || s.local_week as occasion, {now}, "
                f"null::double as milestone, {tail}, s.local_week_start as occasion_week\n"
                f"{source} where s.stage in ({stages})")
        elif msg.every:
            # the send moment and its week, per timezone (clock.sql): this week's, the next
            # one when it is less than a day away, or now when this week's has passed
            where = (f"s.stage in ({', '.join(literal(x) for x in msg.to)})" if msg.to
                     else "s.stage is not null")
            parts.append(
                f"{head}, 'every' as trigger, 'week:' || s.every_{priority}_week as occasion, "
                f"s.tz, s.every_{priority}_local as base_local, "
                f"greatest($as_of, s.every_{priority}_at) as base_at, "
                f"null::double as milestone, {tail}, s.every_{priority}_week_start as occasion_week\n"
                f"{source} where {where}")
        elif msg.on_milestone:
            marks = "[" + ", ".join(f"{m:g}" for m in sorted(msg.on_milestone)) + "]"
            crossed = f"list_max(list_filter({marks}, lambda x: x <= s.progress))"
            parts.append(
                f"{head}, 'milestone:' || {crossed}::varchar as trigger, "
                f"'milestone:' || {crossed}::varchar as occasion, {now}, "
                f"{crossed} as milestone, {tail}, null::timestamp as occasion_week\n"
                # only thresholds crossed since the campaign first saw the learner
                f"{source} where {crossed} > s.first_progress "
                # a completer is congratulated for completing, not for an earlier quarter
                f"and (not s.completed or {crossed} >= 100)")
        elif msg.on_activity:
            ids = "[" + ", ".join(literal(a) for a in msg.on_activity) + "]"
            parts.append(
                f"{head}, 'activity:' || d.activity_id as trigger, "
                f"'activity:' || d.activity_id as occasion, {now}, "
                f"null::double as milestone, {tail}, null::timestamp as occasion_week\n"
                f"{source} join eval_done d using (learner_id, course_id) "
                f"where list_contains({ids}, d.activity_id) and d.done_at > s.first_seen_at")
    union = "\nunion all by name\n".join(parts)
    # `occasion_week`: for weekly messages, the local week they belong to (null otherwise).
    # The key in one concat() (none of its parts is null): a chain of || builds each
    # intermediate string, twice the CPU on two million candidates.
    return (
        "select *, concat($campaign_id, '/', message_key, '/', learner_id, '/', "
        "course_id, '/', occasion) as idempotency_key\n"
        f"from (\n{union}\n)"
    )


def course_filter(campaign: Campaign, learners: str | None = None) -> str:
    """Events of the audience's courses: a constant IN list the scan can use when the
    campaign names its courses. With `learners` (a temp table of learner_id: a recheck's),
    those learners' events only: the shared warehouse sends their keys to PostgreSQL
    (warehouse/shared.py, push_keys) rather than copying the course's events out."""
    courses = campaign.audience.course
    condition = (f"p.course_id in ({', '.join(literal(c) for c in courses)})" if courses
                 else "p.course_id in (select distinct course_id from eval_audience)")
    if learners:
        condition += f" and p.learner_id in (select learner_id from {learners})"
    return condition


def done_sql(campaign: Campaign, summaries: bool = False, learners: str | None = None) -> str:
    """First completions per learner and activity: scanned from the events, or read from the
    loaders' summary when `summaries` (evaluation.summaries_cover)."""
    return load_sql("done_summary" if summaries else "done",
                    course_filter=course_filter(campaign, learners))


def uses_measure(campaign: Campaign, measure: str) -> bool:
    return any(c.uses(measure) for c in [*campaign.stages.values(), *campaign.follow_up.values()])


COURSEWORK_MEASURES = ("late_days", "behind")


def measures_sql(campaign: Campaign, summaries: bool = False, learners: str | None = None) -> str:
    """The measures query; with `summaries`, what it reads of the events comes from the
    loaders' per-learner summaries instead of a scan (the same answer when they cover as_of).
    `learners`: as course_filter's (the audience holds those learners only)."""
    events = load_sql("events_summary" if summaries else "events_scan",
                      course_filter=course_filter(campaign, learners))
    measures = load_sql("measures", events=events, done=done_sql(campaign, summaries, learners))
    if any(uses_measure(campaign, m) for m in COURSEWORK_MEASURES):
        coursework = load_sql("coursework", done=done_sql(campaign, summaries, learners))
        measures = (f"select m.*, c.late_days, c.behind from (\n{measures}\n) m\n"
                    f"left join (\n{coursework}\n) c using (learner_id, course_id)")
    else:
        # the coursework join costs its own scans: only for campaigns whose conditions name it
        measures = f"select *, null::integer as late_days, null::double as behind from (\n{measures}\n)"
    if not uses_measure(campaign, "risk"):
        # the risk score costs its own scans: only for campaigns whose conditions name it
        return f"select *, null::double as risk from (\n{measures}\n)"
    return (f"select m.*, r.risk from (\n{measures}\n) m\n"
            f"left join (\n{score_sql()}\n) r using (learner_id, course_id)")


def clock_columns(campaign: Campaign) -> str:
    """Per timezone, for each `every` message: its send moment (local and UTC) and week.
    This week's moment if it is still ahead; the next week's if that is less than a day
    away (a Monday 08:30 recap seen on Sunday night in Los Angeles belongs to the coming
    week); otherwise now, for this week's moment has passed unsent."""
    cols = []
    for priority, msg in enumerate(campaign.messages.values()):
        if not msg.every:
            continue
        offset = WEEKDAYS.index(msg.every.day)
        minutes = msg.every.at.hour * 60 + msg.every.at.minute
        this = f"(local_week_start + to_days({offset}) + to_minutes({minutes}))"
        chosen = (f"case when {this} > local_as_of then {this} "
                  f"when {this} + interval 7 day <= local_as_of + interval 1 day "
                  f"then {this} + interval 7 day else local_as_of end")
        cols.append(f",\n    {chosen} as every_{priority}_local")
    return "".join(cols)


def clock_derived(campaign: Campaign) -> str:
    cols = []
    for priority, msg in enumerate(campaign.messages.values()):
        if msg.every:
            local = f"every_{priority}_local"
            cols.append(f",\n    timezone(tz, {local}) as every_{priority}_at"
                        f",\n    strftime({local}, '%G-W%V') as every_{priority}_week"
                        f",\n    date_trunc('week', {local}) as every_{priority}_week_start")
    return "".join(cols)


def variant_case(campaign: Campaign) -> str:
    """The variant of each planned message: md5 of campaign, message and learner scaled to
    0..100 (like the control group's draw), cut at the variants' cumulative shares."""
    whens = []
    draw = ("(('0x' || substr(md5($campaign_id || ':' || c.message_key || ':' || c.learner_id), "
            "1, 8))::ubigint / 4294967296.0 * 100)")
    for key, msg in campaign.messages.items():
        if not msg.variants:
            continue
        cuts, total = [], 0.0
        names = list(msg.variants)
        for name in names[:-1]:
            total += msg.variants[name].share
            cuts.append(f"when {draw} < {total!r} then {literal(name)}")
        inner = f"case {' '.join(cuts)} else {literal(names[-1])} end"
        whens.append(f"when c.message_key = {literal(key)} then {inner}")
    return f"case {' '.join(whens)} end" if whens else "null::varchar"


def follow_up_selects(campaign: Campaign) -> str:
    """eval_follow_ups: a learner matching several rules is listed once, under the first
    rule in the file. One pass over eval_state: the rules are a CASE (first match wins),
    not a SELECT per rule unioned then deduplicated (at 1M learners the deduplication's
    GROUP BY cost 1.8 s of CPU)."""
    if not campaign.follow_up:
        return ("create or replace temp table eval_follow_ups as\n"
                "select learner_id, course_id, null::varchar as rule, null::varchar as reason, "
                "stage from eval_state where false")
    whens = []
    for order, (name, rule) in enumerate(campaign.follow_up.items(), start=1):
        conds = [rule.sql("s")]
        if rule.stage:
            conds.append(f"s.stage in ({', '.join(literal(x) for x in rule.stage)})")
        whens.append(f"when {' and '.join(f'({c})' for c in conds)} then {order}")
    names = ", ".join(literal(n) for n in campaign.follow_up)
    reasons = ", ".join(literal(r.reason) for r in campaign.follow_up.values())
    return ("create or replace temp table eval_follow_ups as\n"
            f"select learner_id, course_id, [{names}][rule_order] as rule, "
            f"[{reasons}][rule_order] as reason, stage\n"
            f"from (select s.learner_id, s.course_id, s.stage, case {' '.join(whens)} end as rule_order\n"
            "      from eval_state s where not s.is_holdout)\n"
            "where rule_order is not null")
