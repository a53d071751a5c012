"""The report's charts: matplotlib figures written as inline SVG (self-contained, no
network) and as PNG files beside the report."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display, no GUI toolkit
import matplotlib.pyplot as plt  # noqa: E402

# Text stays text in the SVG (searchable, small); the salt makes ids stable run to run.
plt.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "relance",
                     "font.family": "DejaVu Sans", "font.size": 9,
                     "axes.spines.top": False, "axes.spines.right": False})

PALETTE = ["#1f6f8b", "#e07a5f", "#81b29a", "#f2cc8f", "#3d405b", "#9c89b8", "#b5838d"]

# One colour per stage name in every report and chart (weekly stages, backtests), whatever
# the campaign and its order of stages: the names the campaigns use get a fixed colour;
# another name gets one of the spare colours, chosen by a hash of the name (stable across
# runs and campaigns, unlike the position in a list).
STAGE_COLOURS = {
    "active": "#3d7ea6", "on_track": "#3d7ea6",
    "at_risk": "#f2b134", "late": "#f2b134", "behind": "#f2b134",
    "dormant": "#c8553d", "dropped": "#c8553d", "inactive": "#c8553d",
    "not_started": "#9a9a9a", "onboarding": "#9a9a9a", "welcome": "#9a9a9a",
    "completed": "#4f9d69", "certified": "#2e6b45",
    "all learners": "#3d405b",
}
SPARE = ["#9c89b8", "#b5838d", "#6d597a", "#84a59d", "#e5989b", "#355070", "#b08968",
         "#5f0f40"]
GROUP_COLOURS = {"treated": "#1f6f8b", "control": "#e07a5f", "all": "#3d405b"}


def stage_colour(stage: str) -> str:
    import hashlib
    if stage in STAGE_COLOURS:
        return STAGE_COLOURS[stage]
    return SPARE[int(hashlib.md5(stage.encode()).hexdigest()[:8], 16) % len(SPARE)]


def _l(labels, key: str) -> str:
    return (labels or {}).get(key, key)


def _axis_numbers(ax, fmt, *, axis: str = "y") -> None:
    """Tick labels in the report's locale (thousands separators, decimal comma)."""
    if fmt is None:
        return
    from matplotlib.ticker import FuncFormatter
    f = FuncFormatter(lambda v, _pos: fmt.int(v) if float(v).is_integer() else fmt.num(v, 1))
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(f)


@dataclass
class Chart:
    key: str
    title: str
    svg: str
    png: Path | None = None


def _finish(fig, key: str, title: str, png_dir: Path | None = None, stem: str = "report") -> Chart:
    fig.tight_layout()
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    svg = buf.getvalue()
    svg = svg[svg.index("<svg"):]            # drop the XML prolog and doctype: inline SVG
    png = None
    if png_dir is not None:
        png = Path(png_dir) / f"{stem}-{key}.png"
        fig.savefig(png, format="png", dpi=144)
    plt.close(fig)
    return Chart(key, title, svg, png)


