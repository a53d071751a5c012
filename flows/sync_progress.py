"""Flow: pull learners' progress from a source into the warehouse.

    prefect: sync_progress(source="path/to/mapping.yaml")
"""

from __future__ import annotations

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact

from connectors import open_source, sync
from flows._common import current_flow_run_id, open_warehouse, settings


@task(name="load-source")
def load_source(source: str, warehouse_path: str, flow_run_id: str | None) -> dict:
    connector = open_source(source)
    with open_warehouse(warehouse_path) as con:
        report = sync(con, connector, flow_run_id=flow_run_id)
        reasons = con.execute(
            "select entity, reason, count(*) from quarantine where load_id = ? "
            "group by all order by 3 desc", [report.load_id]).fetchall()
    return {"load_id": report.load_id, "source": report.source, "rows": report.rows,
            "loaded": report.loaded, "quarantined": report.quarantined,
            "quarantine_reasons": [list(r) for r in reasons]}


@flow(name="sync-progress", flow_run_name="sync {source}", log_prints=True)
def sync_progress(source: str, warehouse_path: str | None = None) -> dict:
    """Stage and load one source (a CSV mapping file) into the warehouse."""
    path = str(settings(warehouse_path).warehouse)
    result = load_source(source, path, current_flow_run_id())
    lines = ["| entity | rows | loaded | quarantined |", "|---|---:|---:|---:|"]
    for entity, n in result["rows"].items():
        lines.append(f"| {entity} | {n} | {result['loaded'].get(entity, 0)} | "
                     f"{result['quarantined'].get(entity, 0)} |")
    if result["quarantine_reasons"]:
        lines += ["", "**Quarantined rows** (table `quarantine`, load "
                  f"`{result['load_id']}`):", ""]
        lines += [f"- {entity}: {reason} ({n})" for entity, reason, n in result["quarantine_reasons"]]
    create_markdown_artifact(key="sync-summary", markdown="\n".join(lines),
                             description=f"Load {result['load_id']}")
    return result
