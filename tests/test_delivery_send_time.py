"""Send-time truth: a message planned at one moment and sent at another is judged again
when it goes out, with the definitions that planned it, and carries the moment it really
went (its Date: and `sent_at`); logical columns hold logical time."""

from __future__ import annotations

import email
from datetime import datetime, timedelta, timezone
from email import policy

from relance import clock
from relance.channels.outbox import OutboxChannel
from relance.delivery import deliver_due
from relance.runs.steps import plan_step, run_campaign
from tests.conftest import MONDAY

QUIET_NIGHTS = "  per_learner_per_week: 2\n  quiet_hours: \"20:00-08:00\"\n"
# a Friday evening, just before quiet hours in Paris (19:50 local, 18:50 UTC)
FRIDAY_EVENING = MONDAY + timedelta(days=4, hours=10, minutes=50)


def statuses(wh) -> dict[str, tuple]:
    return {r[0]: r[1:] for r in wh.execute(
        "select learner_id, status, error from messages where trigger <> 'digest'").fetchall()}


def eml_dates(folder) -> list[datetime]:
    return sorted(email.message_from_bytes(p.read_bytes(), policy=policy.default)["Date"].datetime
                  for p in folder.rglob("*.eml"))


def test_a_deferred_relance_is_cancelled_when_the_learner_is_back_before_it_goes(
        wh, cohort, campaigns, tmp_path):
    campaigns.write(campaigns.base().replace("  per_learner_per_week: 2\n", QUIET_NIGHTS))
    loaded = campaigns.load()
    back = cohort.learner(inactive_days=8, tz="America/Montreal")
    still = cohort.learner(inactive_days=8, tz="America/Montreal")
    out = OutboxChannel(tmp_path / "out")
    run_campaign(wh, loaded, as_of=MONDAY, channel=out)        # 03:00 in Montréal: deferred
    assert {s for s, _ in statuses(wh).values()} == {"planned"}
    # `back` logs in at 06:00 Montréal; no run sees it, only the delivery at 08:00 there
    cohort.event(back, None, "accessed", MONDAY.replace(hour=11))
    report = deliver_due(wh, loaded, out, now=MONDAY.replace(hour=13, minute=5))
    assert report.sent == 1 and report.cancel_reasons == {"stage_changed": 1}
    assert statuses(wh) == {back: ("cancelled", "stage_changed"), still: ("sent", None)}


def test_a_deferred_message_is_cancelled_when_the_learner_completed_or_withdrew(
        wh, cohort, campaigns, tmp_path):
    campaigns.write(campaigns.base().replace("  per_learner_per_week: 2\n", QUIET_NIGHTS))
    loaded = campaigns.load()
    done = cohort.learner(inactive_days=8, tz="America/Montreal")
    gone = cohort.learner(inactive_days=8, tz="America/Montreal")
    out = OutboxChannel(tmp_path / "out")
    run_campaign(wh, loaded, as_of=MONDAY, channel=out)
    wh.execute("update enrolments set status = 'completed', completed_at = ? where learner_id = ?",
               [MONDAY.replace(hour=10), done]).fetchall()
    # a learner who withdrew leaves the audience
    wh.execute("update enrolments set status = 'withdrawn', withdrawn_at = ? where learner_id = ?",
               [MONDAY.replace(hour=10), gone]).fetchall()
    report = deliver_due(wh, loaded, out, now=MONDAY.replace(hour=13, minute=5))
    assert report.sent == 0
    assert statuses(wh) == {done: ("cancelled", "stage_changed"), gone: ("cancelled", "withdrawn")}
    assert not (tmp_path / "out").exists()


