"""The report's statistics that are not a view: how small a difference the current groups
can see (minimum detectable effect), how many learners it would take to see +2 points,
p-values of a difference of proportions and Holm's correction when many are read at once.

Everything is the normal approximation of two proportions, alpha 0.05 two-sided and power
0.8 unless said otherwise; docs/roi.md gives the formulas and tests/test_roi_planning.py
checks them against an independent computation."""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

ALPHA = 0.05
POWER = 0.8
TARGET = 0.02          # +2 points: what published nudges at scale find at best (docs/roi.md)

_N = NormalDist()


def z(q: float) -> float:
    return _N.inv_cdf(q)


def _spread(rate: float) -> float:
    """p(1-p) of the baseline rate. Callers read a rate of 0 or 1 (nothing happened yet,
    which would claim a precision nobody has) as one event among the learners."""
    return rate * (1 - rate)


def mde(n_treated: int, n_control: int, rate: float, *, alpha: float = ALPHA,
        power: float = POWER) -> float | None:
    """The smallest difference of two proportions the groups would see (two-sided test at
    `alpha`) with probability `power`, when both groups' rate is about `rate`:
    (z_{1-alpha/2} + z_{power}) * sqrt(p (1-p) (1/n_t + 1/n_c))."""
    if not n_treated or not n_control or rate is None:
        return None
    p = min(max(rate, 1 / (n_treated + n_control)), 1 - 1 / (n_treated + n_control))
    return (z(1 - alpha / 2) + z(power)) * math.sqrt(_spread(p) * (1 / n_treated + 1 / n_control))


def learners_needed(rate: float, control_share: float, effect: float = TARGET, *,
                    alpha: float = ALPHA, power: float = POWER) -> int:
    """Learners in all (treated + control, the control group being `control_share` of them)
    for the minimum detectable effect to be `effect`."""
    k = (z(1 - alpha / 2) + z(power)) ** 2 * _spread(rate) / effect ** 2
    return math.ceil(k * (1 / control_share + 1 / (1 - control_share)))


def control_share_needed(n: int, rate: float, effect: float = TARGET, *, alpha: float = ALPHA,
                         power: float = POWER) -> float | None:
    """The smallest control share with which `n` learners in all would see `effect`; None
    when even half of them in the control group would not (the best split is 50/50)."""
    k = (z(1 - alpha / 2) + z(power)) ** 2 * _spread(rate) / effect ** 2
    c = k / n                      # need s (1 - s) >= c
    if 4 * c > 1:
        return None
    return (1 - math.sqrt(1 - 4 * c)) / 2


@dataclass
class Plan:
    """What the current groups can see for one outcome, and what +2 points would take."""

    outcome: str
    rate: float
    n_treated: int
    n_control: int
    mde: float | None
    control_share: float
    learners_needed: int | None           # at the current control share, to see TARGET
    control_share_needed: float | None    # with the current learners, to see TARGET
    target: float = TARGET


def plan(outcome: str, n_treated: int, n_control: int, k_treated: int, k_control: int) -> Plan:
    n = n_treated + n_control
    rate = (k_treated + k_control) / n if n else 0.0
    share = n_control / n if n else 0.0
    p = min(max(rate, 1 / n), 1 - 1 / n) if n else 0.5
    return Plan(outcome, rate, n_treated, n_control, mde(n_treated, n_control, rate), share,
                learners_needed(p, share) if 0 < share < 1 else None,
                control_share_needed(n, p) if n else None)


def p_value(k1: int, n1: int, k2: int, n2: int) -> float | None:
    """Two-sided p-value of the pooled two-proportion z test of k1/n1 against k2/n2."""
    if not n1 or not n2:
        return None
    pooled = (k1 + k2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0
    return math.erfc(abs(k1 / n1 - k2 / n2) / se / math.sqrt(2))


def holm(p_values: list[float | None]) -> list[float | None]:
    """Holm's step-down adjusted p-values (in the order given; None stays None): the i-th
    smallest of m is multiplied by m - i + 1, kept at least as large as the one before."""
    order = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    m = len(order)
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted
