"""The two jobs a schedule runs, as plain functions over a warehouse connection: a
campaign's run (`run_campaign`: check the sources, plan, deliver, tell the team) and the
hourly delivery (`deliver_every_campaign`: each campaign's due messages).

The Prefect flows (flows/run_campaign.py, flows/deliver_due.py) make each step a task
run on a Prefect server, opening the warehouse in its turn; `relance run` and `relance
deliver` with no server configured call the same steps here, in their own process, with
no temporary Prefect server to start (it took 10 to 20 seconds of every command). Either
way these functions write the rows, so the warehouse holds the same run, decisions,
ledger and counts however the run was started; only `campaign_runs.flow_run_id` differs:
the flow run to look at on the server, NULL when there is none.
"""

from __future__ import annotations

import time
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Callable

import duckdb

from relance.campaign import loader
from relance.campaign.loaded import LoadedCampaign
from relance.channels import for_campaign
from relance.channels.base import DeliveryError
from relance.delivery.lock import run_lock
from relance.runs import freshness, steps
from relance.settings import Settings
from warehouse import WarehouseBusy

# Sending is the step that meets the network (an e-mail API): tried again twice, a minute
# apart, which is safe because the ledger never sends a message twice. Planning is not
# retried: it is deterministic.
DELIVER_RETRIES = 2
DELIVER_RETRY_SECONDS = 60

NOTHING_POSTED = {"posted": 0, "error": None}


def worth_retrying(exc: BaseException) -> bool:
    """A missing key, another delivery of the campaign under way or another process
    holding the warehouse (waited for as long as RELANCE_LOCK_WAIT_SECONDS says) needs a
    person or time, not a retry a minute later."""
    return not isinstance(exc, (DeliveryError, WarehouseBusy))


def check_sources(con: duckdb.DuckDBPyConnection, loaded: LoadedCampaign, as_of: datetime,
                  max_age_hours: float, flow_run_id: str | None = None) -> None:
    """Refuse to run on stale progress; the refusal is a failed run with what is stale."""
    try:
        freshness.check(con, loaded.campaign, as_of, timedelta(hours=max_age_hours))
    except freshness.StaleSources as exc:
        run_id = steps.start_run(con, loaded, as_of, flow_run_id=flow_run_id)
        steps.finish_run(con, run_id, report=None, error=str(exc))
        raise


def plan(con: duckdb.DuckDBPyConnection, loaded: LoadedCampaign, as_of: datetime,
         flow_run_id: str | None = None) -> dict:
    """Open the run, evaluate and persist it (steps.plan_step); what it decided, and the
    community manager's follow-up list."""
    run_id, evaluation = steps.plan_step(con, loaded, as_of, flow_run_id=flow_run_id)
    follow_ups = con.execute(
        "select f.learner_id, trim(coalesce(l.first_name, '') || ' ' || coalesce(l.last_name, '')), "
        "f.rule, f.reason from follow_ups f join learners l using (learner_id) "
        "where f.run_id = ? order by f.rule, f.learner_id", [run_id]).fetchall()
    return {"run_id": run_id, "stages": evaluation.stage_counts(),
            "outcomes": evaluation.outcome_counts(), "totals": evaluation.totals(),
            "evaluate_seconds": evaluation.seconds, "follow_ups": follow_ups}


def deliver(con: duckdb.DuckDBPyConnection, loaded: LoadedCampaign, run_id: str,
            as_of: datetime, outbox: str, *, on_batch=None) -> dict:
    """Send what the run made due and close its row (steps.deliver_step); a channel that
    cannot open (no key, no server) fails the run, saying why."""
    try:
        channel = for_campaign(loaded, outbox)
    except Exception as exc:
        steps.finish_run(con, run_id, report=None,
                         error=str(exc) if isinstance(exc, DeliveryError)
                         else f"{type(exc).__name__}: {exc}")
        raise
    report = steps.deliver_step(con, loaded, run_id, as_of, channel, on_batch=on_batch)
    return {"sent": report.sent, "failed": report.failed, "cancelled": report.cancelled,
            "errors": dict(report.errors), "cancel_reasons": dict(report.cancel_reasons),
            "uncertain": report.uncertain, "uncertain_pending": report.uncertain_pending,
            "deliver_seconds": report.seconds, "channel": channel.name,
            "sent_to": channel.sent_to(loaded.id)}


def notify_team(con: duckdb.DuckDBPyConnection, loaded: LoadedCampaign, run_id: str) -> dict:
    """Post the announcement, the week and the follow-up list to the team's channel: how
    many went (`posted`) and what failed (`error`, each post on its own line, or None). It
    never fails the run (the messages are sent and recorded)."""
    from relance.team import notify
    if loaded.campaign.team is None:
        return dict(NOTHING_POSTED)
    try:
        report = notify.notify(con, loaded, run_id)
    except Exception as exc:              # a bad webhook URL too: the mail has gone already
        return {"posted": 0, "error": str(exc)}
    return {"posted": len(report.posted), "error": "\n".join(report.errors) or None}


def run_result(loaded: LoadedCampaign, as_of: datetime, planned: dict, delivered: dict,
               follow_ups: list, team: dict) -> dict:
    """What a campaign's run returns (the flow) and `relance run` prints."""
    return {"campaign_id": loaded.id, "as_of": as_of.isoformat(), **planned, **delivered,
            "follow_ups": len(follow_ups), "team_error": team["error"],
            "team_posted": team["posted"],
            "team_format": loaded.campaign.team.format if loaded.campaign.team else None}


