"""`relance preview-announcement`: the team channel's announcement of a campaign's run,
rendered exactly as it would be posted, without posting (registered on the main app by
relance/cli/__init__.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer


def register(cli) -> None:
    """Add `preview-announcement` to the `relance` app of module `cli` (relance.cli)."""
    app, console, Fail = cli.app, cli.console, cli.Fail

    @app.command("preview-announcement")
    def preview_announcement(
        campaign: str = typer.Argument(..., help="Campaign id or file."),
        run_id: Optional[str] = typer.Option(None, "--run", help="The run whose week it "
                                             "announces [default: the campaign's latest run]."),
        as_json: bool = typer.Option(False, "--json", help="Print the webhook's JSON body."),
        warehouse: Optional[Path] = cli.WarehouseOpt,
        campaigns_dir: Optional[Path] = cli.CampaignsOpt,
    ):
        """Render the announcement the team's channel gets after a run. Posts nothing.

        Example: relance preview-announcement parcours-anglais
        """
        def body():
            from relance.team import announcement
            from relance.channels.webhook import payload
            s = cli._settings(warehouse, campaigns_dir)
            loaded = cli._load(s, campaign)
            team = loaded.campaign.team
            if team is None or team.announcement is None:
                raise Fail(f"{loaded.id} has no announcement: add `announcement: <folder>` to "
                           "its `team:` block (see docs/delivery.md)")
            con = cli._connect(s)
            rows = con.execute(
                "select run_id, as_of from campaign_runs where campaign_id = ? "
                "and (run_id = ? or ? is null) order by as_of desc, started_at desc limit 1",
                [loaded.id, run_id, run_id]).fetchall()
            if not rows:
                raise Fail(f"no run {run_id!r} of {loaded.id}" if run_id else
                           f"{loaded.id} has not run yet: `relance run {loaded.id}` first")
            try:
                title, lines = announcement.render(
                    loaded, announcement.context(con, loaded, rows[0][0]))
            except announcement.AnnouncementError as exc:
                raise Fail(str(exc)) from None
            if as_json:
                console.print_json(json.dumps(payload(team.format, title, lines, markup=True),
                                              ensure_ascii=False))
                return
            console.print(f"[dim]run {rows[0][0]} (as of {rows[0][1]:%Y-%m-%d %H:%M} UTC), "
                          f"{team.format} format; nothing is posted[/dim]")
            console.print(title, markup=False, style="bold", soft_wrap=True)
            console.print("\n".join(lines), markup=False, soft_wrap=True)
        cli._main(body)
