"""`relance sync`: the sources into the warehouse, and the table of what each load did."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from relance.cli.main import WarehouseOpt, _main, _settings, app, console


@app.command()
def sync(
    source: Optional[str] = typer.Argument(
        None, help="A source's name in the sources file, or a CSV export's mapping.yaml; "
                   "all sources when omitted."),
    sources: Optional[Path] = typer.Option(None, "--sources", envvar="RELANCE_SOURCES",
                                           help="The sources file [default: sources.yaml]."),
    warehouse: Optional[Path] = WarehouseOpt,
):
    """Load learners' progress from the sources into the warehouse; each sync loads only
    what is new. With a Prefect server configured (PREFECT_API_URL, or in the active
    Prefect profile) it is a flow run on it; otherwise the same steps run in this process.

    Example: relance sync moodle-prod   (or: relance sync · relance sync exports/mapping.yaml)
    """
    def body():
        s = _settings(warehouse)
        from flows._common import shared_server
        if shared_server():
            from flows.sync_progress import sync_progress
            with console.status(f"Loading {source or 'all sources'} (Prefect flow)…"):
                loads = sync_progress(source, str(s.warehouse),
                                      str(sources) if sources else None)["loads"]
        else:
            # the flow's steps in this process: no temporary Prefect server to start
            from contextlib import closing

            from connectors import read_sources
            from connectors.loads import sync_sources
            from relance.cli.main import _connect
            sources_path = str(sources or s.sources)
            names = [source] if source else list(read_sources(sources_path))
            with console.status(f"Loading {source or 'all sources'}…") as status:
                with closing(_connect(s, must_exist=False)) as con:
                    loads = sync_sources(con, names, sources_path,
                                         on_source=lambda what: status.update(f"Loading {what}…"))
        for load in loads:
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
    from connectors.loads import more_reasons
    if more_reasons(result):
        console.print(f"  [yellow]quarantined[/] {escape(more_reasons(result))}", soft_wrap=True)
    for warning in result.get("warnings", []):
        console.print(f"  [yellow]skipped[/] {escape(warning)}", soft_wrap=True)
