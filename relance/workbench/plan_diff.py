"""`relance plan --diff`: what changed in who-gets-what, against the last recorded run of
the campaign (its decisions table) or against the campaign file's last committed version
(`git show HEAD:<file>`, evaluated by the same engine as of the same moment). Read-only."""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb

from relance import engine
from relance.campaign import loader
from relance.campaign.loaded import LoadedCampaign
from warehouse import execute_script, sql_file


class DiffError(Exception):
    pass


@dataclass
class Baseline:
    label: str                          # what the plan is compared with, for people
    run_as_of: datetime | None = None   # when comparing with a run: its moment


def against_last_run(con: duckdb.DuckDBPyConnection, loaded: LoadedCampaign) -> Baseline:
    rows = con.execute(
        "select run_id, as_of, campaign_sha from campaign_runs where campaign_id = ? "
        "and status = 'succeeded' order by as_of desc, started_at desc limit 1",
        [loaded.id]).fetchall()
    if not rows:
        raise DiffError(f"{loaded.id} has no recorded run to compare with: run it once "
                        f"(`relance run {loaded.id}`), or compare with the file's last "
                        "committed version (--against head)")
    run_id, as_of, sha = rows[0]
    con.execute("create or replace temp table diff_before as "
                "select * from decisions where run_id = ?", [run_id]).fetchall()
    edited = "" if sha == loaded.sha else "; the campaign or its templates changed since"
    return Baseline(f"the last run, {run_id} (as of {as_of:%Y-%m-%d %H:%M} UTC{edited})", as_of)


def committed_version(loaded: LoadedCampaign) -> tuple[str, str]:
    """(the file's text at HEAD, the commit's short id)."""
    path = loaded.path.resolve()
    try:
        top = subprocess.run(["git", "-C", str(path.parent), "rev-parse", "--show-toplevel"],
                             capture_output=True, text=True, check=True).stdout.strip()
        rel = path.relative_to(Path(top).resolve()).as_posix()
        text = subprocess.run(["git", "-C", top, "show", f"HEAD:{rel}"],
                              capture_output=True, text=True, check=True).stdout
        commit = subprocess.run(["git", "-C", top, "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, check=True).stdout.strip()
    except (subprocess.CalledProcessError, FileNotFoundError, ValueError):
        raise DiffError(f"{loaded.path} has no committed version to compare with (not in a "
                        "git repository, or never committed): use --against run") from None
    return text, commit


def against_head(con: duckdb.DuckDBPyConnection, loaded: LoadedCampaign,
                 as_of: datetime) -> Baseline:
    text, commit = committed_version(loaded)
    with tempfile.TemporaryDirectory() as tmp:
        old_file = Path(tmp) / loaded.path.name
        old_file.write_text(text, encoding="utf-8")
        try:
            old = loader.load(old_file, campaigns_dir=loaded.campaigns_dir,
                              check_templates=False)
        except loader.CampaignError as exc:
            raise DiffError(f"the committed version of {loaded.path} (HEAD, {commit}) does not "
                            f"load, so there is nothing to compare with: {exc}") from None
    engine.evaluate(con, old, as_of)
    con.execute("create or replace temp table diff_before as select * from eval_decisions")
    return Baseline(f"the committed version of {loaded.path.name} (HEAD, {commit}), as of the "
                    "same moment")


def diff(con: duckdb.DuckDBPyConnection, loaded: LoadedCampaign, as_of: datetime,
         against: str) -> tuple[Baseline, engine.Evaluation]:
    """Evaluate the campaign now and compare with the baseline; leaves eval_plan_diff."""
    baseline = (against_head(con, loaded, as_of) if against == "head"
                else against_last_run(con, loaded))
    evaluation = engine.evaluate(con, loaded, as_of)
    execute_script(con, sql_file(Path(__file__).parent, "plan_diff"))
    return baseline, evaluation


def summary(con) -> list[tuple[str, str | None, str | None, int]]:
    """(change, message before, message now, learners), largest first."""
    return con.execute(
        "select change, message_before, message_now, count(*) from eval_plan_diff "
        "group by all order by count(*) desc, change, message_before, message_now").fetchall()


def sample(con, n: int) -> list[tuple]:
    return con.execute(
        "select learner_id, stage_before, stage_now, message_before, message_now, reason_now "
        "from eval_plan_diff order by change, learner_id limit ?", [n]).fetchall()
