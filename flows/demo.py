"""Flow: the demo. Generate the demo cohort's LMS export, load it through the CSV
connector, and run every campaign in `campaigns/` for last week and this week, as the
weekly schedule would have (with last Monday's deferred messages delivered that day).
The sources file (RELANCE_SOURCES, else sources.yaml), unless it is someone else's, is
made to name the demo's export: `relance sync` and the deployed sync-progress load it.

    prefect: demo()
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from prefect import flow, task

import warehouse
from flows._common import keeping_warehouse, open_warehouse, parse_as_of, result_of, settings
from flows.deliver_due import deliver_due
from flows.run_campaign import run_campaign
from flows.sync_progress import sync_progress
from relance import demo as cohort
from relance.campaign import loader


@task(name="generate-demo-export")
def generate_export(directory: str, as_of_iso: str) -> str:
    return str(cohort.generate(directory, as_of=parse_as_of(as_of_iso)))


@flow(name="demo", flow_run_name="demo", log_prints=False)
def demo(as_of: str | None = None, warehouse_path: str | None = None,
         campaigns_dir: str | None = None, outbox_dir: str | None = None,
         weeks: int = 2) -> dict:
    s = settings(warehouse_path, campaigns_dir, outbox_dir)
    when = parse_as_of(as_of) if as_of else cohort.default_as_of()
    # its subflows' tasks keep the warehouse from one to the next (flows/_common.py)
    with keeping_warehouse(str(s.warehouse)):
        mapping = generate_export(str(Path(s.workdir) / "demo-export"), when.isoformat())
        synced = sync_progress(mapping, str(s.warehouse))["loads"][0]
        sources = cohort.write_sources(s.sources, mapping)
        with open_warehouse(str(s.warehouse)) as con:
            warehouse.set_meta(con, "demo_as_of", when.isoformat())
        runs = []
        campaigns = loader.load_all(s.campaigns)
        for back in range(weeks - 1, -1, -1):
            monday = when - timedelta(weeks=back)
            for campaign in campaigns:
                # a run whose messages failed is reported with the others, not a stop
                runs.append(result_of(run_campaign(campaign.id, monday.isoformat(),
                                                   str(s.warehouse), str(s.campaigns),
                                                   str(s.outbox), return_state=True)))
            if back:
                # as the hourly deliver-due would have, by the end of that Monday everywhere
                result_of(deliver_due((monday + timedelta(hours=18)).isoformat(), str(s.warehouse),
                                      str(s.campaigns), str(s.outbox), return_state=True))
    return {"as_of": when.isoformat(), "sync": synced, "sources": sources, "runs": runs}
