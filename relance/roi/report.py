"""`relance report`: one self-contained HTML file per campaign or cohort (inline SVG, no
script, no network) and a PNG per chart. Every figure is read from a kpi_* view; the
page marks each with `data-kpi` so tests (and curious analysts) can match it to the view."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb
from jinja2 import Environment, FileSystemLoader, select_autoescape

from relance.roi import charts
from relance.roi.costs import CostModel, Estimate, estimate

HERE = Path(__file__).parent

VARIANT_VERDICTS = {
    "too_early": "too early to tell",
    "no_clear_difference": "no clear difference yet",
    "winner": "ahead of the others: a winner",
    "behind": "behind the others",
}

VERDICTS = {
    "too_small": "too few learners to tell",
    "no_clear_difference": "no clear difference (the interval contains zero)",
    "higher_with_campaign": "higher with the campaign",
    "lower_with_campaign": "lower with the campaign",
}


class ReportError(ValueError):
    pass


@dataclass
class Report:
    title: str
    scope: str                      # "campaign" or "cohort"
    key: str
    as_of: datetime | None
    headline: dict[str, float | int | None]
    control: list[dict]
    estimate: Estimate | None
    messages: list[dict]
    backtests: list[dict]
    variants: list[dict] = field(default_factory=list)
    live: bool = True               # False: a campaign that has only been backtested
    charts: list[charts.Chart] = field(default_factory=list)


def _dicts(con: duckdb.DuckDBPyConnection, sql: str, params=None) -> list[dict]:
    cur = con.execute(sql, params or [])
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


def headline(con, *, campaign: str | None, cohort: str | None) -> dict:
    """Counts summed over the scope's courses and cohorts, rates recomputed from them."""
    where, params = _where(campaign, cohort)
    [row] = _dicts(con, f"""
        select max(as_of) as as_of, sum(enrolled)::integer as enrolled,
               sum(started)::integer as started, sum(completed)::integer as completed,
               sum(certified)::integer as certified, sum(certifiable)::integer as certifiable,
               sum(withdrawn)::integer as withdrawn, sum(silent)::integer as silent,
               sum(dropped_out)::integer as dropped_out
        from kpi_cohorts where {where}""", params)
    n = row["enrolled"] or 0
    row["start_rate"] = row["started"] / n if n else None
    row["completion_rate"] = row["completed"] / n if n else None
    row["dropout_rate"] = row["dropped_out"] / n if n else None
    row["certification_rate"] = (row["certified"] / row["certifiable"]
                                 if row["certifiable"] else None)
    return row


def _where(campaign: str | None, cohort: str | None) -> tuple[str, list]:
    if campaign:
        return "campaign_id = ?", [campaign]
    return "campaign_id = '(all)' and cohort = ?", [cohort]


