"""The designer's commands on campaign files: `validate`, `plan` (a dry run), `preview` (one
learner's message) and `schema` (the JSON Schema for editors)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from relance.cli.main import (AsOfOpt, CampaignsOpt, Fail, WarehouseOpt, _connect, _load,
                              _load_campaigns, _main, _settings, _when, app, console)


@app.command()
def validate(
    campaigns: list[str] = typer.Argument(None, help="Campaign ids or files [default: all]."),
    strict: bool = typer.Option(False, "--strict", help="Exit with an error on warnings too "
                                                        "(campaigns that collide), e.g. in CI."),
    as_of: Optional[str] = AsOfOpt,
    warehouse: Optional[Path] = WarehouseOpt,
    campaigns_dir: Optional[Path] = CampaignsOpt,
):
    """Check campaign files and their templates; print every problem with file and line.
    Warn when two campaigns can write to the same learner in the same week, with counts
    from the warehouse when there is one (as of --as-of, or the demo's date).

    Example: relance validate parcours-anglais
    """
    def body():
        s = _settings(warehouse, campaigns_dir)
        from relance.campaign.problems import CampaignError
        team_problems, team_note = _check_team(s, as_of)
        try:
            loaded = _load_campaigns(s, campaigns)
        except CampaignError as exc:
            raise CampaignError(team_problems + exc.problems) from None
        if team_problems:
            raise CampaignError(team_problems)
        if not loaded:
            raise Fail(f"no campaign files in {s.campaigns}/")
        if team_note:
            console.print(team_note, soft_wrap=True)
        warnings = _warn_collisions(s, loaded, as_of)
        for item in loaded:
            c = item.campaign
            console.print(f"[green]ok[/green] {item.path}: {len(c.stages)} stages, "
                          f"{len(c.messages)} messages, locales {', '.join(c.locales)}, "
                          f"control group {c.control_group:g}%")
        if warnings and strict:
            raise Fail(f"{warnings} warning{'s' if warnings > 1 else ''} and --strict: resolve "
                       "them as each says, or validate without --strict")
    _main(body)


def _check_team(s, as_of: Optional[str]) -> tuple[list, str | None]:
    """The team file's problems (campaigns/_team.yaml, when there is one), located like a
    campaign's: its own, and on the warehouse when there is one, the active learners its
    column and rules leave to no one. Returns (problems, the line that says it is fine)."""
    from relance.campaign.problems import CampaignError, Problem, dotted
    from relance.team import teamfile
    path = teamfile.path_in(s.campaigns)
    if not path.exists():
        return [], None
    try:
        team = teamfile.load(path)
    except CampaignError as exc:
        return exc.problems, None
    if Path(s.warehouse).exists():
        from relance.team.assign import unassigned
        con = _connect(s, read_only=True)
        try:
            # a warehouse older than the team tables (opened read-only, so not migrated):
            # the check waits for the next command that opens it for writing
            migrated = con.execute("select count(*) from duckdb_tables() where table_name in "
                                   "('team_assignments', 'learner_tutors')").fetchall()[0][0] == 2
            left = unassigned(con, team, _when(con, as_of)) if migrated else []
        finally:
            con.close()
        if left:
            rules = team.assignment.rules
            loc = ("assignment", "rules", len(rules) - 1) if rules else ("assignment",)
            where, line, column = teamfile.locate(team, loc)
            total = sum(n for *_, n in left)
            shown = ", ".join(f"{course}" + (f" cohort {cohort}" if cohort else "") + f" ({n})"
                              for course, cohort, n in left[:5])
            return [Problem(where, line, dotted(loc),
                            f"the rules leave {total} active learner{'s' if total > 1 else ''} "
                            f"unassigned: {shown}{' ...' if len(left) > 5 else ''}; add a rule "
                            "for them, or a last rule with no course and no cohort, for example "
                            "`- to: [claire.martin@example.org]`", column)], None
    return [], (f"[green]ok[/green] {teamfile.display(path)}: {len(team.people)} people, "
                f"{len(team.assignment.rules)} assignment rules")


def _warn_collisions(s, loaded: list, as_of: Optional[str]) -> int:
    """Warn about the campaigns that can write to the same learner in the same week: the
    checked ones against every campaign of the folder (a file that does not load is left
    to its own validation), counted on the warehouse when there is one. Returns how many."""
    from rich.markup import escape

    from relance.campaign import collisions, loader
    from relance.campaign.problems import CampaignError, display
    others = []
    checked = {item.id for item in loaded}
    for path in loader.campaign_paths(s.campaigns):
        if path.stem not in checked:
            try:
                others.append(loader.load(path, campaigns_dir=s.campaigns, check_templates=False))
            except CampaignError:
                pass
    found = collisions.find(loaded + others, loaded)
    if not found:
        return 0
    counts = [None] * len(found)
    if Path(s.warehouse).exists():
        from relance.workbench.collisions import count
        import warehouse
        con = _connect(s, read_only=True)
        try:
            when = _when(con, as_of)
            # a warehouse an older relance wrote (opened read-only, so not migrated) may
            # lack what the counts read: said once, rather than as a missing view's error
            missing = warehouse.pending(con)
            counts = count(con, found, when) if not missing else counts
        finally:
            con.close()
        if missing:
            console.print(f"  no counts from {s.warehouse}: it predates this version's schema "
                          f"({len(missing)} migration{'s' if len(missing) > 1 else ''} to apply, "
                          f"{missing[0]} first); the next command that writes to it (`relance "
                          "sync`, `run` or `deliver`) applies them", soft_wrap=True)
    for collision, n in zip(found, counts):
        item, text = collisions.advice(collision, checked)
        console.print(f"[yellow]warning[/yellow] {escape(display(item.path))}:"
                      f"{item.line_of(('audience',))}: {escape(text)}", soft_wrap=True)
        if n is not None and n.error:
            console.print(f"  no counts from {s.warehouse}: {escape(n.error)}", soft_wrap=True)
        elif n is not None:
            console.print(f"  on {s.warehouse} as of {when:%Y-%m-%d %H:%M} UTC: {n.both} "
                          f"learner{'s' if n.both != 1 else ''} would get messages from both "
                          f"in that week, {n.over_cap} of them more than the weekly cap "
                          f"({collision.cap}) allows", soft_wrap=True)
    return len(found)


@app.command()
def plan(
    campaign: str = typer.Argument(..., help="Campaign id or file."),
    as_of: Optional[str] = AsOfOpt,
    learner: Optional[str] = typer.Option(None, "--learner", help="Explain one learner in detail."),
    show: int = typer.Option(15, "--show", help="How many learners to list."),
    diff: bool = typer.Option(False, "--diff", help="Show what changed in who-gets-what "
                                                    "(see --against)."),
    against: str = typer.Option("run", "--against",
                                help="With --diff: 'run' (the campaign's last recorded run) or "
                                     "'head' (the file's last committed version, same moment)."),
    warehouse: Optional[Path] = WarehouseOpt,
    campaigns_dir: Optional[Path] = CampaignsOpt,
):
    """Dry run: who would get which message, and why the others get none. Sends nothing.

    Example: relance plan parcours-anglais --learner L00042
    """
    def body():
        from relance import engine
        s = _settings(warehouse, campaigns_dir)
        loaded = _load(s, campaign)
        con = _connect(s)
        when = _when(con, as_of, loaded.id)
        if diff:
            from relance.cli.workbench import print_diff
            print_diff(con, loaded, when, against, show)
            return
        with console.status(f"Evaluating {loaded.id} as of {when:%Y-%m-%d %H:%M} UTC…"):
            ev = engine.evaluate(con, loaded, when)
        _print_evaluation(ev)
        if learner:
            _explain_learner(con, learner)
        else:
            _print_sample(con, show)
        console.print("[dim]Dry run: nothing was written or sent. `relance run "
                      f"{loaded.id}` does it for real.[/dim]")
    _main(body)


def _print_evaluation(ev) -> None:
    from relance.campaign.reasons import explain
    totals = ev.totals()
    console.print(f"[bold]{ev.loaded.id}[/bold] as of {ev.as_of:%Y-%m-%d %H:%M} UTC: "
                  f"{totals['evaluated']} learners evaluated in {ev.seconds:.2f}s")
    stages = Table(title="Learners per stage", title_justify="left")
    stages.add_column("stage")
    stages.add_column("learners", justify="right")
    stages.add_column("control group", justify="right")
    for stage, n, h in ev.stage_counts():
        stages.add_row(stage or "(no stage)", str(n), str(h))
    console.print(stages)
    outcomes = Table(title="Decisions", title_justify="left")
    for col, just in (("outcome", "left"), ("message", "left"), ("why", "left"), ("learners", "right")):
        outcomes.add_column(col, justify=just)
    style = {"planned": "green", "deferred": "cyan", "suppressed": "yellow", "no_message": "dim"}
    for outcome, message, reason, n in ev.outcome_counts():
        label = {"planned": "send now", "deferred": "send later"}.get(outcome, outcome)
        outcomes.add_row(f"[{style[outcome]}]{label}[/]", message or "", explain(reason), str(n))
    console.print(outcomes)
    if totals["follow_ups"]:
        console.print(f"Follow-up list for the community manager: {totals['follow_ups']} learners")
    if ev.campaign.digest:
        from relance.cli.digests import print_plan
        print_plan(console, ev)


def _print_sample(con, show: int) -> None:
    from relance.campaign.reasons import explain
    rows = con.execute(
        "select d.learner_id, trim(coalesce(l.first_name,'') || ' ' || coalesce(l.last_name,'')), "
        "d.stage, d.message_key, d.outcome, d.reason, d.not_before "
        "from eval_decisions d join learners l using (learner_id) "
        "order by d.outcome = 'no_message', d.outcome, d.message_key, d.learner_id limit ?",
        [show]).fetchall()
    if not rows:
        return
    table = Table(title=f"First {len(rows)} learners", title_justify="left")
    for col in ("learner", "name", "stage", "message", "outcome", "when / why"):
        table.add_column(col)
    for lid, name, stage, msg, outcome, reason, not_before in rows:
        detail = (f"{not_before:%a %d %b %H:%M} UTC" if outcome == "deferred" and not_before
                  else explain(reason))
        table.add_row(lid, name, stage or "", msg or "", outcome, detail)
    console.print(table)


def _explain_learner(con, learner_id: str) -> None:
    from relance.campaign.reasons import explain
    rows = con.execute(
        "select stage, previous_stage, progress, inactive_days, enrolled_days, stalled_days, "
        "overdue, course_week, started, completed, is_holdout, course_id, msg_locale, tz "
        "from eval_state where learner_id = ?", [learner_id]).fetchall()
    if not rows:
        raise Fail(f"learner {learner_id!r} is not in this campaign's audience as of that date")
    for (stage, prev, progress, inactive, enrolled, stalled, overdue, week, started, completed,
         holdout, course, locale, tz) in rows:
        console.print(f"[bold]{learner_id}[/bold] on {course}: stage [bold]{stage}[/bold] "
                      f"(before: {prev or 'not seen yet'}), progress {progress:g}%, "
                      f"{inactive} days inactive, {overdue} overdue, {stalled} days stalled, "
                      f"enrolled {enrolled} days, course week {week}, locale {locale}, "
                      f"timezone {tz}{', control group' if holdout else ''}")
    cands = con.execute(
        "select message_key, trigger, outcome, reason, not_before from eval_candidates "
        "where learner_id = ? order by priority", [learner_id]).fetchall()
    if not cands:
        console.print("No message is triggered for this stage now.")
    table = Table(title="Messages considered", title_justify="left")
    for col in ("message", "trigger", "outcome", "why / when"):
        table.add_column(col)
    for msg, trig, outcome, reason, nb in cands:
        table.add_row(msg, trig, outcome, explain(reason) if reason else
                      (f"{nb:%Y-%m-%d %H:%M} UTC" if nb else ""))
    if cands:
        console.print(table)


@app.command()
def preview(
    campaign: str = typer.Argument(..., help="Campaign id or file."),
    learner: str = typer.Argument(..., help="Learner id."),
    message: Optional[str] = typer.Option(None, "--message", "-m",
                                          help="Render this message even if it is not due."),
    as_of: Optional[str] = AsOfOpt,
    html: Optional[Path] = typer.Option(None, "--html", help="Also write the HTML body here."),
    open_html: bool = typer.Option(False, "--open", help="Open the HTML body in a browser "
                                                         "(written to --html, or under .relance/)."),
    week: bool = typer.Option(False, "--week", help="Week after week: what the learner would "
                                                    "get each Monday of their course."),
    warehouse: Optional[Path] = WarehouseOpt,
    campaigns_dir: Optional[Path] = CampaignsOpt,
):
    """Render the message a learner would get (subject, text, HTML). Sends nothing.

    Example: relance preview parcours-anglais L00042 --message recap-hebdo --html /tmp/m.html
    """
    def body():
        from relance.workbench import preview as previewing
        s = _settings(warehouse, campaigns_dir)
        loaded = _load(s, campaign)
        con = _connect(s)
        if week:
            from relance.cli.workbench import print_weeks
            print_weeks(con, loaded, learner, _when(con, as_of, loaded.id))
            return
        result = previewing.preview(con, loaded, learner, when=_when(con, as_of, loaded.id),
                                     message_key=message)
        console.print(f"[dim]{result.note}[/dim]")
        console.print(f"[bold]To:[/bold] {result.outgoing.to_name} <{result.outgoing.to_email}>")
        console.print(f"[bold]From:[/bold] {result.outgoing.from_name} <{result.outgoing.from_email}>")
        console.print(f"[bold]Subject:[/bold] {result.outgoing.subject}\n")
        console.print(result.outgoing.text, markup=False, soft_wrap=True)
        if html or open_html:
            if not result.outgoing.html:
                raise Fail("this message has no body.html template")
            target = html or (s.workdir / "previews" /
                              f"{loaded.id}-{learner}-{result.message_key}.html")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(result.outgoing.html, encoding="utf-8")
            console.print(f"[dim]HTML written to {target}[/dim]")
            if open_html:
                import webbrowser
                if not webbrowser.open(target.resolve().as_uri()):
                    console.print(f"[yellow]no browser to open it here: open {target} "
                                  "yourself[/yellow]")
    _main(body)


@app.command()
def schema(output: Optional[Path] = typer.Option(None, "--output", "-o",
                                                 help="Write here instead of printing.")):
    """Print the JSON Schema of the campaign format (for editors' completion).

    Example: relance schema -o relance/campaign/campaign.schema.json
    """
    from relance.campaign.schema import campaign_schema
    text = json.dumps(campaign_schema(), indent=2, ensure_ascii=False) + "\n"
    if output:
        output.write_text(text, encoding="utf-8")
        console.print(f"wrote {output}")
    else:
        sys.stdout.write(text)
