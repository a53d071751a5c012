"""Flow: run one campaign: evaluate every learner, plan, send what is due, log.

    prefect: run_campaign(campaign_id="parcours-anglais")

Tasks, each over the whole cohort (never one per learner or per message):
check-sources (when the deployment gives a freshness bound) -> plan (set-based SQL, one
transaction; and the follow-up list) -> deliver (batches; retried, the only step that
talks to the network) -> notify-team (when the campaign has a `team:`; never fails the
run) -> artifacts. Each task holds the warehouse alone while it works, and the run keeps
it from one task to the next (flows/_common.py). A run whose messages failed or are
uncertain ends Failed once all of that is done (flows._common.outcome), so an operator's alert on failed runs fires.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact
from prefect.runtime import flow_run

from relance.delivery.lock import run_lock
from flows._common import (current_flow_run_id, keeping_warehouse, open_warehouse, outcome,
                           parse_as_of, release_warehouse, settings)
from relance.runs import jobs
from relance.campaign import loader
from relance.campaign.reasons import explain


def _run_name() -> str:
    params = flow_run.parameters
    as_of = parse_as_of(params.get("as_of"))
    return f"run {params['campaign_id']} {as_of:%G-W%V}"


def _load(campaign_id: str, paths: dict) -> loader.LoadedCampaign:
    return loader.load(loader.find(paths["campaigns"], campaign_id), campaigns_dir=paths["campaigns"])


# The campaign is loaded (and validated) once per run and handed to the tasks in-process;
# they are never cached: each run must evaluate the warehouse as it is. Each task is a
# step of relance/runs/jobs.py, which `relance run` calls directly when no Prefect server
# is configured: the same rows either way.
@task(name="check-sources", cache_policy=NO_CACHE)
def check_sources(loaded: loader.LoadedCampaign, as_of: datetime, max_age_hours: float,
                  paths: dict, flow_run_id: str | None) -> None:
    """Refuse to run on stale progress; the refusal is a failed run with what is stale."""
    with open_warehouse(paths["warehouse"]) as con:
        jobs.check_sources(con, loaded, as_of, max_age_hours, flow_run_id)


@task(name="plan", cache_policy=NO_CACHE)
def plan(loaded: loader.LoadedCampaign, as_of: datetime, paths: dict,
         flow_run_id: str | None) -> dict:
    with open_warehouse(paths["warehouse"], paths["memory_limit"]) as con:
        return jobs.plan(con, loaded, as_of, flow_run_id)


def _worth_retrying(task, task_run, state) -> bool:
    try:
        state.result()
    except Exception as exc:
        if jobs.worth_retrying(exc):
            release_warehouse()         # nobody waits for it during the retry's delay
            return True
    return False


@task(name="deliver", retries=jobs.DELIVER_RETRIES, retry_delay_seconds=jobs.DELIVER_RETRY_SECONDS,
      cache_policy=NO_CACHE, retry_condition_fn=_worth_retrying)
def deliver(loaded: loader.LoadedCampaign, run_id: str, as_of: datetime, paths: dict) -> dict:
    with open_warehouse(paths["warehouse"], paths["memory_limit"]) as con:
        return jobs.deliver(con, loaded, run_id, as_of, paths["outbox"])


@task(name="notify-team", cache_policy=NO_CACHE)
def notify_team(loaded: loader.LoadedCampaign, run_id: str, paths: dict) -> dict:
    """Post the announcement, the week and the follow-up list to the team's channel: how
    many went (`posted`) and what failed (`error`, each post on its own, or None). It does
    not fail the run (the messages are sent and recorded)."""
    if loaded.campaign.team is None:
        return dict(jobs.NOTHING_POSTED)
    with open_warehouse(paths["warehouse"], paths["memory_limit"]) as con:
        team = jobs.notify_team(con, loaded, run_id)
    for error in (team["error"] or "").splitlines():
        print(f"team channel: {error}")
    return team


def publish_artifacts(campaign_id: str, as_of: datetime, planned: dict, delivered: dict,
                      follow_ups: list[tuple], paths: dict, team_error: str | None = None) -> None:
    """What the Prefect UI shows for a run: the summary (stages, decisions and their
    reasons, failed sends), and the community manager's list as a table of its own."""
    create_markdown_artifact(key=f"{campaign_id}-run-summary",
                             markdown=summary_markdown(campaign_id, as_of, planned, delivered,
                                                       follow_ups, paths, team_error),
                             description=f"Campaign run {planned['run_id']}")
    if delivered.get("channel", "outbox") == "outbox":
        create_link_artifact(key=f"{campaign_id}-outbox",
                             link=(Path(paths["outbox"]).resolve() / campaign_id).as_uri(),
                             link_text=f"{campaign_id}: {delivered['sent']} messages in the outbox",
                             description=f"Messages of run {planned['run_id']}")
    create_table_artifact(key=f"{campaign_id}-follow-ups",
                          table=[{"learner": a, "name": b, "rule": c, "reason": d}
                                 for a, b, c, d in follow_ups],
                          description=f"Follow-up list of run {planned['run_id']} "
                                      f"({len(follow_ups)} learners; view `follow_up_list`)")


