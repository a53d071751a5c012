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

from warehouse import WarehouseBusy
from flows._common import open_warehouse, outcome, parse_as_of, settings
from relance.campaign import loader
from relance.channels import for_campaign
from relance.channels.base import DeliveryError
from relance.runs.steps import deliver


@task(name="deliver-campaign")
def deliver_campaign(campaign_id: str, now: datetime, paths: dict) -> dict:
    loaded = loader.load(loader.find(paths["campaigns"], campaign_id), campaigns_dir=paths["campaigns"])
    with open_warehouse(paths["warehouse"], paths["memory_limit"]) as con:
        channel = for_campaign(loaded, paths["outbox"])
        report = deliver(con, loaded, channel, now=now)
    return {"campaign_id": campaign_id, "sent": report.sent, "failed": report.failed,
            "cancelled": report.cancelled, "errors": dict(report.errors),
            "cancel_reasons": dict(report.cancel_reasons), "uncertain": report.uncertain,
            "uncertain_pending": report.uncertain_pending, "waiting": dict(report.waiting),
            "channel": channel.name, "sent_to": channel.sent_to(campaign_id)}


@flow(name="deliver-due", flow_run_name="deliver due messages", log_prints=True)
def deliver_due(now: str | None = None, warehouse_path: str | None = None,
                campaigns_dir: str | None = None, outbox_dir: str | None = None) -> list[dict]:
    s = settings(warehouse_path, campaigns_dir, outbox_dir)
    paths = {"warehouse": str(s.warehouse), "campaigns": str(s.campaigns),
             "outbox": str(s.outbox), "memory_limit": s.memory_limit}
    when = parse_as_of(now)
    results, known = [], set()
    for path in loader.campaign_paths(s.campaigns):
        known.add(path.stem)
        try:
            loader.load(path, campaigns_dir=s.campaigns)
        except loader.CampaignError as exc:
            # one broken file must not hold back every other campaign's mail
            results.append({"campaign_id": path.stem, "error": f"not delivered: {exc}"})
            continue
        try:
            results.append(deliver_campaign(path.stem, when, paths))
        except (DeliveryError, WarehouseBusy) as exc:
            # no key, another delivery under way, another process holding the warehouse
            # (flows on a Prefect server: each campaign is a turn of its own): say so, and
            # deliver the other campaigns
            results.append({"campaign_id": path.stem, "error": f"not delivered: {exc}"})
        except Exception as exc:
            # anything else (an unreachable Secret block, a database error) is reported
            # the same way: one campaign's trouble must not hold back the others' mail
            results.append({"campaign_id": path.stem,
                            "error": f"not delivered: {type(exc).__name__}: {exc}"})
    with open_warehouse(paths["warehouse"]) as con:
        orphans = con.execute(
            "select campaign_id, count(*) from messages where status = 'planned' "
            "and not list_contains(?, campaign_id) group by all", [sorted(known) or [""]]).fetchall()
    for campaign_id, n in orphans:
        results.append({"campaign_id": campaign_id, "error": (
            f"{n} planned message{'s' if n > 1 else ''} of campaign {campaign_id!r}, whose file is "
            f"gone, cannot be sent: restore campaigns/{campaign_id}.yaml, or cancel them with "
            f"`update messages set status = 'cancelled', error = 'campaign removed' "
            f"where campaign_id = '{campaign_id}' and status = 'planned'`")})
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
