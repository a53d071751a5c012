"""Who gets which message: stages, triggers, policies, as a learner would see them."""

from __future__ import annotations

from datetime import timedelta

import pytest

from relance import engine
from relance.channels.outbox import OutboxChannel
from relance.runs.steps import run_campaign
from tests.conftest import MONDAY


def sent(con, campaign_id="test"):
    """{learner_id: [message_key, ...]} of messages the outbox accepted."""
    rows = con.execute("select learner_id, message_key from messages where campaign_id = ? "
                       "and status = 'sent' order by sent_at, message_key", [campaign_id]).fetchall()
    out: dict[str, list[str]] = {}
    for lid, key in rows:
        out.setdefault(lid, []).append(key)
    return out


def decision(con, learner_id, run_id=None):
    run = run_id or con.execute("select run_id from campaign_runs order by started_at desc limit 1").fetchall()[0][0]
    return con.execute("select stage, message_key, outcome, reason from decisions "
                       "where run_id = ? and learner_id = ?", [run, learner_id]).fetchall()[0]


@pytest.fixture
def run(wh, tmp_path):
    outbox = OutboxChannel(tmp_path / "outbox")

    def _run(loaded, as_of=MONDAY):
        return run_campaign(wh, loaded, as_of=as_of, channel=outbox)
    _run.outbox = outbox
    return _run


def test_each_stage_first_match_wins(wh, cohort, campaigns):
    campaigns.write(campaigns.base())
    ids = {
        "completed": cohort.learner(completed=True, inactive_days=30),
        "dormant": cohort.learner(inactive_days=25),
        "at_risk": cohort.learner(inactive_days=8),
        "active": cohort.learner(inactive_days=1),
    }
    ev = engine.evaluate(wh, campaigns.load(), MONDAY)
    stages = dict(wh.execute("select learner_id, stage from eval_state").fetchall())
    assert stages == {lid: stage for stage, lid in ids.items()}
    assert [s for s, _, _ in ev.stage_counts()] == ["completed", "dormant", "at_risk", "active"]


def test_an_evaluation_without_decisions_proposes_and_refuses_the_same(wh, cohort, campaigns):
    # what a season's premise check reads (evaluate(decisions=False)): the same audience,
    # stages, candidates and policy verdicts as a full evaluation, only no decisions
    campaigns.write(campaigns.base())
    for kwargs in ({"completed": True, "inactive_days": 30}, {"inactive_days": 25},
                   {"inactive_days": 8}, {"inactive_days": 9, "email": ""},
                   {"inactive_days": 1}):
        cohort.learner(**kwargs)
    loaded = campaigns.load()

    def read():
        return [sorted(wh.execute(f"select * from {table}").fetchall(), key=repr)
                for table in ("eval_audience", "eval_state", "eval_candidates")]
    engine.evaluate(wh, loaded, MONDAY)
    full = read()
    # candidates to compare, proposed and refused
    assert {r[0] for r in wh.execute("select outcome from eval_candidates").fetchall()} >= {
        "planned", "suppressed"}
    wh.execute("drop table eval_decisions")
    engine.evaluate(wh, loaded, MONDAY, decisions=False)
    assert read() == full
    assert not wh.execute("select count(*) from duckdb_tables() "
                          "where table_name = 'eval_decisions'").fetchall()[0][0]


def test_silent_for_8_days_is_at_risk_and_gets_the_relance_once(wh, cohort, campaigns, run):
    campaigns.write(campaigns.base())
    loaded = campaigns.load()
    lid = cohort.learner(inactive_days=8)
    run(loaded)
    assert sent(wh) == {lid: ["relance"]}
    assert decision(wh, lid)[:3] == ("at_risk", "relance", "planned")
    # the next two weeks: still silent, still at risk; no second relance
    run(loaded, MONDAY + timedelta(weeks=1))
    run(loaded, MONDAY + timedelta(weeks=2))
    assert sent(wh)[lid].count("relance") == 1


