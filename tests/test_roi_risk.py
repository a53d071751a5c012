"""The risk score: fitted on one presentation, evaluated on another, computed in SQL."""

from __future__ import annotations

import math
from datetime import timedelta

import numpy as np
import pytest

from relance.roi import backtest, risk
from tests.conftest import OULAD
from tests.roi_fixtures import T0, Builder, synthetic_presentation


@pytest.fixture(scope="module")
def trained():
    b = Builder(course="unused")
    synthetic_presentation(b, "MOD-2025B", seed=1)
    synthetic_presentation(b, "MOD-2025J", seed=2)
    moments = backtest.mondays(T0, T0 + timedelta(weeks=10))
    model = risk.train(b.con, ["MOD-2025B"], moments, trained_on="test 2025B")
    return b, model, moments


def test_the_sql_score_is_the_stored_logistic_regression(trained):
    b, model, moments = trained
    as_of = moments[4]
    keys, x, _y = risk.features(b.con, ["MOD-2025J"], as_of)
    coef = {f: (c, m, s) for _, f, c, m, s in b.rows(
        "select * from risk_coefficients where model_id = ?", [model.model_id])}
    by_sql = risk.scores(b.con, ["MOD-2025J"], as_of)
    assert len(by_sql) == len(keys) > 100
    for key, row in list(zip(keys, x))[:50]:
        z = coef["(intercept)"][0] + sum(
            c * (row[risk.FEATURES.index(f)] - m) / s for f, (c, m, s) in coef.items()
            if f != "(intercept)")
        assert by_sql[key] == pytest.approx(1 / (1 + math.exp(-z)), abs=1e-9)


def test_lateness_raises_the_risk_and_it_ranks_later_withdrawers_first(trained):
    b, model, moments = trained
    assert model.coefficients["missed_weight_share"] > 0 or model.coefficients["overdue"] > 0
    assert model.coefficients["done_share"] < 0
    by_week = risk.auc_by_week(b.con, ["MOD-2025J"], moments)
    weeks = {w: a for w, _n, _k, a in by_week}
    assert weeks[6] > 0.75, by_week
    # no protected attribute can be among the features: the model has none of them
    assert set(model.coefficients) == set(risk.FEATURES)


def test_auc_counts_pairs():
    rng = np.random.default_rng(3)
    s = rng.integers(0, 5, 60).astype(float)          # many ties
    y = (rng.random(60) < 0.4).astype(float)
    pairs = [(1.0 if a > c else 0.5 if a == c else 0.0)
             for a, la in zip(s, y) for c, lc in zip(s, y) if la == 1 and lc == 0]
    assert risk.auc(s, y) == pytest.approx(sum(pairs) / len(pairs))
    assert risk.auc(s, np.zeros(60)) is None


RISK_CAMPAIGN = """\
id: alerte
description: Risk-based alert.
audience: {course: MOD-2025J}
sender: {name: "Julie", email: formation@example.org}
control_group: 0%
stages:
  completed: {completed: true}
  at_risk: {risk: ">= 0.7"}
  active: {}
messages:
  relance: {on_enter: at_risk}
"""


def test_a_campaign_stages_learners_on_their_risk(trained, tmp_path):
    from relance import engine
    from relance.campaign.loader import load
    b, _model, moments = trained
    (tmp_path / "alerte.yaml").write_text(RISK_CAMPAIGN, encoding="utf-8")
    for locale in ("fr", "en"):
        folder = tmp_path / "alerte" / "relance" / locale
        folder.mkdir(parents=True)
        (folder / "subject.txt").write_text("Hello", encoding="utf-8")
        (folder / "body.txt").write_text("Hello", encoding="utf-8")
    loaded = load(tmp_path / "alerte.yaml", campaigns_dir=tmp_path)
    as_of = moments[5]
    engine.evaluate(b.con, loaded, as_of)
    staged = dict(((lid, stage), r) for lid, stage, r in b.rows(
        "select learner_id, stage, risk from eval_state"))
    expected = risk.scores(b.con, ["MOD-2025J"], as_of)
    at_risk = {lid for (lid, stage) in staged if stage == "at_risk"}
    assert at_risk == {lid for (lid, _c), r in expected.items() if r >= 0.7} - {
        lid for (lid, stage) in staged if stage == "completed"}
    assert at_risk


