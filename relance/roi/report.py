"""`relance report`: one self-contained HTML file per campaign, cohort or the whole
programme (inline SVG, no script, no network), a PNG per chart, and a PDF of the page on
request (relance/roi/pdf.py). Every figure is read from a kpi_* view; the page marks each
with `data-kpi` so tests (and curious analysts) can match it to the view.

The page is in the reader's language (relance/roi/i18n.py) and says first what is known:
"too early to tell" with the smallest difference the groups could see while the interval
contains zero, euros only as a range and only once it does not, cost per completion only
once the course has ended.

The page is a list of sections (`SECTIONS`, templates in relance/roi/sections/): a new
section is a template there, its name in the list, and what it reads added to `Report.extra`
by a function in `SECTION_DATA` (it gets the connection and the report)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable

import duckdb
from jinja2 import Environment, FileSystemLoader, select_autoescape

from relance.roi import charts, i18n, stats
from relance.roi.costs import CostModel, Estimate, estimate

HERE = Path(__file__).parent

# The sections of a campaign's page, in order; a cohort's and the programme's pages skip
# those that need one campaign. Another area adds its own here (see the module's doc).
SECTIONS = ["headline", "glance", "control", "planning", "euros", "charts", "message_effects",
            "variants", "messages", "helpful", "contacted", "backtests"]
CAMPAIGN_ONLY = {"planning", "euros", "message_effects", "variants", "helpful", "contacted",
                 "backtests"}
SECTION_DATA: dict[str, Callable[[duckdb.DuckDBPyConnection, "Report"], None]] = {}

# With more per-message comparisons than this on one page, verdicts use Holm's correction.
HOLM_FROM = 2


class ReportError(ValueError):
    pass


@dataclass
class Report:
    title: str
    scope: str                      # "campaign", "cohort" or "programme"
    key: str
    as_of: datetime | None
    headline: dict[str, float | int | None]
    control: list[dict]
    estimate: Estimate | None
    messages: list[dict]
    backtests: list[dict]
    variants: list[dict] = field(default_factory=list)
    # "was this helpful?" per message (kpi_helpful): counts, and comments above the minimum
    helpful: list[dict] = field(default_factory=list)
    # the follow-up lists' learners, reached by the team or not (kpi_contacted: observational)
    contacted: list[dict] = field(default_factory=list)
    live: bool = True               # False: a campaign that has only been backtested
    charts: list[charts.Chart] = field(default_factory=list)
    locale: str = "en"
    subtitle: str = ""
    courses: dict[str, str] = field(default_factory=dict)      # id -> title
    verdict: dict = field(default_factory=dict)                # the first sentence, its case
    plans: list[stats.Plan] = field(default_factory=list)
    pooled: list[dict] = field(default_factory=list)
    strata: list[dict] = field(default_factory=list)
    survival_week: int | None = None
    dropout_parts: list[dict] = field(default_factory=list)
    message_effects: list[dict] = field(default_factory=list)
    left_out: list[dict] = field(default_factory=list)
    message_outcomes: list[dict] = field(default_factory=list)
    course_ended: bool = False
    course_end: object = None
    events_reported: bool = True
    programme: list[dict] = field(default_factory=list)
    costs: object = None                                       # the campaign's Costs
    sections: list[str] = field(default_factory=lambda: list(SECTIONS))
    extra: dict = field(default_factory=dict)

    @property
    def fmt(self) -> i18n.Fmt:
        return i18n.Fmt(self.locale, self.estimate.currency if self.estimate else "EUR")


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


def default_locale(con, *, campaign: str | None = None, team_locale: str | None = None) -> str:
    """The reader's language when --locale is not given: the campaign's team locale (its
    `team: locale:`, the language its managers and tutors read), else the majority locale
    of the learners it evaluated (of every learner for a cohort or the programme), else
    English. Regional variants count for their language ('fr-CA' is 'fr')."""
    if team_locale and team_locale.split("-")[0] in i18n.LOCALES:
        return team_locale.split("-")[0]
    rows = []
    if campaign:
        rows = con.execute(
            "select l.locale, count(*) from (select distinct learner_id from decisions "
            "where campaign_id = ?) d join learners l using (learner_id) group by all",
            [campaign]).fetchall()
    if not rows:
        rows = con.execute("select locale, count(*) from learners group by all").fetchall()
    votes: Counter = Counter()
    for loc, n in rows:
        lang = (loc or "").split("-")[0].split("_")[0].lower()
        if lang in i18n.LOCALES:
            votes[lang] += n
    return votes.most_common(1)[0][0] if votes else "en"


def _course_titles(con, ids) -> dict[str, str]:
    ids = sorted(set(ids))
    if not ids:
        return {}
    found = dict(con.execute("select course_id, coalesce(title, course_id) from courses "
                             "where list_contains(?, course_id)", [ids]).fetchall())
    return {c: found.get(c, c) for c in ids}


def gather(con, *, campaign: str | None = None, cohort: str | None = None,
           costs: CostModel | None = None, stage_order: list[str] | None = None,
           png_dir: Path | None = None, stem: str = "report", locale: str | None = None,
           team_locale: str | None = None) -> Report:
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
    locale = locale or default_locale(con, campaign=campaign, team_locale=team_locale)
    if locale not in i18n.LOCALES:
        raise ReportError(f"no report in locale {locale!r}: use --locale "
                          f"{' or --locale '.join(i18n.LOCALES)}")
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
        course_ids = [r[0] for r in con.execute(
            "select distinct course_id from kpi_campaign_learners where campaign_id = ?",
            [campaign]).fetchall()]
        live_ids = list(course_ids)
        course_ids += [c for b in backtests for c in (b.get("courses") or [])]
        cohorts = [r[0] for r in con.execute(
            "select distinct cohort from kpi_campaign_learners where campaign_id = ? and "
            "cohort is not null order by 1", [campaign]).fetchall()]
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
        course_ids = [r[0] for r in con.execute(
            "select distinct course_id from enrolments where cohort = ?", [cohort]).fetchall()]
        live_ids = list(course_ids)
        cohorts = [cohort]
    for m in messages:
        m["reengagement_rate"] = (m["reengaged_7d"] / m["reengagement_observed"]
                                  if m["reengagement_observed"] else None)
    courses = _course_titles(con, course_ids)
    t = lambda key, **kw: i18n.t(locale, key, **kw)   # noqa: E731
    live = cohort is not None or con.execute(
        "select count(*) from decisions where campaign_id = ?", [campaign]).fetchall()[0][0] > 0
    titles = " · ".join(courses[c] for c in sorted(set(live_ids))) or (campaign or cohort)
    if campaign:
        title = titles + (f" — {t('cohort')} {', '.join(cohorts)}" if cohorts else "")
        subtitle = f"{t('campaign')} {campaign}"
    else:
        title = f"{t('cohort').capitalize()} {cohort}"
        subtitle = titles
    report = Report(
        title=title, scope="campaign" if campaign else "cohort", key=campaign or cohort,
        as_of=head.pop("as_of"), headline=head, control=control, estimate=None,
        messages=messages, backtests=backtests, variants=variants, live=live, locale=locale,
        subtitle=subtitle, courses=courses)
    report.events_reported = any(m["delivered"] or m["opened"] or m["clicked"] or m["bounced"]
                                 for m in messages)
    ends = [r[0] for r in con.execute(
        "select ends_on from courses where list_contains(?, course_id)", [course_ids]).fetchall()]
    report.course_end = max(ends) if ends and all(ends) else None
    report.course_ended = bool(report.course_end and report.as_of
                               and report.course_end < report.as_of.date())
    if campaign:
        whole = [c for c in control if c["message_key"] == "(campaign)"]
        report.plans = [stats.plan(c["outcome"], c["n_treated"], c["n_control"], c["k_treated"],
                                   c["k_control"]) for c in whole if c["n_treated"]]
        report.pooled = _dicts(con, "from kpi_pooled where campaign_id = ? order by outcome",
                               [campaign])
        report.strata = _dicts(con, "from kpi_control_strata where campaign_id = ? "
                                    "order by cohort, course_id, outcome", [campaign])
        completion = next((c for c in whole if c["outcome"] == "completion"), None)
        if costs is not None and completion and completion["n_control"] and completion["n_treated"]:
            report.costs = costs.for_campaign(campaign)
            report.estimate = estimate(
                costs.for_campaign(campaign), costs.currency,
                n_treated=completion["n_treated"], rate_treated=completion["rate_treated"],
                rate_control=completion["rate_control"], ci_low=completion["ci_low"],
                ci_high=completion["ci_high"], messages_sent=sum(m["sent"] for m in messages),
                source=costs.source)
        report.verdict = verdict(whole, report.plans, report.fmt)
        _message_effects(con, report, campaign)
        _variant_holm(report)
        report.dropout_parts = _dicts(con, """
            select coalesce(s.stage, '(none)') as stage, k.withdrawn, count(*)::integer as n
            from kpi_campaign_learners k
            left join learner_stages s using (campaign_id, learner_id, course_id)
            where k.campaign_id = ? and k.dropped_out
            group by all order by k.withdrawn, n desc, stage""", [campaign])
    else:
        report.sections = [s for s in SECTIONS if s not in CAMPAIGN_ONLY]
    out = {"png_dir": png_dir, "stem": stem}
    labels = i18n.STRINGS[locale]
    fmt = report.fmt
    report.survival_week = con.execute(
        "select max(course_week) from kpi_survival where campaign_id = ? and cohort = ?",
        [campaign or "(all)", "(all)" if campaign else cohort]).fetchall()[0][0]
    report.charts = (_charts(con, campaign, cohort, head, messages, stage_order, out, labels, fmt,
                             report.events_reported) if live else [])
    if backtests:
        latest = backtests[0]["backtest_id"]
        rows = con.execute("select as_of, stage, learners, messages from backtest_weeks "
                           "where backtest_id = ? order by as_of", [latest]).fetchall()
        seen = [r[0] for r in con.execute(
            "select stage from backtest_weeks where backtest_id = ? group by all "
            "order by sum(learners) desc", [latest]).fetchall()]
        order = [x for x in (stage_order or []) if x in seen] + [
            x for x in seen if x not in (stage_order or [])]
        report.charts.append(charts.backtest_weeks(rows, order, labels=labels, fmt=fmt, **out))
    for name in report.sections:
        if name in SECTION_DATA:
            SECTION_DATA[name](con, report)
    return report


def _helpful(con: duckdb.DuckDBPyConnection, report: Report) -> None:
    from relance.settings import Settings
    con.execute(f"set variable helpful_min_answers = {int(Settings().helpful_min_answers)}")
    report.helpful = _dicts(con, "from kpi_helpful where campaign_id = ? order by message_key",
                            [report.key])


def _contacted(con: duckdb.DuckDBPyConnection, report: Report) -> None:
    report.contacted = _dicts(con, "from kpi_contacted where campaign_id = ? order by grp",
                              [report.key])


SECTION_DATA.update(helpful=_helpful, contacted=_contacted)


def assumptions(report: Report) -> list[str]:
    """The euro estimate's assumptions in the report's language and number format."""
    e, c, f, loc = report.estimate, report.costs, report.fmt, report.locale
    if e is None or c is None:
        return []
    cm = c.community_manager
    return [i18n.t(loc, "a_value", v=f.money(c.value_per_completion)),
            i18n.t(loc, "a_seat", v=f.money(c.cost_per_seat)),
            i18n.t(loc, "a_cm", h=f.num(cm.hours_per_learner, 2), v=f.money(cm.hourly_cost)),
            i18n.t(loc, "a_message", v=f.num(c.cost_per_message, 3) + "\u00a0" + e.currency),
            i18n.t(loc, "a_counts", n=f.int(e.treated), m=f.int(
                sum(m["sent"] for m in report.messages))),
            i18n.t(loc, "a_formula"),
            i18n.t(loc, "a_source", v=e.assumptions[-1].split(": ", 1)[-1])]


def verdict(whole: list[dict], plans: list[stats.Plan], fmt: i18n.Fmt) -> dict:
    """The page's first sentence: which of the three cases holds, and its words.

    A clear result needs the completion (else the dropout) interval to exclude zero with
    enough learners on both sides; completion up or dropout down is a gain, the other way a
    loss. Anything else is too early to tell, with the smallest differences these groups
    could see (stats.mde)."""
    loc = fmt.locale
    rows = {c["outcome"]: c for c in whole}
    any_row = next(iter(rows.values()), None)
    if not any_row or not any_row["n_control"] or not any_row["n_treated"]:
        return {"case": "no_control", "text": i18n.t(loc, "no_control")}
    for outcome in ("completion", "dropout"):
        c = rows.get(outcome)
        if not c or c["verdict"] not in ("higher_with_campaign", "lower_with_campaign"):
            continue
        good = (c["verdict"] == "higher_with_campaign") == (outcome == "completion")
        case = "clear_gain" if good else "clear_loss"
        text = i18n.t(loc, case, outcome_phrase=i18n.t(loc, f"phrase_{outcome}"),
                      diff=fmt.points(c["difference"]), low=fmt.points(c["ci_low"]),
                      high=fmt.points(c["ci_high"]), treated=fmt.int(c["n_treated"]),
                      control=fmt.int(c["n_control"]))
        return {"case": case, "outcome": outcome, "text": text,
                "euros": outcome == "completion"}
    by = {p.outcome: p for p in plans}
    mdes = {o: fmt.points(by[o].mde).lstrip("+") for o in by if by[o].mde is not None}
    if "completion" in mdes and "dropout" in mdes:
        text = i18n.t(loc, "too_early", treated=fmt.int(any_row["n_treated"]),
                      control=fmt.int(any_row["n_control"]),
                      mde_completion=mdes["completion"], mde_dropout=mdes["dropout"])
    else:
        text = i18n.t(loc, "too_early_one", treated=fmt.int(any_row["n_treated"]),
                      control=fmt.int(any_row["n_control"]),
                      mde=next(iter(mdes.values()), "–"))
    return {"case": "too_early", "text": text, "mde": {o: by[o].mde for o in by}}


def _message_effects(con, report: Report, campaign: str) -> None:
    """Per message: re-engagement against the control group's learners in the same stage;
    completion and dropout of the learners it was proposed to, circular rows left out with
    their reason. When several comparisons are read at once (both tables together), a
    "higher"/"lower" verdict stands only if Holm's adjusted p-value is under 0.05."""
    effects = _dicts(con, "from kpi_message_effects where campaign_id = ? and stage = '(all)' "
                          "order by message_key", [campaign])
    flags = {e["message_key"]: e for e in effects}
    kept, left_out = [], []
    for c in report.control:
        if c["message_key"] == "(campaign)":
            continue
        f = flags.get(c["message_key"])
        if f and f["all_completed"]:
            reason = "circular_completion"
        elif f and c["outcome"] == "dropout" and f["all_dropped_out"]:
            reason = "circular_dropout"
        else:
            kept.append(dict(c))
            continue
        if {"message_key": c["message_key"], "reason": reason} not in left_out:
            left_out.append({"message_key": c["message_key"], "reason": reason})
    rows = effects + kept
    for e in rows:
        e["p_value"] = (stats.p_value(e["k_treated"], e["n_treated"], e["k_control"],
                                      e["n_control"]) if e["verdict"] != "too_small" else None)
    adjusted = stats.holm([e["p_value"] for e in rows])
    tested = sum(p is not None for p in adjusted)
    for e, p in zip(rows, adjusted):
        e["p_holm"] = p
        e["holm"] = tested >= HOLM_FROM
        if e["verdict"] in ("higher_with_campaign", "lower_with_campaign") and e["holm"] \
                and p is not None and p >= 0.05:
            e["verdict_uncorrected"] = e["verdict"]
            e["verdict"] = "no_clear_difference"    # not once corrected for the others
    report.message_effects = effects
    report.message_outcomes = kept
    report.left_out = left_out
    report.extra["holm_m"] = tested


