"""Flow: pull learners' progress from the sources into the warehouse.

    prefect: sync_progress()                      # every source of the sources file
             sync_progress(source="moodle-prod")  # one, by name
             sync_progress(source="exports/mapping.yaml")   # a CSV mapping file

Sources load one after the other (DuckDB has one writer); each load is one task, and its
network calls are paged and retried inside the connector.
"""

from __future__ import annotations

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact

import warehouse
from connectors import open_source, read_sources, sync
from flows._common import current_flow_run_id, settings
from relance.settings import Settings


@task(name="load-source")
def load_source(source: str, sources_file: str, warehouse_path: str,
                flow_run_id: str | None) -> dict:
    connector = open_source(source, sources_file)
    con = warehouse.connect(warehouse_path)
    try:
        report = sync(con, connector, flow_run_id=flow_run_id)
        reasons = con.execute(
            "select entity, reason, count(*) from quarantine where load_id = ? "
            "group by all order by 3 desc", [report.load_id]).fetchall()
    finally:
        con.close()
    return {"load_id": report.load_id, "source": report.source, "rows": report.rows,
            "loaded": report.loaded, "quarantined": report.quarantined,
            "quarantine_reasons": [list(r) for r in reasons]}


def summary_markdown(loads: list[dict]) -> str:
    lines = ["| source | entity | rows | loaded | quarantined |", "|---|---|---:|---:|---:|"]
    for result in loads:
        if not result["rows"]:
            lines.append(f"| {result['source']} | nothing new since the last sync | 0 | 0 | 0 |")
        for entity, n in result["rows"].items():
            lines.append(f"| {result['source']} | {entity} | {n} | "
                         f"{result['loaded'].get(entity, 0)} | "
                         f"{result['quarantined'].get(entity, 0)} |")
    for result in loads:
        if result["quarantine_reasons"]:
            lines += ["", f"**Quarantined rows of {result['source']}** (table `quarantine`, "
                      f"load `{result['load_id']}`):", ""]
            lines += [f"- {entity}: {reason} ({n})"
                      for entity, reason, n in result["quarantine_reasons"]]
    return "\n".join(lines)


def _run_name() -> str:
    from prefect.runtime import flow_run
    return f"sync {flow_run.parameters.get('source') or 'all sources'}"


@flow(name="sync-progress", flow_run_name=_run_name, log_prints=True)
def sync_progress(source: str | None = None, warehouse_path: str | None = None,
                  sources_file: str | None = None) -> dict:
    """Stage and load one source (by name, or a CSV mapping file), or every source of the
    sources file, into the warehouse. Returns {"loads": [one summary per source]}."""
    path = str(settings(warehouse_path).warehouse)
    sources_path = str(sources_file or Settings().sources)
    names = [source] if source else list(read_sources(sources_path))
    loads = [load_source(name, sources_path, path, current_flow_run_id()) for name in names]
    create_markdown_artifact(key="sync-summary", markdown=summary_markdown(loads),
                             description=", ".join(f"{r['source']}: load {r['load_id']}"
                                                   for r in loads))
    return {"loads": loads}
