"""Problems in campaign files, each located by file, line, column and field.

A campaign YAML is read with the line and column of every key and value (`read_yaml`), so
that a pydantic error, a cross-field check or a template error can point at what the
designer wrote (`Locator`), with the allowed values and an example where one helps.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError



@dataclass(frozen=True)
class Problem:
    path: str
    line: int | None
    field: str
    message: str
    column: int | None = None       # 1-based, as editors count

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        if self.line and self.column:
            where += f":{self.column}"
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class CampaignError(Exception):
    """One or more problems in campaign files. str() lists them, one per line."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def _index_lines(node: yaml.Node, prefix: tuple, out: dict[tuple, int],
                 duplicates: list[tuple[tuple, int, int]],
                 columns: dict[tuple, tuple[int, int]] | None = None) -> None:
    """Where each field is written: its key's line in `out`; in `columns`, the columns of
    its key (where an unknown key is reported) and of its value (where a wrong value is)."""
    columns = {} if columns is None else columns
    out.setdefault(prefix, node.start_mark.line + 1)
    columns.setdefault(prefix, (node.start_mark.column + 1, node.start_mark.column + 1))
    if isinstance(node, yaml.MappingNode):
        seen = set()
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue        # `? [a, b]`: not a field name (refused as it is built)
            key = key_node.value
            loc = prefix + (key,)
            if key in seen:
                duplicates.append((loc, key_node.start_mark.line + 1,
                                   key_node.start_mark.column + 1))
            seen.add(key)
            out[loc] = key_node.start_mark.line + 1
            _index_lines(value_node, loc, out, duplicates, columns)
            out[loc] = key_node.start_mark.line + 1
            columns[loc] = (key_node.start_mark.column + 1, value_node.start_mark.column + 1
                            if value_node.start_mark.line == key_node.start_mark.line
                            else key_node.start_mark.column + 1)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index_lines(item, prefix + (i,), out, duplicates, columns)


def line_for(lines: dict[tuple, int], loc: tuple) -> int | None:
    loc = tuple(loc)
    while loc:
        if loc in lines:
            return lines[loc]
        loc = loc[:-1]
    return lines.get(())


def read_yaml(path: Path, display: str, columns: dict | None = None
               ) -> tuple[Any, dict[tuple, int], list[Problem]]:
    """A YAML file's data and where each field is, read under the budget of
    campaign/yamlfile.py; or the problems that stop it being read."""
    from relance.campaign import yamlfile
    try:
        node, construct = yamlfile.compose(yamlfile.read_text(path))
        lines: dict[tuple, int] = {}
        duplicates: list[tuple[tuple, int, int]] = []
        if node is not None:
            _index_lines(node, (), lines, duplicates, columns)
        data = construct()
    except yamlfile.YamlRefused as exc:
        return None, {}, [Problem(display, exc.line, "", exc.message, exc.column)]
    except UnicodeDecodeError as exc:
        return None, {}, [Problem(display, None, "", f"is not UTF-8 text ({exc.reason})")]
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        column = exc.problem_mark.column + 1 if exc.problem_mark else None
        return None, {}, [Problem(display, line, "", f"not valid YAML: {exc.problem}"
                                  + _yaml_hint(exc), column)]
    except yaml.reader.ReaderError as exc:       # a control character (NUL ...) in the text
        text = path.read_text(encoding="utf-8", errors="replace")[:exc.position]
        return None, {}, [Problem(display, text.count("\n") + 1, "",
                                  f"not valid YAML: character {chr(exc.character)!r} "
                                  f"(#x{exc.character:04x}) is not allowed in YAML text: "
                                  "remove it", len(text) - text.rfind("\n"))]
    problems = [Problem(display, line, dotted(loc), "appears twice; keep one", column)
                for loc, line, column in duplicates]
    return data, lines, problems


