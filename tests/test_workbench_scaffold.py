"""`relance new`: a campaign from a ready model validates, passes its own examples through
the real engine, and never overwrites anything."""

from __future__ import annotations

import json
import shutil

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from relance.campaign import scaffold
from relance.campaign.schema import SCHEMA_PATH
from tests.conftest import REPO

runner = CliRunner()


@pytest.fixture
def folder(tmp_path):
    """A campaigns folder like the project's: its `_defaults.yaml`, no layouts yet."""
    root = tmp_path / "campaigns"
    root.mkdir()
    shutil.copyfile(REPO / "campaigns" / "_defaults.yaml", root / "_defaults.yaml")
    return root


def relance(*args):
    from relance.cli.main import app
    return runner.invoke(app, list(args), env={"COLUMNS": "200"})


@pytest.mark.parametrize("model", list(scaffold.MODELS))
def test_a_new_campaign_validates_and_passes_its_examples(folder, model):
    result = relance("new", "my-course", "--from", model, "--course", "2026-09",
                     "--campaigns", str(folder))
    assert result.exit_code == 0, result.output
    assert f"created {folder}/my-course.yaml" in result.output
    text = (folder / "my-course.yaml").read_text(encoding="utf-8")
    assert text.splitlines()[0] == ("# yaml-language-server: "
                                    "$schema=../relance/campaign/campaign.schema.json")
    data = yaml.safe_load(text)
    assert data["id"] == "my-course" and data["audience"]["course"] == "2026-09"
    for key in data["messages"]:
        for locale in ("fr", "en"):
            for name in ("subject.txt", "body.txt", "body.html"):
                assert (folder / "my-course" / key / locale / name).is_file()
    assert (folder / "_layouts" / "email.html").is_file()
    # what an editor sees: the schema accepts it
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    merged = yaml.safe_load((folder / "_defaults.yaml").read_text(encoding="utf-8")) | data
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(merged)) == []
    result = relance("validate", "my-course", "--campaigns", str(folder))
    assert result.exit_code == 0, result.output
    result = relance("test", "my-course", "--campaigns", str(folder))
    assert result.exit_code == 0, result.output
    assert f"{len(data['tests']['cases'])} examples passed." in result.output


def test_new_never_overwrites(folder):
    assert relance("new", "my-course", "--campaigns", str(folder)).exit_code == 0
    campaign = folder / "my-course.yaml"
    campaign.write_text(campaign.read_text(encoding="utf-8") + "# my edits\n", encoding="utf-8")
    before = campaign.read_text(encoding="utf-8")
    result = relance("new", "my-course", "--from", "milestones", "--campaigns", str(folder))
    assert result.exit_code == 1
    assert f"{campaign} already exists: nothing was written" in result.output
    assert campaign.read_text(encoding="utf-8") == before
    assert not (folder / "my-course" / "felicitations").exists()
    # a template folder left behind counts too
    (folder / "other").mkdir()
    result = relance("new", "other", "--campaigns", str(folder))
    assert result.exit_code == 1 and "other already exists" in result.output
    assert not (folder / "other.yaml").exists()


def test_list_and_mistakes(folder):
    result = relance("new", "--list")
    assert result.exit_code == 0
    for model in ("weekly-relance", "re-engagement", "milestones", "onboarding", "alumni"):
        assert model in result.output
    result = relance("new", "x", "--from", "milestone", "--campaigns", str(folder))
    assert result.exit_code == 1
    assert "no model 'milestone'; did you mean 'milestones'?" in result.output
    result = relance("new", "My Course", "--campaigns", str(folder))
    assert result.exit_code == 1 and "'My Course' cannot be a campaign id" in result.output
    assert list(folder.iterdir()) == [folder / "_defaults.yaml"]


def test_the_models_layouts_are_the_project_s():
    ours = sorted(p.name for p in (scaffold.SCAFFOLDS / "_layouts").iterdir())
    assert ours == sorted(p.name for p in (REPO / "campaigns" / "_layouts").iterdir())
    for name in ours:
        assert (scaffold.SCAFFOLDS / "_layouts" / name).read_bytes() == \
            (REPO / "campaigns" / "_layouts" / name).read_bytes(), name
