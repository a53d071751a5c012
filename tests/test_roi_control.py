"""Control group: treated against holdout, with the difference's 95% interval checked
against an independent computation and against Newcombe's published examples."""

from __future__ import annotations

import math

import pytest

from tests.roi_fixtures import Builder, day

Z = 1.959963984540054


def wilson_roots(k: int, n: int) -> tuple[float, float]:
    """Wilson's interval as the two roots in p of (p̂ - p)² = z² p (1 - p) / n."""
    ph = k / n
    a = 1 + Z * Z / n
    b = -(2 * ph + Z * Z / n)
    c = ph * ph
    disc = math.sqrt(b * b - 4 * a * c)
    return (-b - disc) / (2 * a), (-b + disc) / (2 * a)


def newcombe(k1, n1, k2, n2):
    l1, u1 = wilson_roots(k1, n1)
    l2, u2 = wilson_roots(k2, n2)
    p1, p2 = k1 / n1, k2 / n2
    return (p1 - p2 - math.hypot(p1 - l1, u2 - p2), p1 - p2 + math.hypot(u1 - p1, p2 - l2))


def groups(b: Builder, campaign: str, k1: int, n1: int, k2: int, n2: int, *, message=None):
    """n1 treated learners of whom k1 completed, n2 in the control group of whom k2 did;
    everyone seen the day before the clock (nobody dropped out)."""
    for group, k, n in (("t", k1, n1), ("c", k2, n2)):
        for i in range(n):
            lid = f"{campaign}-{group}{i:03d}"
            done = i < k
            b.learner(lid, status="completed" if done else "enrolled",
                      completed_at=day(20) if done else None, events=(day(27),))
            b.decision(campaign, lid, holdout=group == "c")
            if message:
                b.candidate(campaign, lid, message, holdout=group == "c")


def control_row(b, campaign, message="(campaign)", outcome="completion"):
    cur = b.con.execute("from kpi_control where campaign_id = ? and message_key = ? and outcome = ?",
                        [campaign, message, outcome])
    cols = [d[0] for d in cur.description]
    [row] = cur.fetchall()
    return dict(zip(cols, row))


@pytest.fixture(scope="module")
def cohorts():
    b = Builder()
    groups(b, "big", 56, 70, 48, 80)           # Newcombe (1998), table II, example (a)
    groups(b, "small", 9, 10, 3, 10, message="relance")   # example (c)
    groups(b, "nodiff", 40, 100, 38, 100)
    return b


def test_interval_matches_an_independent_computation_and_the_published_one(cohorts):
    row = control_row(cohorts, "big")
    assert (row["n_treated"], row["k_treated"], row["n_control"], row["k_control"]) == (70, 56, 80, 48)
    assert row["difference"] == pytest.approx(0.2)
    low, high = newcombe(56, 70, 48, 80)
    assert (row["ci_low"], row["ci_high"]) == (pytest.approx(low, abs=1e-12), pytest.approx(high, abs=1e-12))
    # Newcombe's paper prints these to four decimals
    assert (round(row["ci_low"], 4), round(row["ci_high"], 4)) == (0.0524, 0.3339)
    # Wald, for reference: 0.2 ± z·sqrt(.8·.2/70 + .6·.4/80)
    half = Z * math.sqrt(0.8 * 0.2 / 70 + 0.6 * 0.4 / 80)
    assert row["wald_low"] == pytest.approx(0.2 - half) and row["wald_high"] == pytest.approx(0.2 + half)
    assert (round(row["wald_low"], 4), round(row["wald_high"], 4)) == (0.0575, 0.3425)
    assert row["verdict"] == "higher_with_campaign" and row["warning"] is None


def test_small_groups_get_a_plain_warning(cohorts):
    row = control_row(cohorts, "small")
    assert (round(row["ci_low"], 4), round(row["ci_high"], 4)) == (0.1705, 0.8090)
    assert row["verdict"] == "too_small"
    assert row["warning"].startswith("Too few learners to tell: 10 treated and 10 in the control group")
    # the same figures for the message the control group was held back from
    msg = control_row(cohorts, "small", message="relance")
    assert (msg["n_treated"], msg["k_treated"], msg["n_control"], msg["k_control"]) == (10, 9, 10, 3)
    assert msg["ci_low"] == pytest.approx(row["ci_low"])


def test_an_interval_across_zero_says_no_clear_difference(cohorts):
    row = control_row(cohorts, "nodiff")
    low, high = newcombe(40, 100, 38, 100)
    assert row["ci_low"] == pytest.approx(low) and row["ci_high"] == pytest.approx(high)
    assert low < 0 < high and row["verdict"] == "no_clear_difference"


def test_dropout_is_compared_the_same_way(cohorts):
    row = control_row(cohorts, "big", outcome="dropout")
    # everyone was seen on day 27: nobody dropped out, too few events to tell anything
    assert (row["k_treated"], row["k_control"], row["verdict"]) == (0, 0, "too_small")