def _variant_holm(report: Report) -> None:
    """The variants table compares many things at once (each variant with the others, on
    four metrics, for every message): its p-values are Holm-adjusted together, and a
    "winner"/"behind" stands only if the adjusted p is under 0.05. Two variants of a
    message are one comparison (each is the other's "others"): counted once."""
    tests: dict[tuple, float | None] = {}
    for v in report.variants:
        pair = sum(1 for w in report.variants if (w["message_key"], w["metric"])
                   == (v["message_key"], v["metric"])) == 2
        key = (v["message_key"], v["metric"]) + (() if pair else (v["variant"],))
        v["_test"] = key
        if v["verdict"] != "too_early":
            tests[key] = stats.p_value(int(v["k"]), int(v["n"]), int(v["k_rest"]), int(v["n_rest"]))
    keys = list(tests)
    adjusted = dict(zip(keys, stats.holm([tests[k] for k in keys])))
    tested = sum(p is not None for p in adjusted.values())
    for v in report.variants:
        v["p_value"] = tests.get(v["_test"])
        v["p_holm"] = adjusted.get(v.pop("_test"))
        if v["verdict"] in ("winner", "behind") and tested >= HOLM_FROM \
                and v["p_holm"] is not None and v["p_holm"] >= 0.05:
            v["verdict_uncorrected"] = v["verdict"]
            v["verdict"] = "no_clear_difference"    # not once corrected for the others
    report.extra["variants_holm_m"] = tested