def test_relance_again_after_coming_back_and_falling_silent_again(wh, cohort, campaigns, run):
    campaigns.write(campaigns.base())
    loaded = campaigns.load()
    lid = cohort.learner(inactive_days=8)
    run(loaded)
    cohort.event(lid, None, "accessed", MONDAY + timedelta(days=6))       # back: active
    run(loaded, MONDAY + timedelta(weeks=1))
    assert decision(wh, lid)[0] == "active"
    run(loaded, MONDAY + timedelta(weeks=2, days=1))                     # silent 8 days again
    assert sent(wh)[lid].count("relance") == 2


def test_crossing_75_percent_brings_one_congratulation_and_not_another_next_week(
        wh, cohort, campaigns, run):
    campaigns.write(campaigns.base())
    loaded = campaigns.load()
    lid = cohort.learner(inactive_days=1, done=2)            # 50 %: the campaign's baseline
    run(loaded)
    assert "bravo" not in sent(wh).get(lid, [])
    cohort.event(lid, "a3", "completed", MONDAY + timedelta(days=3))  # 75 %
    run(loaded, MONDAY + timedelta(weeks=1))
    assert sent(wh)[lid].count("bravo") == 1
    milestone = wh.execute("select trigger from messages where learner_id = ? and "
                           "message_key = 'bravo'", [lid]).fetchall()
    assert milestone == [("milestone:75",)]
    cohort.event(lid, None, "accessed", MONDAY + timedelta(days=10))
    run(loaded, MONDAY + timedelta(weeks=2))
    assert sent(wh)[lid].count("bravo") == 1


def test_a_learner_who_completed_gets_no_relance_even_if_stages_are_misordered(
        wh, cohort, campaigns, run):
    # The Open edX bug: completers reminded to come back. Here the designer put at_risk
    # before completed, so the completer is staged at_risk; the completed policy still holds.
    text = campaigns.base().replace(
        "  completed: {completed: true}\n  dormant: {inactive_days: \">= 21\"}\n  at_risk: {inactive_days: \">= 7\"}\n",
        "  dormant: {inactive_days: \">= 21\"}\n  at_risk: {inactive_days: \">= 7\"}\n  completed: {completed: true}\n")
    campaigns.write(text)
    lid = cohort.learner(completed=True, inactive_days=10, done=4)
    run(campaigns.load())
    assert sent(wh) == {}
    assert decision(wh, lid)[2:] == ("suppressed", "completed")


def test_every_eligible_learner_gets_the_message_not_a_subset(wh, cohort, campaigns, run):
    campaigns.write(campaigns.base())
    ids = {cohort.learner(inactive_days=9) for _ in range(1200)}
    run(campaigns.load())
    got = sent(wh)
    assert set(got) == ids
    assert all(keys == ["relance"] for keys in got.values())
    assert len(list(run.outbox.directory.glob("test/*.eml"))) == 1200


def test_a_second_run_for_the_same_period_sends_nothing(wh, cohort, campaigns, run):
    campaigns.write(campaigns.base())
    loaded = campaigns.load()
    for days in (1, 8, 25, 8, 1):
        cohort.learner(inactive_days=days)
    first = run(loaded)
    second = run(loaded)
    assert first.sent == 5
    assert second.sent == 0
    assert wh.execute("select count(*) from messages").fetchall()[0][0] == 5
    reasons = dict(wh.execute(
        "select reason, count(*) from decisions where run_id = ? group by all", [second.run_id]).fetchall())
    assert set(reasons) <= {"already_sent", "campaign_weekly_cap"}
    assert len(list(run.outbox.directory.rglob("*.eml"))) == 5


def test_weekly_recap_waits_for_its_hour_in_the_learners_timezone(wh, cohort, campaigns, run):
    campaigns.write(campaigns.base())
    loaded = campaigns.load()
    lid = cohort.learner(inactive_days=1)
    early = MONDAY.replace(hour=7)                          # 08:00 in Paris, recap at 08:30
    ev = engine.evaluate(wh, loaded, early)
    row = wh.execute("select outcome, reason, not_before from eval_candidates where "
                     "learner_id = ? and message_key = 'recap'", [lid]).fetchall()[0]
    assert row[:2] == ("deferred", "scheduled_time")
    assert row[2] == MONDAY.replace(hour=7, minute=30)      # 08:30 Paris
    assert ev.totals()["deferred"] == 1