def summary_markdown(campaign_id: str, as_of: datetime, planned: dict, delivered: dict,
                     follow_ups: list[tuple], paths: dict | None = None,
                     team_error: str | None = None) -> str:
    t = planned["totals"]
    uncertain = delivered.get("uncertain", 0)
    lines = [f"# {campaign_id}, as of {as_of:%Y-%m-%d %H:%M} UTC", "",
             f"Run `{planned['run_id']}`: {t['evaluated']} learners evaluated, "
             f"{t['planned']} messages planned, {delivered['sent']} sent, "
             f"{delivered['failed']} failed, {uncertain} uncertain, {t['deferred']} deferred, "
             f"{delivered['cancelled']} cancelled, {t['suppressed']} suppressed.", "",
             "## Delivery", "", "| sent | failed | uncertain | cancelled | deferred |",
             "|---:|---:|---:|---:|---:|",
             f"| {delivered['sent']} | {delivered['failed']} | {uncertain} | "
             f"{delivered['cancelled']} | {t['deferred']} |", "",
             "## Stages", "", "| stage | learners | control group |", "|---|---:|---:|"]
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
        lines += ["", "## Failed sends", "", "| error | messages |", "|---|---:|"]
        lines += [f"| {k} | {v} |" for k, v in delivered["errors"].items()]
    if delivered["cancel_reasons"]:
        lines += ["", "## Cancelled before sending", "", "| reason | messages |", "|---|---:|"]
        lines += [f"| {explain(k)} | {v} |" for k, v in delivered["cancel_reasons"].items()]
    if team_error:
        lines += ["", "## Team channel", "", "Not everything reached the team's channel; the "
                  "messages were sent all the same:", ""]
        lines += [f"- {error}" for error in team_error.splitlines()]
    if follow_ups:
        lines += ["", "## Follow-up list for the community manager", "",
                  "| learner | name | rule | reason |", "|---|---|---|---|"]
        lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in follow_ups[:200]]
        if len(follow_ups) > 200:
            lines.append(f"| … | {len(follow_ups) - 200} more in view `follow_up_list` | | |")
    if paths:
        where = (f"`{Path(paths['outbox']).resolve() / campaign_id}`"
                 if delivered.get("channel", "outbox") == "outbox" else
                 f"{delivered.get('sent_to', delivered.get('channel'))} (the ledger: `from "
                 f"messages where campaign_id = '{campaign_id}'`)")
        lines += ["", "## Where to look", "",
                  f"- the messages: {where}",
                  f"- the warehouse: `duckdb -readonly {Path(paths['warehouse']).resolve()}`, then "
                  f"`from campaign_funnel where run_id = '{planned['run_id']}'`, "
                  f"`from decision_reasons where campaign_id = '{campaign_id}'`"]
    return "\n".join(lines)


@flow(name="run-campaign", flow_run_name=_run_name, log_prints=True)
def run_campaign(campaign_id: str, as_of: str | None = None, warehouse_path: str | None = None,
                 campaigns_dir: str | None = None, outbox_dir: str | None = None,
                 max_source_age_hours: float | None = None) -> dict:
    """Evaluate, plan and send one campaign as of `as_of` (ISO 8601; default: now). With
    `max_source_age_hours` (the deployments set it), first refuse sources older than that."""
    s = settings(warehouse_path, campaigns_dir, outbox_dir)
    paths = {"warehouse": str(s.warehouse), "campaigns": str(s.campaigns),
             "outbox": str(s.outbox), "memory_limit": s.memory_limit}
    when = parse_as_of(as_of)
    flow_run_id = current_flow_run_id()
    loaded = _load(campaign_id, paths)
    # on a shared warehouse, workers on other machines may run this campaign too: one at a
    # time (a no-op on a DuckDB file, which one process writes at a time); its tasks take
    # the warehouse in turn, and keep it from one to the next (_common.py)
    with run_lock(paths["warehouse"], campaign_id, wait_seconds=s.lock_wait_seconds), \
            keeping_warehouse(paths["warehouse"]):
        if max_source_age_hours is not None:
            check_sources(loaded, when, max_source_age_hours, paths, flow_run_id)
        planned = plan(loaded, when, paths, flow_run_id)
        follow_ups = planned.pop("follow_ups")
        delivered = deliver(loaded, planned["run_id"], when, paths)
        team = notify_team(loaded, planned["run_id"], paths)
    publish_artifacts(campaign_id, when, planned, delivered, follow_ups, paths, team["error"])
    result = jobs.run_result(loaded, when, planned, delivered, follow_ups, team)
    # Failed when messages failed or are uncertain: called with return_state=True, the
    # state holds `result` all the same (flows._common.result_of)
    return outcome(result, [delivered])
