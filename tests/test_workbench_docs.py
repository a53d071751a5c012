"""The campaign reference is generated from the models and committed; it cannot go stale."""

from __future__ import annotations

from typer.testing import CliRunner

from relance.campaign import reference
from relance.campaign.model import Campaign, Message
from relance.campaign.sending import Limits
from relance.campaign.testcases import Given


def test_committed_reference_is_up_to_date():
    committed = reference.REFERENCE_PATH.read_text(encoding="utf-8")
    assert committed == reference.render(), (
        "docs/campaign-reference.md is stale: run `relance docs -o docs/campaign-reference.md`")


def test_every_field_is_in_the_reference_with_its_example():
    text = reference.render()
    for model in (Campaign, Message, Limits, Given):
        for name, field in model.model_fields.items():
            row = next((l for l in text.splitlines() if l.startswith(f"| `{name}` |")), None)
            assert row is not None, name
            assert field.description.split("(")[0].strip().replace("|", "\\|") in text, name
    assert "| `quiet_hours` | text | — | No mail in this span" in text
    assert "| `send` | one of `now`, `later` | — |" in text
    assert "| `per_campaign_per_week` | integer | `1` |" in text
    assert "| `inactive_days` | days |" in text and "| `holdout` |" in text


def test_relance_docs_prints_or_writes_it(tmp_path):
    from relance.cli.main import app
    result = CliRunner().invoke(app, ["docs", "-o", str(tmp_path / "ref.md")])
    assert result.exit_code == 0
    assert (tmp_path / "ref.md").read_text(encoding="utf-8") == reference.render()