def test_quiet_hours_and_frequency_cap_hold_in_each_learners_timezone(wh, cohort, campaigns, run):
    campaigns.write(campaigns.base().replace(
        "  per_learner_per_week: 2\n", "  per_learner_per_week: 1\n  quiet_hours: \"20:00-08:00\"\n"))
    loaded = campaigns.load()
    paris = cohort.learner(inactive_days=8, tz="Europe/Paris")
    montreal = cohort.learner(inactive_days=8, tz="America/Montreal", locale="fr-CA")
    summary = run(loaded)                                      # 09:00 Paris, 03:00 Montréal
    assert sent(wh) == {paris: ["relance"]}
    not_before = wh.execute("select not_before from messages where learner_id = ?", [montreal]).fetchall()[0][0]
    assert not_before == MONDAY.replace(hour=13)               # 08:00 in Montréal
    assert summary.totals["deferred"] == 1
    # Later that day the deferred relance is due and goes out, in Montréal's morning.
    run(loaded, MONDAY.replace(hour=14))
    assert sent(wh)[montreal] == ["relance"]
    # The cap is one a week: Wednesday's new occasion for Paris waits for next week.
    cohort.event(paris, "a1", "completed", MONDAY + timedelta(days=1))   # 25 % crossed
    wed = MONDAY + timedelta(days=2)
    run(loaded, wed)
    assert decision(wh, paris)[1:] == ("bravo", "suppressed", "campaign_weekly_cap")


def test_the_weekly_limit_follows_each_learners_own_calendar_week(wh, cohort, campaigns, run):
    campaigns.write(campaigns.base())                       # no quiet hours here
    loaded = campaigns.load()
    paris = cohort.learner(inactive_days=8, tz="Europe/Paris")
    montreal = cohort.learner(inactive_days=8, tz="America/Montreal", locale="fr-CA")
    run(loaded, MONDAY.replace(hour=14))                     # both get the relance
    for lid in (paris, montreal):
        cohort.event(lid, "a1", "completed", MONDAY + timedelta(days=1))   # 25 % crossed
    # Monday 30 Nov 03:00 UTC: already Monday in Paris, still Sunday evening in Montréal.
    run(loaded, MONDAY + timedelta(days=6, hours=19))
    assert decision(wh, paris)[1:3] == ("bravo", "planned")
    bravo = wh.execute("select outcome, reason from candidates where learner_id = ? and "
                       "message_key = 'bravo' order by not_before nulls first", [montreal]).fetchall()
    assert bravo[-1] == ("suppressed", "campaign_weekly_cap")     # W48 already had its message


def test_frequency_cap_counts_every_campaign(wh, cohort, campaigns, run):
    campaigns.write(campaigns.base())
    campaigns.write(campaigns.base("other").replace("  per_learner_per_week: 2\n",
                                                     "  per_learner_per_week: 1\n"))
    lid = cohort.learner(inactive_days=8)
    run(campaigns.load("test"))
    run(campaigns.load("other"))
    assert sent(wh, "test") == {lid: ["relance"]}
    assert sent(wh, "other") == {}
    assert decision(wh, lid)[3] == "frequency_cap"


