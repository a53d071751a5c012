"""The `risk` measure: the latest risk model of the warehouse (risk_models,
risk_coefficients, fitted by roi/risk.py on a past presentation) applied in SQL to the
engine's audience, from behaviour only (sql/risk_features.sql, sql/risk_score.sql).
Computed only for campaigns whose conditions name `risk`."""

from __future__ import annotations

from pathlib import Path

import duckdb

from warehouse import sql_file

SQL_DIR = Path(__file__).parent / "sql"


# the engine's audience (eval_audience holds course starts as starts_on)
EVAL_AUDIENCE = """
    select learner_id, course_id, enrolled_at, coalesce(starts_on, enrolled_at::date) as course_start
    from eval_audience
"""


def features_sql(audience: str = EVAL_AUDIENCE) -> str:
    """Each learner's behaviour features as of $as_of, for `audience` (a query of learner_id,
    course_id, enrolled_at, course_start)."""
    return sql_file(SQL_DIR, "risk_features", audience=audience)


def score_sql(audience: str = EVAL_AUDIENCE) -> str:
    """The risk of every learner of `audience` as of $as_of, by the latest model."""
    return sql_file(SQL_DIR, "risk_score", features=features_sql(audience))


def has_model(con: duckdb.DuckDBPyConnection) -> bool:
    return con.execute("select count(*) from risk_models").fetchall()[0][0] > 0