def gather(con, *, campaign: str | None = None, cohort: str | None = None,
           costs: CostModel | None = None, stage_order: list[str] | None = None,
           png_dir: Path | None = None, stem: str = "report") -> Report:
    if bool(campaign) == bool(cohort):
        raise ReportError("name one campaign, or one cohort with --cohort")
    if campaign:
        known = {r[0] for r in con.execute(
            "select campaign_id from decisions union select campaign_id from backtest_runs "
            "where status = 'succeeded'").fetchall()}
        if campaign not in known:
            raise ReportError(f"campaign {campaign!r} has no run or backtest in this warehouse; "
                              f"campaigns with some: "
                              f"{', '.join(sorted(known)) or 'none (relance run first)'}")
    else:
        known = {r[0] for r in con.execute("select distinct cohort from enrolments "
                                           "where cohort is not null").fetchall()}
        if cohort not in known:
            raise ReportError(f"cohort {cohort!r} is not in this warehouse; its cohorts are: "
                              f"{', '.join(sorted(known)) or 'none'}")
    head = headline(con, campaign=campaign, cohort=cohort)
    if campaign:
        control = _dicts(con, "from kpi_control where campaign_id = ? "
                              "order by message_key <> '(campaign)', message_key, outcome", [campaign])
        messages = _dicts(con, """
            select message_key, sum(sent)::integer as sent, sum(failed)::integer as failed,
                   sum(cancelled)::integer as cancelled, sum(planned)::integer as planned,
                   sum(delivered)::integer as delivered, sum(opened)::integer as opened,
                   sum(clicked)::integer as clicked, sum(bounced)::integer as bounced,
                   sum(reengaged_7d)::integer as reengaged_7d,
                   sum(reengagement_observed)::integer as reengagement_observed
            from kpi_messages where campaign_id = ? group by all order by message_key""", [campaign])
        backtests = _dicts(con, "from backtest_runs where campaign_id = ? and status = 'succeeded' "
                                "order by started_at desc", [campaign])
        variants = _dicts(con, "from kpi_variants where campaign_id = ? order by message_key, "
                               "metric, variant", [campaign])
        for b in backtests:
            # only a backtest that names the risk model it scored with (issue 20)
            b["auc"] = con.execute("select course_week, auc from backtest_auc where backtest_id = ? "
                                   "order by course_week", [b["backtest_id"]]).fetchall() \
                if b.get("risk_model_id") else []
    else:
        campaigns = [r[0] for r in con.execute(
            "select distinct campaign_id from kpi_campaign_learners where cohort = ? "
            "order by 1", [cohort]).fetchall()]
        control = _dicts(con, "from kpi_control where list_contains(?, campaign_id) and "
                              "message_key = '(campaign)' order by campaign_id, outcome", [campaigns])
        messages = _dicts(con, """
            select campaign_id || ' / ' || message_key as message_key, sum(sent)::integer as sent,
                   sum(failed)::integer as failed, sum(cancelled)::integer as cancelled,
                   sum(planned)::integer as planned, sum(delivered)::integer as delivered,
                   sum(opened)::integer as opened, sum(clicked)::integer as clicked,
                   sum(bounced)::integer as bounced, sum(reengaged_7d)::integer as reengaged_7d,
                   sum(reengagement_observed)::integer as reengagement_observed
            from kpi_messages where cohort = ? group by all order by 1""", [cohort])
        backtests, variants = [], []
    for m in messages:
        m["reengagement_rate"] = (m["reengaged_7d"] / m["reengagement_observed"]
                                  if m["reengagement_observed"] else None)
    est = None
    if campaign and costs is not None:
        row = next((c for c in control if c["message_key"] == "(campaign)"
                    and c["outcome"] == "completion"), None)
        if row and row["n_control"] and row["n_treated"]:
            est = estimate(costs.for_campaign(campaign), costs.currency,
                           n_treated=row["n_treated"], rate_treated=row["rate_treated"],
                           rate_control=row["rate_control"], ci_low=row["ci_low"],
                           ci_high=row["ci_high"], messages_sent=sum(m["sent"] for m in messages),
                           source=costs.source)
    out = {"png_dir": png_dir, "stem": stem}
    live = cohort is not None or con.execute(
        "select count(*) from decisions where campaign_id = ?", [campaign]).fetchall()[0][0] > 0
    report = Report(
        title=f"Campaign {campaign}" if campaign else f"Cohort {cohort}",
        scope="campaign" if campaign else "cohort", key=campaign or cohort,
        as_of=head.pop("as_of"), headline=head, control=control, estimate=est,
        messages=messages, backtests=backtests, variants=variants, live=live)
    report.charts = _charts(con, campaign, cohort, head, messages, stage_order, out) if live else []
    if backtests:
        latest = backtests[0]["backtest_id"]
        rows = con.execute("select as_of, stage, learners, messages from backtest_weeks "
                           "where backtest_id = ? order by as_of", [latest]).fetchall()
        seen = [r[0] for r in con.execute(
            "select stage from backtest_weeks where backtest_id = ? group by all "
            "order by sum(learners) desc", [latest]).fetchall()]
        order = [x for x in (stage_order or []) if x in seen] + [
            x for x in seen if x not in (stage_order or [])]
        report.charts.append(charts.backtest_weeks(rows, order, **out))
    return report


def _charts(con, campaign, cohort, head, messages, stage_order, out) -> list[charts.Chart]:
    if campaign:
        weekly = con.execute("select week_start, stage, sum(active)::integer from kpi_weekly_stages "
                             "where campaign_id = ? group by all order by 1", [campaign]).fetchall()
        seen = [r[0] for r in con.execute(
            "select stage from kpi_weekly_stages where campaign_id = ? group by all "
            "order by sum(learners) desc", [campaign]).fetchall()]
        stages = [s for s in (stage_order or []) if s in seen] + [
            s for s in seen if s not in (stage_order or [])]
        curve = con.execute("""
            select "group", course_week, sum(dropped_out) / sum(learners) from kpi_dropout_curve
            where campaign_id = ? group by all order by 1, 2""", [campaign]).fetchall()
    else:
        weekly = [(r[0], "all learners", r[1]) for r in con.execute(
            "select week_start, sum(active)::integer from kpi_weekly_active where cohort = ? "
            "group by all order by 1", [cohort]).fetchall()]
        stages = ["all learners"]
        curve = con.execute("""
            select "group", course_week, sum(dropped_out) / sum(learners) from kpi_dropout_curve
            where campaign_id = '(all)' and cohort = ? group by all order by 1, 2""",
                            [cohort]).fetchall()
    series: dict[str, list] = {}
    for group, week, share in curve:
        series.setdefault(group, []).append((week, share))
    steps = [("enrolled", head["enrolled"] or 0), ("started", head["started"] or 0),
             ("not dropped out", (head["enrolled"] or 0) - (head["dropped_out"] or 0)),
             ("completed", head["completed"] or 0)]
    if head["certifiable"]:
        steps.append(("certified", head["certified"] or 0))
    outcome_rows = [(m["message_key"], {"sent": m["sent"], "delivered": m["delivered"],
                                        "opened": m["opened"], "clicked": m["clicked"],
                                        "re-engaged in 7 days": m["reengaged_7d"]})
                    for m in messages]
    return [charts.weekly_active_by_stage(weekly, stages, **out),
            charts.dropout_curve(series, **out),
            charts.funnel(steps, **out),
            charts.messages_by_outcome(outcome_rows, **out)]


def _pct(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{100 * value:.{digits}f} %"


def _points(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:+.1f} pts"


def render(report: Report) -> str:
    env = Environment(loader=FileSystemLoader(HERE), autoescape=select_autoescape(["html"]))
    env.filters["pct"] = _pct
    env.filters["points"] = _points
    template = env.get_template("report.html")
    return template.render(r=report, verdicts=VERDICTS, variant_verdicts=VARIANT_VERDICTS)


def write(report: Report, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(report), encoding="utf-8")
    return path
