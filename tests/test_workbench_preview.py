"""Previewing as a designer does: the rendered HTML written (and opened), a learner's
messages week after week, and what changed in who-gets-what. All read-only."""

from __future__ import annotations

import stat
import subprocess
import webbrowser
from datetime import timedelta

import pytest
from typer.testing import CliRunner

import warehouse
from relance.runs.steps import run_campaign
from tests.conftest import MONDAY, Cohort

runner = CliRunner()


def relance(*args):
    from relance.cli.main import app
    return runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})


@pytest.fixture
def world(wh_location, campaigns):
    """A warehouse with a small cohort, and the test campaign (course c1)."""
    db = wh_location
    con = warehouse.connect(db)
    cohort = Cohort(con)
    ids = {
        "silent": cohort.learner(inactive_days=10, done=2, first_name="Inès"),
        "active": cohort.learner(inactive_days=1, done=1, first_name="Hugo"),
    }
    con.close()
    campaigns.write(campaigns.base())
    return db, campaigns, ids


def ledger(db) -> tuple:
    con = warehouse.connect(db)
    try:
        return tuple(con.execute(f"select count(*) from {t}").fetchall()[0][0]
                     for t in ("decisions", "messages", "stage_state", "campaign_runs"))
    finally:
        con.close()


def common(world):
    db, campaigns, _ = world
    return ["--warehouse", db, "--campaigns", campaigns.root, "--as-of", MONDAY.isoformat()]


def test_html_is_written_and_opened(world, tmp_path, monkeypatch):
    db, campaigns, ids = world
    out = tmp_path / "relance.html"
    result = relance("preview", "test", ids["silent"], "--html", out, *common(world))
    assert result.exit_code == 0, result.output
    assert "would get 'relance'" in result.output
    html = out.read_text(encoding="utf-8")
    assert "<p>Inès, 50\u00a0%</p>" in html
    # --open hands the file to the browser ($BROWSER here: a script that notes what it got)
    opened = tmp_path / "opened.txt"
    browser = tmp_path / "browser.sh"
    browser.write_text(f'#!/bin/sh\necho "$1" > {opened}\n')
    browser.chmod(browser.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("BROWSER", f"{browser} %s")
    monkeypatch.setattr(webbrowser, "_tryorder", None)
    monkeypatch.chdir(tmp_path)
    result = relance("preview", "test", ids["silent"], "--open", *common(world))
    assert result.exit_code == 0, result.output
    written = tmp_path / ".relance" / "previews" / f"test-{ids['silent']}-relance.html"
    assert written.read_text(encoding="utf-8") == html
    assert opened.read_text().strip() == written.resolve().as_uri()
    assert ledger(db) == (0, 0, 0, 0)


def test_week_after_week_replays_the_engine_without_writing(world):
    db, campaigns, ids = world
    before = ledger(db)
    result = relance("preview", "test", ids["silent"], "--week", *common(world))
    assert result.exit_code == 0, result.output
    rows = [line.split("│")[1:-1] for line in result.output.splitlines()
            if line.startswith("│ 2026-")]
    rows = [[c.strip() for c in r] for r in rows]
    # Mondays from the first after enrolment (40 days before MONDAY) to MONDAY
    assert [r[0] for r in rows] == ["2026-10-19", "2026-10-26", "2026-11-02", "2026-11-09",
                                    "2026-11-16", "2026-11-23"]
    # enrolled on a Wednesday, silent (the relance, the recap, the remobilisation), then a
    # burst of activity 10 days before MONDAY (half the course: bravo), silent again
    assert [r[2:6] for r in rows] == [
        ["active", "0%", "4", "recap"],
        ["at_risk", "0%", "12", "relance"],
        ["at_risk", "0%", "19", "recap"],
        ["dormant", "0%", "26", "remobilisation"],
        ["active", "50%", "3", "bravo"],
        ["at_risk", "50%", "10", "relance"],
    ]
    assert rows[-1][6] == "Bonjour Inès — at_risk"          # the rendered subject
    assert "6 messages over 6 weeks." in result.output
    assert ledger(db) == before


def test_plan_diff_against_the_last_run(world, tmp_path):
    db, campaigns, ids = world
    result = relance("plan", "test", "--diff", *common(world))
    assert result.exit_code == 1
    assert "test has no recorded run to compare with" in result.output
    # last week's run (the library call `relance run` makes, without the Prefect flow)
    con = warehouse.connect(db)
    try:
        summary = run_campaign(con, campaigns.load(), as_of=MONDAY - timedelta(days=7),
                               outbox_dir=str(tmp_path / "outbox"))
    finally:
        con.close()
    assert summary.status == "succeeded" and summary.sent == 2
    before = ledger(db)
    result = relance("plan", "test", "--diff", *common(world))
    assert result.exit_code == 0, result.output
    assert "compared with the last run" in result.output
    assert "learners changed" in result.output
    lines = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[1:-1]]
             for line in result.output.splitlines() if line.startswith("│ L0")}
    # last week was the campaign's first run: no milestone for what was done before it
    assert lines[ids["silent"]][1:5] == ["active", "at_risk", "recap", "relance"]
    assert ledger(db) == before


def test_plan_diff_against_the_committed_version(world):
    db, campaigns, ids = world
    git = ["git", "-C", str(campaigns.root)]
    subprocess.run(git + ["init", "-q"], check=True)
    subprocess.run(git + ["add", "-A"], check=True)
    subprocess.run(git + ["-c", "user.name=t", "-c", "user.email=t@example.org", "commit",
                          "-qm", "campaign"], check=True)
    path = campaigns.root / "test.yaml"
    path.write_text(path.read_text().replace('at_risk: {inactive_days: ">= 7"}',
                                             'at_risk: {inactive_days: ">= 14"}'))
    result = relance("plan", "test", "--diff", "--against", "head", *common(world))
    assert result.exit_code == 0, result.output
    assert "compared with the committed version of test.yaml (HEAD" in result.output
    assert "1 of 2 learners changed" in result.output
    lines = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[1:-1]]
             for line in result.output.splitlines() if line.startswith("│ L0")}
    assert lines[ids["silent"]][1:5] == ["at_risk", "active", "relance", "recap"]
    assert ids["active"] not in lines
