"""The JSON Schema editors use: committed, documented field by field, referenced from every
campaign file, and true to what designers write (it accepts the sample campaigns, which
the loader accepts, and flags the mistakes the loader flags)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from relance.campaign.schema import SCHEMA_PATH, undocumented
from tests.conftest import REPO

MODELINE = "# yaml-language-server: $schema=../relance/campaign/campaign.schema.json"
CAMPAIGN_FILES = sorted(p for p in (REPO / "campaigns").glob("*.yaml") if not p.name.startswith("_"))


def _validator():
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


def _as_editor_sees(path: Path) -> dict:
    """The campaign with the folder's `_defaults.yaml` under it, as the loader merges it."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    defaults = path.parent / "_defaults.yaml"
    if defaults.exists():
        data = yaml.safe_load(defaults.read_text(encoding="utf-8")) | data
    return data


def test_every_field_has_a_description_and_an_example():
    assert undocumented() == []


@pytest.mark.parametrize("path", CAMPAIGN_FILES, ids=lambda p: p.name)
def test_campaign_files_point_editors_at_the_committed_schema(path):
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first == MODELINE
    target = (path.parent / first.split("$schema=")[1]).resolve()
    assert target == SCHEMA_PATH.resolve()


@pytest.mark.parametrize("path", CAMPAIGN_FILES, ids=lambda p: p.name)
def test_the_schema_accepts_what_the_loader_accepts(path):
    errors = [f"{list(e.absolute_path)}: {e.message}"
              for e in _validator().iter_errors(_as_editor_sees(path))]
    assert errors == []


@pytest.mark.parametrize("change,where", [
    (lambda d: d["limits"].update(quiet_hour="20:00-08:00"), ["limits"]),
    (lambda d: d["stages"]["at_risk"].update(inactiv_days=">= 7"), ["stages", "at_risk"]),
    (lambda d: d["tests"]["cases"][0]["expect"].update(mesage="relance"),
     ["tests", "cases", 0, "expect"]),
    (lambda d: d["tests"]["cases"][0]["given"].update(progress="lots"),
     ["tests", "cases", 0, "given", "progress"]),
    (lambda d: d.update(control_group="ten"), ["control_group"]),
])
def test_the_schema_flags_mistakes_as_the_editor_types(change, where):
    data = _as_editor_sees(REPO / "campaigns" / "parcours-anglais.yaml")
    change(data)
    errors = list(_validator().iter_errors(data))
    assert len(errors) == 1

    def paths(error):     # an anyOf (a field that may be null) holds the precise error
        yield list(error.absolute_path)
        for sub in error.context or []:
            yield from paths(sub)
    assert where in list(paths(errors[0]))