def test_a_late_delivery_waits_for_the_send_window_and_dates_mail_when_it_goes(
        wh, cohort, campaigns, tmp_path):
    """Planned on a Friday evening; the hourly delivery does not run over the weekend. On
    Sunday evening nothing goes (send days are Monday to Friday): it waits for Monday 08:00
    in the learner's timezone, and goes out then, dated then."""
    campaigns.write(campaigns.base().replace(
        "  per_learner_per_week: 2\n",
        QUIET_NIGHTS + "  send_days: [monday, tuesday, wednesday, thursday, friday]\n"))
    loaded = campaigns.load()
    paris = cohort.learner(inactive_days=8, as_of=FRIDAY_EVENING)
    tokyo = cohort.learner(inactive_days=8, as_of=FRIDAY_EVENING, tz="Asia/Tokyo")
    plan_step(wh, loaded, FRIDAY_EVENING)        # Paris: due now; Tokyo (03:50): Monday 08:00
    sunday_evening = FRIDAY_EVENING + timedelta(days=2)
    out = OutboxChannel(tmp_path / "out")
    report = deliver_due(wh, loaded, out, now=sunday_evening)
    assert report.sent == 0 and report.waiting == {"outside_send_window": 1}
    monday_paris = datetime(2026, 11, 30, 7, 0, tzinfo=timezone.utc)     # 08:00 in Paris
    assert wh.execute("select learner_id, status, not_before from messages order by all").fetchall() == [
        (paris, "planned", monday_paris),
        (tokyo, "planned", datetime(2026, 11, 29, 23, 0, tzinfo=timezone.utc))]  # 08:00 Tokyo
    # Monday 08:05 Paris: both are due, and go, dated by the send, not by the plan
    send = monday_paris + timedelta(minutes=5)
    assert deliver_due(wh, loaded, out, now=send).sent == 2
    assert eml_dates(tmp_path / "out") == [send, send]
    assert {r[0] for r in wh.execute("select sent_at from messages").fetchall()} == {send}


def test_a_weekly_message_left_unsent_over_the_weekend_is_cancelled_not_sent_late(
        wh, cohort, campaigns, tmp_path):
    campaigns.write(campaigns.base().replace("    every: monday 08:30\n", "    every: friday 17:00\n")
                    .replace("  per_learner_per_week: 2\n",
                             QUIET_NIGHTS + "  send_days: [monday, tuesday, wednesday, thursday, friday]\n"))
    loaded = campaigns.load()
    friday_morning = FRIDAY_EVENING.replace(hour=8, minute=0)
    lid = cohort.learner(inactive_days=1, as_of=friday_morning)
    plan_step(wh, loaded, friday_morning)        # the recap waits for 17:00
    assert statuses(wh) == {lid: ("planned", None)}
    report = deliver_due(wh, loaded, OutboxChannel(tmp_path / "out"),
                         now=FRIDAY_EVENING + timedelta(days=2))   # Sunday evening
    assert report.sent == 0 and report.cancel_reasons == {"missed_week": 1}
    assert statuses(wh) == {lid: ("cancelled", "missed_week")}


def test_logical_columns_hold_logical_time_and_wall_time_is_kept_beside(
        wh, cohort, campaigns, tmp_path):
    campaigns.write(campaigns.base().replace("  per_learner_per_week: 2\n", QUIET_NIGHTS)
                    + "follow_up:\n  call:\n    inactive_days: \">= 7\"\n    reason: Silent for a week.\n")
    loaded = campaigns.load()
    lid = cohort.learner(inactive_days=8, tz="America/Montreal")
    out = OutboxChannel(tmp_path / "out")
    run_campaign(wh, loaded, as_of=MONDAY, channel=out)
    later = MONDAY.replace(hour=13, minute=5)
    before = clock.wall()
    deliver_due(wh, loaded, out, now=later)
    planned_at, sent_at, sent_wall_at = wh.execute(
        "select planned_at, sent_at, sent_wall_at from messages").fetchall()[0]
    assert (planned_at, sent_at) == (MONDAY, later)
    assert sent_wall_at >= before                          # when the outbox really wrote it
    assert eml_dates(tmp_path / "out") == [later]
    assert wh.execute("select created_at from follow_ups").fetchall() == [(MONDAY,)]
    # the community manager's list says as of when, and when the learner was last seen
    assert wh.execute("select learner_id, as_of, last_activity_at from follow_up_list").fetchall() == [
        (lid, MONDAY, MONDAY - timedelta(days=8))]


def test_an_unsubscribe_is_dated_by_the_clock(wh, cohort):
    from relance.feedback import unsubscribe
    lid = cohort.learner()
    with clock.at(MONDAY):
        unsubscribe.record(wh, lid, "test", source="link")
    assert wh.execute("select created_at from suppressions").fetchall() == [(MONDAY,)]