def retried(step: Callable[[], dict], *, on_retry: Callable[[Exception, int], None] | None = None,
            sleep: Callable[[float], None] = time.sleep) -> dict:
    """`step()`, tried again as the flow's deliver task is (DELIVER_RETRIES times,
    DELIVER_RETRY_SECONDS apart, when worth_retrying)."""
    for attempt in range(DELIVER_RETRIES + 1):
        try:
            return step()
        except Exception as exc:
            if attempt == DELIVER_RETRIES or not worth_retrying(exc):
                raise
            if on_retry:
                on_retry(exc, DELIVER_RETRY_SECONDS)
            sleep(DELIVER_RETRY_SECONDS)
    raise AssertionError("unreachable")


def run_campaign(con: duckdb.DuckDBPyConnection, loaded: LoadedCampaign, as_of: datetime,
                 outbox: str, *, max_source_age_hours: float | None = None,
                 on_step: Callable[[str], None] | None = None,
                 on_batch: Callable[[int, int], None] | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> dict:
    """A campaign's run in this process, step by step as flows/run_campaign.py runs it
    (without its Prefect artifacts: there is no server to show them); what it returns."""
    say = on_step or (lambda _what: None)
    # on a shared warehouse, one run of a campaign at a time across machines (lock.py)
    with run_lock(con, loaded.id, wait_seconds=Settings().lock_wait_seconds):
        if max_source_age_hours is not None:
            say("checking its sources")
            check_sources(con, loaded, as_of, max_source_age_hours)
        say("evaluating and planning")
        planned = plan(con, loaded, as_of)
        follow_ups = planned.pop("follow_ups")
        say("sending what is due")
        delivered = retried(
            lambda: deliver(con, loaded, planned["run_id"], as_of, outbox, on_batch=on_batch),
            on_retry=lambda exc, wait: say(f"sending failed ({type(exc).__name__}: {exc}); "
                                           f"trying again in {wait} s"), sleep=sleep)
        if loaded.campaign.team is not None:
            say("posting to the team's channel")
        team = notify_team(con, loaded, planned["run_id"])
    return run_result(loaded, as_of, planned, delivered, follow_ups, team)


def deliver_campaign(con: duckdb.DuckDBPyConnection, loaded: LoadedCampaign, now: datetime,
                     outbox: str) -> dict:
    """One campaign's due messages (steps.deliver): what each counts, by campaign."""
    channel = for_campaign(loaded, outbox)
    report = steps.deliver(con, loaded, channel, now=now)
    return {"campaign_id": loaded.id, "sent": report.sent, "failed": report.failed,
            "cancelled": report.cancelled, "errors": dict(report.errors),
            "cancel_reasons": dict(report.cancel_reasons), "uncertain": report.uncertain,
            "uncertain_pending": report.uncertain_pending, "waiting": dict(report.waiting),
            "channel": channel.name, "sent_to": channel.sent_to(loaded.id)}


def deliver_every_campaign(campaigns_dir: str | Path,
                           deliver_one: Callable[[LoadedCampaign], dict],
                           opened: Callable[[], AbstractContextManager[duckdb.DuckDBPyConnection]],
                           on_campaign: Callable[[str], None] | None = None) -> list[dict]:
    """Every campaign's due messages, one campaign at a time (`deliver_one`: the flow's
    task, or deliver_campaign here), then the planned messages of campaigns whose file is
    gone (read through `opened()`). One campaign's trouble is its result's `error` and
    never holds back the others' mail."""
    results, known = [], set()
    for path in loader.campaign_paths(campaigns_dir):
        known.add(path.stem)
        if on_campaign:
            on_campaign(path.stem)
        try:
            loaded = loader.load(path, campaigns_dir=campaigns_dir)
        except loader.CampaignError as exc:
            results.append({"campaign_id": path.stem, "error": f"not delivered: {exc}"})
            continue
        try:
            results.append(deliver_one(loaded))
        except (DeliveryError, WarehouseBusy) as exc:
            # no key, another delivery under way, another process holding the warehouse
            # (flows on a Prefect server: each campaign is a turn of its own): say so
            results.append({"campaign_id": path.stem, "error": f"not delivered: {exc}"})
        except Exception as exc:
            # anything else (an unreachable Secret block, a database error) is reported
            # the same way
            results.append({"campaign_id": path.stem,
                            "error": f"not delivered: {type(exc).__name__}: {exc}"})
    with opened() as con:
        orphans = con.execute(
            "select campaign_id, count(*) from messages where status = 'planned' "
            "and not list_contains(?, campaign_id) group by all", [sorted(known) or [""]]).fetchall()
    for campaign_id, n in orphans:
        results.append({"campaign_id": campaign_id, "error": (
            f"{n} planned message{'s' if n > 1 else ''} of campaign {campaign_id!r}, whose file is "
            f"gone, cannot be sent: restore campaigns/{campaign_id}.yaml, or cancel them with "
            f"`update messages set status = 'cancelled', error = 'campaign removed' "
            f"where campaign_id = '{campaign_id}' and status = 'planned'`")})
    return results
