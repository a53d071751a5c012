"""`relance deployments`: prefect.yaml's campaign deployments follow campaigns/, each at its
own schedule and timezone, and `--check` fails with a diff when they drift."""

from __future__ import annotations

import shutil

import yaml
from typer.testing import CliRunner

from relance.cli.main import app
from tests.conftest import REPO


def deployments(*args):
    return CliRunner().invoke(app, ["deployments", *args])


def copy_prefect_yaml(tmp_path):
    target = tmp_path / "prefect.yaml"
    shutil.copy(REPO / "prefect.yaml", target)
    return target


def scheduled(path) -> dict:
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    return {d["name"]: [(s["cron"], s["timezone"]) for s in d["schedules"]]
            for d in spec["deployments"]}


def test_the_repository_prefect_yaml_matches_its_campaigns():
    result = deployments("--check", "--file", str(REPO / "prefect.yaml"),
                         "--campaigns", str(REPO / "campaigns"))
    assert result.exit_code == 0, result.output
    assert scheduled(REPO / "prefect.yaml")["run-parcours-anglais"] == [("30 8 * * 1", "Europe/Paris")]


def test_a_new_campaign_makes_the_check_fail_with_a_diff_until_deployments_are_written(
        tmp_path, campaigns):
    target = copy_prefect_yaml(tmp_path)
    campaigns.write(campaigns.base("atelier", **{
        "every: monday 08:30": "every: tuesday 10:15",
        "control_group: 0%": "control_group: 0%\ntimezone: America/Montreal"}))
    args = ["--file", str(target), "--campaigns", str(campaigns.root)]

    result = deployments("--check", *args)
    assert result.exit_code == 1
    # the diff names the new deployment and its schedule, and the ones no longer in campaigns/
    assert "+  - name: run-atelier" in result.output
    assert '+      - cron: "15 10 * * 2"' in result.output
    assert "+        timezone: America/Montreal" in result.output
    assert "-  - name: run-parcours-anglais" in result.output
    assert "run `relance deployments`" in result.output

    result = deployments(*args)
    assert result.exit_code == 0, result.output
    assert "run-atelier: tuesday 10:15 America/Montreal (its weekly message recap)" in result.output
    assert deployments("--check", *args).exit_code == 0
    after = scheduled(target)
    assert after["run-atelier"] == [("15 10 * * 2", "America/Montreal")]
    assert "run-parcours-anglais" not in after
    # what is written by hand stays as it was
    assert after["sync-progress"] == scheduled(REPO / "prefect.yaml")["sync-progress"]
    assert after["deliver-due"] == scheduled(REPO / "prefect.yaml")["deliver-due"]


def test_a_campaign_schedule_wins_and_no_weekly_message_means_monday_0800(tmp_path, campaigns):
    target = copy_prefect_yaml(tmp_path)
    campaigns.write(campaigns.base("quotidien", **{
        "limits:": "schedule: weekdays 07:45\nlimits:"}))
    campaigns.write(campaigns.base("sans-rythme", **{
        "  recap:\n    every: monday 08:30\n    to: [active, at_risk]\n": ""}))
    assert deployments("--file", str(target), "--campaigns", str(campaigns.root)).exit_code == 0
    after = scheduled(target)
    assert after["run-quotidien"] == [("45 7 * * 1-5", "Europe/Paris")]
    assert after["run-sans-rythme"] == [("0 8 * * 1", "Europe/Paris")]


def test_a_bad_schedule_is_refused_where_it_is_written(tmp_path, campaigns):
    target = copy_prefect_yaml(tmp_path)
    campaigns.write(campaigns.base("mauvais", **{"limits:": "schedule: tous les lundis\nlimits:"}))
    result = deployments("--file", str(target), "--campaigns", str(campaigns.root))
    assert result.exit_code == 1
    assert "mauvais.yaml" in result.output and "schedule" in result.output
    assert "'weekdays 09:00'" in result.output


def test_without_the_marker_lines_it_says_where_they_go(tmp_path, campaigns):
    target = tmp_path / "prefect.yaml"
    target.write_text("deployments: []\n", encoding="utf-8")
    campaigns.write(campaigns.base("atelier"))
    result = deployments("--check", "--file", str(target), "--campaigns", str(campaigns.root))
    assert result.exit_code == 1
    assert "# >>> campaign deployments" in result.output
    assert "under `deployments:`" in result.output