def _charts(con, campaign, cohort, head, messages, stage_order, out, labels, fmt,
            events_reported) -> list[charts.Chart]:
    if campaign:
        weekly = con.execute("select week_start, stage, sum(active)::integer from kpi_weekly_stages "
                             "where campaign_id = ? group by all order by 1", [campaign]).fetchall()
        seen = [r[0] for r in con.execute(
            "select stage from kpi_weekly_stages where campaign_id = ? group by all "
            "order by sum(learners) desc", [campaign]).fetchall()]
        stages = [s for s in (stage_order or []) if s in seen] + [
            s for s in seen if s not in (stage_order or [])]
        curve = con.execute("""
            select "group", course_week, dropout, 1 - high, 1 - low from kpi_survival
            where campaign_id = ? and cohort = '(all)' order by 1, 2""", [campaign]).fetchall()
    else:
        weekly = [(r[0], "all learners", r[1]) for r in con.execute(
            "select week_start, sum(active)::integer from kpi_weekly_active where cohort = ? "
            "group by all order by 1", [cohort]).fetchall()]
        stages = ["all learners"]
        curve = con.execute("""
            select "group", course_week, dropout, 1 - high, 1 - low from kpi_survival
            where campaign_id = '(all)' and cohort = ? order by 1, 2""", [cohort]).fetchall()
    series: dict[str, list] = {}
    for group, week, share, low, high in curve:
        series.setdefault(group, []).append((week, share, low, high))
    steps = [("enrolled", head["enrolled"] or 0), ("started", head["started"] or 0),
             ("not dropped out", (head["enrolled"] or 0) - (head["dropped_out"] or 0)),
             ("completed", head["completed"] or 0)]
    if head["certifiable"]:
        steps.append(("certified", head["certified"] or 0))
    outcome_rows = [(m["message_key"], {"sent": m["sent"], "delivered": m["delivered"],
                                        "opened": m["opened"], "clicked": m["clicked"],
                                        "active_after": m["reengaged_7d"]})
                    for m in messages]
    common = {"labels": labels, "fmt": fmt, **out}
    return [charts.weekly_active_by_stage(weekly, stages, **common),
            charts.survival(series, **common),
            charts.funnel(steps, **common),
            charts.messages_by_outcome(outcome_rows, **common)]


