"""Flow: pull learners' progress from the sources into the warehouse.

    prefect: sync_progress()                      # every source of the sources file
             sync_progress(source="moodle-prod")  # one, by name
             sync_progress(source="exports/mapping.yaml")   # a CSV mapping file

The sources file is the one the process is configured with (RELANCE_SOURCES, else
sources.yaml in its working directory: the checkout, on a worker), so the deployment
names none: what a worker loads is its own configuration, like its warehouse.

Sources load one after the other (DuckDB has one writer); each load is one task, and its
network calls are task runs of their own (`fetch`, one per page or call; calls made per
learner, one per course: connectors/fetch.py), retried inside the connector. When a
network source is still unavailable after those retries, Prefect tries the whole load
again later (RETRY_DELAYS), once every other source had its turn, so that its waits hold
up none of them: it resumes from the last committed cursor. Other failures (bad credentials, bad settings)
are not retried: they need someone to fix them.
"""

from __future__ import annotations

import time

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact

from connectors import open_source, read_sources
from connectors.loads import (REASONS_LISTED, load_one, more_reasons,  # noqa: F401
                              raise_failures)              # (the first three: the flow's API)
from flows._common import (current_flow_run_id, open_warehouse, parse_as_of, release_warehouse,
                           settings)
from relance.settings import Settings


# Seconds before each new try of a load whose source was unavailable (its connector had
# already retried each request for up to a few minutes).
RETRY_DELAYS = [60, 300]


def _source_unavailable(task, task_run, state) -> bool:
    from connectors.http import SourceUnavailable
    if isinstance(state.data, SourceUnavailable):
        release_warehouse()     # a flow keeping the warehouse does not hold it while waiting
        return True
    return False


@task(name="load-source", retries=len(RETRY_DELAYS), retry_delay_seconds=RETRY_DELAYS,
      retry_condition_fn=_source_unavailable)
def load_source(source: str, sources_file: str, warehouse_path: str,
                flow_run_id: str | None, now: str | None = None) -> dict:
    connector = open_source(source, sources_file)
    try:
        with open_warehouse(warehouse_path) as con:
            return load_one(con, source, sources_file, flow_run_id,
                            parse_as_of(now) if now else None, connector)
    except Exception as exc:
        # Prefect keeps a task's error while the process lives: not the frames that hold
        # the warehouse connection (DuckDB reports leaks at exit otherwise)
        raise exc.with_traceback(None)


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
        if result.get("warnings"):
            lines += ["", f"**Skipped by {result['source']}** (the rest was loaded):", ""]
            lines += [f"- {warning}" for warning in result["warnings"]]
    for result in loads:
        if result["quarantine_reasons"]:
            lines += ["", f"**Quarantined rows of {result['source']}** (table `quarantine`, "
                      f"load `{result['load_id']}`):", ""]
            lines += [f"- {entity}: {reason} ({n})"
                      for entity, reason, n in result["quarantine_reasons"]]
            if more_reasons(result):
                lines.append(f"- {more_reasons(result)}")
    return "\n".join(lines)


def _run_name() -> str:
    from prefect.runtime import flow_run
    return f"sync {flow_run.parameters.get('source') or 'all sources'}"


@flow(name="sync-progress", flow_run_name=_run_name, log_prints=True)
def sync_progress(source: str | None = None, warehouse_path: str | None = None,
                  sources_file: str | None = None, now: str | None = None) -> dict:
    """Stage and load one source (by name, or a CSV mapping file), or every source of the
    sources file, into the warehouse. `now` (ISO 8601; default: the wall clock) is the
    moment the loads stand for: campaign runs judge their freshness against it. Returns
    {"loads": [one summary per source]}."""
    path = str(settings(warehouse_path).warehouse)
    sources_path = str(sources_file or Settings().sources)
    names = [source] if source else list(read_sources(sources_path))
    # one source failing (an LRS down, a revoked token) must not keep the others stale:
    # each is loaded, and the failures are raised once all were tried. A source that was
    # unavailable is tried again after the others, Prefect's retry delays counted from
    # its failure: the others' loads take their share of the wait.
    from connectors.http import SourceUnavailable
    run_id = current_flow_run_id()
    loads, failed, unavailable = [], [], []
    for name in names:
        state = load_source.with_options(retries=0)(name, sources_path, path, run_id, now,
                                                    return_state=True)
        if state.is_completed():
            loads.append(state.result())
            continue
        exc = state.result(raise_on_failure=False)
        if isinstance(exc, SourceUnavailable) and RETRY_DELAYS:
            unavailable.append((name, time.monotonic()))
        else:
            failed.append(exc)
    for name, failed_at in unavailable:
        release_warehouse()
        time.sleep(max(0.0, RETRY_DELAYS[0] - (time.monotonic() - failed_at)))
        state = load_source.with_options(retries=len(RETRY_DELAYS) - 1,
                                         retry_delay_seconds=RETRY_DELAYS[1:] or 0)(
            name, sources_path, path, run_id, now, return_state=True)
        if state.is_completed():
            loads.append(state.result())
        else:
            failed.append(state.result(raise_on_failure=False))
    markdown = summary_markdown(loads)
    if failed:
        markdown += "\n\n**Failed** (nothing of these loads was lost):\n\n" + "\n".join(
            f"- {exc}" for exc in failed)
    create_markdown_artifact(key="sync-summary", markdown=markdown,
                             description=", ".join(f"{r['source']}: load {r['load_id']}"
                                                   for r in loads))
    raise_failures(failed, loads)
    return {"loads": loads}
