"""A campaign run, start to finish, as plain library calls:

    start_run -> plan_run (evaluate + persist, one transaction) -> deliver -> finish_run

`deliver()` is every delivery's entry (a run's, the hourly one's): it applies what the
receiver spooled while another process held the warehouse (unsubscribes), then sends.

`plan_step()` and `deliver_step()` are the two halves, each marking the run failed if it
fails; `run_campaign()` chains them for tests, benchmarks and embedding, and the Prefect
flow (flows/run_campaign.py) runs them as its two tasks.

Every run has a row in `campaign_runs` from its first step; a run that fails is marked
failed with its error, and whatever it had planned stays planned for the next run.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timezone

import duckdb

from relance import clock
from relance import engine
from relance.campaign.loaded import LoadedCampaign
from relance.channels import Channel, for_campaign
from relance.delivery import DeliveryReport, deliver_due
from relance.delivery.lock import database_path
from relance.feedback.receiver import import_spool
from warehouse import transaction


@dataclass
class RunSummary:
    run_id: str
    campaign_id: str
    as_of: datetime
    status: str
    stages: list[tuple[str | None, int, int]] = field(default_factory=list)
    outcomes: list[tuple] = field(default_factory=list)
    totals: dict[str, int] = field(default_factory=dict)
    sent: int = 0
    failed: int = 0
    # handed to the provider, no answer (or found in flight after a crash): a person checks
    uncertain: int = 0
    cancelled: int = 0
    evaluate_seconds: float = 0.0
    deliver_seconds: float = 0.0
    error: str | None = None


def new_run_id(campaign_id: str, as_of: datetime) -> str:
    return f"{campaign_id}-{as_of:%Y%m%dT%H%M}-{secrets.token_hex(3)}"


def start_run(con: duckdb.DuckDBPyConnection, loaded: LoadedCampaign, as_of: datetime,
              *, flow_run_id: str | None = None) -> str:
    run_id = new_run_id(loaded.id, as_of)
    # Runs of one campaign never overlap (one writer, one slot per campaign), so a run of
    # this campaign still 'running' died without closing its row (a killed worker): say so.
    con.execute(
        "update campaign_runs set status = 'failed', finished_at = ?, error = ? "
        "where campaign_id = ? and status = 'running'",
        [datetime.now(timezone.utc), f"interrupted: its process stopped before the end; run "
         f"{run_id} took over what it had planned", loaded.id])
    con.execute(
        "insert into campaign_runs (run_id, campaign_id, campaign_sha, as_of, started_at, status, "
        "flow_run_id) values (?, ?, ?, ?, ?, 'running', ?)",
        [run_id, loaded.id, loaded.sha, as_of, datetime.now(timezone.utc), flow_run_id])
    return run_id


def plan_run(con: duckdb.DuckDBPyConnection, loaded: LoadedCampaign, run_id: str,
             as_of: datetime) -> engine.Evaluation:
    """Evaluate and write decisions, ledger entries, stage state and follow-ups: all or none."""
    with transaction(con):
        evaluation = engine.evaluate(con, loaded, as_of)
        engine.persist(evaluation, run_id)
        t = evaluation.totals()
        con.execute(
            "update campaign_runs set n_evaluated = ?, n_holdout = ?, n_planned = ?, "
            "n_deferred = ?, n_suppressed = ?, n_follow_ups = ?, evaluate_ms = ? where run_id = ?",
            [t["evaluated"], t["holdout"], t["planned"], t["deferred"], t["suppressed"],
             t["follow_ups"], int(evaluation.seconds * 1000), run_id])
    return evaluation


def finish_run(con: duckdb.DuckDBPyConnection, run_id: str, *, report: DeliveryReport | None,
               error: str | None = None) -> None:
    """Close the run's row. Its status says whether its steps went through; what became of
    its messages is in the counts (a run whose messages failed or are uncertain succeeded:
    its delivery recorded them, and `relance run` exits non-zero for them)."""
    con.execute(
        "update campaign_runs set status = ?, finished_at = ?, n_sent = ?, n_failed = ?, "
        "n_uncertain = ?, deliver_ms = ?, error = ? where run_id = ?",
        ["failed" if error else "succeeded", datetime.now(timezone.utc),
         report.sent if report else 0, report.failed if report else 0,
         report.uncertain if report else 0,
         int(report.seconds * 1000) if report else None, error, run_id])


def _failed(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"


def plan_step(con: duckdb.DuckDBPyConnection, loaded: LoadedCampaign, as_of: datetime, *,
              flow_run_id: str | None = None) -> tuple[str, engine.Evaluation]:
    """Open the run and plan it; a failure marks the run failed and is raised."""
    run_id = start_run(con, loaded, as_of, flow_run_id=flow_run_id)
    try:
        return run_id, plan_run(con, loaded, run_id, as_of)
    except Exception as exc:
        finish_run(con, run_id, report=None, error=_failed(exc))
        raise


def deliver(con: duckdb.DuckDBPyConnection, loaded: LoadedCampaign, channel: Channel, *,
            now: datetime | None = None, **options) -> DeliveryReport:
    """Send what is due (delivery.deliver_due, same options), after the unsubscribes the
    receiver spooled while a process held the warehouse are recorded."""
    path = database_path(con)
    if path:
        import_spool(con, path)
    return deliver_due(con, loaded, channel, now=now, **options)


def deliver_step(con: duckdb.DuckDBPyConnection, loaded: LoadedCampaign, run_id: str,
                 as_of: datetime, channel: Channel, *, on_batch=None) -> DeliveryReport:
    """Send what is due and close the run; a failure marks the run failed and is raised."""
    try:
        report = deliver(con, loaded, channel, now=as_of, on_batch=on_batch)
    except Exception as exc:
        finish_run(con, run_id, report=None, error=_failed(exc))
        raise
    finish_run(con, run_id, report=report)
    return report


def run_campaign(con: duckdb.DuckDBPyConnection, loaded: LoadedCampaign, *,
                 as_of: datetime | None = None, channel: Channel | None = None,
                 outbox_dir: str = "outbox", flow_run_id: str | None = None,
                 on_batch=None) -> RunSummary:
    """Evaluate, plan, deliver what is due and log the run. Returns what happened."""
    as_of = clock.or_now(as_of)
    channel = channel or for_campaign(loaded, outbox_dir)
    run_id, evaluation = plan_step(con, loaded, as_of, flow_run_id=flow_run_id)
    summary = RunSummary(run_id, loaded.id, as_of, "running", stages=evaluation.stage_counts(),
                         outcomes=evaluation.outcome_counts(), totals=evaluation.totals(),
                         evaluate_seconds=evaluation.seconds)
    report = deliver_step(con, loaded, run_id, as_of, channel, on_batch=on_batch)
    summary.status = "succeeded"
    summary.sent, summary.failed, summary.cancelled = report.sent, report.failed, report.cancelled
    summary.uncertain = report.uncertain
    summary.deliver_seconds = report.seconds
    return summary