def test_holdout_is_stable_across_runs_and_close_to_its_share(wh, cohort, campaigns):
    campaigns.write(campaigns.base().replace("control_group: 0%", "control_group: 10%"))
    loaded = campaigns.load()
    wh.execute("""
        insert into learners select 'H' || i, 'h' || i || '@example.org', 'A', 'B', 'fr',
               'Europe/Paris', null, 'test', now() from range(10000) t(i);
        insert into enrolments select 'H' || i, 'c1', 'co', ?, 'enrolled', null, null, 'test', now()
        from range(10000) t(i);
    """, [MONDAY - timedelta(days=30)]).fetchall()
    engine.evaluate(wh, loaded, MONDAY)
    first = dict(wh.execute("select learner_id, is_holdout from eval_state").fetchall())
    share = sum(first.values()) / len(first) * 100
    assert 8 <= share <= 12
    engine.evaluate(wh, loaded, MONDAY + timedelta(weeks=3))
    again = dict(wh.execute("select learner_id, is_holdout from eval_state").fetchall())
    assert again == first
    # another campaign draws its own control group
    campaigns.write(campaigns.base("other").replace("control_group: 0%", "control_group: 10%"))
    engine.evaluate(wh, campaigns.load("other"), MONDAY)
    other = dict(wh.execute("select learner_id, is_holdout from eval_state").fetchall())
    assert other != first


def test_holdout_learners_are_evaluated_but_never_messaged(wh, cohort, campaigns, run):
    campaigns.write(campaigns.base().replace("control_group: 0%", "control_group: 50%"))
    ids = [cohort.learner(inactive_days=8) for _ in range(200)]
    run(campaigns.load())
    holdout = {r[0] for r in wh.execute("select learner_id from decisions where is_holdout").fetchall()}
    assert 60 < len(holdout) < 140
    assert holdout.isdisjoint(sent(wh))
    assert set(sent(wh)) | holdout == set(ids)
    reasons = {r[0] for r in wh.execute("select reason from decisions where is_holdout").fetchall()}
    assert reasons == {"holdout"}


def test_unsubscribed_no_email_and_ended_course_get_nothing_with_the_reason(wh, cohort, campaigns, run):
    campaigns.write(campaigns.base())
    unsub = cohort.learner(inactive_days=8)
    wh.execute("insert into suppressions values (?, null, 'unsubscribe', 'test', now())",
               [f"{unsub.lower()}@example.org".upper()]).fetchall()
    no_mail = cohort.learner(inactive_days=8, email="")
    run(campaigns.load())
    assert decision(wh, unsub)[2:] == ("suppressed", "unsubscribed")
    assert decision(wh, no_mail)[2:] == ("suppressed", "no_email")
    wh.execute("update courses set ends_on = ?", [(MONDAY - timedelta(days=1)).date()]).fetchall()
    late = cohort.learner(inactive_days=25)
    run(campaigns.load(), MONDAY + timedelta(hours=1))
    assert decision(wh, late)[2:] == ("suppressed", "course_ended")
    assert sent(wh) == {}


def test_an_address_no_channel_can_send_to_is_refused_at_plan_with_the_reason(
        wh, cohort, campaigns, run):
    """An address that needs SMTPUTF8, or is no address at all, gets no message but a
    decision saying why (it used to be planned, then fail at send, or be taken for none)."""
    campaigns.write(campaigns.base())
    good = cohort.learner(inactive_days=8)
    bad = {cohort.learner(inactive_days=8, email=a): a for a in (
        "élodie@example.org", "zoe lefevre@example.org", "zoe@example", "zoe..l@example.org",
        "zoe@exa\u200bmple.org", "a" * 65 + "@example.org")}
    summary = run(campaigns.load())
    for lid in bad:
        assert decision(wh, lid)[2:] == ("suppressed", "invalid_email"), bad[lid]
    assert (summary.sent, summary.failed) == (1, 0) and sent(wh) == {good: ["relance"]}
    assert wh.execute("select count(*) from messages where learner_id <> ?", [good]).fetchall() == [(0,)]


def test_a_planned_message_whose_address_went_bad_is_cancelled_with_the_reason(
        wh, cohort, campaigns, tmp_path):
    from relance.delivery import deliver_due
    from relance.runs.steps import plan_step
    campaigns.write(campaigns.base())
    lid = cohort.learner(inactive_days=8)
    plan_step(wh, campaigns.load(), MONDAY)
    wh.execute("update learners set email = 'zoé@example.org' where learner_id = ?", [lid]).fetchall()
    report = deliver_due(wh, campaigns.load(), OutboxChannel(tmp_path / "out"),
                         now=MONDAY + timedelta(hours=1))
    assert report.sent == 0 and report.cancel_reasons == {"invalid_email": 1}
    assert wh.execute("select status, error from messages").fetchall() == [("cancelled", "invalid_email")]


