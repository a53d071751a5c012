"""The campaign format's JSON Schema, generated from the pydantic models.

`campaign.schema.json` beside this file is committed (editors point at it from each
campaign's `# yaml-language-server: $schema=` line); a test fails when it drifts from the
models. Regenerate with `relance schema -o relance/campaign/campaign.schema.json`.
"""

from __future__ import annotations

from pathlib import Path

from relance.campaign.model import Campaign

SCHEMA_PATH = Path(__file__).parent / "campaign.schema.json"


def campaign_schema() -> dict:
    schema = Campaign.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "https://relance.dev/schema/campaign.schema.json",
            "title": "relance campaign", **schema}


def undocumented(schema: dict | None = None) -> list[str]:
    """Fields of the schema without a description or an example ("Model.field: what")."""
    schema = schema or campaign_schema()
    missing = []
    for name, definition in [("Campaign", schema)] + list(schema.get("$defs", {}).items()):
        if "description" not in definition:
            missing.append(f"{name}: no description")
        for key, prop in definition.get("properties", {}).items():
            missing += [f"{name}.{key}: no {what}" for what in ("description", "examples")
                        if what not in prop]
    return missing
