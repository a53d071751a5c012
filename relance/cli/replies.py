"""`relance replies fetch|list`: learners' replies read from the IMAP mailbox, and what was
stored (registered on the main app by relance/cli/__init__.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table


def register(cli) -> None:
    """Add the `replies` group to the `relance` app of module `cli` (relance.cli)."""
    app, console, Fail = cli.app, cli.console, cli.Fail
    replies_app = typer.Typer(help="Learners' replies: read them from the IMAP mailbox, list "
                                   "them (docs/replies.md).", no_args_is_help=True)
    app.add_typer(replies_app, name="replies")

    @replies_app.command("fetch")
    def fetch(now: Optional[str] = typer.Option(
                  None, "--now", help="The moment the replies are read (ISO 8601; default: "
                                      "the clock)."),
              warehouse: Optional[Path] = cli.WarehouseOpt,
              campaigns_dir: Optional[Path] = cli.CampaignsOpt):
        """Read the replies mailbox's new mail, each mail once (RELANCE_IMAP_*).

        Each reply is matched, sorted, routed and acknowledged; the acknowledgements and
        forwards go out with the next `relance deliver`, replies routed to `team` are posted
        to the team's channel now. Set RELANCE_IMAP_HOST, RELANCE_IMAP_USER and
        RELANCE_IMAP_PASSWORD first.

        Example: relance replies fetch
        """
        def body():
            from relance import clock
            from relance.replies import imap
            s = cli._settings(warehouse, campaigns_dir)
            moment = cli._now(now)
            from relance.replies import team
            con = cli._connect(s)
            try:
                with clock.at(moment):
                    report = imap.fetch(con, s.campaigns)
                    posted = team.post_pending(con, s.campaigns)
            except imap.ImapError as exc:
                raise Fail(str(exc)) from None
            finally:
                con.close()
            detail = ", ".join(f"{n} {k}" for k, n in sorted(report.by_status.items()))
            console.print(f"{report.read} new repl{'y' if report.read == 1 else 'ies'} read "
                          f"from {report.mailbox}" + (f": {detail}" if detail else ""))
            if posted:
                console.print("team channel: " + ", ".join(
                    f"{n} {k}" for k, n in sorted(posted.items())))
        cli._main(body)

    @replies_app.command("list")
    def list_(status: Optional[str] = typer.Option(
                  None, help="Only routed, unmatched, refused, automatic or unsubscribed."),
              limit: int = typer.Option(50, help="At most this many, newest first."),
              warehouse: Optional[Path] = cli.WarehouseOpt):
        """The replies stored, newest first: who, what, where it went, or why not.

        Example: relance replies list --status unmatched
        """
        def body():
            con = cli._connect(cli._settings(warehouse))
            try:
                rows = con.execute(
                    "select received_at, coalesce(learner_id, ''), coalesce(from_address, ''), "
                    "coalesce(subject, ''), status, coalesce(category, automatic, ''), "
                    "coalesce(routed_to, ''), coalesce(reason, '') from learner_replies "
                    "where ? is null or status = ? order by received_at desc limit ?",
                    [status, status, limit]).fetchall()
            finally:
                con.close()
            table = Table(title=f"{len(rows)} replies", title_justify="left")
            for col in ("received", "learner", "from", "subject", "status", "kind", "to", "why"):
                table.add_column(col)
            for r in rows:
                table.add_row(f"{r[0]:%Y-%m-%d %H:%M}", *[str(x)[:60] for x in r[1:]])
            console.print(table)
        cli._main(body)
