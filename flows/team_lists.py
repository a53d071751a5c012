"""Flow: send each person of the team file their daily list once their working day has
begun (relance/team/send.py), once per person and day. Scheduled hourly, so each person
gets it at the start of their own day, in their own timezone.

    prefect: team_lists()
"""

from __future__ import annotations

from prefect import flow, task
from prefect.artifacts import create_table_artifact

from flows._common import open_warehouse, parse_as_of, settings


@task(name="send-team-lists")
def send_team_lists(now, paths: dict) -> dict:
    from relance.desk.server import links_for
    from relance.team import send, teamfile
    team = teamfile.load(teamfile.path_in(paths["campaigns"]))
    with open_warehouse(paths["warehouse"], paths["memory_limit"]) as con:
        report = send.send_due(con, team, now=now, outbox_dir=paths["outbox"],
                               link_for=links_for(team))
    return {"sent": report.sent, "failed": report.failed, "uncertain": report.uncertain}


@flow(name="team-lists", flow_run_name="daily lists", log_prints=True)
def team_lists(now: str | None = None, warehouse_path: str | None = None,
               campaigns_dir: str | None = None, outbox_dir: str | None = None) -> dict:
    s = settings(warehouse_path, campaigns_dir, outbox_dir)
    paths = {"warehouse": str(s.warehouse), "campaigns": str(s.campaigns),
             "outbox": str(s.outbox), "memory_limit": s.memory_limit}
    result = send_team_lists(parse_as_of(now), paths)
    create_table_artifact(key="team-lists", description="Daily lists sent",
                          table=[{"list": item, "status": status}
                                 for status in ("sent", "failed", "uncertain")
                                 for item in result[status]])
    if result["failed"] or result["uncertain"]:
        raise RuntimeError(f"{len(result['failed'])} lists failed, {len(result['uncertain'])} "
                           "uncertain: " + "; ".join(result["failed"] + result["uncertain"]))
    return result
