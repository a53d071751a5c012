"""The operator's commands: `run` campaigns, `deliver` what is due, `demo` (the whole job on a
generated cohort) and `deployments` (each campaign's schedule into prefect.yaml)."""

from __future__ import annotations

import shutil
import sys
from contextlib import closing, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer
from rich.table import Table

from relance.cli.main import (EXIT_ERROR, EXIT_FAILED, EXIT_UNCERTAIN, SEND_EXIT_HELP,
                              AsOfOpt, CampaignsOpt, Fail, OutboxOpt, WarehouseOpt, _as_of,
                              _connect, _load, _main, _progress, _settings, _when, app,
                              console, err)
from relance.cli.sources import _print_sync

if TYPE_CHECKING:
    from relance.settings import Settings


@app.command(epilog=SEND_EXIT_HELP)
def run(
    campaigns: list[str] = typer.Argument(None, help="Campaign ids [default: all]."),
    as_of: Optional[str] = AsOfOpt,
    warehouse: Optional[Path] = WarehouseOpt,
    campaigns_dir: Optional[Path] = CampaignsOpt,
    outbox: Optional[Path] = OutboxOpt,
):
    """Run campaigns for real: evaluate, plan, send, log. With a Prefect server configured
    (PREFECT_API_URL, or in the active Prefect profile), each is a flow run on it;
    otherwise the same steps run in this process, recording the same rows.

    Example: relance run parcours-anglais
    """
    def body():
        with _progress() as progress:
            # on screen from the start: loading and checking the campaigns takes a moment
            bar = progress.add_task("loading the campaigns", total=len(campaigns or []) or None)
            from relance.campaign import loader
            s = _settings(warehouse, campaigns_dir, outbox)
            loaded = ([_load(s, ref) for ref in campaigns] if campaigns
                      else loader.load_all(s.campaigns))
            progress.update(bar, description="opening the warehouse", total=len(loaded))
            con = _connect(s)
            # each campaign's own: on the demo's warehouse, one the demo ran goes to next week
            moments = {item.id: _when(con, as_of, item.id) for item in loaded}
            from flows._common import shared_server
            if shared_server():
                con.close()                 # the flows' tasks open it in their turn
                results = _run_flows(loaded, moments, s, progress, bar)
            else:
                with closing(con):
                    results = _run_here(con, loaded, moments, s, progress, bar)
        _print_runs(results, s)
        _exit_for_sends(results)
    _main(body)


def _run_flows(loaded, moments, s: Settings, progress, bar) -> list[dict]:
    """Each campaign's run as a flow run on the configured Prefect server."""
    from flows._common import result_of
    from flows.run_campaign import run_campaign
    results = []
    for item in loaded:
        progress.update(bar, description=f"{item.id}: evaluate, plan, send (Prefect flow)")
        # the flow run ends Failed when messages failed or are uncertain; its state holds
        # what it did all the same
        results.append(result_of(run_campaign(
            item.id, moments[item.id].isoformat(), str(s.warehouse), str(s.campaigns),
            str(s.outbox), return_state=True)))
        progress.advance(bar)
    return results