def test_while_in_sends_once_a_week_while_in_the_stage(wh, cohort, campaigns, run):
    campaigns.write(campaigns.base().replace(
        "  recap:\n    every: monday 08:30\n    to: [active, at_risk]\n",
        "  nudge:\n    while_in: dormant\n").replace(
        "  remobilisation:\n    on_enter: dormant\n", ""))
    loaded = campaigns.load()
    lid = cohort.learner(inactive_days=25)
    for week in range(3):
        run(loaded, MONDAY + timedelta(weeks=week))
    assert sent(wh)[lid] == ["nudge", "nudge", "nudge"]


def test_on_activity_congratulates_once_for_a_named_activity(wh, cohort, campaigns, run):
    campaigns.write(campaigns.base().replace(
        "  bravo:\n    on_milestone: [25%, 50%, 75%]\n",
        "  quiz-done:\n    on_activity: a2\n"))
    loaded = campaigns.load()
    lid = cohort.learner(inactive_days=1, done=1)
    run(loaded)
    cohort.event(lid, "a2", "completed", MONDAY + timedelta(days=2))
    run(loaded, MONDAY + timedelta(weeks=1))
    run(loaded, MONDAY + timedelta(weeks=2))
    assert sent(wh)[lid].count("quiz-done") == 1


def test_follow_up_list_for_the_community_manager(wh, cohort, campaigns, run):
    campaigns.write(campaigns.base() + """
follow_up:
  call:
    stage: dormant
    reason: Silent for three weeks.
  stuck:
    stalled_days: ">= 14"
    stage: [active]
    reason: Logs in but does not progress.
""")
    dormant = cohort.learner(inactive_days=30)
    stuck = cohort.learner(inactive_days=1, done=1)
    wh.execute("update progress_events set occurred_at = occurred_at - interval 20 day "
               "where learner_id = ? and verb = 'completed'", [stuck]).fetchall()
    progressing = cohort.learner(inactive_days=1, done=2)
    run(campaigns.load())
    rows = dict(wh.execute("select learner_id, rule from follow_up_list").fetchall())
    assert rows == {dormant: "call", stuck: "stuck"}
    assert progressing not in rows


def test_a_learner_matching_several_follow_up_rules_is_listed_once_under_the_first(
        wh, cohort, campaigns, run):
    campaigns.write(campaigns.base() + """
follow_up:
  call:
    stage: dormant
    reason: Silent for three weeks.
  check_in:
    inactive_days: ">= 7"
    reason: Quiet for a week.
""")
    dormant = cohort.learner(inactive_days=30)      # matches both rules
    quiet = cohort.learner(inactive_days=10)        # the second only
    cohort.learner(inactive_days=1)                 # neither
    run(campaigns.load())
    rows = sorted(wh.execute("select learner_id, rule, reason from follow_up_list").fetchall())
    assert rows == sorted([(dormant, "call", "Silent for three weeks."),
                           (quiet, "check_in", "Quiet for a week.")])


def test_run_is_recorded_with_counts(wh, cohort, campaigns, run):
    campaigns.write(campaigns.base())
    for days in (1, 8, 8, 25):
        cohort.learner(inactive_days=days)
    summary = run(campaigns.load())
    row = wh.execute("select status, n_evaluated, n_planned, n_sent, n_failed, campaign_sha "
                     "from campaign_runs where run_id = ?", [summary.run_id]).fetchall()[0]
    assert row[:5] == ("succeeded", 4, 4, 4, 0)
    funnel = wh.execute("select evaluated, planned_now, sent from campaign_funnel "
                        "where run_id = ?", [summary.run_id]).fetchall()[0]
    assert funnel == (4, 4, 4)