def test_a_risk_condition_without_a_model_is_refused_clearly(tmp_path):
    from relance import engine
    from relance.engine import EvaluationError
    from relance.campaign.loader import load
    b = Builder(course="MOD-2025J")
    (tmp_path / "alerte.yaml").write_text(RISK_CAMPAIGN, encoding="utf-8")
    for locale in ("fr", "en"):
        folder = tmp_path / "alerte" / "relance" / locale
        folder.mkdir(parents=True)
        (folder / "subject.txt").write_text("Hello", encoding="utf-8")
        (folder / "body.txt").write_text("Hello", encoding="utf-8")
    loaded = load(tmp_path / "alerte.yaml", campaigns_dir=tmp_path)
    with pytest.raises(EvaluationError, match="a condition uses `risk` but the warehouse has no "
                                              "risk model"):
        engine.evaluate(b.con, loaded, T0 + timedelta(weeks=3))


def test_a_score_outside_0_1_is_refused_at_validation(tmp_path):
    from relance.campaign.loader import load
    from relance.campaign.problems import CampaignError
    (tmp_path / "alerte.yaml").write_text(RISK_CAMPAIGN.replace('">= 0.7"', '">= 70%"'))
    with pytest.raises(CampaignError, match="stages.at_risk.risk"):
        load(tmp_path / "alerte.yaml", campaigns_dir=tmp_path)


def test_a_backtest_trains_on_one_presentation_and_prints_auc_on_the_next(tmp_path):
    from relance.campaign.loader import load
    b = Builder(course="unused")
    synthetic_presentation(b, "MOD-2025B", seed=1)
    synthetic_presentation(b, "MOD-2025J", seed=2)
    (tmp_path / "alerte.yaml").write_text(RISK_CAMPAIGN, encoding="utf-8")
    for locale in ("fr", "en"):
        folder = tmp_path / "alerte" / "relance" / locale
        folder.mkdir(parents=True)
        (folder / "subject.txt").write_text("Hello", encoding="utf-8")
        (folder / "body.txt").write_text("Hello", encoding="utf-8")
    loaded = load(tmp_path / "alerte.yaml", campaigns_dir=tmp_path)
    scratch = backtest.scratch_from_warehouse(b.con, ["MOD-2025B", "MOD-2025J"], folder=tmp_path)
    result = backtest.run_backtest(b.con, loaded, scratch, ["MOD-2025J"], presentation="2025J",
                                   train_courses=["MOD-2025B"], train_label="test 2025B")
    assert b.rows("select trained_on from risk_models") == [("test 2025B",)]
    weeks = {w: a for w, _n, _k, a in result.auc}
    assert set(weeks) == set(range(1, 11)) and weeks[6] > 0.75
    assert b.rows("select count(*) from backtest_auc where backtest_id = ?",
                  [result.backtest_id]) == [(10,)]
    assert result.n_withdrawers > 20 and result.n_reached > 0
    # the backtest names the model it scored with, and so does the campaign's report
    [(model_id,)] = b.rows("select model_id from risk_models")
    assert result.risk_model["model_id"] == model_id
    assert result.risk_model["trained_on"] == "test 2025B"
    assert set(result.risk_model["features"]) == set(risk.FEATURES)
    from relance.roi import report
    html = report.render(report.gather(b.con, campaign="alerte"))
    assert f"Risk score AUC by course week ({result.backtest_id}, model {model_id})" in html


