"""Comparisons a designer writes in a stage (`">= 21"`, `"== 0%"`, `"between 7 and 20"`),
parsed once and compiled to SQL predicates over the measures."""

from __future__ import annotations

import re
from dataclasses import dataclass

from relance.campaign.measures import MEASURES

_OPS = {">=": ">=", "<=": "<=", "==": "=", "=": "=", "!=": "<>", ">": ">", "<": "<"}
_UNITS = {
    "%": ("percent", 1), "days": ("days", 1), "day": ("days", 1), "d": ("days", 1),
    "weeks": ("days", 7), "week": ("days", 7), "w": ("days", 7),
}
_NUM = r"(-?\d+(?:[.,]\d+)?)\s*(%|days?|d|weeks?|w)?"
_COMPARISON = re.compile(rf"^\s*(>=|<=|==|!=|=|>|<)?\s*{_NUM}\s*$", re.I)
_BETWEEN = re.compile(rf"^\s*between\s+{_NUM}\s+and\s+{_NUM}\s*$", re.I)

EXAMPLES = {"percent": '">= 75%"', "days": '">= 7"', "count": '">= 2"', "bool": "true",
            "score": '">= 0.7"'}


@dataclass(frozen=True)
class Comparison:
    op: str          # SQL operator, or 'between'
    value: float
    upper: float | None = None

    def sql(self, column: str) -> str:
        # Values are numbers parsed by the regexes above, never designer text.
        if self.op == "between":
            return f"({column} between {self.value!r} and {self.upper!r})"
        return f"({column} {self.op} {self.value!r})"


# far beyond any measure (days, counts), and within what a float and DuckDB's SQL keep
# exact: a longer number is a typo, and `1e400` would be infinite
LARGEST = 1_000_000_000


def _number(text: str, unit: str | None, kind: str) -> float:
    value = float(text.replace(",", ".")) if len(text) < 30 else float("inf")
    if abs(value) > LARGEST:
        raise ValueError(f"{text[:20]}{'...' if len(text) > 20 else ''} is too large for a "
                         f"measure: at most {LARGEST:,}")
    if unit:
        unit_kind, factor = _UNITS[unit.lower()]
        if unit_kind == "percent" and kind != "percent":
            raise ValueError(f"'%' only applies to progress and behind, not to a {kind} measure")
        if unit_kind == "days" and kind != "days":
            raise ValueError(f"'{unit}' only applies to a measure in days")
        value *= factor
    if kind == "percent" and not 0 <= value <= 100:
        raise ValueError("a percentage must be between 0% and 100%")
    if kind == "score" and not 0 <= value <= 1:
        raise ValueError("a score is between 0 and 1, e.g. \">= 0.7\"")
    return value


def parse(raw: object, measure: str) -> Comparison | bool:
    """Parse a condition on `measure`; raise ValueError with what was expected."""
    kind = MEASURES[measure].kind
    if kind == "bool":
        if isinstance(raw, bool):
            return raw
        raise ValueError(f"expected true or false, got {raw!r}")
    if isinstance(raw, bool):
        raise ValueError(f"expected a comparison such as {EXAMPLES[kind]}, got {raw!r}")
    if isinstance(raw, (int, float)):
        raw = f"== {raw}"
    text = str(raw)
    m = _COMPARISON.match(text)
    if m:
        op, num, unit = m.groups()
        return Comparison(_OPS[op or "=="], _number(num, unit, kind))
    m = _BETWEEN.match(text)
    if m:
        lo, lo_unit, hi, hi_unit = m.groups()
        low, high = _number(lo, lo_unit, kind), _number(hi, hi_unit, kind)
        if low > high:
            raise ValueError(f"'between {lo} and {hi}': the first bound must be the smaller")
        return Comparison("between", low, high)
    raise ValueError(
        f"expected a comparison such as {EXAMPLES[kind]} "
        f"(>=, >, <=, <, ==, != or 'between A and B'), got {text!r}"
    )


def predicate(measure: str, condition: Comparison | bool, table: str = "m") -> str:
    column = f"{table}.{measure}"
    if isinstance(condition, bool):
        return f"({column})" if condition else f"(not {column})"
    return condition.sql(column)


def parse_percent(raw: object) -> float:
    """'10%', '10 %', 10 or 0.1 (a share) -> 10.0 (percent)."""
    if isinstance(raw, bool):
        raise ValueError(f"expected a percentage such as '10%', got {raw!r}")
    if isinstance(raw, (int, float)):
        return float(raw) * 100 if 0 < raw < 1 else float(raw)
    m = re.match(r"^\s*(\d+(?:[.,]\d+)?)\s*%\s*$", str(raw))
    if not m:
        raise ValueError(f"expected a percentage such as '10%', got {raw!r}")
    return float(m.group(1).replace(",", "."))
