"""Flow: send every planned message that has become due (deferred by quiet hours, a send
window or a recap hour), for every campaign. Scheduled hourly, so a learner in Montréal
gets the relance planned at 09:00 Paris time in their own morning, not a week later.

    prefect: deliver_due()
"""

from __future__ import annotations

from datetime import datetime

from prefect import flow, task

import warehouse
from flows._common import parse_as_of, settings
from relance import loader
from relance.channels import get_channel
from relance.delivery import deliver_due as deliver


@task(name="deliver-campaign")
def deliver_campaign(campaign_id: str, now: datetime, paths: dict) -> dict:
    loaded = loader.load(loader.find(paths["campaigns"], campaign_id), campaigns_dir=paths["campaigns"])
    con = warehouse.connect(paths["warehouse"], memory_limit=paths["memory_limit"])
    try:
        report = deliver(con, loaded, get_channel(loaded.campaign.channel, outbox_dir=paths["outbox"]),
                         now=now)
    finally:
        con.close()
    return {"campaign_id": campaign_id, "sent": report.sent, "failed": report.failed,
            "cancelled": report.cancelled, "errors": dict(report.errors)}


@flow(name="deliver-due", flow_run_name="deliver due messages", log_prints=True)
def deliver_due(now: str | None = None, warehouse_path: str | None = None,
                campaigns_dir: str | None = None, outbox_dir: str | None = None) -> list[dict]:
    s = settings(warehouse_path, campaigns_dir, outbox_dir)
    paths = {"warehouse": str(s.warehouse), "campaigns": str(s.campaigns),
             "outbox": str(s.outbox), "memory_limit": s.memory_limit}
    when = parse_as_of(now)
    results = [deliver_campaign(c.id, when, paths) for c in loader.load_all(s.campaigns)]
    for r in results:
        print(f"{r['campaign_id']}: {r['sent']} sent, {r['failed']} failed, {r['cancelled']} cancelled")
    return results
