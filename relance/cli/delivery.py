"""CLI commands for delivery through providers: uncertain messages, provider events,
unsubscribes, and the small receiver for SendGrid's Event Webhook and one-click links.

Registered on the main `relance` app by `relance/cli/__init__.py`."""

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

    events_app = typer.Typer(help="What providers report after sending (SendGrid events).",
                             no_args_is_help=True)
    app.add_typer(events_app, name="events")

    @events_app.command("import")
    def events_import(file: Path = typer.Argument(..., help="SendGrid events (JSON)."),
                      warehouse: Optional[Path] = WarehouseOpt):
        """Import SendGrid Event Webhook payloads saved to a file: bounces, spam reports and
        unsubscribes stop further mail at once.

        Example: relance events import sendgrid-events.json
        """
        def body():
            from relance.feedback import events
            con = cli._connect(cli._settings(warehouse))
            try:
                report = events.import_file(con, file)
            except events.EventError as exc:
                raise Fail(str(exc)) from None
            kinds = ", ".join(f"{k} {v}" for k, v in sorted(report.by_type.items()))
            console.print(f"{report.received} events ({kinds}): {report.stored} new, "
                          f"{report.unmatched} not from relance; {report.suppressed} addresses "
                          f"suppressed; {report.confirmed} uncertain messages confirmed sent")
        cli._main(body)

    unsub_app = typer.Typer(help="Learners who asked for no more mail.", no_args_is_help=True)
    app.add_typer(unsub_app, name="unsubscribe")

    @unsub_app.command("import")
    def unsubscribe_import(file: Path = typer.Argument(..., help="CSV: email or learner_id, "
                                                                 "optional campaign_id."),
                           warehouse: Optional[Path] = WarehouseOpt):
        """Import unsubscribes (from another tool, a form, a mailbox): those learners get
        nothing more from that campaign (empty campaign_id: from any).

        Example: relance unsubscribe import unsubscribes.csv
        """
        def body():
            from relance.feedback import unsubscribe
            con = cli._connect(cli._settings(warehouse))
            try:
                n, problems = unsubscribe.import_file(con, file)
            except unsubscribe.UnsubscribeError as exc:
                raise Fail(str(exc)) from None
            console.print(f"{n} unsubscribes recorded")
            for p in problems:
                cli.err.print(f"[red]error[/red] {p}", soft_wrap=True)
            if problems:
                raise Fail(f"{len(problems)} rows skipped (above); fix them and import the file "
                           "again (rows already recorded are not duplicated)")
        cli._main(body)

    def _limit(name: str, text: str):
        """An option of `serve` whose default is the setting RELANCE_SERVE_<NAME>."""
        from relance.settings import Settings
        default = Settings.model_fields[f"serve_{name}"].default
        return typer.Option(None, help=f"{text} (RELANCE_SERVE_{name.upper()}, default {default}).")

    @app.command()
    def serve(host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
              port: int = typer.Option(8000, help="Port."),
              busy_wait: float = typer.Option(5.0, help="Seconds to wait for the warehouse "
                                                        "while a delivery holds it."),
              max_events_bytes: Optional[int] = _limit(
                  "max_events_bytes", "Largest event batch read, in bytes (bigger: 413)"),
              max_form_bytes: Optional[int] = _limit(
                  "max_form_bytes", "Largest unsubscribe form read, in bytes"),
              max_inbound_bytes: Optional[int] = _limit(
                  "max_inbound_bytes", "Largest reply (Inbound Parse post) read, in bytes"),
              timeout_seconds: Optional[float] = _limit(
                  "timeout_seconds", "Seconds a client has to send its whole request (then 408)"),
              workers: Optional[int] = _limit("workers", "Requests handled at once"),
              max_connections: Optional[int] = _limit(
                  "max_connections", "Connections held at once, handled or waiting (beyond: 503)"),
              signature_window_seconds: Optional[float] = _limit(
                  "signature_window_seconds",
                  "Seconds a signed event batch is accepted before or after it was signed"),
              now: Optional[str] = typer.Option(
                  None, "--now", help="Judge every request as of this moment (ISO 8601) "
                                      "instead of the clock, e.g. to replay saved requests."),
              warehouse: Optional[Path] = WarehouseOpt):
        """Receive SendGrid's Event Webhook (POST /events/sendgrid, signed), one-click
        unsubscribes (/unsubscribe) and learners' replies (POST /inbound/sendgrid, SendGrid's
        Inbound Parse) until stopped.

        Example: relance serve --port 8000
        """
        def body():
            from relance.feedback import receiver
            from relance.feedback.http_limits import Limits
            from relance.replies.inbound_parse import Route
            s = cli._settings(warehouse)
            try:
                limits = Limits.from_settings(
                    s, max_events_bytes=max_events_bytes, max_form_bytes=max_form_bytes,
                    timeout_seconds=timeout_seconds, workers=workers, max_connections=max_connections,
                    signature_window_seconds=signature_window_seconds,
                    max_inbound_bytes=max_inbound_bytes)
            except ValueError as exc:
                raise Fail(str(exc)) from None
            moment = cli._now(now)
            cli._connect(s).close()
            receiver.serve(s.warehouse, host, port, wait=busy_wait, limits=limits, now=moment,
                           inbound=Route(s.campaigns),
                           on_ready=lambda p: console.print(
                               f"listening on http://{host}:{p} (events: /events/sendgrid, "
                               "unsubscribe: /unsubscribe, replies: /inbound/sendgrid); "
                               "Ctrl-C to stop", soft_wrap=True))
        cli._main(body)
