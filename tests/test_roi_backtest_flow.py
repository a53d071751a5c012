"""`relance backtest` as a Prefect flow (one test harness for the module): on a hand-built
cohort from the warehouse, and on the real OULAD 2013 files (read in place from ../shared):
module DDD, the risk score trained on 2013B and the campaign replayed on 2013J, checked
against the dataset's own registrations read independently here."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys

import pytest
from typer.testing import CliRunner

import warehouse
from relance.cli.main import app
from tests.conftest import OULAD, REPO

needs_oulad = pytest.mark.skipif(not OULAD.is_dir(), reason=f"OULAD data not at {OULAD}")


@pytest.fixture(scope="module")
def prefect():
    from prefect.testing.utilities import prefect_test_harness
    with prefect_test_harness(server_startup_timeout=120):
        yield


def registrations(module: str, presentation: str) -> list[dict]:
    with (OULAD / "studentRegistration.csv").open(newline="", encoding="utf-8") as f:
        return [r for r in csv.DictReader(f)
                if r["code_module"] == module and r["code_presentation"] == presentation]


def results(module: str, presentation: str) -> dict[str, str]:
    with (OULAD / "studentInfo.csv").open(newline="", encoding="utf-8") as f:
        return {r["id_student"]: r["final_result"] for r in csv.DictReader(f)
                if r["code_module"] == module and r["code_presentation"] == presentation}


@pytest.fixture(scope="module")
def ran(prefect, tmp_path_factory):
    root = tmp_path_factory.mktemp("oulad-bt")
    sources = root / "sources.yaml"
    sources.write_text(f"sources:\n  oulad-ddd:\n    kind: oulad\n    directory: {OULAD}\n"
                       "    modules: [DDD]\n", encoding="utf-8")
    path = root / "relance.duckdb"
    result = CliRunner().invoke(app, [
        "backtest", "oulad-alerte", "--source", "oulad-ddd", "--sources", str(sources),
        "--presentation", "2013J", "--train", "2013B", "--warehouse", str(path),
        "--campaigns", str(REPO / "campaigns" / "backtests")])
    assert result.exit_code == 0, result.output
    return path, result.output


@needs_oulad
def test_the_backtest_counts_what_the_dataset_says(ran):
    path, _output = ran
    regs = registrations("DDD", "2013J")
    final = results("DDD", "2013J")
    left = [int(r["date_unregistration"]) for r in regs if r["date_unregistration"].strip()]
    con = warehouse.connect(path)
    [(n_learners, n_withdrawers, n_early, n_passers, n_reached, n_flagged)] = con.execute(
        "select n_learners, n_withdrawers, n_early_leavers, n_passers, n_reached, "
        "n_flagged_passers from backtest_runs").fetchall()
    assert n_learners == len(regs)
    assert n_withdrawers == sum(d >= 14 for d in left)
    assert n_early == sum(d < 14 for d in left)
    assert n_passers == sum(v in ("Pass", "Distinction") for v in final.values())
    # every reached withdrawer got the alert at least 7 days before leaving
    [(bad,)] = con.execute("select count(*) from backtest_learners where reached_in_time and "
                           "first_alert_at > left_at - interval 7 day").fetchall()
    assert bad == 0 and 0 < n_reached <= n_withdrawers and n_flagged <= n_passers
    # only the replayed presentation was evaluated: no 2013B learner in the decisions
    [(courses,)] = con.execute("select courses from backtest_runs").fetchall()
    assert courses == ["DDD-2013J"]
    [(week,)] = con.execute("select max(course_week) from backtest_weeks").fetchall()
    assert week <= 40
    [(trained_on,)] = con.execute("select trained_on from risk_models").fetchall()
    assert trained_on == "oulad-ddd 2013B"
    weeks = con.execute("select course_week, auc from backtest_auc order by 1").fetchall()
    assert [w for w, _ in weeks][:6] == [1, 2, 3, 4, 5, 6]
    assert all(a is None or 0 <= a <= 1 for _, a in weeks)
    con.close()


@needs_oulad
def test_the_command_prints_reach_false_alarms_and_auc_by_week(ran):
    _path, output = ran
    assert "withdrawers (left on day ≥ 14) reached ≥ 7 days before" in output
    assert "passers flagged (false alarms)" in output
    assert "Risk score: AUC by course week" in output


def warehouse_cohort(tmp_path):
    """The hand-built cohort of test_roi_backtest in a warehouse file, and its campaign."""
    from tests.test_roi_backtest import CAMPAIGN, cohort
    camp = tmp_path / "campaigns"
    (camp / "bt" / "relance" / "fr").mkdir(parents=True)
    (camp / "bt.yaml").write_text(CAMPAIGN.replace("  bravo: {on_enter: completed}\n", ""),
                                  encoding="utf-8")
    for locale in ("fr", "en"):
        folder = camp / "bt" / "relance" / locale
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "subject.txt").write_text("Bonjour", encoding="utf-8")
        (folder / "body.txt").write_text("Bonjour", encoding="utf-8")
    path = tmp_path / "relance.duckdb"
    cohort_con = warehouse.connect(path)
    cohort(cohort_con)
    cohort_con.close()
    return path, camp


def test_backtest_command_on_the_warehouse_cohort(prefect, tmp_path, monkeypatch):
    # an operator's shell with a Prefect server configured: the backtest is a flow run on it
    from prefect.settings import PREFECT_API_URL
    monkeypatch.setenv("PREFECT_API_URL", PREFECT_API_URL.value())
    path, camp = warehouse_cohort(tmp_path)
    result = CliRunner().invoke(app, ["backtest", "bt", "--warehouse", str(path), "--campaigns",
                                      str(camp)])
    assert result.exit_code == 0, result.output
    assert "reached ≥ 7 days before" in result.output and "50.0 % (1/2)" in result.output
    con = warehouse.connect(path)
    [(status, n_reached)] = con.execute("select status, n_reached from backtest_runs").fetchall()
    assert (status, n_reached) == ("succeeded", 1)
    con.close()
    result = CliRunner().invoke(app, ["backtest", "bt", "--presentation", "2013J", "--warehouse",
                                      str(path), "--campaigns", str(camp)])
    assert result.exit_code == 1
    assert "no course of bt's audience in presentation 2013J in this source; its courses are: c1" \
        in result.output


def test_without_a_prefect_server_the_backtest_starts_none(tmp_path):
    """A person's shell with no Prefect server configured: the command runs the same steps
    in its own process (a temporary Prefect server took about ten seconds to start)."""
    path, camp = warehouse_cohort(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env |= {"PREFECT_LOGGING_LEVEL": "INFO", "PREFECT_HOME": str(tmp_path / "prefect"),
            "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "relance.cli", "backtest", "bt", "--warehouse",
                           str(path), "--campaigns", str(camp)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "50.0 % (1/2)" in done.stdout
    assert "temporary server" not in (done.stdout + done.stderr).lower()
    assert not (tmp_path / "prefect").exists()
    con = warehouse.connect(path)
    [(status, n_reached)] = con.execute("select status, n_reached from backtest_runs").fetchall()
    assert (status, n_reached) == ("succeeded", 1)
    con.close()


def late_by_3_days_expected(module: str, presentation: str, length: int) -> tuple[int, int, int, int]:
    """The baseline "missed a coursework deadline by 3 days" worked out from the CSV files
    alone: (withdrawers on day >= 14, of whom alerted >= 7 days before, passers, of whom
    ever alerted). Mondays are days 0, 7, ... (08:00 UTC); a deadline is the end of its day
    (London), so on Monday m a deadline of day d is m - d - 1 whole days old; a hand-in on
    day s counts on Monday m if s <= m; a learner is in the audience on Monday m if they
    registered on day <= m and have not left (day > m); the alert goes on the first Monday
    the rule holds, and reaches in time if they leave 8 days or more after it (00:00 London
    vs Monday 08:00: at least 7 whole days)."""
    with (OULAD / "assessments.csv").open(newline="", encoding="utf-8") as f:
        due = {r["id_assessment"]: int(r["date"]) for r in csv.DictReader(f)
               if r["code_module"] == module and r["code_presentation"] == presentation
               and r["assessment_type"] != "Exam" and r["date"].strip()}
    handed: dict[str, dict[str, int]] = {}
    with (OULAD / "studentAssessment.csv").open(newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            if r["id_assessment"] in due:
                mine = handed.setdefault(r["id_student"], {})
                mine[r["id_assessment"]] = min(int(r["date_submitted"]),
                                               mine.get(r["id_assessment"], 10**6))
    final = results(module, presentation)
    n_w = n_reached = n_p = n_flagged = 0
    for reg in registrations(module, presentation):
        sid = reg["id_student"]
        start = int(reg["date_registration"]) if reg["date_registration"].strip() else 0
        left = int(reg["date_unregistration"]) if reg["date_unregistration"].strip() else None
        first_alert = None
        for monday in range(0, length, 7):
            if start > monday or (left is not None and left <= monday):
                continue
            if any(start < d <= monday - 4 and handed.get(sid, {}).get(a, 10**6) > monday
                   for a, d in due.items()):
                first_alert = monday
                break
        if left is not None and left >= 14:
            n_w += 1
            n_reached += first_alert is not None and left - first_alert >= 8
        if final[sid] in ("Pass", "Distinction"):
            n_p += 1
            n_flagged += first_alert is not None
    return n_w, n_reached, n_p, n_flagged


@pytest.fixture(scope="module")
def ran_baseline(prefect, tmp_path_factory):
    root = tmp_path_factory.mktemp("oulad-bt-3j")
    sources = root / "sources.yaml"
    sources.write_text(f"sources:\n  oulad-ddd:\n    kind: oulad\n    directory: {OULAD}\n"
                       "    modules: [DDD]\n    presentations: [2013J]\n", encoding="utf-8")
    path = root / "relance.duckdb"
    result = CliRunner().invoke(app, [
        "backtest", "oulad-retard-3j", "--source", "oulad-ddd", "--sources", str(sources),
        "--presentation", "2013J", "--warehouse", str(path),
        "--campaigns", str(REPO / "campaigns" / "backtests")])
    assert result.exit_code == 0, result.output
    return path, result.output


@needs_oulad
def test_the_late_by_3_days_baseline_reaches_whom_the_files_say(ran_baseline):
    path, output = ran_baseline
    n_w, n_reached, n_p, n_flagged = late_by_3_days_expected("DDD", "2013J", 261)
    con = warehouse.connect(path)
    [got] = con.execute("select n_withdrawers, n_reached, n_passers, n_flagged_passers "
                        "from backtest_runs").fetchall()
    con.close()
    assert got == (n_w, n_reached, n_p, n_flagged)
    # on DDD-2013J: about half of the withdrawers in time, a quarter of the passers
    assert (n_w, n_reached, n_p, n_flagged) == (425, 196, 829, 208)
    assert f"{100 * n_reached / n_w:.1f} % ({n_reached}/{n_w})" in output


@needs_oulad
def test_oulad_in_place_loads_only_the_presentations_the_backtest_reads(tmp_path, monkeypatch):
    """No sources file: OULAD is read in place, only the presentation replayed and the one
    trained on (the other presentations' files are half of what a sync would read)."""
    from relance.campaign.loader import load
    from relance.roi import backtest as bt
    monkeypatch.chdir(tmp_path)                      # no sources.yaml here
    camp = REPO / "campaigns" / "backtests"
    loaded = load(camp / "oulad-retard-3j.yaml", campaigns_dir=camp)
    con = warehouse.connect(tmp_path / "relance.duckdb")
    for train, expected in ((None, {"2013J"}), ("2013B", {"2013B", "2013J"})):
        cohort = bt.prepare_cohort(con, loaded, "oulad", "2013J", train)
        held = warehouse.connect(cohort.scratch)
        courses = [r[0] for r in held.execute("select course_id from courses").fetchall()]
        held.close()
        shutil.rmtree(cohort.scratch.parent)
        assert {c.split("-")[1] for c in courses} == expected
        assert sorted(cohort.courses) == sorted(c for c in courses if c.endswith("2013J"))
        assert len(cohort.courses) == 6
    con.close()
