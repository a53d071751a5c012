"""Campaign tests beside the campaign: every sample campaign's `tests:` block runs here
through the real engine, and `relance test` reports a wrong expectation as a table."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from relance.campaign import loader
from relance.workbench import testbench
from relance.cli.main import app
from tests.conftest import REPO

try:        # a broken sample campaign fails a test below, not the collection of this file
    SAMPLES, LOAD_ERROR = loader.load_all(REPO / "campaigns"), None
except loader.CampaignError as exc:
    SAMPLES, LOAD_ERROR = [], exc
CASES = [(c, i) for c in SAMPLES for i in range(len(testbench.cases(c)))]


def test_every_sample_campaign_ships_examples():
    assert LOAD_ERROR is None, str(LOAD_ERROR)
    assert {c.id for c in SAMPLES if len(testbench.cases(c)) >= 5} == {
        "parcours-anglais", "mooc-climat", "onboarding"}


@pytest.mark.parametrize("loaded,index", CASES,
                         ids=[f"{c.id}: {testbench.cases(c)[i].name}" for c, i in CASES])
def test_campaign_example(loaded, index):
    result = testbench.run_case(loaded, index)
    assert result.passed, (f"{result.location}: {result.name}: expected {result.expected}, "
                           f"the engine gave {result.actual} ({result.measures})")


def test_examples_sharing_one_warehouse_never_see_each_other():
    """`relance test` runs example after example in one in-memory warehouse: each finds it
    as new (what the one before wrote, planned or recorded is gone), so each gets what it
    gets in a warehouse of its own, and the warehouse is empty after them."""
    loaded = next(c for c in SAMPLES if c.id == "parcours-anglais")
    alone = [testbench.run_case(loaded, i) for i in range(len(testbench.cases(loaded)))]
    with testbench.scratch() as fresh:
        shared = [testbench.run_case(loaded, i, fresh) for i in range(len(alone))]
        left = fresh.con.execute(
            "select (select count(*) from learners), (select count(*) from messages), "
            "(select count(*) from decisions), (select count(*) from duckdb_tables() "
            "where temporary)").fetchall()
    assert [(r.actual, r.measures) for r in shared] == [(r.actual, r.measures) for r in alone]
    assert left == [(0, 0, 0, 0)]


TESTS_BLOCK = """
tests:
  as_of: 2026-11-23T09:00
  cases:
    - name: silent for a week
      given: {inactive_days: 8, progress: 10%}
      expect: {stage: at_risk, message: relance}
    - name: silent for a month
      given: {inactive_days: 30, enrolled_days: 40}
      expect: {stage: dormant, message: remobilisation}
"""


def test_a_wrong_expectation_fails_with_a_table_of_expected_and_actual(campaigns):
    campaigns.write(campaigns.base() + TESTS_BLOCK)
    result = CliRunner().invoke(app, ["test", "test", "--campaigns", str(campaigns.root)],
                                env={"COLUMNS": "160"})
    assert result.exit_code == 1, result.output
    out = result.output
    assert "✓ silent for a week" in out and "✗ silent for a month" in out
    # the learner was dormant last week already: the remobilisation went out then
    assert "FAILED" in out and "test.yaml:31: silent for a month" in out
    row = next(line for line in out.splitlines() if line.startswith("│ message"))
    assert row.split("│")[2].strip() == "remobilisation" and row.split("│")[3].strip() == "none"
    row = next(line for line in out.splitlines() if line.startswith("│ reason"))
    assert row.split("│")[3].strip() == "already_sent"
    assert "inactive_days 30" in out
    assert "1 of 2 examples failed." in out


def test_first_run_evaluates_as_the_campaign_s_first_week(campaigns):
    campaigns.write(campaigns.base() + TESTS_BLOCK.replace(
        "      given: {inactive_days: 30, enrolled_days: 40}\n",
        "      first_run: true\n      given: {inactive_days: 30, enrolled_days: 40}\n"))
    result = CliRunner().invoke(app, ["test", "--campaigns", str(campaigns.root)])
    assert result.exit_code == 0, result.output
    assert "2 examples passed." in result.output


@pytest.mark.parametrize("old,new,expected", [
    ("expect: {stage: at_risk, message: relance}", "expect: {stage: at_rsik, message: relance}",
     "test.yaml:30:23: tests.cases[0].expect.stage: unknown stage 'at_rsik'; did you mean "
     "'at_risk'? the campaign's are: completed, dormant, at_risk, active"),
    ("expect: {stage: at_risk, message: relance}", "expect: {stage: at_risk, mesage: relance}",
     "test.yaml:30:32: tests.cases[0].expect.mesage: unknown field; did you mean `message`?"),
    ("given: {inactive_days: 8, progress: 10%}", "given: {inactive_days: 8, progress: lots}",
     "test.yaml:29:43: tests.cases[0].given.progress: expected a percentage such as '10%', "
     "got 'lots'"),
    ("expect: {stage: dormant, message: remobilisation}",
     "expect: {stage: dormant, message: none, reason: sent}",
     "test.yaml:33:15: tests.cases[1].expect: unknown reason 'sent'; the reasons are: holdout"),
    ("  as_of: 2026-11-23T09:00", "  as_of: next monday",
     "test.yaml:26:10: tests.as_of: expected a date or a date and time such as '2026-11-23'"),
])
def test_mistakes_in_the_tests_block_point_at_their_line(campaigns, old, new, expected):
    text = campaigns.base() + TESTS_BLOCK
    assert old in text
    campaigns.write(text.replace(old, new))
    result = CliRunner().invoke(app, ["test", "--campaigns", str(campaigns.root)],
                                env={"COLUMNS": "300"})
    assert result.exit_code == 1
    assert expected in result.output, result.output


def test_no_examples_is_an_error_not_a_pass(campaigns):
    campaigns.write(campaigns.base())
    result = CliRunner().invoke(app, ["test", "--campaigns", str(campaigns.root)])
    assert result.exit_code == 1
    assert "test: no examples" in result.output and "no examples ran" in result.output


def test_givens_may_be_dates(campaigns):
    campaigns.write(campaigns.base() + """
