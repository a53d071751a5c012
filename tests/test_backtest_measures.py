"""The grace-period measures a backtest compares (`late_days`, `behind`), on a hand-built
cohort with known answers, and used in a campaign's stage conditions."""

from __future__ import annotations

from datetime import timedelta

import pytest

from relance import engine
from relance.campaign.problems import CampaignError
from tests.conftest import MONDAY


@pytest.fixture
def course(wh, cohort):
    """a1..a4 due 35, 28, 21 and 14 days before MONDAY (weights 1, 1, 1, 3); tma5 due on
    Thursday 23:59:59 (3 days and 8 hours before MONDAY 08:00 UTC, weight 2); an exam due
    the day before MONDAY that nobody hands in (weight 100: it must count for nothing)."""
    wh.execute("update activities set weight = 3 where activity_id = 'a4'").fetchall()
    cohort.add_activity("tma5", week=6, due=MONDAY - timedelta(days=3, hours=8, seconds=1), weight=2)
    wh.execute("insert into activities values ('c1', 'exam', 'Exam', 'Exam', 6, null, ?, 100, "
               "true, null, 'test', now())", [MONDAY - timedelta(days=1)]).fetchall()
    return {
        # enrolled after every deadline so far: nothing is due, nobody is behind
        "newcomer": cohort.learner(enrolled_days=2),
        # handed in nothing: the oldest deadline (a1) was 35 days ago; all of the weight missed
        "veteran": cohort.learner(done=0),
        # a1..a4 handed in (late, the day before MONDAY: made up, no longer missing); tma5
        # missed 3 days and 8 hours ago; 2 of the 8 weighted units due
        "four_done": cohort.learner(done=4),
        # a1..a3 handed in; a4 (weight 3) missed 14 days ago and tma5 (weight 2): 5 of 8
        "three_done": cohort.learner(done=3),
        # everything but the exam
        "all_done": cohort.learner(done=5),
    }


def measures(wh, campaigns, stages: str = '  at_risk: {late_days: ">= 3"}\n'):
    campaigns.write(campaigns.base(**{'  at_risk: {inactive_days: ">= 7"}\n': stages}))
    engine.evaluate(wh, campaigns.load(), MONDAY)
    return {lid: (late, behind, stage) for lid, late, behind, stage in wh.execute(
        "select learner_id, late_days, behind, stage from eval_state").fetchall()}


def test_late_days_and_behind_on_a_hand_built_cohort(wh, campaigns, course):
    got = measures(wh, campaigns)
    by_name = {name: got[lid][:2] for name, lid in course.items()}
    assert by_name == {
        "newcomer": (0, 0.0),
        "veteran": (35, 100.0),
        "four_done": (3, 25.0),
        "three_done": (14, 62.5),
        "all_done": (0, 0.0),
    }


def test_a_stage_on_late_days_and_behind_picks_who_missed_a_deadline_by_3_days(wh, campaigns, course):
    got = measures(wh, campaigns, '  at_risk: {late_days: ">= 3", behind: "< 50%"}\n'
                                  '  far_behind: {behind: ">= 50%"}\n')
    stages = {name: got[lid][2] for name, lid in course.items()}
    assert stages == {"newcomer": "active", "veteran": "far_behind", "four_done": "at_risk",
                      "three_done": "far_behind", "all_done": "active"}


def test_percent_applies_to_behind_not_to_late_days(campaigns):
    campaigns.write(campaigns.base(**{'at_risk: {inactive_days: ">= 7"}':
                                      'at_risk: {late_days: ">= 3%"}'}))
    with pytest.raises(CampaignError) as exc:
        campaigns.load()
    assert any("stages.at_risk.late_days: '%' only applies to progress and behind" in str(p)
               for p in exc.value.problems)


def test_a_campaign_that_names_neither_does_not_pay_for_them(wh, campaigns, course):
    got = measures(wh, campaigns, '  at_risk: {inactive_days: ">= 7"}\n')
    assert {v[:2] for v in got.values()} == {(None, None)}
