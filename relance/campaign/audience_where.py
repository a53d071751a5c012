"""`audience.where`: a SQL condition a designer writes over the audience's columns.

Campaign files are reviewed like code, but they are not given the whole of DuckDB: the
condition is parsed here and may only use the audience's columns, constants,
comparisons, AND/OR/NOT, CASE, casts and a list of plain scalar functions. No subquery,
no table function, nothing that reads files or the environment.

Once it is known to be only that, it is run the way `plan` runs it, on a few learners
with typical values (audience_sample.sql: the audience's columns with the warehouse's
types): a condition that names a table (`suppressions.email`), compares a text with a
number (`cohort = 2024`, which converts every cohort to a number), casts a text to what it
cannot be (`cast(email as struct(a int))`) or gives a function a wrong argument fails
here, at `validate`, rather than at `plan` on real data.
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path

import duckdb

COLUMNS = ("learner_id", "course_id", "cohort", "enrolled_at", "status", "completed_at",
           "email", "first_name", "last_name", "locale", "timezone", "manager_email",
           "course_title", "starts_on", "ends_on")
FUNCTIONS = {
    "lower", "upper", "trim", "ltrim", "rtrim", "length", "strlen", "substr", "substring",
    "split_part", "contains", "starts_with", "ends_with", "prefix", "suffix", "concat",
    "regexp_matches", "regexp_full_match", "coalesce", "nullif", "ifnull", "abs", "round",
    "year", "month", "day", "date_part", "date_diff", "datediff", "date_trunc",
    "list_contains", "list_value", "~~", "!~~", "~~*", "!~~*", "||", "+", "-", "*", "/", "%",
}
NODE_CLASSES = {"CONSTANT", "COLUMN_REF", "COMPARISON", "CONJUNCTION", "OPERATOR", "CASE",
                "CAST", "BETWEEN", "FUNCTION"}

_parser = None
_sample = None
_lock = threading.Lock()          # one DuckDB connection each, shared by the threads


def check(condition: str) -> None:
    """Raise ValueError saying what is not allowed in `condition`, or return."""
    global _parser
    if ";" in condition:
        raise ValueError("must be a single SQL condition, without ';'")
    with _lock:
        if _parser is None:
            _parser = duckdb.connect()
        text = _parser.execute("select json_serialize_sql(?)",
                               [f"select 1 where {condition}"]).fetchall()[0][0]
    tree = json.loads(text)
    if tree.get("error"):
        raise ValueError(f"not a valid SQL condition: {tree.get('error_message', '').strip()}")
    statements = tree["statements"]
    node = statements[0]["node"] if len(statements) == 1 else None
    # Only the WHERE clause may differ from `select 1 where true`: no GROUP BY, HAVING,
    # QUALIFY, LIMIT, SAMPLE ... smuggled in after the condition.
    if not node or node.get("where_clause") is None or _shape(node) != _shape(_baseline()):
        raise ValueError("must be a single SQL condition such as \"locale like 'fr%'\"")
    _walk(node["where_clause"])
    _run_on_sample(condition)


def _run_on_sample(condition: str) -> None:
    """Run the condition as the audience step does (in a WHERE over `base`, and as a value,
    which evaluates both sides of every AND and OR) on the sample learners."""
    global _sample
    with _lock:
        if _sample is None:
            import warehouse
            _sample = warehouse.connect(":memory:")
            _sample.execute((Path(__file__).parent / "audience_sample.sql").read_text("utf-8"))
            # no optimizer: it would drop a comparison it knows false from the sample's own
            # values (status = 'x'), with whatever depends on it
            _sample.execute("pragma disable_optimizer")
        try:
            # on a line of its own, as in the plan: a `-- comment` ends with it
            _sample.execute(f"select count(*) from base where coalesce((\n{condition}\n), false)")
            _sample.execute(f"select (\n{condition}\n) from base").fetchall()
        except duckdb.Error as exc:
            raise ValueError(_explained(str(exc))) from None


def _explained(error: str) -> str:
    """DuckDB's error, first line, with what to write instead."""
    first = re.sub(r"^[A-Za-z ]+Error: ", "", error.strip().splitlines()[0]).rstrip("!")
    table = re.match(r'Referenced table "([^"]+)" not found', first)
    if table:
        return (f"names table {table.group(1)!r}, but an audience condition sees only the "
                f"audience's own columns, named alone (email, not {table.group(1)}.email): "
                f"{', '.join(COLUMNS)}")
    if error.startswith("Conversion Error"):
        return (f"fails on the learners' data as `plan` runs it ({first}): compare a column "
                "with a value of its type (cohort = '2024', not 2024; starts_on >= date "
                "'2026-09-01'), or write try_cast(x as type), which gives null when a value "
                "cannot be converted")
    return f"fails as `plan` runs it: {first}"


def _baseline() -> dict:
    text = _parser.execute("select json_serialize_sql('select 1 where true')").fetchall()[0][0]
    return json.loads(text)["statements"][0]["node"]


def _shape(value):
    """The parse tree without the condition and without source positions."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()
                if k not in ("where_clause", "query_location", "query_location_length")}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return value


def _walk(expr) -> None:
    if isinstance(expr, list):
        for item in expr:
            _walk(item)
        return
    if not isinstance(expr, dict):
        return
    kind = expr.get("class")
    if kind is not None:
        if kind not in NODE_CLASSES:
            raise ValueError(f"{kind.lower().replace('_', ' ')} is not allowed in an audience "
                             "condition (only columns, constants, comparisons, AND/OR/NOT, "
                             "CASE and plain functions)")
        if kind == "COLUMN_REF":
            name = expr["column_names"][-1]
            if name.lower() not in COLUMNS:
                raise ValueError(f"unknown column {name!r}; the audience has: {', '.join(COLUMNS)}")
        if kind == "FUNCTION":
            name = expr.get("function_name", "").lower()
            if name not in FUNCTIONS:
                shown = sorted(f for f in FUNCTIONS if f.isalpha() or "_" in f)
                raise ValueError(f"function {name!r} is not allowed in an audience condition; "
                                 f"allowed: {', '.join(shown)}")
    for key, value in expr.items():
        if key not in ("class", "type", "alias", "query_location", "query_location_length",
                       "cast_type", "type_expr", "literal", "qualified_name"):
            _walk(value)
