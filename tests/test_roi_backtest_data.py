"""Backtests on anyone's OULAD-shaped data (`relance backtest --source oulad --data DIR`):
a small dataset written here in the published files' shape, one that is not OULAD-shaped
(a file or a column missing), and what a failed backtest leaves behind (nothing), and
the risk AUC shown only for a campaign that uses the score, naming its model."""

from __future__ import annotations

import csv
import random
import tempfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

import warehouse
from relance.cli.main import app
from tests.conftest import REPO

CAMPAIGNS = REPO / "campaigns" / "backtests"


def write_oulad(folder: Path, presentations=("2024B", "2024J"), n: int = 60, seed: int = 5) -> Path:
    """An OULAD-shaped folder: module XYZ in each presentation (140 days), four TMAs due
    on days 20, 48, 76, 104 and an exam; a third of the learners withdraw, and stop
    handing in some weeks before. Demographic columns are there, as published (nothing
    reads them)."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    rows = {"courses.csv": [("code_module", "code_presentation", "module_presentation_length")],
            "assessments.csv": [("code_module", "code_presentation", "id_assessment",
                                 "assessment_type", "date", "weight")],
            "studentInfo.csv": [("code_module", "code_presentation", "id_student", "gender",
                                 "region", "highest_education", "imd_band", "age_band",
                                 "num_of_prev_attempts", "studied_credits", "disability",
                                 "final_result")],
            "studentRegistration.csv": [("code_module", "code_presentation", "id_student",
                                         "date_registration", "date_unregistration")],
            "studentAssessment.csv": [("id_assessment", "id_student", "date_submitted",
                                       "is_banked")],
            "vle.csv": [("id_site", "code_module", "code_presentation", "activity_type",
                         "week_from", "week_to")]}
    for p_i, p in enumerate(presentations):
        rows["courses.csv"].append(("XYZ", p, "140"))
        tmas = [(f"{p_i}{k}", d) for k, d in enumerate((20, 48, 76, 104), start=1)]
        for a, d in tmas:
            rows["assessments.csv"].append(("XYZ", p, a, "TMA", str(d), "25"))
        rows["assessments.csv"].append(("XYZ", p, f"{p_i}9", "Exam", "", "100"))
        for s in range(n):
            sid = str(1000 * (p_i + 1) + s)
            leaves = s % 3 == 0
            left = rng.randint(30, 110) if leaves else None
            prev = rng.choice((0, 0, 1)) if leaves else 0
            rows["studentInfo.csv"].append(("XYZ", p, sid, "F", "Scotland", "A Level", "20-30%",
                                            "35-55", str(prev), str(rng.choice((60, 120))), "N",
                                            "Withdrawn" if leaves else "Pass"))
            rows["studentRegistration.csv"].append(("XYZ", p, sid, str(-rng.randint(1, 40)),
                                                    str(left) if leaves else ""))
            for a, d in tmas:
                if leaves and d > left - rng.randint(0, 25):
                    continue
                rows["studentAssessment.csv"].append((a, sid, str(d - rng.randint(0, 3)), "0"))
    for name, table in rows.items():
        with (folder / name).open("w", newline="", encoding="utf-8") as f:
            csv.writer(f, quoting=csv.QUOTE_ALL).writerows(table)
    return folder


@pytest.fixture
def temp_folder(tmp_path, monkeypatch):
    """Where the backtest's scratch files go (the system's temp folder, here one of its own)."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def backtest(tmp_path, *args: str):
    return CliRunner().invoke(app, ["backtest", *args, "--warehouse", str(tmp_path / "relance.duckdb"),
                                    "--campaigns", str(CAMPAIGNS)])


def test_a_backtest_reads_any_oulad_shaped_folder_named_by_data(tmp_path, temp_folder):
    data = write_oulad(tmp_path / "my-oulad")
    result = backtest(tmp_path, "oulad-retard-pondere", "--source", "oulad", "--data", str(data),
                      "--presentation", "2024J")
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "on XYZ-2024J, 60 learners" in out
    # withdrawers who left on day >= 14: every third learner
    assert "/20)" in out
    # a campaign that does not use the risk score prints no AUC (no model was named)
    assert "AUC" not in out and "Risk model" not in out
    con = warehouse.connect(tmp_path / "relance.duckdb")
    assert con.execute("select n_learners, risk_model_id, status from backtest_runs").fetchall() \
        == [(60, None, "succeeded")]
    assert con.execute("select count(*) from backtest_auc").fetchall() == [(0,)]
    con.close()
    assert list(temp_folder.iterdir()) == []