def test_risk_train_command_stores_a_model_and_refuses_a_cohort_nobody_left(tmp_path):
    from typer.testing import CliRunner

    import warehouse
    from relance.cli.main import app
    path = tmp_path / "relance.duckdb"
    con = warehouse.connect(path)
    b = Builder(con, course="unused")
    synthetic_presentation(b, "MOD-2025B", seed=1, n=120)
    con.close()
    result = CliRunner().invoke(app, ["risk", "train", "--presentation", "2025B",
                                      "--warehouse", str(path)])
    assert result.exit_code == 0, result.output
    assert "withdrew later" in result.output and "missed_weight_share" in result.output
    assert "scikit-learn" in result.output
    con = warehouse.connect(path)
    assert con.execute("select trained_on from risk_models").fetchall() == [("warehouse 2025B",)]
    con.execute("update enrolments set withdrawn_at = null, status = 'enrolled'").fetchall()
    con.close()
    result = CliRunner().invoke(app, ["risk", "train", "--presentation", "2025B",
                                      "--warehouse", str(path)])
    assert result.exit_code == 1
    assert "cannot train on warehouse 2025B: it needs learners who withdrew" in result.output


def test_no_protected_attribute_can_enter_the_features(trained, monkeypatch):
    """Gender, age, disability, region, deprivation and prior education never become a
    feature: not in the model's list, not among the columns the features query yields,
    not in any warehouse table it could read them from, not among the OULAD columns the
    connector reads. And the guard itself bites: a forbidden name added to the features
    is refused at training."""
    from connectors.oulad import FILES
    b, model, moments = trained
    forbidden = set(risk.FORBIDDEN)
    assert {"gender", "age_band", "disability", "region", "imd_band",
            "highest_education"} <= forbidden
    assert not forbidden & set(risk.FEATURES) and not forbidden & set(model.coefficients)
    columns = b.con.sql(f"select * from ({risk.features_sql()}) limit 0",
                        params={"as_of": moments[3], "courses": ["MOD-2025J"]}).columns
    assert set(risk.FEATURES) <= set(columns) and not forbidden & set(columns)
    stored = {r[0] for r in b.rows("select column_name from duckdb_columns() "
                                   "where database_name = current_database()")}
    assert not forbidden & stored
    assert not forbidden & {c for cols in FILES.values() for c in cols}
    monkeypatch.setattr(risk, "FEATURES", [*risk.FEATURES, "gender"])
    with pytest.raises(risk.RiskError, match="gender.*protected"):
        risk.train(b.con, ["MOD-2025B"], moments, trained_on="test 2025B")


needs_oulad = pytest.mark.skipif(not OULAD.is_dir(), reason=f"OULAD data not at {OULAD}")


@needs_oulad
def test_on_oulad_the_score_trained_on_2013b_ranks_2013j_withdrawers_by_week_6():
    """The real data, read in place (../shared): trained on 2013B, scored on 2013J, the
    AUC at course week 6 (measured 0.639; it was 0.546 with the numpy model, registration
    day and no study history). Issue 20's goal is 0.66: not reached on this copy of OULAD
    (no click stream, no marks; docs/backtest.md, model card)."""
    import warehouse
    from connectors import sync
    con = warehouse.connect(":memory:")
    sync(con, backtest.open_backtest_source("oulad", None, ["2013B", "2013J"], data=OULAD))
    train = backtest.presentation_courses(con, "2013B")
    test = backtest.presentation_courses(con, "2013J")
    model = risk.train(con, train, backtest.mondays(*backtest.course_span(con, train)),
                       trained_on="oulad 2013B")
    assert "scikit-learn" in model.fitted_with
    moments = backtest.mondays(*backtest.course_span(con, test))[:8]
    weeks = {w: (n, k, a) for w, n, k, a in risk.auc_by_week(con, test, moments)}
    n, withdrawers, auc6 = weeks[6]
    print(f"2013B -> 2013J, week 6: {n} learners, {withdrawers} withdrew later, AUC {auc6:.3f}")
    assert (n, withdrawers) == (7622, 1155)
    assert auc6 >= 0.63
    # the engine's set-based SQL score is scikit-learn's own predict_proba, on every real
    # learner of 2013J still enrolled at week 6
    week6 = moments[5]
    keys, x, _y = risk.features(con, test, week6)
    by_sql = risk.scores(con, test, week6)
    by_sklearn = model.pipeline.predict_proba(x)[:, 1]
    assert len(keys) == len(by_sql) == 7622
    assert np.abs(np.array([by_sql[k] for k in keys]) - by_sklearn).max() < 1e-9
    con.close()
