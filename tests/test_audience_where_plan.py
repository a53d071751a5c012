"""`audience.where` is checked at `validate` the way `plan` runs it (issue 17, finding 8d):
a condition that would make `plan` fail on the warehouse's learners is refused before,
at its line, with what to write instead; one that `validate` accepts, `plan` runs."""

from __future__ import annotations

import dataclasses

import pytest

from relance import engine
from relance.engine import EvaluationError
from relance.campaign.problems import CampaignError
from tests.conftest import MONDAY

FAILING_AT_PLAN = [
    ("suppressions.email is null",
     "names table 'suppressions', but an audience condition sees only the audience's own "
     "columns, named alone (email, not suppressions.email)"),
    ("cast(email as struct(a int)) is null",
     "fails on the learners' data as `plan` runs it (Type VARCHAR with value "
     "'zoe.lefevre@example.org' can't be cast to the destination type STRUCT(a INTEGER)"),
    ("cohort = 2024", "fails on the learners' data as `plan` runs it (Could not convert string"),
    ("locale = 'xx' and cohort = 2024", "fails on the learners' data"),
    ("regexp_matches(email, '(')", "fails as `plan` runs it: missing ): ("),
    ("cohort + 1 = 2", "fails as `plan` runs it: No function matches"),
]


def with_where(loaded, condition: str):
    """The campaign with `condition` as its audience.where, unchecked (as if validate let
    it through)."""
    campaign = loaded.campaign
    return dataclasses.replace(loaded, campaign=campaign.model_copy(update={
        "audience": campaign.audience.model_copy(update={"where": condition})}))


def problems_of(campaigns) -> list:
    with pytest.raises(CampaignError) as exc:
        campaigns.load()
    problems = exc.value.problems
    # the error's traceback and this frame hold each other: a cycle that kept DuckDB
    # objects alive until after DuckDB's module was torn down (a "nanobind: leaked" at exit)
    del exc
    return problems


@pytest.mark.parametrize("condition,expected", FAILING_AT_PLAN,
                         ids=[c for c, _ in FAILING_AT_PLAN])
def test_a_condition_plan_would_fail_on_is_refused_at_validate(campaigns, wh, cohort,
                                                                condition, expected):
    cohort.learner(locale="xx")
    cohort.con.execute("update enrolments set cohort = 'co-2026-09'").fetchall()
    campaigns.write(campaigns.base())
    with pytest.raises(EvaluationError):               # what plan would have done
        engine.evaluate(wh, with_where(campaigns.load(), condition), MONDAY)
    quoted = condition.replace('"', '\\"')
    campaigns.write(campaigns.base().replace("  course: c1\n",
                                             f"  course: c1\n  where: \"{quoted}\"\n"))
    (problem,) = problems_of(campaigns)
    assert (problem.line, problem.field) == (5, "audience.where")
    assert expected in problem.message, problem.message


def test_the_sample_learners_have_the_audience_columns_and_types(wh):
    """audience_sample.sql stands for eval_audience's `base` (relance/engine/sql/audience.sql):
    same columns, same types, so a condition binds the same way in both."""
    import re
    from datetime import datetime, timezone
    from pathlib import Path

    from relance.campaign import audience_where
    sql = (Path(engine.__file__).parent / "sql" / "audience.sql").read_text(encoding="utf-8")
    base = re.search(r"with base as \((.*?)\n\),\nfiltered", sql, re.S).group(1)
    wh.execute(f"create temp table planned_base as {base.replace('/*@learners*/', '')}",
               {"as_of": datetime(2026, 1, 1, tzinfo=timezone.utc), "courses": None,
                "cohorts": None}).fetchall()
    audience_where.check("true")
    sample = audience_where._sample.execute("describe base").fetchall()
    assert [(c[0], c[1]) for c in sample] == [
        (c[0], c[1]) for c in wh.execute("describe planned_base").fetchall()]
    assert [c[0] for c in sample] == list(audience_where.COLUMNS)
