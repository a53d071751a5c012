"""The promises the repository itself makes: the README's commands, CI, deployments."""

from __future__ import annotations

import importlib
import re

import yaml

from relance.campaign.loader import load_all
from tests.conftest import REPO


def quick_start_lines() -> list[str]:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quick start", 1)[1]
    block = re.search(r"```[^\n]*\n(.*?)```", section, re.S).group(1)
    return [line for line in block.splitlines() if line.strip()]


def test_quick_start_is_two_commands_and_ci_runs_the_second():
    lines = quick_start_lines()
    assert len(lines) == 2
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert lines[1] in [line.strip() for line in ci.splitlines()]


def test_every_campaign_has_a_scheduled_deployment_with_a_timezone():
    spec = yaml.safe_load((REPO / "prefect.yaml").read_text(encoding="utf-8"))
    deployments = {d["name"]: d for d in spec["deployments"]}
    for campaign in load_all(REPO / "campaigns"):
        d = deployments.get(f"run-{campaign.id}")
        assert d, f"prefect.yaml has no deployment run-{campaign.id}"
        assert d["parameters"]["campaign_id"] == campaign.id
    for d in deployments.values():
        module, func = d["entrypoint"].split(":")
        assert callable(getattr(importlib.import_module(module[:-3].replace("/", ".")), func))
        for schedule in d["schedules"]:
            assert schedule["cron"] and schedule["timezone"]
