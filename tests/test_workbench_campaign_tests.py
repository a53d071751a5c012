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