def _empty(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#666")
    ax.set_xticks([])
    ax.set_yticks([])


def weekly_active_by_stage(rows: list[tuple], stages: list[str], *, labels=None, fmt=None,
                           **out) -> Chart:
    """rows: (week_start, stage, active learners)."""
    title = _l(labels, "chart_weekly")
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    weeks = sorted({r[0] for r in rows})
    if not weeks:
        _empty(ax, _l(labels, "no_run"))
    else:
        bottom = [0] * len(weeks)
        ticks = [fmt.short_date(w) if fmt else w.strftime("%d %b") for w in weeks]
        for stage in stages:
            values = [sum(r[2] for r in rows if r[0] == w and r[1] == stage) for w in weeks]
            if not any(values):
                continue                       # an empty series is not drawn
            ax.bar(ticks, values, bottom=bottom,
                   label=_l(labels, stage) if stage == "all learners" else stage,
                   color=stage_colour(stage))
            bottom = [b + v for b, v in zip(bottom, values)]
        if len(weeks) > 5:
            ax.tick_params(axis="x", labelrotation=45, labelsize=7)
        ax.set_ylabel(_l(labels, "active_in_week"))
        _axis_numbers(ax, fmt)
        ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_title(title, loc="left")
    return _finish(fig, "weekly-active", title, **out)


def survival(series: dict[str, list[tuple]], *, labels=None, fmt=None, **out) -> Chart:
    """series: group -> [(course week, dropout 0..1, low, high)] of kpi_survival: the
    Kaplan–Meier dropout (1 - survival) with its 95% band, drawn as steps."""
    title = _l(labels, "chart_survival")
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    if not series:
        _empty(ax, _l(labels, "no_learners"))
    for group, points in series.items():
        weeks = [0] + [p[0] for p in points]
        colour = GROUP_COLOURS.get(group, PALETTE[2])
        ax.step(weeks, [0] + [100 * p[1] for p in points], where="post", color=colour,
                label=_l(labels, f"{group}_group"))
        ax.fill_between(weeks, [0] + [100 * (p[2] or 0) for p in points],
                        [0] + [100 * (p[3] or 0) for p in points], step="post", color=colour,
                        alpha=0.15, linewidth=0)
    if series:
        ax.set_xlabel(_l(labels, "course_week"))
        ax.set_ylabel(_l(labels, "dropped_out_pct"))
        ax.set_ylim(bottom=0)
        ax.set_xlim(left=0)
        from matplotlib.ticker import MaxNLocator
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        _axis_numbers(ax, fmt)
        ax.legend(frameon=False)
    ax.set_title(title, loc="left")
    return _finish(fig, "survival", title, **out)


def funnel(steps: list[tuple[str, int]], *, labels=None, fmt=None, **out) -> Chart:
    title = _l(labels, "chart_funnel")
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    names = [_l(labels, "funnel_" + s[0].replace(" ", "_")) for s in steps][::-1]
    values = [s[1] for s in steps][::-1]
    ax.barh(names, values, color=PALETTE[0])
    top = max(values) if values else 0
    for y, v in enumerate(values):
        share = f" ({fmt.pct(v / top, 0) if fmt else f'{100 * v / top:.0f} %'})" if top else ""
        ax.text(v, y, f" {fmt.int(v) if fmt else v}{share}", va="center", fontsize=8)
    ax.set_xlim(0, top * 1.25 if top else 1)
    _axis_numbers(ax, fmt, axis="x")
    ax.set_title(title, loc="left")
    return _finish(fig, "funnel", title, **out)


def messages_by_outcome(rows: list[tuple[str, dict[str, int]]], *, labels=None, fmt=None,
                        **out) -> Chart:
    """rows: (message, {outcome: count}) with outcomes sent, delivered, opened, clicked,
    active_after (active within 7 days). An outcome with no count anywhere (a channel that
    reports no events) is not drawn."""
    title = _l(labels, "chart_messages")
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    outcomes = [o for o in ["sent", "delivered", "opened", "clicked", "active_after"]
                if any(r[1].get(o, 0) for r in rows)]
    colours = {"sent": "#1f6f8b", "delivered": "#81b29a", "opened": "#f2cc8f",
               "clicked": "#9c89b8", "active_after": "#3d405b"}
    if not rows or not outcomes:
        _empty(ax, _l(labels, "no_message"))
    else:
        width = 0.8 / len(outcomes)
        for i, outcome in enumerate(outcomes):
            xs = [j + i * width for j in range(len(rows))]
            ax.bar(xs, [r[1].get(outcome, 0) for r in rows], width=width,
                   label=_l(labels, outcome), color=colours[outcome])
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(rows))], [r[0] for r in rows],
                      rotation=15 if len(rows) < 6 else 35, ha="right",
                      fontsize=9 if len(rows) < 6 else 7)
        ax.set_ylabel(_l(labels, "messages"))
        _axis_numbers(ax, fmt)
        ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_title(title, loc="left")
    return _finish(fig, "messages", title, **out)