def dotted(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    import typing
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def _message(err: dict, allowed: list[str], loc: tuple = ()) -> str:
    """A pydantic error in a designer's words: what is wrong, what was expected, and an
    example of a right value (from the field's `examples`, which the JSON Schema shows too)."""
    kind = err["type"]
    value = err.get("input")
    if kind == "extra_forbidden":
        key = err["loc"][-1]
        close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
        hint = f"did you mean `{close[0]}`? " if close else ""
        return f"unknown field; {hint}expected one of: {', '.join(allowed)}" if allowed \
            else "unknown field"
    example = _example(loc)
    if kind == "missing":
        return "required field is missing" + (f"; for example `{example}`" if example else "")
    text = err["msg"]
    if text.startswith("Value error, "):
        text = text[len("Value error, "):]
    elif kind in ("string_type", "int_type", "int_parsing", "float_parsing", "bool_parsing",
                  "bool_type", "dict_type", "list_type", "model_type", "literal_error",
                  "string_pattern_mismatch", "greater_than_equal", "less_than_equal",
                  "too_short", "model_attributes_type", "datetime_type", "datetime_parsing",
                  "int_from_float", "string_too_short"):
        text = f"{text[0].lower()}{text[1:]}, got {value!r}"
    if example and not any(w in text for w in ("such as", "for example", "e.g.")):
        text += f"; for example `{example}`"
    return text


def _field_at(loc: tuple):
    """The pydantic FieldInfo of the field at `loc` in a campaign, if there is one."""
    import typing
    from relance.campaign import model as m
    model: Any = m.Campaign
    info = None
    parts = [p for p in loc]
    i = 0
    while i < len(parts):
        fields = getattr(model, "model_fields", {}) if model is not None else {}
        if parts[i] not in fields:
            return None     # a stage or message name, a list index: not a field
        info = fields[parts[i]]
        annotation = info.annotation
        model = _inner_model(annotation)
        args = typing.get_args(annotation)
        is_mapping = typing.get_origin(annotation) is dict or any(
            typing.get_origin(a) is dict for a in args)
        is_list = typing.get_origin(annotation) is list or any(
            typing.get_origin(a) is list for a in args)
        i += 1
        if (is_mapping or is_list) and model is not None and i < len(parts):
            i += 1  # the dict key or list index
            if i == len(parts):
                return None
    return info


def _example(loc: tuple) -> str | None:
    """`field: example`, as YAML, for the field at `loc` (its first example, else its
    default when that says something)."""
    while loc and isinstance(loc[-1], int):
        loc = loc[:-1]
    if not loc:
        return None
    info = _field_at(loc)
    if info is None:
        return None
    examples = info.examples or (info.json_schema_extra or {}).get("examples") \
        if isinstance(info.json_schema_extra, dict) or info.examples else None
    if examples:
        value = examples[0]
    elif info.default not in (None, [], {}, "") and not callable(info.default) \
            and type(info.default).__name__ != "PydanticUndefinedType":
        value = info.default
    else:
        return None
    text = yaml.safe_dump({loc[-1]: value}, default_flow_style=True, allow_unicode=True,
                          width=1000, sort_keys=False).strip()
    return text[1:-1] if text.startswith("{") else text


def _yaml_hint(exc: yaml.MarkedYAMLError) -> str:
    """The usual causes of a YAML syntax error, said plainly."""
    problem = str(exc.problem or "")
    if "mapping values are not allowed" in problem:
        return ("; a value containing ': ' must be quoted, for example "
                "`reason: \"Silent: call them\"`")
    if "flow sequence" in problem or "flow mapping" in problem or "expected ',' or" in problem:
        return "; a [list] or {mapping} is not closed, for example `send_days: [monday, friday]`"
    if "found character '\\t'" in problem or "tab" in problem:
        return "; indent with spaces, not tabs"
    if "could not find expected ':'" in problem:
        return "; each field is `name: value`, for example `control_group: 10%`"
    return ""


class Locator:
    """Where a field was written: the campaign file, or `_defaults.yaml` for a value the
    campaign inherits. The deepest match wins; the campaign's own file on a tie."""

    def __init__(self, sources: list[tuple[str, dict[tuple, int]]],
                 columns: dict[str, dict[tuple, tuple[int, int]]] | None = None):
        self.sources = sources          # [(display path, lines)], the campaign file first
        self.columns = columns or {}    # display path -> field -> (key column, value column)

    def __call__(self, loc: tuple) -> tuple[str, int | None]:
        display, line, _column = self.where(loc)
        return display, line

    def where(self, loc: tuple, *, at_key: bool = False) -> tuple[str, int | None, int | None]:
        """(file, line, column): the column of the field's value, or of its key."""
        best = (self.sources[0][0], None, -1, ())
        for display, lines in self.sources:
            probe = tuple(loc)
            while probe and probe not in lines:
                probe = probe[:-1]
            depth = len(probe) if probe in lines else -1
            if depth > best[2]:
                best = (display, lines.get(probe), depth, probe)
        display, line, _depth, probe = best
        cols = self.columns.get(display, {}).get(probe)
        column = None if cols is None else cols[0 if at_key or probe != tuple(loc) else 1]
        return display, line, column


def validation_problems(exc: ValidationError, locate: Locator) -> list[Problem]:
    problems = []
    seen = set()
    for err in exc.errors():
        # Union members produce one error each ('str', 'int' ...); keep the meaningful part.
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and (
            p in ("str", "int", "float", "bool", "list[str]") or p.startswith("function-")
            or p.startswith("list[") or p.startswith("nullable["))))
        parent = loc[:-1] if err["type"] == "extra_forbidden" else loc
        allowed = _allowed_for(parent) if err["type"] == "extra_forbidden" else []
        if (loc, err["type"]) in seen:
            continue
        seen.add((loc, err["type"]))
        at_key = err["type"] in ("extra_forbidden", "missing")
        # a check over a mapping's names ('Dormant': use lower-case ...) points at that name
        named = re.match(r"^Value error, '([^']+)': ", err["msg"])
        if named and loc and loc[-1] in ("stages", "messages", "follow_up"):
            loc, at_key = loc + (named.group(1),), True
        path, line, column = locate.where(loc, at_key=at_key)
        message = _message(err, allowed, loc)
        if named and at_key:
            message = message[len(named.group(0)) - len("Value error, "):]
        problems.append(Problem(path, line, dotted(loc), message, column))
    # A union of str/int/float reports the same failure several times: keep one per field.
    unique: dict[str, Problem] = {}
    for p in problems:
        unique.setdefault(p.field, p)
    return list(unique.values())


def _allowed_for(parent: tuple) -> list[str]:
    from relance.campaign import model as m
    model: Any = m.Campaign
    i = 0
    parts = list(parent)
    while i < len(parts):
        part = parts[i]
        fields = getattr(model, "model_fields", {})
        if part not in fields:
            return []
        annotation = fields[part].annotation
        inner = _inner_model(annotation)
        if inner is None:
            return []
        import typing
        origin = typing.get_origin(annotation)
        args = typing.get_args(annotation)
        is_mapping = origin is dict or any(typing.get_origin(a) is dict for a in args)
        is_list = origin is list or any(typing.get_origin(a) is list for a in args)
        model = inner
        i += 1
        if is_mapping or is_list:
            i += 1  # skip the dict key or list index
    return list(getattr(model, "model_fields", {}))


def display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
