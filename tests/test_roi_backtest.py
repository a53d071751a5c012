"""Backtests on a hand-built cohort whose withdrawals and completions are known."""

from __future__ import annotations

from datetime import timedelta

import pytest

from relance.roi import backtest
from tests.roi_fixtures import T0, Builder, day

CAMPAIGN = """\
id: bt
description: Backtest test campaign.
audience: {course: c1}
sender: {name: "Julie", email: formation@example.org}
control_group: 0%
stages:
  completed: {completed: true}
  at_risk: {overdue: ">= 1"}
  active: {}
messages:
  relance: {on_enter: at_risk}
  bravo: {on_enter: completed}
"""


def cohort(con=None) -> Builder:
    """Weekly assignments a1..a4 due on days 7, 14, 21, 28 (Mondays, 00:00 UTC).

    W1 hands in a1, then nothing: overdue on the Monday of day 14; withdraws on day 40.
    W2 is on time, then withdraws on day 16 without warning.
    W3 withdraws on day 5 (an early leaver).
    P1 is always on time and completes on day 30; P2 hands a2 in late (day 16), completes.
    O1 is on time for a1 and a2, then silent, never withdraws (fails).
    """
    b = Builder(con)
    for w in range(1, 5):
        b.activity(f"a{w}", kind="assignment", due=T0 + timedelta(days=7 * w), week=w)

    def hand_in(lid, *days):
        for w, d in enumerate(days, start=1):
            b.event(lid, day(d), verb="submitted", activity=f"a{w}")

    b.learner("W1", status="withdrawn", withdrawn_at=day(40))
    hand_in("W1", 6)
    b.learner("W2", status="withdrawn", withdrawn_at=day(16))
    hand_in("W2", 6, 13)
    b.learner("W3", status="withdrawn", withdrawn_at=day(5))
    b.learner("P1", status="completed", completed_at=day(30))
    hand_in("P1", 6, 13, 20, 27)
    b.learner("P2", status="completed", completed_at=day(30))
    hand_in("P2", 6, 16, 20, 27)
    b.learner("O1")
    hand_in("O1", 6, 13)
    return b


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    root = tmp_path_factory.mktemp("bt")
    camp = root / "campaigns"
    camp.mkdir()
    (camp / "bt.yaml").write_text(CAMPAIGN, encoding="utf-8")
    for key in ("relance", "bravo"):
        for locale in ("fr", "en"):
            folder = camp / "bt" / key / locale
            folder.mkdir(parents=True)
            (folder / "subject.txt").write_text("Bonjour", encoding="utf-8")
            (folder / "body.txt").write_text("Bonjour {{ learner.first_name }}", encoding="utf-8")
    from relance.campaign.loader import load
    loaded = load(camp / "bt.yaml", campaigns_dir=camp)
    b = cohort()
    scratch = backtest.scratch_from_warehouse(b.con, ["c1"], folder=root)
    weeks = []
    result = backtest.run_backtest(b.con, loaded, scratch, ["c1"],
                                   on_week=lambda i, n, as_of: weeks.append(as_of))
    return b, result, weeks, loaded


def test_alert_messages_are_those_of_stages_at_risk(done):
    _b, _result, _weeks, loaded = done
    assert backtest.alert_messages(loaded) == ["relance"]


def test_replay_runs_every_monday_of_the_course(done):
    _b, result, weeks, _ = done
    assert weeks[0] == T0 + timedelta(hours=8) and all(w.weekday() == 0 for w in weeks)
    assert result.n_weeks == len(weeks) == 12        # the Mondays of a 12-week course


def test_withdrawers_reached_in_time_false_alarms_and_early_leavers(done):
    b, result, _weeks, _ = done
    rows = {r[0]: r[1:] for r in b.rows(
        "select learner_id, outcome, left_day, first_alert_at, lead_days, reached_in_time "
        "from backtest_learners where backtest_id = ?", [result.backtest_id])}
    # W1: alerted on the Monday of day 14, left on day 40: 26 days ahead
    assert rows["W1"] == ("withdrawn", 40, T0 + timedelta(days=14, hours=8), 26, True)
    assert rows["W2"][:2] == ("withdrawn", 16) and rows["W2"][2] is None and not rows["W2"][4]
    assert rows["W3"][:2] == ("withdrawn", 5)
    assert rows["P2"][0] == "completed" and rows["P2"][2] is not None
    assert rows["P1"][2] is None
    assert (result.n_withdrawers, result.n_reached) == (2, 1)
    assert (result.n_early_leavers, result.n_early_reached) == (1, 0)
    assert (result.n_passers, result.n_flagged_passers) == (2, 1)
    assert result.reached_share == 0.5 and result.false_alarm_share == 0.5


