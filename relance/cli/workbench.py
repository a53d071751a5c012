"""The learning designer's commands: `relance test`, `relance new`, `relance docs`.

Imported by relance/cli/__init__.py, so they join the same `relance` command and reuse
its helpers (settings, error reporting, consoles).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from relance.cli.main import (
    CampaignsOpt,
    Fail,
    _load_campaigns,
    _main,
    _settings,
    app,
    console,
    err,
)


# -- test ------------------------------------------------------------------------------------------

@app.command("test")
def test_campaigns(
    campaigns: list[str] = typer.Argument(None, help="Campaign ids or files [default: all]."),
    case: Optional[str] = typer.Option(None, "--case", "-k",
                                       help="Only the examples whose name contains this."),
    campaigns_dir: Optional[Path] = CampaignsOpt,
):
    """Run the example learners of each campaign's `tests:` block through the real engine,
    in a throwaway in-memory warehouse, and compare with what they should get.

    Example: relance test parcours-anglais
    """
    def body():
        from relance.workbench import testbench
        s = _settings(campaigns=campaigns_dir)
        loaded = _load_campaigns(s, campaigns)
        failed, ran = [], 0
        jobs = []
        for item in loaded:
            indexes = [i for i, c in enumerate(testbench.cases(item))
                       if not case or case.lower() in c.name.lower()]
            if not indexes:
                console.print(f"[yellow]{item.id}: no examples[/yellow]"
                              + ("" if case else " (add a `tests:` block; see "
                                                 "docs/campaign-reference.md)"))
            jobs += [(item, i) for i in indexes]
        # each campaign's examples in one pass of the engine, two passes at a time
        # (testbench.run_in_order), shown in the file's order as they finish
        shown = None
        for (item, _), result in zip(jobs, testbench.run_in_order(jobs)):
            if item.id != shown:
                console.print(f"[bold]{item.id}[/bold]")
                shown = item.id
            ran += 1
            mark = "[green]✓[/green]" if result.passed else "[red]✗[/red]"
            console.print(f"  {mark} {result.name}", soft_wrap=True)
            if not result.passed:
                failed.append(result)
        for result in failed:
            _print_failure(result)
        if failed:
            err.print(f"[red]{len(failed)} of {ran} examples failed.[/red]")
            raise typer.Exit(1)
        if not ran:
            raise Fail("no examples ran: give a campaign a `tests:` block "
                       "(`relance new --list` shows models that have one)")
        console.print(f"[green]{ran} examples passed.[/green]")
    _main(body)


def _print_failure(result) -> None:
    from relance.workbench import testbench
    console.print(f"\n[red]FAILED[/red] {result.location}: {result.name} (as of "
                  f"{result.as_of:%Y-%m-%d %H:%M} UTC)", soft_wrap=True)
    table = Table()
    for col in ("", "expected", "actual"):
        table.add_column(col)
    for key in testbench.COMPARED:
        expected = result.expected.get(key)
        actual = result.actual.get(key, "")
        if expected is None:
            table.add_row(key, "[dim](any)[/dim]", actual)
        elif expected == actual:
            table.add_row(key, expected, actual)
        else:
            table.add_row(f"[red]{key}[/red]", f"[red]{expected}[/red]", f"[red]{actual}[/red]")
    console.print(table)
    if result.measures:
        console.print("  the engine saw: " + ", ".join(f"{k} {v}" for k, v in
                                                         result.measures.items()),
                      soft_wrap=True)


# -- new -------------------------------------------------------------------------------------------

@app.command("new")
def new_campaign(
    campaign_id: Optional[str] = typer.Argument(None, help="The new campaign's id (its file name)."),
    model: str = typer.Option("weekly-relance", "--from", help="The model to start from."),
    course: Optional[str] = typer.Option(None, "--course",
                                         help="Course id of the audience [default: the id]."),
    list_models: bool = typer.Option(False, "--list", help="List the models and exit."),
    campaigns_dir: Optional[Path] = CampaignsOpt,
):
    """Start a campaign from a ready model: the campaign file, its French and English
    templates, and example learners for `relance test`. Never overwrites.

    Example: relance new anglais-relance --from weekly-relance --course anglais-b2
    """
    def body():
        from relance.campaign import loader, scaffold
        if list_models:
            table = Table(title="Models (relance new <id> --from <model>)", title_justify="left")
            table.add_column("model")
            table.add_column("what it does")
            for name, text in scaffold.MODELS.items():
                table.add_row(name, text)
            console.print(table)
            return
        if not campaign_id:
            raise Fail("give the new campaign's id, e.g. `relance new my-course --from "
                       "weekly-relance` (`relance new --list` shows the models)")
        s = _settings(campaigns=campaigns_dir)
        try:
            created = scaffold.create(s.campaigns, campaign_id, model, course=course)
        except scaffold.ScaffoldError as exc:
            raise Fail(str(exc)) from None
        loaded = loader.load(created.campaign_file, campaigns_dir=s.campaigns)
        n = len(created.files)
        console.print(f"[green]created[/green] {created.campaign_file} and {n - 1} more files "
                      f"(templates in {s.campaigns / campaign_id}/, fr and en) from {model}: "
                      f"{len(loaded.campaign.stages)} stages, {len(loaded.campaign.messages)} "
                      f"messages, {len(loaded.campaign.tests.cases)} examples.")
        console.print(f"Next: edit {created.campaign_file}, then `relance validate {campaign_id}` "
                      f"and `relance test {campaign_id}`.")
    _main(body)


# -- preview --week ----------------------------------------------------------------------------

def print_weeks(con, loaded, learner_id: str, until) -> None:
    """`relance preview <campaign> <learner> --week`: the replay, one row per Monday."""
    from relance.workbench import replay
    with console.status(f"Replaying {loaded.id} for {learner_id}, Monday after Monday…"):
        weeks = replay.replay(con, loaded, learner_id, until=until)
    table = Table(title=f"{learner_id} in {loaded.id}, week after week (replayed as of each "
                        "Monday 09:00; nothing is written or sent)", title_justify="left")
    for col, just in (("Monday", "left"), ("week", "right"), ("stage", "left"),
                      ("progress", "right"), ("inactive", "right"), ("message", "left"),
                      ("subject / why not", "left")):
        table.add_column(col, justify=just)
    for w in weeks:
        if w.message:
            detail = w.subject or ""
            if w.outcome == "deferred" and w.not_before:
                detail += f" [dim](at {w.not_before:%a %H:%M} UTC)[/dim]"
        else:
            detail = f"[dim]{w.why}[/dim]"
        table.add_row(f"{w.as_of:%Y-%m-%d}", str(w.course_week or ""), w.stage or "",
                      f"{w.progress:g}%" if w.progress is not None else "",
                      str(w.inactive_days if w.inactive_days is not None else ""),
                      f"[green]{w.message}[/green]" if w.message else "[dim]none[/dim]", detail)
    console.print(table)
    sent = sum(1 for w in weeks if w.message)
    console.print(f"{sent} message{'s' if sent != 1 else ''} over {len(weeks)} weeks.")


# -- plan --diff -------------------------------------------------------------------------------

def print_diff(con, loaded, when, against: str, show: int) -> None:
    from relance.workbench import plan_diff
    if against not in ("run", "head"):
        raise Fail(f"--against {against!r}: expected 'run' or 'head'")
    try:
        with console.status(f"Evaluating {loaded.id} as of {when:%Y-%m-%d %H:%M} UTC…"):
            baseline, evaluation = plan_diff.diff(con, loaded, when, against)
    except plan_diff.DiffError as exc:
        raise Fail(str(exc)) from None
    n = evaluation.totals()["evaluated"]
    rows = plan_diff.summary(con)
    changed = sum(r[3] for r in rows)
    console.print(f"[bold]{loaded.id}[/bold] as of {when:%Y-%m-%d %H:%M} UTC, compared with "
                  f"{baseline.label}: {changed} of {n} learners changed.", soft_wrap=True)
    if baseline.run_as_of is not None and baseline.run_as_of == when:
        console.print("[dim]Same moment as that run: what it sent shows as 'already sent'. "
                      "Pass a later --as-of, or --against head to compare with the committed "
                      "version of the file.[/dim]")
    if not rows:
        console.print("Nobody's stage or message changed.")
    else:
        table = Table(title="What changed", title_justify="left")
        for col, just in (("change", "left"), ("message before", "left"),
                          ("message now", "left"), ("learners", "right")):
            table.add_column(col, justify=just)
        for change, before, now, count in rows:
            table.add_row(change, before or "[dim]none[/dim]", now or "[dim]none[/dim]",
                          str(count))
        console.print(table)
        if show:
            from relance.campaign.reasons import explain
            detail = Table(title=f"First {min(show, changed)} learners", title_justify="left")
            for col in ("learner", "stage before", "stage now", "message before", "message now",
                        "why none now"):
                detail.add_column(col)
            for lid, sb, sn, mb, mn, reason in plan_diff.sample(con, show):
                detail.add_row(lid, sb or "", sn or "", mb or "", mn or "", explain(reason))
            console.print(detail)
    console.print("[dim]Dry run: nothing was written or sent.[/dim]")


# -- docs ------------------------------------------------------------------------------------------

@app.command("docs")
def docs(output: Optional[Path] = typer.Option(None, "--output", "-o",
                                               help="Write here instead of printing.")):
    """Print the campaign reference (every field: type, default, description, example),
    generated from the models.

    Example: relance docs -o docs/campaign-reference.md
    """
    import sys
    from relance.campaign import reference
    text = reference.render()
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
        console.print(f"wrote {output}")
    else:
        sys.stdout.write(text)


# -- simulate --------------------------------------------------------------------------------

@app.command("simulate")
def simulate(
    campaigns_dir: Optional[Path] = CampaignsOpt,
    weeks: int = typer.Option(20, "--weeks", min=1, max=60, help="Length of the season."),
    cohort: str = typer.Option("demo", "--cohort",
                               help="demo (the generator), the path of a CSV export's "
                                    "mapping.yaml, or oulad:<presentation>."),
    scale: float = typer.Option(1.0, "--scale", min=0.001,
                                help="Share of the demo's 2,000 learners (demo cohort only)."),
    start: Optional[str] = typer.Option(None, "--start",
                                        help="First day of the season (ISO 8601) [default: "
                                             "demo: 20 weeks ago; else the first course's start]."),
    learner: Optional[str] = typer.Option(None, "--learner",
                                          help="Also print this learner's whole season."),
    keep: Optional[Path] = typer.Option(None, "--keep",
                                        help="Keep the scratch warehouse, export and outbox "
                                             "in this (new or empty) folder."),
):
    """Play a whole season of every campaign of the folder together, before launch: daily
    syncs, each campaign at its schedule, hourly deliveries, on a scratch warehouse with
    the real engine, ledger and outbox; check the invariants at every tick; print the load
    per learner and week, the collisions between campaigns and any violation (exit 1).

    Example: relance simulate --scale 0.1 --learner L00042
    """
    def body():
        from relance.settings import parse_moment
        from relance.workbench.simulate import SimulationError, simulate as play
        s = _settings(campaigns=campaigns_dir)
        try:
            with console.status("Playing the season…") as status:
                season = play(s.campaigns, cohort=cohort, weeks=weeks, scale=scale,
                              start=parse_moment(start) if start else None, learner=learner,
                              keep=keep, on_tick=lambda now, season: status.update(
                                  f"Playing the season… {now:%Y-%m-%d %H:%M} UTC"))
        except SimulationError as exc:
            raise Fail(str(exc)) from None
        print_season(season)
        if not season.ok:
            raise typer.Exit(1)
    _main(body)


def print_season(season) -> None:
    from rich.markup import escape
    from relance.workbench.simulate import INVARIANTS
    console.print(
        f"[bold]Season[/bold] {season.start:%Y-%m-%d} + {season.weeks} weeks: "
        f"{season.learners} learners, campaigns {', '.join(season.campaigns)}; "
        f"{season.ticks} ticks ({season.syncs} syncs, {season.runs} runs, "
        f"{season.deliveries} hourly deliveries) in {season.seconds:.1f} s", soft_wrap=True)
    console.print("Messages: " + ", ".join(f"{n} {k}" for k, n in sorted(season.status.items()))
                  + (f"; scratch kept in {season.folder}" if season.folder else ""), soft_wrap=True)

    load = Table(title="Messages per learner and week (learner-local weeks)")
    for col in ("week", "learners", "mean", "p95", "max", *season.campaigns):
        load.add_column(col, justify="right")
    for week, learners, mean, p95, mx, _ in season.load:
        load.add_row(str(week), str(learners), f"{mean:.2f}", str(p95), str(mx),
                     *(str(season.per_campaign.get((week, c), 0)) for c in season.campaigns))
    console.print(load)

    if season.collisions:
        coll = Table(title=f"Collisions: {season.collision_total} learner-weeks with messages "
                           "from 2+ campaigns")
        for col in ("campaigns", "learner-weeks", "example"):
            coll.add_column(col)
        for first, second, n, example in season.collisions:
            coll.add_row(f"{first} + {second}", str(n), example)
        console.print(coll)
    else:
        console.print("Collisions: no learner got messages from two campaigns in one week.")

    inv = Table(title="Invariants, checked at every tick")
    for col in ("invariant", "checked", "violations", "example"):
        inv.add_column(col)
    for key, text in INVARIANTS.items():
        n = season.violations.get(key, 0)
        ex = season.examples.get(key)
        example = (f"{ex.learner_id or '-'} {ex.message_id or ''} at {ex.moment:%Y-%m-%d %H:%M} "
                   f"UTC ({ex.campaign_id}): {escape(ex.why)}" if ex else "")
        inv.add_row(text, str(season.checked.get(key, "end")),
                    f"[red]{n}[/red]" if n else "[green]0[/green]", example)
    console.print(inv)

    if season.timeline is not None:
        from relance.campaign.reasons import explain
        line = Table(title="The learner's season")
        for col in ("local time", "campaign", "message", "status", "why"):
            line.add_column(col)
        for local, tz, campaign, key, course, status, trigger, reason, _ in season.timeline:
            why = trigger + (f" — {explain(reason)}" if reason else "")
            line.add_row(f"{local:%a %Y-%m-%d %H:%M} {tz}", campaign, f"{key} ({course})", status,
                         escape(why))
        console.print(line)
    if not season.ok:
        err.print(f"[red]{sum(season.violations.values())} invariant violations[/red]: see the "
                  "examples above; --keep DIR keeps the warehouse to look into them.")
