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


@dataclass
class Chart:
    key: str
    title: str
    svg: str
    png: Path | None = None


def _finish(fig, key: str, title: str, png_dir: Path | None, stem: str) -> Chart:
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


def weekly_active_by_stage(rows: list[tuple], stages: list[str], **out) -> Chart:
    """rows: (week_start, stage, active learners)."""
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    weeks = sorted({r[0] for r in rows})
    if not weeks:
        _empty(ax, "No campaign run yet")
    else:
        bottom = [0] * len(weeks)
        for i, stage in enumerate(stages):
            values = [sum(r[2] for r in rows if r[0] == w and r[1] == stage) for w in weeks]
            ax.bar([w.strftime("%d %b") for w in weeks], values, bottom=bottom, label=stage,
                   color=PALETTE[i % len(PALETTE)])
            bottom = [b + v for b, v in zip(bottom, values)]
        ax.set_ylabel("learners active in the week")
        ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_title("Weekly active learners by stage", loc="left")
    return _finish(fig, "weekly-active", "Weekly active learners by stage", **out)


def dropout_curve(series: dict[str, list[tuple[int, float]]], **out) -> Chart:
    """series: group -> [(course week, dropout share 0..1)]."""
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    if not series:
        _empty(ax, "No learners evaluated yet")
    colours = {"treated": PALETTE[0], "control": PALETTE[1], "all": PALETTE[4]}
    for group, points in series.items():
        ax.plot([p[0] for p in points], [100 * p[1] for p in points], marker="o", ms=3,
                label=group, color=colours.get(group, PALETTE[2]))
    if series:
        ax.set_xlabel("course week")
        ax.set_ylabel("dropped out (%)")
        ax.set_ylim(bottom=0)
        ax.legend(frameon=False)
    ax.set_title("Dropout curve: treated vs control", loc="left")
    return _finish(fig, "dropout-curve", "Dropout curve: treated vs control", **out)


def funnel(steps: list[tuple[str, int]], **out) -> Chart:
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    labels = [s[0] for s in steps][::-1]
    values = [s[1] for s in steps][::-1]
    ax.barh(labels, values, color=PALETTE[0])
    top = max(values) if values else 0
    for y, v in enumerate(values):
        share = f" ({100 * v / top:.0f} %)" if top else ""
        ax.text(v, y, f" {v}{share}", va="center", fontsize=8)
    ax.set_xlim(0, top * 1.25 if top else 1)
    ax.set_title("Funnel", loc="left")
    return _finish(fig, "funnel", "Funnel", **out)


def messages_by_outcome(rows: list[tuple[str, dict[str, int]]], **out) -> Chart:
    """rows: (message, {outcome: count}) with outcomes sent, delivered, opened, clicked,
    re-engaged in 7 days."""
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    outcomes = ["sent", "delivered", "opened", "clicked", "re-engaged in 7 days"]
    if not rows:
        _empty(ax, "No message sent yet")
    else:
        width = 0.8 / len(outcomes)
        for i, outcome in enumerate(outcomes):
            xs = [j + i * width for j in range(len(rows))]
            ax.bar(xs, [r[1].get(outcome, 0) for r in rows], width=width, label=outcome,
                   color=PALETTE[i % len(PALETTE)])
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(rows))], [r[0] for r in rows],
                      rotation=15, ha="right")
        ax.set_ylabel("messages")
        ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_title("Messages by outcome", loc="left")
    return _finish(fig, "messages", "Messages by outcome", **out)


def backtest_weeks(rows: list[tuple], stages: list[str], **out) -> Chart:
    """rows: (Monday, stage, learners, messages) of one backtest."""
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    mondays = sorted({r[0] for r in rows})
    if not mondays:
        _empty(ax, "No backtest yet")
    else:
        bottom = [0] * len(mondays)
        for i, stage in enumerate(stages):
            values = [sum(r[2] for r in rows if r[0] == m and r[1] == stage) for m in mondays]
            ax.bar(range(len(mondays)), values, bottom=bottom, label=stage,
                   color=PALETTE[i % len(PALETTE)], width=0.85)
            bottom = [b + v for b, v in zip(bottom, values)]
        ax.set_ylabel("learners")
        ticks = list(range(0, len(mondays), max(1, len(mondays) // 5)))
        ax.set_xticks(ticks, [mondays[t].strftime("%b %Y") for t in ticks], fontsize=8)
        sent = ax.twinx()
        sent.plot(range(len(mondays)), [sum(r[3] for r in rows if r[0] == m) for m in mondays],
                  color="#b3261e", marker="o", ms=2, label="messages")
        sent.set_ylabel("messages", color="#b3261e")
        sent.spines["top"].set_visible(False)
        handles = ax.get_legend_handles_labels()
        extra = sent.get_legend_handles_labels()
        ax.legend(handles[0] + extra[0], handles[1] + extra[1], frameon=False, fontsize=8,
                  loc="upper left", bbox_to_anchor=(1.12, 1.0))
    ax.set_title("Backtest: stages and messages each Monday", loc="left")
    return _finish(fig, "backtest", "Backtest: stages and messages each Monday", **out)