def test_what_it_would_have_sent_is_kept_and_nothing_reaches_the_ledger(done):
    b, result, _weeks, _ = done
    sent = b.rows("select learner_id, message_key, as_of from backtest_messages "
                  "where backtest_id = ? order by 1, 2", [result.backtest_id])
    keys = [(lid, key) for lid, key, _ in sent]
    # O1 goes overdue on day 21; P1 and P2 are congratulated on completing (day 30)
    assert keys == [("O1", "relance"), ("P1", "bravo"), ("P2", "bravo"), ("P2", "relance"),
                    ("W1", "relance")]   # W3 left before anything fell due
    assert b.rows("select count(*) from messages")[0][0] == 0
    assert b.rows("select count(*) from decisions")[0][0] == 0
    assert result.n_messages == len(sent)
    [(stage_rows,)] = b.rows("select count(*) from backtest_weeks where backtest_id = ?",
                             [result.backtest_id])
    assert stage_rows > 0


def test_the_campaign_report_shows_its_backtests(done):
    from relance.roi import report
    b, result, _weeks, _ = done
    html = report.render(report.gather(b.con, campaign="bt"))
    row = html[html.index(f'data-kpi="backtest:{result.backtest_id}"'):]
    row = row[:row.index("</tr>")]
    assert "50,0\u00a0%" in row and "(1/2)" in row     # withdrawers reached in time (its learners are French: the page is)
    assert "relance" in html[html.index('id="backtests"'):]
    # only backtested so far: no live sections, the replay's chart instead
    assert 'id="not-live"' in html and 'id="headline"' not in html
    assert 'data-chart="backtest"' in html
    # the campaign does not use the risk score: no AUC line, even from a stray AUC row
    # (backtests before issue 20 stored one from whatever model was latest)
    b.con.execute("insert into backtest_auc values (?, 6, 5, 2, 0.5)", [result.backtest_id])
    assert "Risk score AUC" not in report.render(report.gather(b.con, campaign="bt"))
    b.con.execute("delete from backtest_auc where backtest_id = ?", [result.backtest_id])


def _section(html: str, section_id: str) -> str:
    from html import unescape
    part = html[html.index(f'<section id="{section_id}"'):]
    return unescape(part[:part.index("</section>")])


ENGLISH_BACKTEST_WORDS = ["withdrawers", "passers", "early leavers", "learner / week",
                          "Reached", "Details", "Risk score", "week 6", "Backtests", ">backtest<"]


def test_the_backtests_section_speaks_the_readers_language(done):
    """Headers, the note under the table and the risk AUC line in French on a French page,
    with no English left over; the same section in English on an English one."""
    from relance.roi import report
    b, result, _weeks, _ = done
    b.con.execute("update backtest_runs set risk_model_id = 'risk-x' where backtest_id = ?",
                  [result.backtest_id])
    b.con.execute("insert into backtest_auc values (?, 6, 5, 2, 0.5)", [result.backtest_id])
    try:
        fr = _section(report.render(report.gather(b.con, campaign="bt", locale="fr")), "backtests")
        en = _section(report.render(report.gather(b.con, campaign="bt", locale="en")), "backtests")
    finally:
        b.con.execute("delete from backtest_auc where backtest_id = ?", [result.backtest_id])
        b.con.execute("update backtest_runs set risk_model_id = null where backtest_id = ?",
                      [result.backtest_id])
    for words in ("Rejeux sur le passé", "<th>rejeu</th>", "abandons prévenus ≥\u00a07\u00a0jours avant",
                  "reçus signalés", "départs précoces prévenus", "messages / apprenant / semaine",
                  "au moins 7 jours avant leur désinscription",
                  f"AUC du score de risque par semaine de cours ({result.backtest_id}, modèle risk-x)",
                  "semaine 6\u00a0: 0,50"):
        assert words in fr, words
    assert not [w for w in ENGLISH_BACKTEST_WORDS if w in fr]
    for words in ("withdrawers reached ≥7 days before", "passers flagged", "early leavers reached",
                  "messages / learner / week", "week 6: 0.50",
                  f"Risk score AUC by course week ({result.backtest_id}, model risk-x)"):
        assert words in en, words
