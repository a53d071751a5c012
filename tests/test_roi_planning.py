"""Planning the evidence: the minimum detectable effect, the learners or control share +2
points would take, Holm's correction and the pooled (fixed-effect) estimate across cohorts,
each against an independent computation and hand-checked figures."""

from __future__ import annotations

import math

import pytest

from relance.roi import stats
from tests.roi_fixtures import Builder
from tests.test_roi_control import groups

# Published quantiles of the standard normal (any table): 97.5% and 80%.
Z_975 = 1.959963984540054
Z_80 = 0.8416212335729143


def phi(x: float) -> float:
    """The standard normal CDF from math.erf, independent of statistics.NormalDist."""
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def power(delta: float, n1: int, n2: int, p: float) -> float:
    """Power of the two-sided 5% z test to see a difference `delta` at rate p."""
    se = math.sqrt(p * (1 - p) * (1 / n1 + 1 / n2))
    return phi(delta / se - Z_975) + phi(-delta / se - Z_975)


def test_the_quantiles_are_the_published_ones():
    assert stats.z(0.975) == pytest.approx(Z_975, abs=1e-12)
    assert stats.z(0.8) == pytest.approx(Z_80, abs=1e-12)


def test_minimum_detectable_effect_of_the_demo_groups():
    # the demo's parcours-anglais: 1,092 treated, 108 in the control group, dropout 31.6%
    got = stats.mde(1092, 108, 0.316)
    by_hand = (Z_975 + Z_80) * math.sqrt(0.316 * 0.684 * (1 / 1092 + 1 / 108))
    assert got == pytest.approx(by_hand, rel=1e-12)
    assert round(100 * got, 1) == 13.1                    # points, as the page prints it
    # at that difference the test has its 80% power (the other tail adds next to nothing)
    assert power(got, 1092, 108, 0.316) == pytest.approx(0.8, abs=1e-4)
    # a rate of 0 (nothing happened yet) is read as one event among the learners
    assert stats.mde(731, 69, 0.0) == pytest.approx(stats.mde(731, 69, 1 / 800))
    assert stats.mde(10, 0, 0.3) is None


def test_learners_needed_for_two_points():
    # textbook case: 50% against 60% with equal groups needs 393 per group (Fleiss, no
    # continuity correction: (1.96 + 0.84)^2 x 2 x 0.25 / 0.01 = 392.4)
    assert stats.learners_needed(0.5, 0.5, 0.10) == 785
    # the demo's 10% control group at a 30% rate, +2 points
    n = stats.learners_needed(0.3, 0.1, 0.02)
    k = (Z_975 + Z_80) ** 2 * 0.21 / 0.02 ** 2
    assert n == math.ceil(k * (1 / 0.1 + 1 / 0.9)) == 45786
    # with that many learners (9/10 treated), +2 points has its 80% power, and not with fewer
    assert power(0.02, round(0.9 * n), round(0.1 * n), 0.3) >= 0.8 - 1e-4
    assert power(0.02, round(0.9 * (n - 500)), round(0.1 * (n - 500)), 0.3) < 0.8


def test_control_share_needed_for_two_points():
    share = stats.control_share_needed(50_000, 0.3)
    # with that share the groups see exactly 2 points
    assert stats.mde(round(50_000 * (1 - share)), round(50_000 * share), 0.3) == pytest.approx(
        0.02, rel=1e-3)
    assert 0.05 < share < 0.1
    # 1,200 learners cannot see 2 points even half and half
    assert stats.control_share_needed(1200, 0.3) is None


def test_p_values_and_holms_correction():
    # 56/70 against 48/80 (Newcombe's example): z = 0.2 / sqrt(p(1-p)(1/70 + 1/80)), p = 104/150
    z = 0.2 / math.sqrt(104 / 150 * 46 / 150 * (1 / 70 + 1 / 80))
    assert stats.p_value(56, 70, 48, 80) == pytest.approx(2 * (1 - phi(z)), rel=1e-9)
    assert round(stats.p_value(56, 70, 48, 80), 4) == 0.008
    # Holm by hand: 0.005 x 4 = 0.02, 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, 0.04 x 1 -> 0.06
    assert stats.holm([0.01, 0.04, 0.03, 0.005, None]) == pytest.approx(
        [0.03, 0.06, 0.06, 0.02, None])
    assert stats.holm([0.5, 0.9]) == [1.0, 1.0]            # 0.5 x 2, capped at 1


@pytest.fixture(scope="module")
def two_cohorts():
    b = Builder()
    groups(b, "camp", 56, 70, 48, 80)                 # course c1, cohort 2026-01
    second = Builder(b.con, course="c2")
    second.n_events = 10_000                          # event ids of its own
    groups(second, "camp", 40, 100, 38, 100)          # course c2: the next term's cohort
    return b


def test_the_pooled_estimate_weighs_each_cohort_by_its_precision(two_cohorts):
    b = two_cohorts
    strata = {r[0]: r[1:] for r in b.rows(
        "select course_id, difference, variance from kpi_control_strata "
        "where campaign_id = 'camp' and outcome = 'completion'")}
    assert strata["c1"] == (pytest.approx(0.2), pytest.approx(0.8 * 0.2 / 70 + 0.6 * 0.4 / 80))
    assert strata["c2"] == (pytest.approx(0.02), pytest.approx(0.4 * 0.6 / 100 + 0.38 * 0.62 / 100))
    # the fixed-effect estimate by hand: weights 1 / variance
    w1, w2 = 1 / strata["c1"][1], 1 / strata["c2"][1]
    pooled = (w1 * 0.2 + w2 * 0.02) / (w1 + w2)
    se = 1 / math.sqrt(w1 + w2)
    [(n, left_out, got, got_se, low, high, verdict)] = b.rows(
        "select strata, strata_left_out, pooled, se, ci_low, ci_high, verdict from kpi_pooled "
        "where campaign_id = 'camp' and outcome = 'completion'")
    assert (n, left_out) == (2, 0)
    assert (got, got_se) == (pytest.approx(pooled, rel=1e-12), pytest.approx(se, rel=1e-12))
    assert (round(got, 4), round(got_se, 4)) == (0.1053, 0.0500)       # hand-checked
    assert (low, high) == (pytest.approx(pooled - Z_975 * se), pytest.approx(pooled + Z_975 * se))
    assert verdict == "higher_with_campaign"
    # nobody dropped out on either side: no stratum says anything yet about dropout
    [(n, left_out, got)] = b.rows("select strata, strata_left_out, pooled from kpi_pooled "
                                  "where campaign_id = 'camp' and outcome = 'dropout'")
    assert (n, left_out, got) == (0, 2, None)
