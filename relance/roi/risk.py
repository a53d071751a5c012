"""The risk score: an early-warning probability of withdrawing, per learner and week, from
behaviour and study history only (relance/engine/sql/risk_features.sql). A logistic
regression over standardised features, fitted with scikit-learn on a past presentation;
its coefficients are stored in the warehouse (risk_models, risk_coefficients) and applied
in SQL, set-based, when a campaign's stage says `risk: ">= 0.7"`.

Never a protected or demographic attribute: FORBIDDEN names what must not become a
feature (tests/test_roi_risk.py checks the features, the SQL's columns and the
warehouse's tables against it)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import numpy as np

from relance.engine.risk_score import features_sql as _features_sql
from relance.engine.risk_score import score_sql

SQL = Path(__file__).parent / "sql"
# Of the columns risk_features.sql computes, the model reads these. Left out: the
# registration day (no signal on OULAD 2013, its faint direction flipped between
# presentations), and the columns that repeat another's signal where every event is a
# hand-in (idle_days ~ days_since_hand_in; late_days and mean_days_late ~ overdue, late
# and missed shares) or carried none (activity_trend): a leave-one-module-out
# cross-validation on 2013B scored the full and the reduced sets alike (0.598 / 0.596),
# and the smaller model moves better to a new presentation (docs/backtest.md, model card;
# that choice looked at 2013J: one made on 2013B alone did worse there, 0.598 at week 6).
FEATURES = ["done_share", "late_share", "overdue", "missed_weight_share",
            "days_since_hand_in", "log_events", "course_day", "previous_attempts",
            "log_credits"]
# What must never be a feature, nor a column the features are read from: OULAD's
# studentInfo.csv demographic columns and their usual names elsewhere.
FORBIDDEN = ["gender", "sex", "age", "age_band", "birth", "date_of_birth", "disability",
             "region", "country", "postcode", "imd_band", "deprivation", "ethnicity",
             "highest_education", "education"]
# L2 penalty strength of the fit (scikit-learn's C, its default): on OULAD 2013B -> 2013J,
# C = 0.1 and 1 gave the same week-6 AUC (0.640), stronger penalties less (0.622 at 0.001).
C = 1.0

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


def fit(x: np.ndarray, y: np.ndarray, *, c: float = C):
    """Logistic regression on standardised features (scikit-learn: StandardScaler, then
    LogisticRegression with an L2 penalty, not on the intercept). Returns (intercept,
    coefficients, means, sds, pipeline): the first four are what risk_score.sql needs to
    score in SQL, 1 / (1 + exp(-(intercept + sum(coefficient * (x - mean) / sd)))); the
    pipeline is scikit-learn's own (its predict_proba is what the SQL must equal)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    # a constant feature gets sd 1 (scale_)
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=1000)).fit(x, y)
    scaler, model = pipeline[0], pipeline[-1]
    return (float(model.intercept_[0]), model.coef_[0].copy(), scaler.mean_.copy(),
            scaler.scale_.copy(), pipeline)


def fitted_with(c: float = C) -> str:
    import sklearn
    return f"scikit-learn {sklearn.__version__} LogisticRegression (C={c:g}) on standardised features"


def auc(scores: np.ndarray, labels: np.ndarray) -> float | None:
    """Area under the ROC curve: the chance a random positive scores above a random
    negative (ties count half); None when one class is absent."""
    from sklearn.metrics import roc_auc_score
    if len(np.unique(labels)) < 2:
        return None
    return float(roc_auc_score(labels, scores))


@dataclass
class Model:
    model_id: str
    trained_on: str
    n_rows: int
    n_positive: int
    intercept: float
    coefficients: dict[str, float]
    fitted_with: str = ""
    # scikit-learn's fitted pipeline, in memory only (the warehouse keeps the coefficients)
    pipeline: object = field(default=None, repr=False, compare=False)


def train(con: duckdb.DuckDBPyConnection, courses: list[str], moments: list[datetime], *,
          trained_on: str, save_to: list[duckdb.DuckDBPyConnection] | None = None) -> Model:
    """Fit on every learner still enrolled at each moment (a Monday) of the courses;
    label: withdraws later. Saved in `con` (and in each of `save_to`)."""
    protected = [f for f in FEATURES if f in FORBIDDEN or f.split("_")[0] in FORBIDDEN]
    if protected:
        raise RiskError(f"risk features {', '.join(protected)}: a protected or demographic "
                        "attribute is never a feature of the risk score (relance/roi/risk.py, "
                        "FORBIDDEN)")
    xs, ys = [], []
    for as_of in moments:
        _keys, x, y = features(con, courses, as_of)
        xs.append(x)
        ys.append(y)
    x, y = np.vstack(xs), np.concatenate(ys)
    if len(y) == 0 or y.min() == y.max():
        raise RiskError(f"cannot train on {trained_on}: it needs learners who withdrew and "
                        f"learners who did not ({int(y.sum())} of {len(y)} learner-weeks withdrew)")
    b0, beta, mean, sd, pipeline = fit(x, y)
    model = Model(f"risk-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{secrets.token_hex(2)}",
                  trained_on, len(y), int(y.sum()), float(b0), dict(zip(FEATURES, map(float, beta))),
                  fitted_with(), pipeline)
    for target in [con, *(save_to or [])]:
        save(target, model, mean, sd)
    return model


def save(con, model: Model, mean: np.ndarray, sd: np.ndarray) -> None:
    con.execute("insert into risk_models (model_id, trained_on, n_rows, n_positive, created_at, "
                "fitted_with) values (?, ?, ?, ?, ?, ?)",
                [model.model_id, model.trained_on, model.n_rows, model.n_positive,
                 datetime.now(timezone.utc), model.fitted_with]).fetchall()
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
