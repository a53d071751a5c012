"""Flow: backtest a campaign on a past cohort (relance/roi/backtest.py).

    prefect: backtest(campaign_id="oulad-alerte", source="oulad", presentation="2013J")

Two tasks over the whole cohort: prepare (a scratch warehouse holding the cohort, copied
from the warehouse or loaded from a source) -> replay and score (every Monday, results
into the warehouse's backtest_* tables). A markdown artifact summarises the result.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact

from flows._common import open_warehouse, settings
from relance.campaign import loader
from relance.roi import backtest as bt


@task(name="prepare-cohort")
def prepare(campaign_id: str, source: str, presentation: str | None, train: str | None,
            paths: dict, sources_file: str | None = None, data: str | None = None) -> dict:
    loaded = loader.load(loader.find(paths["campaigns"], campaign_id), campaigns_dir=paths["campaigns"])
    with open_warehouse(paths["warehouse"], paths["memory_limit"]) as con:
        cohort = bt.prepare_cohort(con, loaded, source, presentation, train, sources_file, data)
    return {"scratch": str(cohort.scratch), "courses": cohort.courses,
            "train_courses": cohort.train_courses}


@task(name="replay-and-score")
def replay_and_score(campaign_id: str, source: str, presentation: str | None, train: str | None,
                     prepared: dict, paths: dict, alerts: list[str] | None, lead_days: int,
                     early_leaver_days: int) -> dict:
    loaded = loader.load(loader.find(paths["campaigns"], campaign_id), campaigns_dir=paths["campaigns"])
    cohort = bt.Cohort(Path(prepared["scratch"]), prepared["courses"], prepared["train_courses"])
    with open_warehouse(paths["warehouse"], paths["memory_limit"]) as con:
        return bt.replay_cohort(con, loaded, cohort, source=source, presentation=presentation,
                                train=train, alerts=alerts, lead_days=lead_days,
                                early_leaver_days=early_leaver_days)


def summary_markdown(r: dict) -> str:
    pct = lambda x: "n/a" if x is None else f"{100 * x:.1f} %"  # noqa: E731
    lines = [f"# Backtest {r['backtest_id']}", "",
             f"{r['campaign_id']} replayed over {r['n_weeks']} Mondays on {', '.join(r['courses'])}: "
             f"{r['n_learners']} learners, {r['n_messages']} messages "
             f"({(r['messages_per_learner_week'] or 0):.3f} per learner per week).", "",
             "| measure | value |", "|---|---:|",
             f"| withdrawers (day ≥ {r['early_leaver_days']}) reached ≥ {r['lead_days']} days before | "
             f"{pct(r['reached_share'])} ({r['n_reached']}/{r['n_withdrawers']}) |",
             f"| passers flagged (false alarms) | {pct(r['false_alarm_share'])} "
             f"({r['n_flagged_passers']}/{r['n_passers']}) |",
             f"| early leavers reached | {r['n_early_reached']}/{r['n_early_leavers']} |"]
    if r.get("auc"):
        m = r.get("risk_model") or {}
        if m:
            lines += ["", f"Risk model `{m['model_id']}`: trained on {m['trained_on']} on "
                          f"{m['created_at']:%Y-%m-%d %H:%M} UTC, {m['fitted_with'] or 'fitted in numpy'}; "
                          f"features: {', '.join(m['features'])}."]
        lines += ["", "| course week | learners | withdrawers | AUC |", "|---:|---:|---:|---:|"]
        lines += [f"| {w} | {n} | {k} | {'n/a' if a is None else f'{a:.3f}'} |" for w, n, k, a in r["auc"]]
    return "\n".join(lines)


@flow(name="backtest", flow_run_name="backtest {campaign_id} on {source}", log_prints=True)
def backtest(campaign_id: str, source: str = "warehouse", presentation: str | None = None,
             warehouse_path: str | None = None, campaigns_dir: str | None = None,
             alerts: list[str] | None = None, lead_days: int = 7,
             early_leaver_days: int = 14, train: str | None = None,
             sources_file: str | None = None, data: str | None = None) -> dict:
    """Replay a campaign every Monday over a past cohort and score it against what happened."""
    s = settings(warehouse_path, campaigns_dir)
    paths = {"warehouse": str(s.warehouse), "campaigns": str(s.campaigns),
             "memory_limit": s.memory_limit}
    prepared = prepare(campaign_id, source, presentation, train, paths, sources_file, data)
    result = replay_and_score(campaign_id, source, presentation, train, prepared, paths, alerts,
                              lead_days, early_leaver_days)
    create_markdown_artifact(key=f"{campaign_id}-backtest", markdown=summary_markdown(result),
                             description=f"Backtest {result['backtest_id']}")
    return result
