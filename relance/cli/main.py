"""The `relance` command's app, and the options and helpers its commands share.

Every command exits non-zero on any error, and says what was wrong, where, and how to fix it.
"""

from __future__ import annotations

import os
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Optional

# Prefect reads these at import: no telemetry (there is no network), and keep its own
# logging to warnings so the CLI's tables stay readable. A user's own settings win.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# Flow and task failures reach the user as one `error` line from this CLI, not as
# Prefect's own tracebacks.
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "CRITICAL")
os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")

import typer  # noqa: E402
from rich.console import Console  # noqa: E402

# Each command imports what it uses when it runs, not here: `relance --help` and the quick
# commands would otherwise load the campaign format, DuckDB, pandas or Prefect for nothing
# (relance/cli/__init__.py says more).
if TYPE_CHECKING:
    from relance.campaign.problems import CampaignError
    from relance.settings import Settings

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


# What `relance run` and `relance deliver` exit with, so a scheduler or a script tells a
# send that needs nothing from one that needs a person (2 is click's usage error).
EXIT_ERROR = 1          # something stopped the command; its error is printed
EXIT_FAILED = 3         # messages failed: the next delivery tries them again
EXIT_UNCERTAIN = 4      # messages are uncertain: a person checks them (`relance uncertain`)
SEND_EXIT_HELP = (
    "Exit status: 0 when every message due went (or waits for its moment); 3 when messages "
    "failed (the next delivery tries them again); 4 when messages are uncertain (the "
    "provider never answered: `relance uncertain list`), failed ones or not; 1 when an "
    "error stopped it.")


def _progress():
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn,
                               TextColumn, TimeElapsedColumn)
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                    MofNCompleteColumn(), TimeElapsedColumn(), console=console, transient=True)


def _settings(warehouse: Optional[Path] = None, campaigns: Optional[Path] = None,
              outbox: Optional[Path] = None) -> Settings:
    from relance.settings import resolve
    return resolve(warehouse, campaigns, outbox)


def _as_of(value: Optional[str]) -> datetime:
    from relance.settings import parse_moment
    try:
        return parse_moment(value)
    except ValueError as exc:
        raise Fail(f"--as-of: {exc}") from None


def _now(value: Optional[str]) -> Optional[datetime]:
    """--now of the servers (serve, desk, replies): every request's clock moment; None when
    not given (the wall clock)."""
    from relance.settings import parse_moment
    try:
        return parse_moment(value) if value else None
    except ValueError as exc:
        raise Fail(f"--now: {exc}") from None


def _when(con, value: Optional[str], campaign_id: Optional[str] = None) -> datetime:
    """--as-of if given; else, on the demo's warehouse, the demo's moment for the campaign
    (demo_moment); else now."""
    if value:
        return _as_of(value)
    moment = demo_moment(con, campaign_id)
    if moment is None:
        from relance import clock
        return clock.now()
    when, note = moment
    console.print(f"[dim]{note} (pass --as-of to choose another).[/dim]")
    return when


def demo_moment(con, campaign_id: Optional[str] = None) -> Optional[tuple[datetime, str]]:
    """On the demo's warehouse, the moment commands default to, and why in words; None
    elsewhere. The demo's date (its data stops there), unless the demo already ran the
    campaign that week: then the Monday after, its next weekly run, so that `plan` and
    `preview` show what that run will send rather than a week already sent."""
    import warehouse
    demo_date = warehouse.meta(con, "demo_as_of")
    if not demo_date:
        return None
    when = _as_of(demo_date)
    if campaign_id and con.execute(
            "select count(*) from campaign_runs where campaign_id = ? and status = 'succeeded' "
            "and as_of >= ?", [campaign_id, when]).fetchall()[0][0]:
        following = when + timedelta(weeks=1)
        return (following, f"As of {campaign_id}'s next weekly run, {following:%Y-%m-%d %H:%M} "
                           f"UTC: the demo already ran it for the week of {when:%Y-%m-%d}, where "
                           "its data stops")
    return when, f"As of the demo's date, {when:%Y-%m-%d %H:%M} UTC"


def _connect(s: Settings, *, must_exist: bool = True, read_only: bool = False):
    import warehouse
    if must_exist and not warehouse.shared.is_shared(s.warehouse) and not Path(s.warehouse).exists():
        raise Fail(f"no warehouse at {s.warehouse}: run `relance demo` for the demo cohort, or "
                   "`relance sync <mapping.yaml>` to load your own data (or pass --warehouse)")
    return warehouse.connect(s.warehouse, memory_limit=s.memory_limit, read_only=read_only,
                             wait_seconds=s.lock_wait_seconds)


def _load(s: Settings, ref: str):
    from relance.campaign import loader
    return loader.load(loader.find(s.campaigns, ref), campaigns_dir=s.campaigns)


def _print_problems(exc: CampaignError) -> None:
    for p in exc.problems:
        err.print(f"[red]error[/red] {p}", soft_wrap=True)
    n = len(exc.problems)
    err.print(f"[red]{n} problem{'s' if n > 1 else ''}[/red]: nothing was evaluated or sent.")


# The errors a command turns into a message (module, class). Each is looked for only in
# the modules this command has imported, as code that was never loaded cannot raise it:
# importing them all for every command cost 0.4 s (the delivery package brings pyarrow).
_KNOWN_ERRORS = (("connectors.base", "SourceError"), ("relance.engine.evaluation", "EvaluationError"),
                 ("relance.workbench.preview", "PreviewError"),
                 ("relance.channels.base", "DeliveryError"), ("warehouse.holder", "WarehouseBusy"),
                 ("relance.delivery.rendering", "RenderError"))


def _known(exc: Exception) -> bool:
    if isinstance(exc, Fail):
        return True
    for module, name in _KNOWN_ERRORS:
        loaded = sys.modules.get(module)
        if loaded is not None and isinstance(exc, getattr(loaded, name, ())):
            return True
    return False


def _main(fn):
    """Run a command body; turn known errors into a message and exit code 1."""
    try:
        return fn()
    except Exception as exc:
        problems = sys.modules.get("relance.campaign.problems")
        if problems is not None and isinstance(exc, problems.CampaignError):
            _print_problems(exc)
        elif _known(exc):
            # messages quote the user's data (a file's columns, a value): not markup
            from rich.markup import escape
            err.print(f"[red]error[/red] {escape(str(exc))}", soft_wrap=True)
        else:
            raise
    raise typer.Exit(1)


def _load_campaigns(s, refs: list[str] | None) -> list:
    """The campaigns named (ids or files), or every campaign; every problem of every file
    named is reported at once."""
    from relance.campaign import loader
    from relance.campaign.problems import CampaignError
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
