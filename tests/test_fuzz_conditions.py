"""Property-based fuzzing of what a designer writes as conditions (issue 17, "widen the
net"): a stage's comparisons (relance/campaign/conditions.py) and `audience.where`
(relance/campaign/audience_where.py). Any input is read or refused with a ValueError
saying why (the loader locates it), never a crash; what is read runs in DuckDB the way
the engine runs it; an `audience.where` that `validate` accepts, `plan` runs.

Deterministic (`derandomize`, no example database) so CI does not flake; seeded with the
issue's cases; a few seconds in all.
"""

from __future__ import annotations

import dataclasses
import time

import duckdb
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from relance import engine
from relance.campaign import audience_where, conditions
from relance.campaign.measures import MEASURES
from tests.conftest import MONDAY, Cohort

FUZZ = settings(derandomize=True, database=None, deadline=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow,
                                       HealthCheck.function_scoped_fixture])

# -- a stage's comparisons ------------------------------------------------------------------

NUMBER = st.one_of(st.integers(-10**30, 10**30).map(str),
                   st.from_regex(r"-?[0-9]{1,400}([.,][0-9]{1,40})?", fullmatch=True),
                   st.floats(allow_nan=True, allow_infinity=True).map(str))
UNIT = st.sampled_from(["", "%", " %", "d", " days", "day", "w", " weeks", "week", "x"])
OP = st.sampled_from(["", ">=", "<=", "==", "=", "!=", ">", "<", "=>", "<>", "≥"])
COMPARISON_TEXT = st.one_of(
    st.builds(lambda op, n, u: f"{op} {n}{u}", OP, NUMBER, UNIT),
    st.builds(lambda a, ua, b, ub: f"between {a}{ua} and {b}{ub}", NUMBER, UNIT, NUMBER, UNIT),
    st.text(max_size=40))
RAW = st.one_of(COMPARISON_TEXT, st.integers(), st.floats(), st.booleans(), st.none(),
                st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3),
                                                                     st.integers(), max_size=2))


@pytest.fixture(scope="module")
def duck():
    con = duckdb.connect()
    yield con
    con.close()


@settings(FUZZ, max_examples=400)
@given(raw=RAW, measure=st.sampled_from(sorted(MEASURES)))
@example(raw=">= " + "9" * 400, measure="overdue")
@example(raw="between 1 and " + "9" * 400, measure="inactive_days")
@example(raw="== 1" + "0" * 320 + " days", measure="days_left")
@example(raw=float("nan"), measure="overdue")
@example(raw=float("inf"), measure="inactive_days")
@example(raw=10**400, measure="course_week")
def test_a_comparison_is_read_or_refused_and_what_is_read_runs(duck, raw, measure):
    try:
        parsed = conditions.parse(raw, measure)
    except ValueError as exc:
        assert str(exc)                              # says what was expected
        return
    column = f"m.{measure}"
    predicate = conditions.predicate(measure, parsed)
    value = "true" if MEASURES[measure].kind == "bool" else "1.5"
    # what the engine does with it: a predicate over the measure's column
    assert duck.execute(f"select {predicate} from (select {value} as {measure}) m"
                        ).fetchall()[0][0] in (True, False), (predicate, column)


# -- audience.where, alone ------------------------------------------------------------------

COLUMNS = st.sampled_from(audience_where.COLUMNS + ("suppressions.email", "base.email",
                                                    "learners.locale", "langue"))
LITERAL = st.one_of(st.integers(-5, 3000).map(str), st.sampled_from([
    "'fr'", "'fr%'", "'2026'", "'co-2026-09'", "'enrolled'", "''", "null", "true",
    "date '2026-09-01'", "timestamp '2026-09-01 08:00'", "'x'", "1.5", "'(['"]))
FUNCTION = st.sampled_from(["lower", "upper", "trim", "length", "year", "month",
                            "coalesce", "contains", "starts_with", "regexp_matches", "substr",
                            "date_part", "abs", "round", "read_text", "now", "getenv"])
TYPE = st.sampled_from(["varchar", "int", "date", "timestamptz", "double", "boolean",
                        "struct(a int)", "int[]", "map(varchar, int)", "decimal(50, 2)",
                        "blob"])