def _run_here(con, loaded, moments, s: Settings, progress, bar) -> list[dict]:
    """Each campaign's run in this process: the flow's steps (relance/runs/jobs.py), on
    this command's connection, which keeps the warehouse ours from plan to delivery."""
    from relance.runs import jobs
    results = []
    for item in loaded:
        def step(what: str, campaign=item.id) -> None:
            progress.update(bar, description=f"{campaign}: {what}")

        def batch(done: int, total: int, campaign=item.id) -> None:
            progress.update(bar, description=f"{campaign}: sent {done} of {total}")
        results.append(jobs.run_campaign(con, item, moments[item.id], str(s.outbox),
                                         on_step=step, on_batch=batch))
        progress.advance(bar)
    return results


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def _send_status(results: list[dict]) -> int:
    """Say what needs doing about the messages that did not go; the exit status it calls
    for (main.EXIT_*): uncertain messages before failed ones, as they need a person."""
    for r in results:
        if r.get("team_error"):
            err.print(f"[yellow]warning[/yellow] {r['campaign_id']}: the team channel did not "
                      f"get everything (the run itself went through):\n{r['team_error']}",
                      soft_wrap=True)
    status = 0
    failed = sum(r["failed"] for r in results)
    if failed:
        reasons = {}
        for r in results:
            for reason, n in r["errors"].items():
                reasons[reason] = reasons.get(reason, 0) + n
        detail = ", ".join(f"{k}: {v}" for k, v in reasons.items())
        err.print(f"[red]error[/red] {_plural(failed, 'message')} failed ({detail}); each is in "
                  "the ledger (`from messages where status = 'failed'`) with its error, and is "
                  "tried again by the next delivery, up to 3 attempts", soft_wrap=True)
        status = EXIT_FAILED
    uncertain = {r["campaign_id"]: r["uncertain"] for r in results if r.get("uncertain")}
    pending = sum(r.get("uncertain_pending", 0) for r in results)
    if uncertain:
        n = sum(uncertain.values())
        where = ", ".join(f"{c}: {k}" for c, k in uncertain.items())
        older = (f"; with those of earlier deliveries, {pending} are waiting"
                 if pending > n else "")
        err.print(
            f"[red]error[/red] {_plural(n, 'message')} ({where}) went to the provider and got "
            f"no answer: it may have accepted them, so they are not sent again{older}. "
            "`relance uncertain list` shows them; check the provider's activity log (SendGrid: "
            "Activity, custom argument relance_message_id), then `relance uncertain confirm` "
            "those it accepted and `relance uncertain resend` the others (message ids, --file, "
            "--attempt or --all).", soft_wrap=True)
        status = EXIT_UNCERTAIN
    elif pending:
        err.print(f"[yellow]warning[/yellow] {_plural(pending, 'message')} left uncertain by "
                  "earlier deliveries still wait for a person: `relance uncertain list`, then "
                  "`relance uncertain confirm` or `relance uncertain resend`.", soft_wrap=True)
    return status


def _exit_for_sends(results: list[dict]) -> None:
    status = _send_status(results)
    if status:
        raise typer.Exit(status)


def _print_runs(results: list[dict], s: Settings) -> None:
    from relance.campaign.reasons import explain
    table = Table(title="Campaign runs", title_justify="left")
    for col, just in (("campaign", "left"), ("as of (UTC)", "left"), ("evaluated", "right"),
                      ("sent now", "right"), ("deferred", "right"), ("suppressed", "right"),
                      ("failed", "right"), ("uncertain", "right"), ("follow-ups", "right")):
        table.add_column(col, justify=just)
    for r in results:
        t = r["totals"]
        uncertain = r.get("uncertain", 0)
        table.add_row(r["campaign_id"], r["as_of"][:16].replace("T", " "), str(t["evaluated"]),
                      f"[green]{r['sent']}[/]", str(t["deferred"]), str(t["suppressed"]),
                      f"[red]{r['failed']}[/]" if r["failed"] else "0",
                      f"[red]{uncertain}[/]" if uncertain else "0", str(r["follow_ups"]))
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
                  "had become due; deferred: planned for later in the learner's day or week; "
                  "uncertain: handed to the provider, no answer.[/dim]")
    for r in results:
        # where this campaign's channel put them: the outbox's folder, the provider
        sent_to = r.get("sent_to") or f"in {Path(s.outbox) / r['campaign_id']}/"
        line = f"{r['campaign_id']}: {_plural(r['sent'], 'message')} {sent_to}"
        unsent = [f"{r[k]} {k}" for k in ("failed", "uncertain") if r.get(k)]
        if unsent:
            line += f" ({', '.join(unsent)})"
        if r.get("team_format") and not r.get("team_error"):
            line += f"; {_plural(r['team_posted'], 'post')} to the team's {r['team_format']} channel"
        console.print(line + ".", soft_wrap=True)
    console.print(f"Every run, decision and message is in [bold]{s.warehouse}[/bold].")