def test_source_oulad_after_relance_demo_reads_the_oulad_files_the_sources_file_does_not_name(
        tmp_path):
    """`relance demo` writes a sources file naming only its export; `--source oulad`
    then still reads the OULAD files in their usual place, and a sources file's own
    `oulad` entry is read from where it says, relative to that file."""
    from connectors.oulad import DEFAULT_DIRECTORY
    from relance.roi.backtest import REPO as ROOT, open_backtest_source
    demo_only = tmp_path / "sources.yaml"
    demo_only.write_text("sources:\n  demo: {kind: csv, mapping: demo/mapping.yaml}\n",
                         encoding="utf-8")
    opened = open_backtest_source("oulad", demo_only, ["2013J"])
    assert opened.directory == (ROOT / DEFAULT_DIRECTORY).resolve()
    mine = tmp_path / "conf" / "sources.yaml"
    mine.parent.mkdir()
    mine.write_text("sources:\n  oulad: {kind: oulad, directory: ../my-oulad}\n",
                    encoding="utf-8")
    opened = open_backtest_source("oulad", mine, ["2024J"])
    assert opened.directory == (tmp_path / "my-oulad").resolve()
    assert opened.source.presentations == ["2024J"]


@pytest.mark.parametrize("broken, named", [
    ("file", "studentAssessment.csv not found"),
    ("column", "missing column(s) date_submitted"),
])
def test_a_folder_that_is_not_oulad_shaped_is_refused_naming_what_is_missing(
        tmp_path, temp_folder, broken, named):
    data = write_oulad(tmp_path / "not-oulad")
    if broken == "file":
        (data / "studentAssessment.csv").unlink()
    else:
        lines = (data / "studentAssessment.csv").read_text(encoding="utf-8").splitlines()
        (data / "studentAssessment.csv").write_text(
            "\n".join(",".join(v for i, v in enumerate(line.split(",")) if i != 2) for line in lines),
            encoding="utf-8")
    result = backtest(tmp_path, "oulad-retard-pondere", "--source", "oulad", "--data", str(data),
                      "--presentation", "2024J")
    assert result.exit_code == 1, result.output
    assert named in " ".join(result.output.split())
    # the scratch warehouse it had started is gone too
    assert list(temp_folder.iterdir()) == []


def test_data_must_be_a_folder_and_goes_with_source_oulad(tmp_path, temp_folder):
    result = backtest(tmp_path, "oulad-retard-pondere", "--source", "oulad", "--data",
                      str(tmp_path / "nowhere"))
    assert result.exit_code == 1
    assert "--data" in result.output and "no such folder" in result.output
    result = backtest(tmp_path, "oulad-retard-pondere", "--data", str(tmp_path))
    assert result.exit_code == 1
    assert "--source oulad" in " ".join(result.output.split())
    assert list(temp_folder.iterdir()) == []


def test_a_backtest_that_fails_during_the_replay_leaves_nothing_in_the_temp_folder(
        tmp_path, temp_folder):
    data = write_oulad(tmp_path / "my-oulad")
    # a campaign whose stages use the risk score, with no model anywhere: the replay stops
    result = backtest(tmp_path, "oulad-alerte", "--source", "oulad", "--data", str(data),
                      "--presentation", "2024J")
    assert result.exit_code != 0
    assert "no risk model" in " ".join(result.output.split())
    con = warehouse.connect(tmp_path / "relance.duckdb")
    [(status, error)] = con.execute("select status, error from backtest_runs").fetchall()
    con.close()
    assert status == "failed" and "no risk model" in error
    assert list(temp_folder.iterdir()) == []


def test_a_risk_campaign_prints_the_auc_of_the_model_it_scored_with_and_names_it(
        tmp_path, temp_folder):
    data = write_oulad(tmp_path / "my-oulad")
    result = backtest(tmp_path, "oulad-alerte", "--source", "oulad", "--data", str(data),
                      "--presentation", "2024J", "--train", "2024B")
    assert result.exit_code == 0, result.output
    con = warehouse.connect(tmp_path / "relance.duckdb")
    [(model_id, trained_on, fitted_with)] = con.execute(
        "select model_id, trained_on, fitted_with from risk_models").fetchall()
    assert con.execute("select risk_model_id from backtest_runs").fetchall() == [(model_id,)]
    con.close()
    out = " ".join(result.output.split())
    assert f"Risk model {model_id}: trained on {trained_on}" in out
    assert trained_on == "oulad 2024B" and "scikit-learn" in fitted_with
    assert "features: course_day, days_since_hand_in," in out and "previous_attempts" in out
    assert f"AUC by course week, model {model_id}" in out
    assert list(temp_folder.iterdir()) == []
