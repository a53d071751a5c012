"""Flow: run one campaign: evaluate every learner, plan, send what is due, log.

    prefect: run_campaign(campaign_id="parcours-anglais")

Three tasks, each over the whole cohort (never one per learner or per message):
plan (set-based SQL, one transaction) -> deliver (batches) -> finish (run row, artifact).
"""

from __future__ import annotations

from datetime import datetime

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.runtime import flow_run

import warehouse
from flows._common import current_flow_run_id, parse_as_of, settings
from relance import loader, runs
from relance.channels import for_campaign
from relance.channels.base import DeliveryError
from relance.reasons import explain


def _run_name() -> str:
    params = flow_run.parameters
    as_of = parse_as_of(params.get("as_of"))
    return f"run {params['campaign_id']} {as_of:%G-W%V}"


@task(name="plan")
def plan(campaign_id: str, as_of: datetime, paths: dict, flow_run_id: str | None) -> dict:
    loaded = loader.load(loader.find(paths["campaigns"], campaign_id), campaigns_dir=paths["campaigns"])
    con = warehouse.connect(paths["warehouse"], memory_limit=paths["memory_limit"])
    try:
        run_id, evaluation = runs.plan_step(con, loaded, as_of, flow_run_id=flow_run_id)
        return {"run_id": run_id, "stages": evaluation.stage_counts(),
                "outcomes": evaluation.outcome_counts(), "totals": evaluation.totals(),
                "evaluate_seconds": evaluation.seconds}
    finally:
        con.close()


@task(name="deliver")
def deliver(campaign_id: str, run_id: str, as_of: datetime, paths: dict) -> dict:
    loaded = loader.load(loader.find(paths["campaigns"], campaign_id), campaigns_dir=paths["campaigns"])
    con = warehouse.connect(paths["warehouse"], memory_limit=paths["memory_limit"])
    try:
        try:
            channel = for_campaign(loaded, paths["outbox"])
        except DeliveryError as exc:      # no key, no server: the run fails, saying why
            runs.finish_run(con, run_id, report=None, error=str(exc))
            raise
        report = runs.deliver_step(con, loaded, run_id, as_of, channel)
        return {"sent": report.sent, "failed": report.failed, "cancelled": report.cancelled,
                "errors": dict(report.errors), "cancel_reasons": dict(report.cancel_reasons),
                "uncertain": report.uncertain, "uncertain_pending": report.uncertain_pending,
                "deliver_seconds": report.seconds}
    finally:
        con.close()


@task(name="notify-team")
def notify_team(campaign_id: str, run_id: str, paths: dict) -> str | None:
    """Post the week and the follow-up list to the team's channel; a failure is reported,
    it does not fail the run (the messages are sent and recorded)."""
    from relance import team
    from relance.channels.base import DeliveryError
    loaded = loader.load(loader.find(paths["campaigns"], campaign_id), campaigns_dir=paths["campaigns"])
    if loaded.campaign.team is None:
        return None
    con = warehouse.connect(paths["warehouse"], memory_limit=paths["memory_limit"])
    try:
        team.notify(con, loaded, run_id)
    except DeliveryError as exc:
        print(f"team channel: {exc}")
        return str(exc)
    finally:
        con.close()
    return None


def summary_markdown(campaign_id: str, as_of: datetime, planned: dict, delivered: dict,
                     follow_ups: list[tuple]) -> str:
    lines = [f"# {campaign_id}, as of {as_of:%Y-%m-%d %H:%M} UTC", "",
             f"Run `{planned['run_id']}`: {planned['totals']['evaluated']} learners evaluated, "
             f"{delivered['sent']} messages sent, {delivered['failed']} failed, "
             f"{planned['totals']['deferred']} deferred, {planned['totals']['suppressed']} "
             "suppressed.", "", "## Stages", "", "| stage | learners | control group |",
             "|---|---:|---:|"]
    lines += [f"| {s or '(none)'} | {n} | {h} |" for s, n, h in planned["stages"]]
    lines += ["", "## Decisions", "", "| outcome | message | reason | learners |", "|---|---|---|---:|"]
    lines += [f"| {o} | {m or ''} | {explain(r)} | {n} |" for o, m, r, n in planned["outcomes"]]
    if delivered.get("uncertain_pending"):
        lines += ["", "## Uncertain messages", "",
                  f"{delivered['uncertain_pending']} messages were handed to the provider, which "
                  f"never answered ({delivered['uncertain']} in this run): they may have been "
                  "accepted, so they are not resent. Check the provider's activity log, then "
                  "`relance uncertain confirm` or `relance uncertain resend` "
                  "(`relance uncertain list` shows them)."]
    if delivered["errors"]:
        lines += ["", "## Failed sends", ""] + [f"- {k}: {v}" for k, v in delivered["errors"].items()]
    if follow_ups:
        lines += ["", "## Follow-up list for the community manager", "",
                  "| learner | name | rule | reason |", "|---|---|---|---|"]
        lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in follow_ups[:200]]
        if len(follow_ups) > 200:
            lines.append(f"| … | {len(follow_ups) - 200} more in view `follow_up_list` | | |")
    return "\n".join(lines)


@flow(name="run-campaign", flow_run_name=_run_name, log_prints=True)
def run_campaign(campaign_id: str, as_of: str | None = None, warehouse_path: str | None = None,
                 campaigns_dir: str | None = None, outbox_dir: str | None = None) -> dict:
    """Evaluate, plan and send one campaign as of `as_of` (ISO 8601; default: now)."""
    s = settings(warehouse_path, campaigns_dir, outbox_dir)
    paths = {"warehouse": str(s.warehouse), "campaigns": str(s.campaigns),
             "outbox": str(s.outbox), "memory_limit": s.memory_limit}
    when = parse_as_of(as_of)
    planned = plan(campaign_id, when, paths, current_flow_run_id())
    delivered = deliver(campaign_id, planned["run_id"], when, paths)
    team_error = notify_team(campaign_id, planned["run_id"], paths)
    con = warehouse.connect(paths["warehouse"])
    try:
        follow_ups = con.execute(
            "select f.learner_id, trim(coalesce(l.first_name, '') || ' ' || coalesce(l.last_name, '')), "
            "f.rule, f.reason from follow_ups f join learners l using (learner_id) "
            "where f.run_id = ? order by f.rule, f.learner_id", [planned["run_id"]]).fetchall()
    finally:
        con.close()
    key = f"{campaign_id}-run-summary"
    create_markdown_artifact(key=key, markdown=summary_markdown(campaign_id, when, planned,
                                                                delivered, follow_ups),
                             description=f"Campaign run {planned['run_id']}")
    return {"campaign_id": campaign_id, "as_of": when.isoformat(), **planned, **delivered,
            "follow_ups": len(follow_ups), "team_error": team_error}