tests:
  as_of: 2026-11-23T09:00
  cases:
    - name: enrolled in September, last seen ten days ago
      given: {enrolled_at: 2026-09-07, last_active_at: "2026-11-13T18:00", progress: 10%}
      expect: {stage: at_risk, message: relance}
    - name: last seen before enrolling
      given: {enrolled_at: 2026-11-20, last_active_at: 2026-11-01}
      expect: {stage: active}
""")
    result = CliRunner().invoke(app, ["test", "--campaigns", str(campaigns.root)],
                                env={"COLUMNS": "300"})
    assert result.exit_code == 1
    assert "✓ enrolled in September, last seen ten days ago" in result.output
    assert ("test.yaml:32:56: tests.cases[1].given.last_active_at: the last activity must fall "
            "between the enrolment and the test's as_of") in result.output
    from relance.campaign import loader
    loaded = loader.load(campaigns.root / "test.yaml")
    result = testbench.run_case(loaded, 0)
    assert result.measures["inactive_days"] == 9 and result.measures["enrolled_days"] == 77


NEIGHBOURS = """
  behind: {overdue: ">= 3"}
  late_in_course: {course_week: ">= 10"}
  active: {}
"""

NEIGHBOUR_CASES = """
tests:
  as_of: 2026-11-23T09:00
  cases:
    - name: three activities overdue
      given: {inactive_days: 1, overdue: 3}
      expect: {stage: behind, message: none, reason: no_trigger}
    - name: nothing overdue in their own calendar
      given: {inactive_days: 1}
      expect: {stage: active, message: recap}
    - name: week 12 of their course
      given: {inactive_days: 1, course_week: 12}
      expect: {stage: late_in_course}
    - name: week 3 of their course
      given: {inactive_days: 1, enrolled_days: 14}
      expect: {stage: active, message: recap}
    - name: unsubscribed
      given: {inactive_days: 8, unsubscribed: true}
      expect: {stage: at_risk, message: none, reason: unsubscribed}
    - name: the same address, still subscribed
      given: {inactive_days: 8}
      expect: {stage: at_risk, message: relance}
    - name: dormant since last week, which the campaign did not see
      first_run: true
      given: {inactive_days: 30, enrolled_days: 40}
      expect: {stage: dormant, message: remobilisation}
    - name: dormant since last week, when the remobilisation went
      given: {inactive_days: 30, enrolled_days: 40}
      expect: {stage: dormant, message: none, reason: already_sent}
"""


def test_examples_evaluated_together_each_get_their_own_verdict(campaigns, monkeypatch):
    """`relance test` evaluates a campaign's examples in one pass of the engine, yet none
    sees another's: three overdue activities, a course in its twelfth week, an unsubscribed
    address (the default one, which every example shares), what last week's run sent to a
    learner, each stays with its example, which gets what it gets alone."""
    campaigns.write(campaigns.base(**{"  active: {}\n": NEIGHBOURS}) + NEIGHBOUR_CASES)
    loaded = campaigns.load()
    every = list(range(len(testbench.cases(loaded))))
    assert testbench.batches(loaded, every) == [every]          # one pass for all of them
    evaluations = []
    real = testbench.engine.evaluate
    monkeypatch.setattr(testbench.engine, "evaluate",
                        lambda *a, **k: evaluations.append(a[2]) or real(*a, **k))
    together = list(testbench.run_in_order([(loaded, i) for i in every]))
    assert len(evaluations) == 2            # last week's run, then this week's, for all
    monkeypatch.undo()
    assert [r.name for r in together if not r.passed] == []
    alone = [testbench.run_case(loaded, i) for i in every]
    assert [(r.actual, r.measures) for r in together] == [(r.actual, r.measures) for r in alone]


def test_examples_that_cannot_be_told_apart_get_passes_of_their_own(campaigns):
    """Another moment, a learner id met twice, or a condition reading the course or the
    address: such examples run in passes of their own, with the verdicts they get alone."""
    campaigns.write(campaigns.base() + """
tests:
  as_of: 2026-11-23T09:00
  cases:
    - name: silent for a week
      given: {id: L1, inactive_days: 8}
      expect: {stage: at_risk, message: relance}
    - name: the same learner, active
      given: {id: L1, inactive_days: 1}
      expect: {stage: active, message: recap}
    - name: a week later
      as_of: 2026-11-30T09:00
      given: {inactive_days: 1}
      expect: {stage: active, message: recap}
    - name: another learner
      given: {inactive_days: 1}
      expect: {stage: active, message: recap}
    - name: the id the one before was given
      given: {id: T4-0, inactive_days: 8}
      expect: {stage: at_risk, message: relance}
""")
    loaded = campaigns.load()
    assert testbench.learner_id_for(loaded, 3) == "T4-0"
    assert testbench.batches(loaded, [0, 1, 2, 3, 4]) == [[0, 3], [1, 4], [2]]
    assert all(r.passed for r in testbench.run_in_order([(loaded, i) for i in range(5)]))
    campaigns.write(campaigns.base(**{"  course: c1\n": "  course: c1\n  where: \"email like "
                                                         "'%@example.org'\"\n"}) + TESTS_BLOCK)
    assert testbench.batches(campaigns.load(), [0, 1]) == [[0], [1]]
