"""A backtest's replay (relance/roi/backtest.py `replay`: every Monday in one transaction,
on one thread for a small cohort) gives exactly the decisions, ledger and stage state of
running the campaign Monday after Monday the way a scheduled run does (steps.plan_step,
its own commits), on the hand-built cohort of the backtest tests."""

from __future__ import annotations

from datetime import timedelta

import pytest

import warehouse
from relance.campaign.loader import load
from relance.roi import backtest
from relance.runs import steps
from tests.test_roi_backtest import CAMPAIGN, cohort

# a weekly message with caps next to the entries: the policies read what earlier Mondays sent
WEEKLY = CAMPAIGN.replace("id: bt", "id: bt-weekly").replace(
    "  bravo: {on_enter: completed}",
    "  bravo: {on_enter: completed}\n  rappel: {while_in: [at_risk, active]}\n"
    "limits: {per_learner_per_week: 1}")


def per_monday(con, loaded, moments):
    """The replay as it ran before: a run per Monday, each committed on its own."""
    for i, as_of in enumerate(moments):
        steps.plan_step(con, loaded, as_of)
        until = moments[i + 1] if i + 1 < len(moments) else as_of + timedelta(days=7)
        con.execute("update messages set status = 'sent', sent_at = not_before "
                    "where status = 'planned' and not_before < ?", [until]).fetchall()
        con.execute("update campaign_runs set status = 'succeeded', finished_at = ? "
                    "where status = 'running'", [as_of]).fetchall()


TABLES = {
    "decisions": "select r.as_of, d.* exclude (run_id) from decisions d join campaign_runs r "
                 "using (run_id) order by all",
    "messages": "select r.as_of, m.idempotency_key, m.message_key, m.trigger, m.learner_id, "
                "m.status, m.not_before, m.sent_at, m.variant from messages m "
                "join campaign_runs r using (run_id) order by all",
    "candidates": "select r.as_of, c.* exclude (run_id) from candidates c "
                  "join campaign_runs r using (run_id) order by all",
    "stage_state": "select * exclude (run_id) from stage_state order by all",
    "runs": "select as_of, status from campaign_runs order by all",
}


@pytest.mark.parametrize("text", [CAMPAIGN, WEEKLY], ids=["on_enter", "weekly-capped"])
def test_the_backtest_replay_decides_as_a_run_per_monday(tmp_path, text):
    camp = tmp_path / "campaigns"
    camp.mkdir()
    cid = text.split("\n", 1)[0].removeprefix("id: ")
    (camp / f"{cid}.yaml").write_text(text, encoding="utf-8")
    for key in ("relance", "bravo", "rappel"):
        for locale in ("fr", "en"):
            folder = camp / cid / key / locale
            folder.mkdir(parents=True)
            (folder / "subject.txt").write_text("Bonjour", encoding="utf-8")
            (folder / "body.txt").write_text("Bonjour {{ learner.first_name }}", encoding="utf-8")
    loaded = load(camp / f"{cid}.yaml", campaigns_dir=camp)
    b = cohort()
    seen = {}
    for way in ("per_monday", "replay"):
        path = backtest.scratch_from_warehouse(b.con, ["c1"], folder=tmp_path)
        con = warehouse.connect(path)
        first, last = backtest.course_span(con, ["c1"])
        moments = backtest.mondays(first, last)
        if way == "replay":
            backtest.replay(con, loaded, moments)
        else:
            per_monday(con, loaded, moments)
        seen[way] = {name: con.execute(sql).fetchall() for name, sql in TABLES.items()}
        con.close()
    assert len(seen["replay"]["runs"]) == len(moments) >= 12
    assert seen["replay"]["messages"], "the cohort's replay plans messages"
    for name in TABLES:
        assert seen["replay"][name] == seen["per_monday"][name], name