def _term(leaf):
    return st.one_of(
        leaf,
        st.builds(lambda f, a: f"{f}({a})", FUNCTION, leaf),
        st.builds(lambda f, a, b: f"{f}({a}, {b})", FUNCTION, leaf, leaf),
        st.builds(lambda c, a, t: f"{c}({a} as {t})", st.sampled_from(["cast", "try_cast"]),
                  leaf, TYPE),
        st.builds(lambda a, t: f"{a}::{t}", leaf, TYPE),
        st.builds(lambda a, o, b: f"({a} {o} {b})", leaf, st.sampled_from(["+", "-", "*", "||"]),
                  leaf))


TERM = _term(st.one_of(COLUMNS, LITERAL))
PREDICATE = st.one_of(
    st.builds(lambda a, o, b: f"{a} {o} {b}", TERM,
              st.sampled_from(["=", "<>", "<", ">=", "like", "ilike", "not like"]), TERM),
    st.builds(lambda a: f"{a} is null", TERM),
    st.builds(lambda a: f"{a} is not null", TERM),
    st.builds(lambda a, b, c: f"{a} between {b} and {c}", TERM, TERM, TERM),
    st.builds(lambda a, items: f"{a} in ({', '.join(items)})", TERM,
              st.lists(LITERAL, min_size=1, max_size=3)),
    st.builds(lambda c, a, b: f"case when {c} then {a} else {b} end", COLUMNS.map(
        lambda c: f"{c} is null"), st.sampled_from(["true", "false"]), st.sampled_from(
        ["true", "false"])),
    TERM)
CONDITION = st.recursive(PREDICATE, lambda inner: st.one_of(
    st.builds(lambda a, o, b: f"({a}) {o} ({b})", inner, st.sampled_from(["and", "or"]), inner),
    inner.map(lambda a: f"not ({a})")), max_leaves=4)

ISSUE = ["suppressions.email is null", "cast(email as struct(a int)) is null",
         "learner_id in (select learner_id from learners)", "read_text('/etc/passwd') <> ''",
         "true; drop table learners", "1=1) or (1=1", "locale like 'fr%' limit 1",
         "cohort = 2024", "getenv('HOME') is not null", "email::struct(a int) is null"]


# -- audience.where: refused with why, or run by plan ----------------------------------------

@pytest.fixture(scope="module")
def planned(tmp_path_factory):
    """A warehouse with learners whose columns hold typical values, and the test campaign."""
    import warehouse
    from tests.conftest import CampaignFolder
    con = warehouse.connect(":memory:")
    cohort = Cohort(con)
    for locale, name in (("fr", "Zoé"), ("en-GB", "Hugh"), ("xx", "")):
        cohort.learner(locale=locale, first_name=name, inactive_days=8)
    con.execute("update enrolments set cohort = 'co-2026-09' where learner_id = 'L00001'")
    con.execute("update enrolments set cohort = '2026' where learner_id = 'L00002'")
    folder = CampaignFolder(tmp_path_factory.mktemp("campaigns"))
    folder.write(folder.base())
    yield con, folder.load()
    con.close()


def _seeded(test):
    for condition in ISSUE + ["(locale = 'xx') and (cohort = 2024)", "base.email is null", "",
                              "\x00", "locale like 'fr%' -- comment", "/*"]:
        test = example(condition=condition)(test)
    return test


@_seeded
@settings(FUZZ, max_examples=250)
@given(condition=st.one_of(CONDITION, CONDITION, st.text(max_size=60)))
def test_any_audience_condition_is_refused_with_why_or_runs_at_plan(planned, condition):
    """`validate` refuses it with a ValueError saying why (the loader locates it at
    audience.where), in bounded time; or `plan` runs it."""
    con, loaded = planned
    started = time.monotonic()
    try:
        audience_where.check(condition)
    except ValueError as exc:
        assert str(exc)
        assert time.monotonic() - started < 5
        return
    campaign = loaded.campaign
    with_where = dataclasses.replace(loaded, campaign=campaign.model_copy(update={
        "audience": campaign.audience.model_copy(update={"where": condition})}))
    con.execute("begin transaction")
    try:
        engine.evaluate(con, with_where, MONDAY)
    finally:
        con.execute("rollback")
