"""Flow: send every planned message that has become due (deferred by quiet hours, a send
window or a recap hour), for every campaign. Scheduled hourly, so a learner in Montréal
gets the relance planned at 09:00 Paris time in their own morning, not a week later.

    prefect: deliver_due()

A delivery whose messages failed or are uncertain, or a campaign that could not be
delivered, ends the flow run Failed once every campaign had its turn (flows._common.outcome),
with a table artifact of what each campaign got.
"""

from __future__ import annotations

from datetime import datetime

from prefect import flow, task
from prefect.artifacts import create_table_artifact

from flows._common import keeping_warehouse, open_warehouse, outcome, parse_as_of, settings
from relance.campaign import loader
from relance.runs import jobs


# One step of relance/runs/jobs.py, which `relance deliver` calls directly when no Prefect
# server is configured: the same rows either way.
@task(name="deliver-campaign")
def deliver_campaign(campaign_id: str, now: datetime, paths: dict) -> dict:
    loaded = loader.load(loader.find(paths["campaigns"], campaign_id), campaigns_dir=paths["campaigns"])
    with open_warehouse(paths["warehouse"], paths["memory_limit"]) as con:
        return jobs.deliver_campaign(con, loaded, now, paths["outbox"])


# Learners' replies first (relance/replies/imap.py), when a replies mailbox is configured:
# their acknowledgements and forwards are then sent by this same delivery.
@task(name="fetch-replies", retries=2, retry_delay_seconds=60)
def fetch_replies(now: datetime, paths: dict) -> dict:
    from relance import clock
    from relance.replies import imap, team
    with open_warehouse(paths["warehouse"], paths["memory_limit"]) as con, clock.at(now):
        report = imap.fetch(con, paths["campaigns"])
        posted = team.post_pending(con, paths["campaigns"])
    return {"read": report.read, **report.by_status, **{f"team_{k}": n for k, n in posted.items()}}


@flow(name="deliver-due", flow_run_name="deliver due messages", log_prints=True)
def deliver_due(now: str | None = None, warehouse_path: str | None = None,
                campaigns_dir: str | None = None, outbox_dir: str | None = None) -> list[dict]:
    s = settings(warehouse_path, campaigns_dir, outbox_dir)
    paths = {"warehouse": str(s.warehouse), "campaigns": str(s.campaigns),
             "outbox": str(s.outbox), "memory_limit": s.memory_limit}
    when = parse_as_of(now)
    if s.imap_host:
        print(f"replies: {fetch_replies(when, paths)}")
    # each campaign is a task run, which takes the warehouse in its turn (kept from one to
    # the next: flows/_common.py)
    with keeping_warehouse(paths["warehouse"]):
        results = jobs.deliver_every_campaign(
            s.campaigns, lambda loaded: deliver_campaign(loaded.id, when, paths),
            lambda: open_warehouse(paths["warehouse"]))
    for r in results:
        print(r.get("error") or f"{r['campaign_id']}: {r['sent']} sent, {r['failed']} failed, "
                                f"{r['uncertain']} uncertain, {r['cancelled']} cancelled")
    create_table_artifact(key="deliver-due",
                          description=f"What was due at {when:%Y-%m-%d %H:%M} UTC, by campaign",
                          table=[{"campaign": r["campaign_id"], "sent": r.get("sent", 0),
                                  "failed": r.get("failed", 0), "uncertain": r.get("uncertain", 0),
                                  "cancelled": r.get("cancelled", 0),
                                  "waiting": sum(r.get("waiting", {}).values()),
                                  "error": r.get("error") or ""} for r in results])
    # Failed when messages failed or are uncertain, or a campaign was not delivered: called
    # with return_state=True, the state holds the results all the same
    return outcome(results, results)