def test_a_failed_run_is_marked_failed_and_leaves_no_half_plan(wh, cohort, campaigns, run, monkeypatch):
    campaigns.write(campaigns.base())
    cohort.learner(inactive_days=8)
    loaded = campaigns.load()

    def boom(*a, **k):
        raise RuntimeError("disk full")
    monkeypatch.setattr(engine, "persist", boom)
    with pytest.raises(RuntimeError):
        run(loaded)
    status, error = wh.execute("select status, error from campaign_runs").fetchall()[0]
    assert status == "failed" and "disk full" in error
    assert wh.execute("select count(*) from decisions").fetchall()[0][0] == 0
    monkeypatch.undo()
    assert run(loaded).sent == 1


def test_weekly_limits_count_per_person_across_the_campaigns_courses(wh, cohort, campaigns, run):
    from tests.conftest import Cohort
    second = Cohort(wh, course_id="c2")
    campaigns.write(campaigns.base().replace("  course: c1\n", "  course: [c1, c2]\n"))
    lid = cohort.learner(inactive_days=8)
    # the same person enrolled on both courses, silent on both
    wh.execute("insert into enrolments values (?, 'c2', 'co', ?, 'enrolled', null, null, 'test', now())",
               [lid, MONDAY - timedelta(days=40)]).fetchall()
    second.event(lid, None, "accessed", MONDAY - timedelta(days=8))
    run(campaigns.load())
    assert sent(wh) == {lid: ["relance"]}
    reasons = sorted(r[0] or "" for r in wh.execute("select reason from decisions").fetchall())
    assert reasons == ["", "superseded:relance"]


@pytest.mark.parametrize("tz,as_of,expected_utc", [
    # Paris, the night the clocks go forward (29 March 2026): 08:00 local is 06:00 UTC
    ("Europe/Paris", "2026-03-28T21:00:00+00:00", "2026-03-30T06:00:00+00:00"),
    # Paris, the night they go back (25 October 2026): 08:00 local is 07:00 UTC
    ("Europe/Paris", "2026-10-24T21:00:00+00:00", "2026-10-26T07:00:00+00:00"),
    # Montréal, 8 March 2026 (forward) and 1 November 2026 (back)
    ("America/Montreal", "2026-03-07T04:00:00+00:00", "2026-03-09T12:00:00+00:00"),
    ("America/Montreal", "2026-10-31T04:00:00+00:00", "2026-11-02T13:00:00+00:00"),
])
def test_quiet_hours_and_send_days_across_daylight_saving_changes(wh, campaigns, tz, as_of, expected_utc):
    from datetime import datetime

    from tests.conftest import Cohort
    when = datetime.fromisoformat(as_of)
    cohort = Cohort(wh, starts_on=when - timedelta(weeks=6))
    campaigns.write(campaigns.base().replace(
        "  per_learner_per_week: 2\n",
        "  per_learner_per_week: 2\n  quiet_hours: \"20:00-08:00\"\n"
        "  send_days: [monday, tuesday, wednesday, thursday, friday]\n"))
    lid = cohort.learner(inactive_days=8, tz=tz, as_of=when)
    engine.evaluate(wh, campaigns.load(), when)
    row = wh.execute("select outcome, reason, not_before from eval_candidates "
                     "where learner_id = ? and message_key = 'relance'", [lid]).fetchall()[0]
    assert row[:2] == ("deferred", "outside_send_window")
    assert row[2] == datetime.fromisoformat(expected_utc)     # Monday 08:00, local


def test_completing_brings_the_congratulation_not_a_late_milestone(wh, cohort, campaigns, run):
    campaigns.write(campaigns.base().replace(
        "messages:\n", "messages:\n  felicitations:\n    on_enter: completed\n"))
    loaded = campaigns.load()
    lid = cohort.learner(inactive_days=1, done=2)               # 50 %
    run(loaded)
    for activity in ("a3", "a4"):                                # straight to 100 %
        cohort.event(lid, activity, "completed", MONDAY + timedelta(days=2))
    run(loaded, MONDAY + timedelta(weeks=1))
    run(loaded, MONDAY + timedelta(weeks=2))
    got = sent(wh)[lid]
    assert got.count("felicitations") == 1 and "bravo" not in got


