"""The risk score: an early-warning probability of withdrawing, per learner and week, from
behaviour only (relance/engine/sql/risk_features.sql). A logistic regression fitted with
numpy on a past presentation, its coefficients stored in the warehouse (risk_models,
risk_coefficients) and applied in SQL when a campaign's stage says `risk: ">= 0.7"`."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import numpy as np

from relance.engine.risk_score import features_sql as _features_sql
from relance.engine.risk_score import score_sql

SQL = Path(__file__).parent / "sql"
FEATURES = ["registered_day", "done_share", "late_share", "mean_days_late", "overdue",
            "missed_weight_share", "late_days", "days_since_hand_in", "idle_days", "log_events",
            "activity_trend", "course_day"]

# the learners of some courses still enrolled at $as_of (training and AUC)
ENROLLED = """
    select e.learner_id, e.course_id, e.enrolled_at,
           coalesce(c.starts_on, e.enrolled_at::date) as course_start
    from enrolments e join courses c using (course_id)
    where list_contains($courses, e.course_id) and e.enrolled_at <= $as_of
      and not coalesce(e.withdrawn_at <= $as_of, false)
"""


def features_sql(audience: str = ENROLLED) -> str:
    return _features_sql(audience)


class RiskError(ValueError):
    pass


def features(con, courses: list[str], as_of: datetime) -> tuple[list[tuple], np.ndarray, np.ndarray]:
    """(learner, course) keys, feature matrix, and label (withdraws after as_of)."""
    sql = (f"with f as ({features_sql()}) select f.*, coalesce(e.withdrawn_at > $as_of, false) "
           "as withdraws from f join enrolments e using (learner_id, course_id) "
           "order by f.learner_id, f.course_id")
    rel = con.sql(sql, params={"as_of": as_of, "courses": courses})
    table = rel.to_arrow_table()
    keys = list(zip(table["learner_id"].to_pylist(), table["course_id"].to_pylist()))
    x = np.column_stack([table[f].to_numpy(zero_copy_only=False).astype(float) for f in FEATURES]) \
        if table.num_rows else np.zeros((0, len(FEATURES)))
    y = table["withdraws"].to_numpy(zero_copy_only=False).astype(float)
    return keys, x, y


def fit(x: np.ndarray, y: np.ndarray, *, l2: float = 1.0, iterations: int = 50):
    """Logistic regression on standardised features by Newton's method with a small ridge
    penalty (not on the intercept). Returns (intercept, coefficients, means, sds)."""
    mean = x.mean(axis=0)
    sd = x.std(axis=0)
    sd[sd == 0] = 1.0
    z = np.column_stack([np.ones(len(x)), (x - mean) / sd])
    beta = np.zeros(z.shape[1])
    penalty = np.full(z.shape[1], l2)
    penalty[0] = 0
    for _ in range(iterations):
        p = 1 / (1 + np.exp(-z @ beta))
        gradient = z.T @ (y - p) - penalty * beta
        hessian = (z * (p * (1 - p))[:, None]).T @ z + np.diag(penalty)
        step = np.linalg.solve(hessian, gradient)
        beta += step
        if np.max(np.abs(step)) < 1e-8:
            break
    return beta[0], beta[1:], mean, sd


def auc(scores: np.ndarray, labels: np.ndarray) -> float | None:
    """Area under the ROC curve: the chance a random positive scores above a random
    negative (ties count half), by ranks (Mann-Whitney)."""
    pos = labels == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if not n_pos or not n_neg:
        return None
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):            # average ranks over ties
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


@dataclass
class Model:
    model_id: str
    trained_on: str
    n_rows: int
    n_positive: int
    intercept: float
    coefficients: dict[str, float]


def train(con: duckdb.DuckDBPyConnection, courses: list[str], moments: list[datetime], *,
          trained_on: str, save_to: list[duckdb.DuckDBPyConnection] | None = None) -> Model:
    """Fit on every learner still enrolled at each moment (a Monday) of the courses;
    label: withdraws later. Saved in `con` (and in each of `save_to`)."""
    xs, ys = [], []
    for as_of in moments:
        _keys, x, y = features(con, courses, as_of)
        xs.append(x)
        ys.append(y)
    x, y = np.vstack(xs), np.concatenate(ys)
    if len(y) == 0 or y.min() == y.max():
        raise RiskError(f"cannot train on {trained_on}: it needs learners who withdrew and "
                        f"learners who did not ({int(y.sum())} of {len(y)} learner-weeks withdrew)")
    b0, beta, mean, sd = fit(x, y)
    model = Model(f"risk-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{secrets.token_hex(2)}",
                  trained_on, len(y), int(y.sum()), float(b0), dict(zip(FEATURES, map(float, beta))))
    for target in [con, *(save_to or [])]:
        save(target, model, mean, sd)
    return model


def save(con, model: Model, mean: np.ndarray, sd: np.ndarray) -> None:
    con.execute("insert into risk_models (model_id, trained_on, n_rows, n_positive, created_at) "
                "values (?, ?, ?, ?, ?)", [model.model_id, model.trained_on, model.n_rows,
                                            model.n_positive, datetime.now(timezone.utc)]).fetchall()
    rows = [(model.model_id, "(intercept)", model.intercept, 0.0, 1.0)] + [
        (model.model_id, f, model.coefficients[f], float(m), float(s))
        for f, m, s in zip(FEATURES, mean, sd)]
    con.executemany("insert into risk_coefficients values (?, ?, ?, ?, ?)", rows)


def scores(con, courses: list[str], as_of: datetime) -> dict[tuple, float]:
    """The latest model's risk per (learner, course) as of a moment, computed in SQL."""
    rows = con.execute(score_sql(ENROLLED), {"as_of": as_of, "courses": courses}).fetchall()
    return {(lid, cid): r for lid, cid, r in rows}


def auc_by_week(con, courses: list[str], moments: list[datetime]) -> list[tuple[int, int, int, float | None]]:
    """(course week, learners, of whom withdrew later, AUC) of the latest model, as of
    each moment (course week counted from the courses' start)."""
    out = []
    for as_of in moments:
        keys, x, y = features(con, courses, as_of)
        if not keys:
            continue
        risk = scores(con, courses, as_of)
        s = np.array([risk.get(k, np.nan) for k in keys])
        week = int(x[:, FEATURES.index("course_day")].max() // 7) + 1
        out.append((week, len(keys), int(y.sum()), auc(s, y)))
    return out