@app.command(epilog=SEND_EXIT_HELP)
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
        with console.status("Delivering due messages…") as status:
            s = _settings(warehouse, campaigns_dir, outbox)
            when = _as_of(now)
            con = _connect(s)
            from flows._common import shared_server
            if shared_server():
                con.close()                 # the flow's tasks open it in their turn
                from flows._common import result_of
                from flows.deliver_due import deliver_due
                results = result_of(deliver_due(when.isoformat(), str(s.warehouse),
                                                str(s.campaigns), str(s.outbox),
                                                return_state=True))
            else:
                # the flow's steps (relance/runs/jobs.py), in this process
                from relance.runs import jobs
                with closing(con):
                    results = jobs.deliver_every_campaign(
                        s.campaigns, lambda loaded: jobs.deliver_campaign(con, loaded, when,
                                                                          str(s.outbox)),
                        lambda: nullcontext(con),
                        on_campaign=lambda c: status.update(f"Delivering due messages: {c}…"))
        table = Table(title="Delivered", title_justify="left")
        for col, just in (("campaign", "left"), ("sent", "right"), ("failed", "right"),
                          ("cancelled", "right"), ("uncertain", "right"),
                          ("why cancelled", "left"), ("waiting (send window)", "right")):
            table.add_column(col, justify=just)
        for r in results:
            if r.get("error"):
                continue
            why = ", ".join(f"{k} {v}" for k, v in r["cancel_reasons"].items())
            table.add_row(r["campaign_id"], str(r["sent"]), str(r["failed"]), str(r["cancelled"]),
                          str(r.get("uncertain", 0)), why,
                          str(sum(r.get("waiting", {}).values())))
        console.print(table)
        problems = [r["error"] for r in results if r.get("error")]
        for problem in problems:
            err.print(f"[red]error[/red] {problem}", soft_wrap=True)
        status = _send_status([r for r in results if not r.get("error")])
        if problems or status:
            raise typer.Exit(EXIT_ERROR if problems else status)
    _main(body)


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
        if wh.shared.is_shared(s.warehouse):
            # a shared database is not the demo's to drop: it builds on an empty one only
            con = _connect(s, must_exist=False)
            held = con.execute("select count(*) from learners").fetchall()[0][0]
            is_demo = wh.meta(con, "demo_as_of") is not None
            con.close()
            if held:
                what = "a demo" if is_demo else "data that is not the demo's"
                raise Fail(f"{wh.shared.shown(s.warehouse)} already holds {what} "
                           f"({held} learners): the demo builds its warehouse from nothing, and "
                           "does not empty a shared database. Give it an empty database "
                           "(createdb relance_demo; --warehouse 'postgres:... dbname=relance_demo')")
        elif Path(s.warehouse).exists():
            con = _connect(s)
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
        from flows._common import shared_server
        if shared_server():
            from flows.demo import demo as demo_flow
            with console.status("Generating the demo cohort, loading it, running the campaigns "
                                "(Prefect flows)…"):
                result = demo_flow(as_of=_as_of(as_of).isoformat() if as_of else None,
                                   warehouse_path=str(s.warehouse),
                                   campaigns_dir=str(s.campaigns), outbox_dir=str(s.outbox))
        else:
            with console.status("Generating the demo cohort…") as status:
                result = _demo_here(s, _as_of(as_of) if as_of else None, campaigns,
                                    lambda what: status.update(what))
        _print_sync(result["sync"])
        this_week = [r for r in result["runs"] if r["as_of"] == result["as_of"]]
        console.print(f"\n[bold]This week[/bold] (as of {result['as_of'][:16]} UTC; last week's "
                      "runs are in the warehouse too):")
        for r in this_week:
            _print_stage_line(r)
        _print_runs(this_week, s)
        n_files = sum(1 for _ in Path(s.outbox).rglob("*.eml"))
        console.print(f"{n_files} .eml files in {s.outbox}/.")
        if result.get("sources"):
            console.print(f"Sources file: {result['sources']}: `relance sync` and the deployed "
                          "sync-progress load it.")
        else:
            console.print(f"Sources file: {s.sources} is yours, left as it is (`relance sync` "
                          "and the deployed sync-progress load what it names, not the demo).")
        next_steps = ", ".join(f"`{command}`{why}" for command, why in _tour_hints(s, campaigns))
        # the analysts' views live in each relance connection's memory on a shared warehouse
        views = (f"`python -c \"import warehouse; warehouse.connect('{wh.shared.shown(s.warehouse)}')"
                 f".sql('from campaign_funnel').show()\"`" if wh.shared.is_shared(s.warehouse)
                 else f"`duckdb -readonly {s.warehouse} \"from campaign_funnel\"`")
        console.print(f"Next, in the virtualenv (`source .venv/bin/activate`): {next_steps}, or "
                      f"{views}.")
    _main(body)


