"""The managers' digests on the command line: what `relance plan` shows of them, and
`relance preview-digest` (registered on the main app by relance/cli/__init__.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from relance.campaign.reasons import explain


def print_plan(console, ev, show: int = 10) -> None:
    rows = ev.con.execute(
        "select manager_email, locale, tz, week, n_listed, n_withheld, outcome, reason, "
        "not_before from eval_digests order by outcome, manager_email").fetchall()
    if not rows:
        console.print("Managers' digests: no learner of the audience has a manager in a "
                      "digest group")
        return
    table = Table(title=f"Managers' digests ({len(rows)} managers)", title_justify="left")
    for col, just in (("manager", "left"), ("locale", "left"), ("week", "left"),
                      ("team listed", "right"), ("control group", "right"),
                      ("outcome", "left"), ("when / why", "left")):
        table.add_column(col, justify=just)
    label = {"planned": "[green]send now[/]", "deferred": "[cyan]send later[/]",
             "suppressed": "[yellow]suppressed[/]"}
    for email, locale, tz, week, listed, withheld, outcome, reason, not_before in rows[:show]:
        when = (f"{not_before:%a %d %b %H:%M} UTC" if outcome == "deferred" and not_before
                else explain(reason))
        table.add_row(email, locale, week, str(listed), str(withheld), label[outcome], when)
    console.print(table)
    if len(rows) > show:
        console.print(f"[dim]… and {len(rows) - show} more managers[/dim]")


def register(cli) -> None:
    """Add `preview-digest` to the `relance` app of module `cli` (relance.cli)."""
    app, console, Fail = cli.app, cli.console, cli.Fail

    @app.command("preview-digest")
    def preview_digest(
        campaign: str = typer.Argument(..., help="Campaign id or file."),
        manager: str = typer.Argument(..., help="The manager's e-mail address."),
        as_of: Optional[str] = cli.AsOfOpt,
        html: Optional[Path] = typer.Option(None, "--html", help="Also write the HTML body here."),
        warehouse: Optional[Path] = cli.WarehouseOpt,
        campaigns_dir: Optional[Path] = cli.CampaignsOpt,
    ):
        """Render the weekly digest a manager would get (subject, text, HTML). Sends nothing.

        Example: relance preview-digest parcours-anglais claire.morel@atelier-lumiere.example
        """
        def body():
            from relance.workbench.digest_preview import preview
            s = cli._settings(warehouse, campaigns_dir)
            loaded = cli._load(s, campaign)
            con = cli._connect(s)
            out, note = preview(con, loaded, manager, when=cli._when(con, as_of, loaded.id))
            console.print(f"[dim]{note}[/dim]")
            console.print(f"[bold]To:[/bold] {out.to_email}")
            console.print(f"[bold]From:[/bold] {out.from_name} <{out.from_email}>")
            console.print(f"[bold]Subject:[/bold] {out.subject}\n")
            console.print(out.text, markup=False, soft_wrap=True)
            if html:
                if not out.html:
                    raise Fail("this digest has no body.html template")
                html.parent.mkdir(parents=True, exist_ok=True)
                html.write_text(out.html, encoding="utf-8")
                console.print(f"[dim]HTML written to {html}[/dim]")
        cli._main(body)
