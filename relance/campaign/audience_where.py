"""`audience.where`: a SQL condition a designer writes over the audience's columns.

Campaign files are reviewed like code, but they are not given the whole of DuckDB: the
condition is parsed (never run) here and may only use the audience's columns, constants,
comparisons, AND/OR/NOT, CASE, casts and a list of plain scalar functions. No subquery,
no table function, nothing that reads files or the environment.
"""

from __future__ import annotations

import json

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


def check(condition: str) -> None:
    """Raise ValueError saying what is not allowed in `condition`, or return."""
    global _parser
    if ";" in condition:
        raise ValueError("must be a single SQL condition, without ';'")
    if _parser is None:
        _parser = duckdb.connect()
    text = _parser.execute("select json_serialize_sql(?)", [f"select 1 where {condition}"]).fetchall()[0][0]
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