def _demo_here(s: Settings, as_of, campaigns: list, say) -> dict:
    """The demo flow's steps (flows/demo.py) in this process, on one connection, without a
    Prefect server: the same export, load, runs and deliveries, the same rows."""
    from datetime import timedelta

    import warehouse as wh
    from connectors.loads import load_one
    from relance import demo as cohort
    from relance.runs import jobs
    when = as_of or cohort.default_as_of()
    mapping = cohort.generate(Path(s.workdir) / "demo-export", as_of=when)
    say("Loading the demo's export (CSV connector)…")
    con = _connect(s, must_exist=False)
    with closing(con):
        synced = load_one(con, str(mapping), str(s.sources))
        sources = cohort.write_sources(s.sources, mapping)
        wh.set_meta(con, "demo_as_of", when.isoformat())
        runs = []
        for back in (1, 0):
            monday = when - timedelta(weeks=back)
            for loaded in campaigns:
                say(f"Running {loaded.id} as of {monday:%Y-%m-%d}…")
                runs.append(jobs.run_campaign(
                    con, loaded, monday, str(s.outbox),
                    on_step=lambda what, c=loaded.id, m=monday: say(f"{c} ({m:%Y-%m-%d}): {what}…")))
            if back:
                # as the hourly deliver-due would have, by the end of that Monday everywhere
                moment = monday + timedelta(hours=18)
                say(f"Delivering what was due on {monday:%Y-%m-%d}…")
                jobs.deliver_every_campaign(
                    s.campaigns, lambda loaded, m=moment: jobs.deliver_campaign(
                        con, loaded, m, str(s.outbox)),
                    lambda: nullcontext(con))
    return {"as_of": when.isoformat(), "sync": synced, "sources": sources, "runs": runs}


def _tour_hints(s: Settings, campaigns: list) -> list[tuple[str, str]]:
    """What to try next on the demo: the plan of a campaign's next run, and the preview of
    a learner that run really sends something to (the demo's data decides who that is)."""
    from relance import engine
    from relance.cli.main import demo_moment
    if not campaigns:
        return []
    loaded = next((c for c in campaigns if c.id == "parcours-anglais"), campaigns[0])
    con = _connect(s)
    try:
        when, _ = demo_moment(con, loaded.id)
        engine.evaluate(con, loaded, when)
        learner = con.execute(
            "select learner_id, message_key from eval_decisions where outcome in "
            "('planned', 'deferred') order by outcome <> 'planned', learner_id limit 1").fetchall()
    finally:
        con.close()
    hints = [(f"relance plan {loaded.id}", f" (its next run, {when:%Y-%m-%d})")]
    if learner:
        hints.append((f"relance preview {loaded.id} {learner[0][0]}",
                      f" (who gets {learner[0][1]} then)"))
    return hints


def _print_stage_line(r: dict) -> None:
    parts = ", ".join(f"{stage or '(none)'} {n}" for stage, n, _h in r["stages"])
    console.print(f"  {r['campaign_id']}: {parts}")


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