def test_a_campaign_started_late_does_not_congratulate_old_completions(wh, cohort, campaigns, run):
    campaigns.write(campaigns.base().replace(
        "messages:\n", "messages:\n  felicitations:\n    on_enter: completed\n"))
    old = cohort.learner(completed=True, inactive_days=100, done=4)
    wh.execute("update enrolments set completed_at = ? where learner_id = ?",
               [MONDAY - timedelta(days=100), old]).fetchall()
    fresh = cohort.learner(completed=True, inactive_days=2, done=4)   # completed 2 days ago
    run(campaigns.load())
    assert sent(wh) == {fresh: ["felicitations"]}
    assert decision(wh, old)[:3] == ("completed", None, "no_message")


def test_stalled_days_counts_from_when_the_best_progress_was_first_reached(wh, cohort, campaigns):
    campaigns.write(campaigns.base())
    lid = cohort.learner(inactive_days=None)
    # 40 % reported 30 days ago, then daily logins still reporting 40 %
    for days in (30, 20, 10, 1):
        wh.execute("insert into progress_events values (?, ?, 'c1', null, 'progressed', ?, 0.4, 't', now())",
                   [f"p{days}", lid, MONDAY - timedelta(days=days)]).fetchall()
    engine.evaluate(wh, campaigns.load(), MONDAY)
    assert wh.execute("select stalled_days, inactive_days from eval_state").fetchall() == [(30, 1)]


def test_locales_keep_their_declared_spelling(wh, cohort, campaigns, run):
    campaigns.write(campaigns.base().replace("control_group: 0%", "control_group: 0%\nlocale: fr-CA\nlocales: [fr-CA, en]"))
    lid = cohort.learner(inactive_days=8, locale="fr_ca")
    run(campaigns.load())
    assert wh.execute("select locale, status from messages").fetchall() == [("fr-CA", "sent")]
    assert sent(wh) == {lid: ["relance"]}


def test_a_recap_seen_on_sunday_night_belongs_to_the_coming_week(wh, cohort, campaigns, run):
    campaigns.write(campaigns.base())
    la = cohort.learner(inactive_days=1, tz="America/Los_Angeles", locale="en")
    engine.evaluate(wh, campaigns.load(), MONDAY - timedelta(hours=2))   # Sunday 22:00 in LA
    row = wh.execute("select trigger, outcome, not_before, idempotency_key from eval_candidates "
                     "where learner_id = ? and message_key = 'recap'", [la]).fetchall()[0]
    assert row[1] == "deferred"
    assert row[2] == MONDAY + timedelta(hours=8, minutes=30)          # Monday 08:30 LA
    assert row[3].endswith("week:2026-W48")


def test_a_weekly_message_pushed_out_of_its_week_is_not_sent(wh, cohort, campaigns, run):
    # A Sunday 19:00 recap not sent by Sunday 20:30 (quiet hours from 20:00) could only
    # go on Monday 08:00, in the next week: that week's recap is missed, not sent late.
    campaigns.write(campaigns.base().replace("every: monday 08:30", "every: sunday 19:00").replace(
        "  per_learner_per_week: 2\n", "  per_learner_per_week: 2\n  quiet_hours: \"20:00-08:00\"\n"))
    lid = cohort.learner(inactive_days=1)
    sunday = MONDAY + timedelta(days=6, hours=11, minutes=30)          # Sunday 20:30 Paris
    engine.evaluate(wh, campaigns.load(), sunday)
    row = wh.execute("select outcome, reason from eval_candidates where learner_id = ? "
                     "and message_key = 'recap'", [lid]).fetchall()[0]
    assert row == ("suppressed", "missed_week")