# -- the programme: every campaign and cohort on one page --------------------------------

def gather_programme(con, *, png_dir: Path | None = None, stem: str = "programme",
                     locale: str | None = None) -> Report:
    locale = locale or default_locale(con)
    if locale not in i18n.LOCALES:
        raise ReportError(f"no report in locale {locale!r}: use --locale "
                          f"{' or --locale '.join(i18n.LOCALES)}")
    strata = _dicts(con, """
        select s.*, c.enrolled, c.completed, c.dropped_out
        from kpi_control_strata s
        join kpi_cohorts c using (campaign_id, course_id, cohort)
        order by s.campaign_id, s.cohort, s.course_id, s.outcome""")
    if not strata:
        raise ReportError("no campaign has evaluated any learner in this warehouse yet "
                          "(relance run first)")
    pooled = _dicts(con, "from kpi_pooled order by campaign_id, outcome")
    courses = _course_titles(con, [s["course_id"] for s in strata])
    [(as_of,)] = con.execute("select any_value(as_of) from kpi_base").fetchall()
    fmt = i18n.Fmt(locale)
    rows: dict[tuple, dict] = {}
    for s in strata:
        key = (s["campaign_id"], s["course_id"], s["cohort"])
        r = rows.setdefault(key, {"campaign_id": s["campaign_id"], "course_id": s["course_id"],
                                  "course": courses[s["course_id"]], "cohort": s["cohort"],
                                  "enrolled": s["enrolled"], "completed": s["completed"],
                                  "dropped_out": s["dropped_out"]})
        r[s["outcome"]] = s
        p = stats.plan(s["outcome"], s["n_treated"], s["n_control"], s["k_treated"], s["k_control"])
        r[f"mde_{s['outcome']}"] = p.mde
    report = Report(
        title=i18n.t(locale, "programme_title"), scope="programme", key="programme",
        as_of=as_of, headline={}, control=[], estimate=None, messages=[], backtests=[],
        locale=locale, subtitle=i18n.t(locale, "programme_intro"), courses=courses,
        sections=["programme"])
    report.programme = list(rows.values())
    report.pooled = pooled
    labels = i18n.STRINGS[locale]
    report.charts = [charts.forest(report.programme, pooled, labels=labels, fmt=fmt,
                                   png_dir=png_dir, stem=stem)]
    return report


# -- rendering -----------------------------------------------------------------------------

def render(report: Report) -> str:
    env = Environment(loader=FileSystemLoader(HERE), autoescape=select_autoescape(["html"]))
    fmt = report.fmt
    env.filters["pct"] = fmt.pct
    env.filters["points"] = fmt.points
    env.filters["int"] = fmt.int
    env.filters["money"] = fmt.money
    env.filters["num"] = fmt.num
    env.filters["day"] = fmt.date
    template = env.get_template("report.html")
    return template.render(r=report, f=fmt, t=lambda key, **kw: i18n.t(report.locale, key, **kw),
                           lang=report.locale,
                           assumptions=assumptions(report))


def write(report: Report, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(report), encoding="utf-8")
    return path