def backtest_weeks(rows: list[tuple], stages: list[str], *, labels=None, fmt=None,
                   **out) -> Chart:
    """rows: (Monday, stage, learners, messages) of one backtest."""
    title = _l(labels, "chart_backtest")
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    mondays = sorted({r[0] for r in rows})
    if not mondays:
        _empty(ax, "–")
    else:
        bottom = [0] * len(mondays)
        for stage in stages:
            values = [sum(r[2] for r in rows if r[0] == m and r[1] == stage) for m in mondays]
            if not any(values):
                continue
            ax.bar(range(len(mondays)), values, bottom=bottom, label=stage,
                   color=stage_colour(stage), width=0.85)
            bottom = [b + v for b, v in zip(bottom, values)]
        ax.set_ylabel(_l(labels, "learners"))
        _axis_numbers(ax, fmt)
        ticks = list(range(0, len(mondays), max(1, len(mondays) // 5)))
        ax.set_xticks(ticks, [mondays[t].strftime("%Y-%m") for t in ticks], fontsize=8)
        sent = ax.twinx()
        sent.plot(range(len(mondays)), [sum(r[3] for r in rows if r[0] == m) for m in mondays],
                  color="#b3261e", marker="o", ms=2, label=_l(labels, "messages"))
        sent.set_ylabel(_l(labels, "messages"), color="#b3261e")
        sent.spines["top"].set_visible(False)
        handles = ax.get_legend_handles_labels()
        extra = sent.get_legend_handles_labels()
        ax.legend(handles[0] + extra[0], handles[1] + extra[1], frameon=False, fontsize=8,
                  loc="upper left", bbox_to_anchor=(1.12, 1.0))
    ax.set_title(title, loc="left")
    return _finish(fig, "backtest", title, **out)


def forest(rows: list[dict], pooled: list[dict], *, labels=None, fmt=None, **out) -> Chart:
    """The programme's chart: each campaign's difference on completion and dropout, cohort
    by cohort (95% Wald interval of the stratum), and the pooled estimate (a diamond)."""
    title = _l(labels, "chart_forest")
    fig, axes = plt.subplots(1, 2, figsize=(8.6, 0.5 + 0.42 * (len(rows) + len(
        {r["campaign_id"] for r in rows}) + 1)), sharey=True)
    names, y = [], 0
    pooled_by = {(p["campaign_id"], p["outcome"]): p for p in pooled}
    positions = []
    for campaign in sorted({r["campaign_id"] for r in rows}):
        for r in [r for r in rows if r["campaign_id"] == campaign]:
            positions.append((y, r, None))
            names.append(f"{campaign} · {r['cohort'] or '–'}")
            y += 1
        positions.append((y, None, campaign))
        names.append(f"{campaign}: {_l(labels, 'pooled')}")
        y += 1.4
    for ax, outcome in zip(axes, ("completion", "dropout")):
        for pos, r, campaign in positions:
            if r is not None:
                s = r.get(outcome)
                if s and s["difference"] is not None and s["variance"]:
                    half = 1.959963984540054 * s["variance"] ** 0.5
                    ax.errorbar(100 * s["difference"], pos, xerr=100 * half, fmt="s",
                                color="#1f6f8b", ms=4, capsize=2)
            else:
                p = pooled_by.get((campaign, outcome))
                if p and p["pooled"] is not None:
                    lo, mid, hi = 100 * p["ci_low"], 100 * p["pooled"], 100 * p["ci_high"]
                    ax.fill([lo, mid, hi, mid], [pos, pos + 0.3, pos, pos - 0.3],
                            color="#3d405b")
        ax.axvline(0, color="#888", linewidth=0.8)
        ax.set_title(_l(labels, outcome), loc="left")
        ax.set_xlabel(_l(labels, "difference") + " (" + _l(labels, "pts") + ")")
        _axis_numbers(ax, fmt, axis="x")
    axes[0].set_yticks([p[0] for p in positions], names, fontsize=8)
    axes[0].invert_yaxis()
    fig.suptitle(title, x=0.01, ha="left", fontsize=10)
    return _finish(fig, "forest", title, **out)