def test_a_weekly_time_that_can_never_be_sent_is_a_campaign_problem(campaigns):
    from relance.campaign.problems import CampaignError
    campaigns.write(campaigns.base().replace("every: monday 08:30", "every: friday 21:00").replace(
        "  per_learner_per_week: 2\n", "  per_learner_per_week: 2\n  quiet_hours: \"20:00-08:00\"\n"
        "  send_days: [monday, tuesday, wednesday, thursday, friday]\n"))
    with pytest.raises(CampaignError) as exc:
        campaigns.load()
    (problem,) = exc.value.problems
    assert problem.field == "messages.recap.every"
    assert "friday 21:00 is outside the send window" in problem.message


def test_a_deferred_weekly_message_left_over_is_cancelled_when_its_week_ends(wh, cohort, campaigns, run):
    from relance.delivery import deliver_due
    campaigns.write(campaigns.base().replace("every: monday 08:30", "every: monday 23:00"))
    loaded = campaigns.load()
    lid = cohort.learner(inactive_days=1)
    run(loaded)                                                         # recap deferred to 23:00
    report = deliver_due(wh, loaded, run.outbox, now=MONDAY + timedelta(weeks=1))
    assert report.sent == 0 and report.cancel_reasons == {"missed_week": 1}
    assert wh.execute("select status, error from messages where learner_id = ?", [lid]).fetchall() == [
        ("cancelled", "missed_week")]


def test_moving_between_two_stages_a_message_is_for_does_not_cancel_it(wh, cohort, campaigns, run):
    from relance.delivery import deliver_due
    campaigns.write(campaigns.base().replace("every: monday 08:30", "every: monday 23:00").replace(
        "  relance:\n    on_enter: at_risk\n", ""))
    loaded = campaigns.load()
    lid = cohort.learner(inactive_days=6)                               # active, recap deferred
    run(loaded)
    run(loaded, MONDAY + timedelta(days=1, hours=2))                    # now at_risk (7+ days)
    assert decision(wh, lid)[0] == "at_risk"
    deliver_due(wh, loaded, run.outbox, now=MONDAY + timedelta(days=1, hours=3))
    assert sent(wh)[lid] == ["recap"]


def test_overdue_counts_only_what_fell_due_since_enrolment(wh, cohort, campaigns):
    campaigns.write(campaigns.base())
    newcomer = cohort.learner(inactive_days=1, enrolled_days=4)          # after all four were due
    veteran = cohort.learner(inactive_days=1, enrolled_days=45)          # before all four
    catching_up = cohort.learner(inactive_days=1, enrolled_days=45, done=3)
    engine.evaluate(wh, campaigns.load(), MONDAY)
    overdue = dict(wh.execute("select learner_id, overdue from eval_state").fetchall())
    assert overdue == {newcomer: 0, veteran: 4, catching_up: 1}


def test_a_message_waiting_for_a_retry_counts_against_the_weekly_limits(wh, cohort, campaigns, run):
    campaigns.write(campaigns.base())
    loaded = campaigns.load()
    lid = cohort.learner(inactive_days=8)
    run(loaded)
    wh.execute("update messages set status = 'failed', attempts = 1, error = 'outbox: disk full'").fetchall()
    cohort.event(lid, "a1", "completed", MONDAY + timedelta(hours=1))       # 25 %: a new occasion
    run(loaded, MONDAY + timedelta(hours=2))
    assert decision(wh, lid)[1:] == ("bravo", "suppressed", "campaign_weekly_cap")


def test_this_weeks_relance_does_not_hold_back_next_weeks_recap(wh, cohort, campaigns):
    campaigns.write(campaigns.base())
    la = cohort.learner(inactive_days=8, tz="America/Los_Angeles", locale="en")
    engine.evaluate(wh, campaigns.load(), MONDAY - timedelta(hours=2))     # Sunday 22:00 in LA
    rows = dict(wh.execute("select message_key, outcome from eval_candidates where learner_id = ?",
                           [la]).fetchall())
    assert rows == {"relance": "planned", "recap": "deferred"}
