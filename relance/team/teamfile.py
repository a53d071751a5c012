"""Reading `campaigns/_team.yaml`: YAML -> `TeamFile`, every problem located by file, line,
column and field, under the same YAML budget as campaign files (campaign/yamlfile.py)."""

from __future__ import annotations

import difflib
import json
from pathlib import Path

from pydantic import ValidationError

from relance.campaign.problems import (CampaignError, Locator, Problem, display, dotted,
                                       read_yaml)
from relance.team.model import TeamFile

TEAM_FILE = "_team.yaml"
SCHEMA_PATH = Path(__file__).parent / "team.schema.json"


def path_in(campaigns_dir: Path) -> Path:
    return Path(campaigns_dir) / TEAM_FILE


def schema() -> dict:
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "https://relance.dev/schema/team.schema.json",
            "title": "relance team file", **TeamFile.model_json_schema()}


def schema_text() -> str:
    return json.dumps(schema(), indent=2, ensure_ascii=False) + "\n"


def _model_at(loc: tuple):
    """The pydantic model holding the field at `loc` (list indexes skipped)."""
    from relance.campaign.problems import _inner_model
    model = TeamFile
    for part in loc:
        if isinstance(part, int):
            continue
        fields = getattr(model, "model_fields", {})
        if part not in fields:
            return None
        model = _inner_model(fields[part].annotation)
    return model


def _message(err: dict) -> str:
    kind, value = err["type"], err.get("input")
    if kind == "extra_forbidden":
        parent = _model_at(tuple(err["loc"][:-1]))
        allowed = list(getattr(parent, "model_fields", {}))
        close = difflib.get_close_matches(str(err["loc"][-1]), allowed, n=1, cutoff=0.6)
        return ("unknown field; " + (f"did you mean `{close[0]}`? " if close else "")
                + f"expected one of: {', '.join(allowed)}")
    if kind == "missing":
        return "required field is missing"
    text = err["msg"]
    if text.startswith("Value error, "):
        return text[len("Value error, "):]
    return f"{text[0].lower()}{text[1:]}, got {value!r}"


def load(path: Path) -> TeamFile:
    """The team file, fully checked; CampaignError listing every problem otherwise."""
    path = Path(path)
    shown = display(path)
    columns: dict = {}
    data, lines, problems = read_yaml(path, shown, columns)
    if problems:
        raise CampaignError(problems)
    if not isinstance(data, dict):
        raise CampaignError([Problem(shown, 1, "", "expected a mapping with `people:` (a list "
                                     "of the team's people) and `assignment:`")])
    locate = Locator([(shown, lines)], {shown: columns})
    try:
        team = TeamFile.model_validate(data)
    except ValidationError as exc:
        found, seen = [], set()
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and (
                p.startswith("function-") or p in ("str", "list[str]", "literal[")
                or p.startswith("literal["))))
            if (loc, err["type"]) in seen:
                continue
            seen.add((loc, err["type"]))
            where, line, column = locate.where(loc, at_key=err["type"] in ("extra_forbidden",
                                                                           "missing"))
            found.append(Problem(where, line, dotted(loc), _message(err), column))
        raise CampaignError(found) from None
    for loc, text in team.problems():
        where, line, column = locate.where(loc)
        problems.append(Problem(where, line, dotted(loc), text, column))
    if problems:
        raise CampaignError(problems)
    team._source = (shown, locate)       # for problems found later (against the warehouse)
    return team


def locate(team: TeamFile, loc: tuple) -> tuple[str, int | None, int | None]:
    shown, locator = getattr(team, "_source", ("_team.yaml", None))
    return locator.where(loc) if locator else (shown, None, None)
