"""KPI views on hand-built cohorts whose answers are worked out by hand."""

from __future__ import annotations

from datetime import date

from tests.roi_fixtures import CLOCK, day, small_cohort


def as_dicts(b, sql):
    cur = b.con.execute(sql)
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


def test_cohort_rates_follow_the_definitions():
    b = small_cohort()
    [row] = as_dicts(b, "from kpi_cohorts where campaign_id = '(all)'")
    assert row["as_of"] == CLOCK
    assert (row["enrolled"], row["started"], row["completed"], row["certified"]) == (6, 4, 1, 1)
    # L2 withdrew; L3 (never started) and L6 (last seen day 5) are silent for 21+ days;
    # L5 enrolled 12 days ago is not silent yet
    assert (row["withdrawn"], row["silent"], row["dropped_out"]) == (1, 2, 3)
    assert row["dropout_rate"] == 0.5
    assert row["completion_rate"] == round(1 / 6, 4)
    assert row["certification_rate"] == round(1 / 6, 4)
    assert row["start_rate"] == round(4 / 6, 4)


def test_certification_rate_is_null_where_no_activity_certifies():
    b = small_cohort()
    b.rows("delete from activities")
    [row] = as_dicts(b, "from kpi_cohorts where campaign_id = '(all)'")
    assert row["certified"] == 0 and row["certification_rate"] is None


def test_weekly_active_counts_learners_seen_each_week_among_those_enrolled():
    b = small_cohort()
    got = {r["week_start"]: (r["enrolled"], r["active"]) for r in as_dicts(b, "from kpi_weekly_active")}
    assert got == {
        date(2026, 1, 5): (5, 3),    # L1, L2, L6 seen; L5 not enrolled yet
        date(2026, 1, 12): (5, 1),   # L4 on the 13th; L2 withdraws on the 15th, still counted
        date(2026, 1, 19): (4, 1),   # L2 gone; L1 on the 20th and 24th
        date(2026, 1, 26): (5, 1),   # L5 enrolled on the 26th; L4 on the 28th
        date(2026, 2, 2): (5, 0),
    }


def test_campaign_groups_and_dropout_curve():
    b = small_cohort()
    for lid in ("L1", "L2", "L3", "L4"):
        b.decision("camp", lid, holdout=False)
    for lid in ("L5", "L6"):
        b.decision("camp", lid, holdout=True)
    curve = {(r["group"], r["course_week"]): (r["learners"], r["dropped_out"])
             for r in as_dicts(b, "from kpi_dropout_curve where campaign_id = 'camp'")}
    # treated: L3 silent since enrolment (week 1), L2 withdrew day 10 (week 2)
    assert curve[("treated", 1)] == (4, 1)
    assert curve[("treated", 2)] == (4, 2)
    assert curve[("treated", 5)] == (4, 2)
    # control: L6 last seen day 5 (week 1); L5 not dropped
    assert curve[("control", 1)] == (2, 1)
    assert max(w for g, w in curve) == 5   # 2 Feb is in course week 5
    [row] = as_dicts(b, "from kpi_cohorts where campaign_id = 'camp'")
    assert (row["enrolled"], row["dropped_out"], row["completed"]) == (6, 3, 1)


def test_messages_outcomes_reengagement_and_time_to_activity():
    b = small_cohort()
    # L4 relanced on day 15: back on day 23, 8 days later: not within 7 days
    b.message("m1", "camp", "L4", not_before=day(15), events=("delivered", "open"))
    # L6 relanced on day 7: never came back; bounced
    b.message("m2", "camp", "L6", not_before=day(7), events=("bounce",))
    # L1 relanced on day 14 08:00: active on day 15 10:00, 26 hours later
    b.message("m3", "camp", "L1", not_before=day(14, 8), events=("delivered", "open", "click"))
    # L5 relanced on day 25: its 7 days are not over at the clock
    b.message("m4", "camp", "L5", not_before=day(25))
    b.message("m5", "camp", "L3", not_before=day(7), status="failed")
    [row] = as_dicts(b, "from kpi_messages")
    assert (row["in_ledger"], row["sent"], row["failed"]) == (5, 4, 1)
    assert (row["delivered"], row["opened"], row["clicked"], row["bounced"]) == (2, 2, 1, 1)
    assert (row["reengagement_observed"], row["reengaged_7d"]) == (3, 1)
    assert row["reengagement_rate"] == round(1 / 3, 4)
    assert row["median_hours_to_activity"] == (8 * 24 + 26) / 2
    per = {r["message_id"]: r for r in as_dicts(b, "from kpi_message_outcomes")}
    assert per["m1"]["first_activity_after"] == day(23)
    assert per["m4"]["reengaged_7d"] is None and per["m5"]["reengaged_7d"] is None


def test_weekly_stages_count_the_last_run_of_each_week():
    b = small_cohort()
    b.decision("camp", "L4", holdout=False, as_of=day(14, 8), stage="active", inactive_days=6)
    b.decision("camp", "L6", holdout=True, as_of=day(14, 8), stage="at_risk", inactive_days=9)
    rows = as_dicts(b, "from kpi_weekly_stages order by stage")
    assert [(r["stage"], r["learners"], r["active"], r["control"]) for r in rows] == [
        ("active", 1, 1, 0), ("at_risk", 1, 0, 1)]
    assert rows[0]["week_start"] == date(2026, 1, 19)
