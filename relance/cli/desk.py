"""`relance team ...` (the team file: assignments, daily lists, its schema, sign-in links)
and `relance desk` (the community manager's web desk). Registered on the main app by
relance/cli/__init__.py."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def register(cli) -> None:
    app, console, Fail = cli.app, cli.console, cli.Fail
    team_app = typer.Typer(help="The team file (campaigns/_team.yaml): who follows whom, "
                                "daily lists, the desk's sign-in links.", no_args_is_help=True)
    app.add_typer(team_app, name="team")

    def _team(s):
        from relance.team import teamfile
        path = teamfile.path_in(s.campaigns)
        if not path.exists():
            raise Fail(f"no team file at {path}: write one (see docs/desk.md), e.g. "
                       "`people: [{name: Claire Martin, email: claire@example.org}]`")
        return teamfile.load(path)

    @team_app.command("schema")
    def schema(output: Optional[Path] = typer.Option(None, "-o", "--output",
                                                     help="Write the JSON Schema here.")):
        """Print (or write) the team file's JSON Schema, for editors.

        Example: relance team schema -o relance/team/team.schema.json
        """
        from relance.team import teamfile
        text = teamfile.schema_text()
        if output:
            output.write_text(text, encoding="utf-8")
            console.print(f"wrote {output}")
        else:
            console.print(text, markup=False, highlight=False, soft_wrap=True)

    @team_app.command("assign")
    def assign_cmd(as_of: Optional[str] = cli.AsOfOpt,
                   warehouse: Optional[Path] = cli.WarehouseOpt,
                   campaigns_dir: Optional[Path] = cli.CampaignsOpt):
        """Assign active learners to the team file's people (kept from week to week) and
        print how many each follows.

        Example: relance team assign
        """
        def body():
            from relance.team import assign
            s = cli._settings(warehouse, campaigns_dir)
            team = _team(s)
            con = cli._connect(s)
            try:
                counts = assign.assign(con, team, cli._when(con, as_of))
            finally:
                con.close()
            for p in team.people:
                console.print(f"{p.name} <{p.email}> ({p.role}, capacity {p.capacity}/day): "
                              f"{counts.get(p.email, 0)} learners", markup=False)
            if counts.get(""):
                console.print(f"[yellow]warning[/yellow] {counts['']} active learners match no "
                              "rule and no column: add a rule (see `relance validate`)")
        cli._main(body)

    @team_app.command("lists")
    def lists_cmd(person: Optional[str] = typer.Option(None, "--person",
                                                       help="Only this person's list (e-mail)."),
                  as_of: Optional[str] = cli.AsOfOpt,
                  warehouse: Optional[Path] = cli.WarehouseOpt,
                  campaigns_dir: Optional[Path] = cli.CampaignsOpt):
        """Print each community manager's and tutor's list for their day: whom to contact
        and why, in priority order, cut at their capacity, in their language.

        Example: relance team lists --person claire.martin@example.org
        """
        def body():
            from relance.team import lists
            s = cli._settings(warehouse, campaigns_dir)
            team = _team(s)
            if person and team.person(person) is None:
                raise Fail(f"--person: {person!r} is not in the team file; the people are: "
                           + ", ".join(p.email for p in team.people))
            con = cli._connect(s)
            try:
                found = lists.compute(con, team, cli._when(con, as_of))
            finally:
                con.close()
            for email, daily in found.items():
                if person and email != person.strip().lower():
                    continue
                subject, text = lists.render(daily, team)
                console.rule(f"{daily.name} <{email}>", style="dim")
                console.print(subject, style="bold", markup=False, soft_wrap=True)
                console.print(text, markup=False, soft_wrap=True)
        cli._main(body)

    @team_app.command("send-lists")
    def send_lists_cmd(now: Optional[str] = typer.Option(
                           None, "--now", help="Send what is due at this moment (ISO 8601) "
                                               "[default: the clock]."),
                       warehouse: Optional[Path] = cli.WarehouseOpt,
                       campaigns_dir: Optional[Path] = cli.CampaignsOpt,
                       outbox: Optional[Path] = cli.OutboxOpt):
        """Send each person whose working day has begun their list for today, by mail and/or
        chat (the team file's `lists:`), once per person and day (the ledger). Run it every
        hour (the `team-lists` deployment does).

        Example: relance team send-lists
        """
        def body():
            from relance.desk.server import links_for
            from relance.team import send
            s = cli._settings(warehouse, campaigns_dir, outbox)
            team = _team(s)
            con = cli._connect(s)
            try:
                report = send.send_due(con, team, now=cli._as_of(now) if now else None,
                                       outbox_dir=str(s.outbox), link_for=links_for(team))
            finally:
                con.close()
            for item in report.sent:
                console.print(f"[green]sent[/green] {item}", soft_wrap=True)
            for item in report.uncertain:
                console.print(f"[yellow]uncertain[/yellow] {item}: see `relance uncertain list`",
                              soft_wrap=True)
            for item in report.failed:
                cli.err.print(f"[red]failed[/red] {item}", soft_wrap=True, markup=False)
            if not (report.sent or report.failed or report.uncertain):
                console.print("nothing due: every list due today has gone, or no one's day "
                              "has started yet")
            if report.failed:
                raise typer.Exit(cli.EXIT_FAILED)
        cli._main(body)

    @team_app.command("link")
    def link_cmd(email: str = typer.Argument(..., help="The person's e-mail (team file)."),
                 url: Optional[str] = typer.Option(None, "--url", help="The desk's address "
                                                   "[default: the team file's desk_url]."),
                 hours: float = typer.Option(72, help="How long the link works."),
                 campaigns_dir: Optional[Path] = cli.CampaignsOpt):
        """Print a signed sign-in link to the desk for one person (RELANCE_DESK_SECRET).

        Example: relance team link claire.martin@example.org
        """
        def body():
            from relance.desk import auth, server
            s = cli._settings(None, campaigns_dir)
            team = _team(s)
            if team.person(email) is None:
                raise Fail(f"{email!r} is not in the team file; the people are: "
                           + ", ".join(p.email for p in team.people))
            try:
                secret = auth.secret_from_env()
            except auth.AuthError as exc:
                raise Fail(str(exc)) from None
            base = url or team.desk_url or "http://127.0.0.1:8010"
            console.print(server.login_link(base, secret, email, hours), markup=False,
                          soft_wrap=True)
        cli._main(body)

    @app.command("desk")
    def desk(host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
             port: int = typer.Option(8010, help="Port."),
             busy_wait: float = typer.Option(5.0, help="Seconds to wait for the warehouse "
                                                       "while a delivery holds it."),
             now: Optional[str] = typer.Option(
                 None, "--now", help="Judge every request as of this moment (ISO 8601) "
                                     "instead of the clock."),
             warehouse: Optional[Path] = cli.WarehouseOpt,
             campaigns_dir: Optional[Path] = cli.CampaignsOpt):
        """Serve the community manager's desk: today's list, each learner's timeline,
        contacts, outcomes and snoozes. Sign-in only by signed link (`relance team link`,
        RELANCE_DESK_SECRET); never open.

        Example: relance desk --port 8010
        """
        def body():
            from relance.desk import auth, server
            from relance.feedback.http_limits import Limits
            s = cli._settings(warehouse, campaigns_dir)
            team = _team(s)
            try:
                secret = auth.secret_from_env()
            except auth.AuthError as exc:
                raise Fail(str(exc)) from None
            moment = cli._now(now)
            cli._connect(s).close()
            server.serve(s.warehouse, team, host, port, wait=busy_wait, now=moment,
                         secret=secret, limits=Limits.from_settings(s),
                         on_ready=lambda p: console.print(
                             f"desk on http://{host}:{p}/ (sign in with `relance team link "
                             "<email>`); Ctrl-C to stop", soft_wrap=True))
        cli._main(body)
