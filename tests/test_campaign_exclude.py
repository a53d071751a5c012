"""`audience.exclude`: a campaign leaves another campaign's learners to it (how two
campaigns on one course stop writing to the same learner), and names only campaigns that
exist."""

from __future__ import annotations

import pytest

from relance import engine
from relance.campaign.problems import CampaignError
from tests.conftest import MONDAY


def test_a_campaign_leaves_out_the_audience_of_the_one_it_excludes(campaigns, wh, cohort):
    english = cohort.learner(locale="en-GB")
    cohort.learner(locale="fr")
    # `first` targets the English speakers of c1; `second` all of c1 but them
    campaigns.write(campaigns.base("first").replace(
        "  course: c1\n", "  course: c1\n  where: \"locale like 'en%'\"\n"))
    campaigns.write(campaigns.base("second").replace(
        "  course: c1\n", "  course: c1\n  exclude: [first]\n"))
    engine.evaluate(wh, campaigns.load("second"), MONDAY)
    learners = [r[0] for r in wh.execute("select learner_id from eval_state").fetchall()]
    assert learners and english not in learners


def test_a_comment_in_an_excluded_campaign_s_condition_ends_with_its_line(campaigns, wh,
                                                                          cohort):
    """`-- English speakers` ends the condition's line, as SQL says, in the campaign's own
    plan and where another campaign leaves its learners out (it took the rest of that
    line of the plan's query with it: found by tests/test_fuzz_conditions.py's seeds)."""
    english = cohort.learner(locale="en-GB")
    french = cohort.learner(locale="fr")
    campaigns.write(campaigns.base("first").replace(
        "  course: c1\n", "  course: c1\n  where: \"locale like 'en%' -- English speakers\"\n"))
    campaigns.write(campaigns.base("second").replace(
        "  course: c1\n", "  course: c1\n  exclude: [first]\n"))
    engine.evaluate(wh, campaigns.load("first"), MONDAY)
    assert [r[0] for r in wh.execute("select learner_id from eval_state").fetchall()] == [english]
    engine.evaluate(wh, campaigns.load("second"), MONDAY)
    assert [r[0] for r in wh.execute("select learner_id from eval_state").fetchall()] == [french]


def test_a_learner_without_a_cohort_is_not_in_a_cohort_s_audience(campaigns, wh, cohort):
    cohort.learner()                                   # cohort 'co'
    campaigns.write(campaigns.base("first").replace("  course: c1\n", "  course: c1\n  cohort: other\n"))
    campaigns.write(campaigns.base("second").replace(
        "  course: c1\n", "  course: c1\n  exclude: [first]\n"))
    wh.execute("update enrolments set cohort = null").fetchall()
    engine.evaluate(wh, campaigns.load("second"), MONDAY)
    assert wh.execute("select count(*) from eval_state").fetchall()[0][0] == 1


@pytest.mark.parametrize("excluded, expected", [
    ("firts", "no campaign 'firts' in "),
    ("second", "a campaign cannot exclude its own audience"),
])
def test_an_exclusion_names_another_campaign_of_the_folder(campaigns, excluded, expected):
    campaigns.write(campaigns.base("first"))
    campaigns.write(campaigns.base("second").replace(
        "  course: c1\n", f"  course: c1\n  exclude: [{excluded}]\n"))
    with pytest.raises(CampaignError) as exc:
        campaigns.load("second")
    (problem,) = exc.value.problems
    assert (problem.line, problem.field) == (5, "audience.exclude[0]")
    assert expected in problem.message
    if excluded == "firts":
        assert "did you mean 'first'?" in problem.message
