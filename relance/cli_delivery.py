"""CLI commands for delivery through providers: uncertain messages, provider events,
unsubscribes, and the small receiver for SendGrid's Event Webhook and one-click links.

Registered on the main `relance` app by `relance/cli.py` (its last lines)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table


def register(cli) -> None:
    """Add these commands to the `relance` app of module `cli` (relance.cli)."""
    app, console, Fail = cli.app, cli.console, cli.Fail
    WarehouseOpt = cli.WarehouseOpt

    uncertain_app = typer.Typer(help="Messages whose fate is unknown (a provider that never "
                                     "answered): list them, confirm them, or resend them.",
                                no_args_is_help=True)
    app.add_typer(uncertain_app, name="uncertain")

    def _ids(ids: list[str] | None, file: Path | None, attempt: str | None, all_: bool, con) -> list[str]:
        chosen = list(ids or [])
        if file:
            chosen += [line.strip() for line in file.read_text(encoding="utf-8").splitlines()
                       if line.strip() and not line.startswith("#")]
        if attempt:
            chosen += [r[0] for r in con.execute(
                "select message_id from send_attempt_messages where attempt_id = ?",
                [attempt]).fetchall()]
        if all_:
            chosen += [r[0] for r in con.execute(
                "select message_id from messages where status = 'uncertain'").fetchall()]
        if not chosen:
            raise Fail("name the messages: message ids, --file FILE (one id a line), "
                       "--attempt ATTEMPT_ID, or --all")
        return chosen

    @uncertain_app.command("list")
    def uncertain_list(campaign: Optional[str] = typer.Option(None, "--campaign", "-c"),
                       csv: Optional[Path] = typer.Option(None, "--csv", help="Also write them here."),
                       warehouse: Optional[Path] = WarehouseOpt):
        """List the uncertain messages, with the attempt that left them so.

        Example: relance uncertain list --csv uncertain.csv
        """
        def body():
            from relance.delivery import uncertain
            con = cli._connect(cli._settings(warehouse))
            rows = uncertain.pending(con, campaign)
            table = Table(title=f"{len(rows)} uncertain messages", title_justify="left")
            for col in ("message", "campaign", "learner", "to", "channel", "why"):
                table.add_column(col)
            for mid, cid, lid, to, channel, _planned, error in rows[:200]:
                table.add_row(mid, cid, lid, to or "", channel, error or "")
            console.print(table)
            if len(rows) > 200:
                console.print(f"… and {len(rows) - 200} more (use --csv)")
            if csv:
                import csv as csvlib
                with csv.open("w", newline="", encoding="utf-8") as fh:
                    w = csvlib.writer(fh)
                    w.writerow(["message_id", "campaign_id", "learner_id", "to_email", "channel",
                                "planned_at", "why"])
                    w.writerows(rows)
                console.print(f"written to {csv}")
            if rows:
                console.print("Check them in the provider's activity log (SendGrid: Activity, "
                              "search by the custom argument relance_message_id), then "
                              "`relance uncertain confirm` those it accepted and "
                              "`relance uncertain resend` the others.")
        cli._main(body)

    def _resolve(ids, file, attempt, all_, warehouse, accepted: bool) -> None:
        def body():
            from relance.delivery import uncertain
            con = cli._connect(cli._settings(warehouse))
            n = uncertain.resolve(con, _ids(ids, file, attempt, all_, con), accepted=accepted,
                                  by="relance uncertain " + ("confirm" if accepted else "resend"))
            console.print(f"{n} marked sent" if accepted else
                          f"{n} planned again: the next delivery sends them")
        cli._main(body)

    IdsArg = typer.Argument(None, help="Message ids.")
    FileOpt = typer.Option(None, "--file", help="A file of message ids, one a line.")
    AttemptOpt = typer.Option(None, "--attempt", help="Every message of this send attempt.")
    AllOpt = typer.Option(False, "--all", help="Every uncertain message.")

    @uncertain_app.command("confirm")
    def uncertain_confirm(ids: list[str] = IdsArg, file: Optional[Path] = FileOpt,
                          attempt: Optional[str] = AttemptOpt, all_: bool = AllOpt,
                          warehouse: Optional[Path] = WarehouseOpt):
        """Mark uncertain messages sent: the provider did accept them.

        Example: relance uncertain confirm --file accepted.txt
        """
        _resolve(ids, file, attempt, all_, warehouse, True)

    @uncertain_app.command("resend")
    def uncertain_resend(ids: list[str] = IdsArg, file: Optional[Path] = FileOpt,
                         attempt: Optional[str] = AttemptOpt, all_: bool = AllOpt,
                         warehouse: Optional[Path] = WarehouseOpt):
        """Plan uncertain messages again: the provider did not accept them.

        Example: relance uncertain resend --attempt test-20261123T080000-1a2b3c4d
        """
        _resolve(ids, file, attempt, all_, warehouse, False)
