"""The `relance` command's app, its shared options and helpers, and its core commands.

Every command exits non-zero on any error, and says what was wrong, where, and how to fix it.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

# Prefect reads these at import: no telemetry (there is no network), and keep its own
# logging to warnings so the CLI's tables stay readable. A user's own settings win.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# Flow and task failures reach the user as one `error` line from this CLI, not as
# Prefect's own tracebacks.
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "CRITICAL")
os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")

import typer  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from relance.campaign.loader import CampaignError  # noqa: E402
from relance.settings import Settings, parse_moment, resolve  # noqa: E402

app = typer.Typer(
    help="relance: engagement campaigns as code for online learning.\n\n"
         "Example: relance demo && relance plan parcours-anglais",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
# Wide enough for the summary tables in CI logs and pipes, where rich would assume 80.
_WIDTH = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 120
console = Console(highlight=False, width=_WIDTH)
err = Console(stderr=True, highlight=False, width=_WIDTH)

WarehouseOpt = typer.Option(None, "--warehouse", "-w", envvar="RELANCE_WAREHOUSE",
                            help="DuckDB warehouse file [default: relance.duckdb].")
CampaignsOpt = typer.Option(None, "--campaigns", envvar="RELANCE_CAMPAIGNS",
                            help="Folder of campaign files [default: campaigns].")
OutboxOpt = typer.Option(None, "--outbox", envvar="RELANCE_OUTBOX",
                         help="Folder the outbox channel writes to [default: outbox].")
AsOfOpt = typer.Option(None, "--as-of",
                       help="Evaluate as of this moment (ISO 8601, e.g. 2026-11-23T09:00+01:00) "
                            "[default: now].")


class Fail(Exception):
    pass


def _progress():
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn,
                               TextColumn, TimeElapsedColumn)
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                    MofNCompleteColumn(), TimeElapsedColumn(), console=console, transient=True)


def _settings(warehouse: Optional[Path] = None, campaigns: Optional[Path] = None,
              outbox: Optional[Path] = None) -> Settings:
    return resolve(warehouse, campaigns, outbox)


def _as_of(value: Optional[str]) -> datetime:
    try:
        return parse_moment(value)
    except ValueError as exc:
        raise Fail(f"--as-of: {exc}") from None


def _when(con, value: Optional[str]) -> datetime:
    """--as-of if given; on the demo's warehouse, the demo's date (its data stops there);
    else now."""
    if value:
        return _as_of(value)
    import warehouse
    demo_date = warehouse.meta(con, "demo_as_of")
    if demo_date:
        when = _as_of(demo_date)
        console.print(f"[dim]As of the demo's date, {when:%Y-%m-%d %H:%M} UTC "
                      "(pass --as-of to choose another).[/dim]")
        return when
    return datetime.now(timezone.utc)


def _connect(s: Settings, *, must_exist: bool = True):
    import warehouse
    if must_exist and not Path(s.warehouse).exists():
        raise Fail(f"no warehouse at {s.warehouse}: run `relance demo` for the demo cohort, or "
                   "`relance sync <mapping.yaml>` to load your own data (or pass --warehouse)")
    return warehouse.connect(s.warehouse, memory_limit=s.memory_limit)


def _load(s: Settings, ref: str):
    from relance.campaign import loader
    return loader.load(loader.find(s.campaigns, ref), campaigns_dir=s.campaigns)


def _print_problems(exc: CampaignError) -> None:
    for p in exc.problems:
        err.print(f"[red]error[/red] {p}", soft_wrap=True)
    n = len(exc.problems)
    err.print(f"[red]{n} problem{'s' if n > 1 else ''}[/red]: nothing was evaluated or sent.")


def _main(fn):
    """Run a command body; turn known errors into a message and exit code 1."""
    from connectors import SourceError
    from relance.engine import EvaluationError
    from relance.channels.base import DeliveryError
    from relance.workbench.preview import PreviewError
    try:
        return fn()
    except CampaignError as exc:
        _print_problems(exc)
    except (Fail, SourceError, EvaluationError, PreviewError, DeliveryError) as exc:
        # messages quote the user's data (a file's columns, a value): not markup
        from rich.markup import escape
        err.print(f"[red]error[/red] {escape(str(exc))}", soft_wrap=True)
    raise typer.Exit(1)


# -- validate ------------------------------------------------------------------------------------

@app.command()
def validate(
    campaigns: list[str] = typer.Argument(None, help="Campaign ids or files [default: all]."),
    campaigns_dir: Optional[Path] = CampaignsOpt,
):
    """Check campaign files and their templates; print every problem with file and line.

    Example: relance validate parcours-anglais
    """
    def body():
        s = _settings(campaigns=campaigns_dir)
        loaded = _load_campaigns(s, campaigns)
        if not loaded:
            raise Fail(f"no campaign files in {s.campaigns}/")
        for item in loaded:
            c = item.campaign
            console.print(f"[green]ok[/green] {item.path}: {len(c.stages)} stages, "
                          f"{len(c.messages)} messages, locales {', '.join(c.locales)}, "
                          f"control group {c.control_group:g}%")
    _main(body)


def _load_campaigns(s, refs: list[str] | None) -> list:
    """The campaigns named (ids or files), or every campaign; every problem of every file
    named is reported at once."""
    from relance.campaign import loader
    if not refs:
        return loader.load_all(s.campaigns)
    problems, loaded = [], []
    for ref in refs:
        try:
            loaded.append(loader.load(loader.find(s.campaigns, ref), campaigns_dir=s.campaigns))
        except CampaignError as exc:
            problems += exc.problems
    if problems:
        raise CampaignError(problems)
    return loaded


# -- plan ------------------------------------------------------------------------------------------

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
        when = _when(con, as_of)
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


# -- preview ---------------------------------------------------------------------------------------

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
            print_weeks(con, loaded, learner, _when(con, as_of))
            return
        result = previewing.preview(con, loaded, learner, when=_when(con, as_of), message_key=message)
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


# -- run -------------------------------------------------------------------------------------------

@app.command()
def run(
    campaigns: list[str] = typer.Argument(None, help="Campaign ids [default: all]."),
    as_of: Optional[str] = AsOfOpt,
    warehouse: Optional[Path] = WarehouseOpt,
    campaigns_dir: Optional[Path] = CampaignsOpt,
    outbox: Optional[Path] = OutboxOpt,
):
    """Run campaigns for real (a Prefect flow each): evaluate, plan, send, log.

    Example: relance run parcours-anglais
    """
    def body():
        from relance.campaign import loader
        s = _settings(warehouse, campaigns_dir, outbox)
        loaded = ([_load(s, ref) for ref in campaigns] if campaigns else loader.load_all(s.campaigns))
        con = _connect(s)
        when = _when(con, as_of)
        con.close()
        from flows.run_campaign import run_campaign
        results = []
        with _progress() as progress:
            bar = progress.add_task("campaigns", total=len(loaded))
            for item in loaded:
                progress.update(bar, description=f"{item.id}: evaluate, plan, send (Prefect flow)")
                results.append(run_campaign(item.id, when.isoformat(), str(s.warehouse),
                                            str(s.campaigns), str(s.outbox)))
                progress.advance(bar)
        _print_runs(results, s)
        _fail_on_failed_sends(results)
    _main(body)


def _fail_on_failed_sends(results: list[dict]) -> None:
    for r in results:
        if r.get("team_error"):
            err.print(f"[yellow]warning[/yellow] {r['campaign_id']}: the team channel did not "
                      f"get everything (the run itself went through):\n{r['team_error']}",
                      soft_wrap=True)
    uncertain = sum(r.get("uncertain_pending", 0) for r in results)
    if uncertain:
        err.print(f"[yellow]warning[/yellow] {uncertain} message{'s' if uncertain > 1 else ''} "
                  "handed to the provider got no answer and may have been accepted: they are "
                  "not resent. `relance uncertain list` shows them; confirm or resend each "
                  "once you have checked the provider's activity log.", soft_wrap=True)
    failed = sum(r["failed"] for r in results)
    if failed:
        reasons = {}
        for r in results:
            for reason, n in r["errors"].items():
                reasons[reason] = reasons.get(reason, 0) + n
        detail = ", ".join(f"{k}: {v}" for k, v in reasons.items())
        raise Fail(f"{failed} message{'s' if failed > 1 else ''} failed ({detail}); each is in "
                   "the ledger (`from messages where status = 'failed'`) with its error, and is "
                   "tried again by the next delivery, up to 3 attempts")


def _print_runs(results: list[dict], s: Settings) -> None:
    from relance.campaign.reasons import explain
    table = Table(title="Campaign runs", title_justify="left")
    for col, just in (("campaign", "left"), ("as of (UTC)", "left"), ("evaluated", "right"),
                      ("sent now", "right"), ("deferred", "right"), ("suppressed", "right"),
                      ("failed", "right"), ("follow-ups", "right")):
        table.add_column(col, justify=just)
    for r in results:
        t = r["totals"]
        table.add_row(r["campaign_id"], r["as_of"][:16].replace("T", " "), str(t["evaluated"]),
                      f"[green]{r['sent']}[/]", str(t["deferred"]), str(t["suppressed"]),
                      f"[red]{r['failed']}[/]" if r["failed"] else "0", str(r["follow_ups"]))
    console.print(table)
    reasons: dict[str, int] = {}
    for r in results:
        for outcome, _msg, reason, n in r["outcomes"]:
            if outcome == "suppressed":
                key = explain((reason or "").split(":")[0])
                reasons[key] = reasons.get(key, 0) + n
    if reasons:
        why = Table(title="Why some learners got nothing", title_justify="left")
        why.add_column("reason")
        why.add_column("learners", justify="right")
        for reason, n in sorted(reasons.items(), key=lambda kv: -kv[1]):
            why.add_row(reason, str(n))
        console.print(why)
    console.print("[dim]sent now: messages this run delivered, including earlier ones that "
                  "had become due; deferred: planned for later in the learner's day or week.[/dim]")
    console.print(f"Messages are in [bold]{s.outbox}/[/bold]; every run, decision and message "
                  f"is in [bold]{s.warehouse}[/bold].")


# -- deliver ---------------------------------------------------------------------------------------

@app.command()
def deliver(
    now: Optional[str] = typer.Option(None, "--now", help="Deliver what is due at this moment "
                                                          "(ISO 8601) [default: now]."),
    warehouse: Optional[Path] = WarehouseOpt,
    campaigns_dir: Optional[Path] = CampaignsOpt,
    outbox: Optional[Path] = OutboxOpt,
):
    """Send the planned messages that have become due (deferred by quiet hours, a send
    window or a recap hour). Scheduled hourly in prefect.yaml.

    Example: relance deliver
    """
    def body():
        s = _settings(warehouse, campaigns_dir, outbox)
        _connect(s).close()
        from flows.deliver_due import deliver_due
        with console.status("Delivering due messages…"):
            results = deliver_due(_as_of(now).isoformat(), str(s.warehouse), str(s.campaigns),
                                  str(s.outbox))
        table = Table(title="Delivered", title_justify="left")
        for col, just in (("campaign", "left"), ("sent", "right"), ("failed", "right"),
                          ("cancelled", "right"), ("uncertain", "right"),
                          ("why cancelled", "left")):
            table.add_column(col, justify=just)
        for r in results:
            if r.get("error"):
                continue
            why = ", ".join(f"{k} {v}" for k, v in r["cancel_reasons"].items())
            table.add_row(r["campaign_id"], str(r["sent"]), str(r["failed"]), str(r["cancelled"]),
                          str(r.get("uncertain_pending", 0)), why)
        console.print(table)
        problems = [r["error"] for r in results if r.get("error")]
        for problem in problems:
            err.print(f"[red]error[/red] {problem}", soft_wrap=True)
        _fail_on_failed_sends([r for r in results if not r.get("error")])
        if problems:
            raise typer.Exit(1)
    _main(body)


# -- sync ------------------------------------------------------------------------------------------

@app.command()
def sync(
    source: Optional[str] = typer.Argument(
        None, help="A source's name in the sources file, or a CSV export's mapping.yaml; "
                   "all sources when omitted."),
    sources: Optional[Path] = typer.Option(None, "--sources", envvar="RELANCE_SOURCES",
                                           help="The sources file [default: sources.yaml]."),
    warehouse: Optional[Path] = WarehouseOpt,
):
    """Load learners' progress from the sources into the warehouse (a Prefect flow); each
    sync loads only what is new.

    Example: relance sync moodle-prod   (or: relance sync · relance sync exports/mapping.yaml)
    """
    def body():
        s = _settings(warehouse)
        from flows.sync_progress import sync_progress
        with console.status(f"Loading {source or 'all sources'}…"):
            result = sync_progress(source, str(s.warehouse),
                                   str(sources) if sources else None)
        for load in result["loads"]:
            _print_sync(load)
    _main(body)


def _print_sync(result: dict) -> None:
    if not result["rows"]:
        console.print(f"{result['source']}: load {result['load_id']}: nothing new since the "
                      "last sync (every file or cursor unchanged)")
        return
    table = Table(title=f"{result['source']}: load {result['load_id']}", title_justify="left")
    for col, just in (("entity", "left"), ("rows", "right"), ("loaded", "right"),
                      ("quarantined", "right")):
        table.add_column(col, justify=just)
    for entity, n in result["rows"].items():
        q = result["quarantined"].get(entity, 0)
        table.add_row(entity, str(n), str(result["loaded"].get(entity, 0)),
                      f"[yellow]{q}[/]" if q else "0")
    console.print(table)
    from rich.markup import escape
    # a reason quotes the source's value ("malformed email: [/b]@x"): not markup
    for entity, reason, n in result["quarantine_reasons"]:
        console.print(f"  [yellow]quarantined[/] {entity}: {escape(reason)} ({n})", soft_wrap=True)
    from flows.sync_progress import more_reasons
    if more_reasons(result):
        console.print(f"  [yellow]quarantined[/] {escape(more_reasons(result))}", soft_wrap=True)
    for warning in result.get("warnings", []):
        console.print(f"  [yellow]skipped[/] {escape(warning)}", soft_wrap=True)


# -- demo ------------------------------------------------------------------------------------------

@app.command()
def demo(
    as_of: Optional[str] = typer.Option(None, "--as-of",
                                        help="The demo's 'now' [default: this week's Monday 09:00 Paris]."),
    warehouse: Optional[Path] = WarehouseOpt,
    campaigns_dir: Optional[Path] = CampaignsOpt,
    outbox: Optional[Path] = OutboxOpt,
):
    """Build the demo: a generated cohort of 2,000 learners loaded through the CSV
    connector, every campaign run for last week and this week, messages in the outbox.

    Example: relance demo
    """
    def body():
        import warehouse as wh
        s = _settings(warehouse, campaigns_dir, outbox)
        from relance.campaign import loader
        campaigns = loader.load_all(s.campaigns)  # a broken campaign stops the demo first
        outbox_dirs = [Path(s.outbox) / c.id for c in campaigns]
        if Path(s.warehouse).exists():
            con = wh.connect(s.warehouse)
            is_demo = wh.meta(con, "demo_as_of") is not None
            con.close()
            if not is_demo:
                raise Fail(f"{s.warehouse} holds data that is not the demo's: pass "
                           "--warehouse demo.duckdb --outbox demo-outbox (the demo rebuilds both)")
            Path(s.warehouse).unlink()
            Path(f"{s.warehouse}.wal").unlink(missing_ok=True)
            # the previous demo's messages, and only those campaigns' folders
            for folder in outbox_dirs:
                shutil.rmtree(folder, ignore_errors=True)
        elif any(Path(s.outbox).rglob("*.eml")):
            raise Fail(f"{s.outbox}/ already holds messages that are not the demo's: pass "
                       "--outbox demo-outbox")
        from flows.demo import demo as demo_flow
        with console.status("Generating the demo cohort, loading it, running the campaigns "
                            "(Prefect flows, in-process)…"):
            result = demo_flow(as_of=_as_of(as_of).isoformat() if as_of else None,
                               warehouse_path=str(s.warehouse), campaigns_dir=str(s.campaigns),
                               outbox_dir=str(s.outbox))
        _print_sync(result["sync"])
        this_week = [r for r in result["runs"] if r["as_of"] == result["as_of"]]
        console.print(f"\n[bold]This week[/bold] (as of {result['as_of'][:16]} UTC; last week's "
                      "runs are in the warehouse too):")
        for r in this_week:
            _print_stage_line(r)
        _print_runs(this_week, s)
        n_files = sum(1 for _ in Path(s.outbox).rglob("*.eml"))
        console.print(f"{n_files} .eml files in {s.outbox}/. Next, in the virtualenv "
                      "(`source .venv/bin/activate`): `relance plan parcours-anglais`, "
                      "`relance preview parcours-anglais <learner>`, or `duckdb -readonly "
                      f"{s.warehouse} \"from campaign_funnel\"`.")
    _main(body)


def _print_stage_line(r: dict) -> None:
    parts = ", ".join(f"{stage or '(none)'} {n}" for stage, n, _h in r["stages"])
    console.print(f"  {r['campaign_id']}: {parts}")


# -- schema ----------------------------------------------------------------------------------------

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


# -- deployments ---------------------------------------------------------------------------------

@app.command()
def deployments(
    check: bool = typer.Option(False, "--check", help="Change nothing; exit 1 with a diff if "
                               "prefect.yaml and the campaigns disagree."),
    prefect_yaml: Path = typer.Option(Path("prefect.yaml"), "--file", help="The prefect.yaml."),
    campaigns_dir: Optional[Path] = typer.Option(None, "--campaigns"),
):
    """Write each campaign's `run-<id>` deployment into prefect.yaml, at the campaign's own
    schedule and timezone (then `prefect deploy --all`).

    Example: relance deployments --check
    """
    from relance.runs import deployments as gen

    def body():
        s = _settings(campaigns=campaigns_dir)
        try:
            if check:
                diff = gen.drift(prefect_yaml, s.campaigns)
                if diff:
                    sys.stdout.write(diff)
                    err.print(f"[red]error[/red] {prefect_yaml} does not match {s.campaigns}/: "
                              "run `relance deployments` and commit the result", soft_wrap=True)
                    raise typer.Exit(1)
                console.print(f"{prefect_yaml} schedules every campaign of {s.campaigns}/")
                return
            changed = gen.write(prefect_yaml, s.campaigns)
        except gen.DeploymentsError as exc:
            raise Fail(str(exc)) from None
        for d in gen.campaign_deployments(s.campaigns):
            console.print(f"{d.name}: {d.run_at} {d.timezone} ({d.why})")
        console.print(f"wrote {prefect_yaml}" if changed else f"{prefect_yaml} was up to date")
    _main(body)
