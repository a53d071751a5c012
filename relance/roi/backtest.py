"""Backtests: a campaign replayed week by week over a past cohort, against what really
happened. The replay runs the real engine (evaluate, policies, persist) in a scratch
warehouse, as of each Monday 08:00 UTC, and counts as sent every message it planned to go
before the next Monday; nothing reaches the real ledger or any learner. The results land in
the warehouse's backtest_* tables.

Reached in time: an eventual withdrawer who got an alert message at least `lead_days`
before unregistering. Learners who left before course day `early_leaver_days` are
reported apart (only onboarding can reach them). False alarms: eventual completers who got
an alert message at all.
"""

from __future__ import annotations

import re
import secrets
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb

import warehouse
from relance.engine.compile import uses_measure
from relance.campaign.loaded import LoadedCampaign
from warehouse import execute_script, sql_file

SQL = Path(__file__).parent / "sql"
# an OULAD presentation's code: the year and B (February) or J (October)
OULAD_PRESENTATION = re.compile(r"\d{4}[BJ]")
SOURCE_TABLES = ["learners", "courses", "enrolments", "activities", "progress_events",
                 "contributions"]


class BacktestError(ValueError):
    pass


@dataclass
class BacktestResult:
    backtest_id: str
    campaign_id: str
    n_weeks: int
    n_learners: int
    n_withdrawers: int
    n_reached: int
    n_early_leavers: int
    n_early_reached: int
    n_passers: int
    n_flagged_passers: int
    n_messages: int
    messages_per_learner_week: float | None
    alert_messages: list[str]
    lead_days: int
    early_leaver_days: int
    auc: list[tuple[int, int, int, float | None]] | None = None
    # the risk model the AUC is of (RiskModelInfo), when the campaign uses the score or
    # one was trained for the backtest
    risk_model: dict | None = None

    @property
    def reached_share(self) -> float | None:
        return self.n_reached / self.n_withdrawers if self.n_withdrawers else None

    @property
    def false_alarm_share(self) -> float | None:
        return self.n_flagged_passers / self.n_passers if self.n_passers else None


def alert_messages(loaded: LoadedCampaign) -> list[str]:
    """The messages that say "we noticed you're falling behind": triggered on entering (or
    while in) a stage that is neither a completion stage nor the catch-all last stage."""
    campaign = loaded.campaign
    names = list(campaign.stages)
    quiet = {n for n, st in campaign.stages.items() if st.requires_completion} | {names[-1]}
    out = []
    for key, msg in campaign.messages.items():
        stages = ([msg.on_enter] if msg.on_enter else []) + list(msg.while_in or [])
        if stages and not set(stages) & quiet:
            out.append(key)
    return out


def mondays(first: datetime, last: datetime) -> list[datetime]:
    """Every Monday 08:00 UTC from the first on or after `first` to `last`."""
    start = datetime(first.year, first.month, first.day, 8, tzinfo=timezone.utc)
    start += timedelta(days=(7 - start.weekday()) % 7)
    if start < first:
        start += timedelta(days=7)
    out = []
    while start <= last:
        out.append(start)
        start += timedelta(days=7)
    return out


def copy_source(src: duckdb.DuckDBPyConnection, scratch: duckdb.DuckDBPyConnection,
                courses: list[str]) -> None:
    """The courses' part of the source model, from the warehouse into the scratch one."""
    for table in SOURCE_TABLES:
        if table == "learners":
            rel = src.sql("select * from learners where learner_id in (select learner_id from "
                          "enrolments where list_contains($c, course_id))", params={"c": courses})
        else:
            rel = src.sql(f"select * from {table} where list_contains($c, course_id)",
                          params={"c": courses})
        arrow = rel.to_arrow_table()  # noqa: F841  (read by name below)
        scratch.execute(f"insert into {table} select * from arrow")
    address_everyone(scratch)
    copy_risk_model(src, scratch)


def copy_risk_model(src: duckdb.DuckDBPyConnection, scratch: duckdb.DuckDBPyConnection) -> None:
    """The warehouse's latest risk model, for campaigns whose stages use `risk`."""
    if not src.execute("select count(*) from risk_models").fetchall()[0][0]:
        return          # none to copy (nor pyarrow to import: 0.7 s of a backtest's start)
    for table in ("risk_models", "risk_coefficients"):
        arrow = src.sql(f"select * from {table} where model_id = (select arg_max(model_id, "  # noqa: F841
                        "created_at) from risk_models)").to_arrow_table()
        scratch.execute(f"insert into {table} select * from arrow")


def address_everyone(scratch: duckdb.DuckDBPyConnection) -> None:
    """A replay asks whom the campaign would have reached, not whether their address was
    on file: learners without one get a placeholder in the scratch copy (never mailed)."""
    scratch.execute("update learners set email = 'l' || md5(learner_id) || '@backtest.invalid' "
                    "where email is null or email_problem(email) is not null").fetchall()


def keep_only(scratch: duckdb.DuckDBPyConnection, courses: list[str]) -> None:
    """Drop from the scratch copy every course but the replayed ones (a training
    presentation, other modules): the campaign's audience is what is left."""
    for table in SOURCE_TABLES:
        if table != "learners":
            scratch.execute(f"delete from {table} where not list_contains(?, course_id)",
                            [courses]).fetchall()


def replay(scratch: duckdb.DuckDBPyConnection, loaded: LoadedCampaign,
           moments: list[datetime], *, on_week=None) -> None:
    """Run the campaign as of each moment in the scratch warehouse; what it planned to go
    before the next moment is marked sent (no rendering, no channel).

    The same engine calls as a run's (evaluate, persist), each Monday its campaign_runs
    row, but every Monday in one transaction: a failed replay's scratch warehouse is
    thrown away whole (replay_cohort), so the four commits a Monday of plan_step and the
    marking cost four log syncs and bought nothing (engine/replay.py: the threads)."""
    from relance import engine
    from relance.engine.replay import replay_threads
    replay_threads(scratch)
    with warehouse.transaction(scratch):
        for i, as_of in enumerate(moments):
            # a run id of runs.steps.new_run_id's form, without importing the run's steps
            # (delivery, channels: a second of the command's start-up)
            run_id = f"{loaded.id}-{as_of:%Y%m%dT%H%M}-{secrets.token_hex(3)}"
            scratch.execute(
                "insert into campaign_runs (run_id, campaign_id, campaign_sha, as_of, started_at, "
                "finished_at, status) values (?, ?, ?, ?, ?, ?, 'succeeded')",
                [run_id, loaded.id, loaded.sha, as_of, datetime.now(timezone.utc), as_of])
            engine.persist(engine.evaluate(scratch, loaded, as_of), run_id)
            until = moments[i + 1] if i + 1 < len(moments) else as_of + timedelta(days=7)
            scratch.execute("update messages set status = 'sent', sent_at = not_before "
                            "where status = 'planned' and not_before < ?", [until]).fetchall()
            if on_week:
                on_week(i + 1, len(moments), as_of)


def course_span(scratch: duckdb.DuckDBPyConnection, courses: list[str]) -> tuple[datetime, datetime]:
    [(first, last)] = scratch.execute(
        "select min(coalesce(c.starts_on, e.enrolled_at::date)), max(coalesce(c.ends_on, "
        "(select max(occurred_at) from progress_events)::date)) from courses c "
        "join enrolments e using (course_id) where list_contains(?, course_id)", [courses]).fetchall()
    if first is None:
        raise BacktestError(f"no enrolment on {', '.join(courses)}: nothing to replay")
    as_dt = lambda d: datetime(d.year, d.month, d.day, tzinfo=timezone.utc)  # noqa: E731
    return as_dt(first), as_dt(last)


def run_backtest(con: duckdb.DuckDBPyConnection, loaded: LoadedCampaign, scratch_path: Path,
                 courses: list[str], *, source: str = "warehouse", presentation: str | None = None,
                 alerts: list[str] | None = None, lead_days: int = 7, early_leaver_days: int = 14,
                 train_courses: list[str] | None = None, train_label: str | None = None,
                 on_week=None) -> BacktestResult:
    """Replay `loaded` over `courses` held by the scratch warehouse at `scratch_path`
    (already filled with the source model), and write the results into `con`. With
    `train_courses`, a risk model is fitted on them first (saved in both warehouses); with
    any risk model, its AUC by course week on `courses` is stored with the results."""
    from relance.roi import risk
    alerts = alerts if alerts is not None else alert_messages(loaded)
    unknown = [a for a in alerts if a not in loaded.campaign.messages]
    if unknown:
        raise BacktestError(f"--alert {', '.join(unknown)}: not a message of {loaded.id}; its "
                            f"messages are {', '.join(loaded.campaign.messages)}")
    if not alerts:
        raise BacktestError(f"{loaded.id} has no message for a stage at risk (on_enter or while_in "
                            "of a stage other than completion or the last one): name them with --alert")
    backtest_id = f"{loaded.id}-{source}-{presentation or 'cohort'}-{secrets.token_hex(3)}"
    scratch = warehouse.connect(scratch_path)
    warehouse.as_scratch(scratch)
    try:
        first, last = course_span(scratch, courses)
        moments = mondays(first, last)
        con.execute(
            "insert into backtest_runs (backtest_id, campaign_id, source, presentation, courses, "
            "first_as_of, last_as_of, n_weeks, alert_messages, lead_days, early_leaver_days, "
            "started_at, status) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'running')",
            [backtest_id, loaded.id, source, presentation, courses, moments[0] if moments else None,
             moments[-1] if moments else None, len(moments), alerts, lead_days, early_leaver_days,
             datetime.now(timezone.utc)]).fetchall()
        try:
            if train_courses:
                t_first, t_last = course_span(scratch, train_courses)
                risk.train(scratch, train_courses, mondays(t_first, t_last),
                           trained_on=train_label or ", ".join(train_courses), save_to=[con])
            keep_only(scratch, courses)
            replay(scratch, loaded, moments, on_week=on_week)
            # the AUC of the model the replay scored with, and only then (or when one was
            # trained for this backtest): another campaign's table would name no model
            scored = uses_measure(loaded.campaign, "risk") or bool(train_courses)
            model_id = latest_model(scratch) if scored else None
            auc = risk.auc_by_week(scratch, courses, moments) if model_id else None
        finally:
            scratch.close()
        # a name no warehouse file is likely to have (a file's stem names its database)
        alias = f"relance_backtest_{secrets.token_hex(4)}"
        con.execute(f"attach '{str(scratch_path).replace(chr(39), chr(39) * 2)}' as {alias} (read_only)")
        try:
            with warehouse.transaction(con):
                execute_script(con, sql_file(SQL, "backtest_results", scratch=alias), {
                    "backtest_id": backtest_id, "courses": courses, "alert_messages": alerts,
                    "lead_days": lead_days, "early_leaver_days": early_leaver_days,
                    "last_as_of": moments[-1] if moments else last})
                if auc:
                    con.executemany("insert into backtest_auc values (?, ?, ?, ?, ?)",
                                    [(backtest_id, *row) for row in auc])
                if model_id:
                    con.execute("update backtest_runs set risk_model_id = ? where backtest_id = ?",
                                [model_id, backtest_id]).fetchall()
                con.execute("update backtest_runs set status = 'succeeded', finished_at = ? "
                            "where backtest_id = ?", [datetime.now(timezone.utc), backtest_id])
        finally:
            con.execute(f"detach {alias}")
    except Exception as exc:
        con.execute("update backtest_runs set status = 'failed', finished_at = ?, error = ? "
                    "where backtest_id = ?", [datetime.now(timezone.utc),
                                              f"{type(exc).__name__}: {exc}", backtest_id])
        raise
    return result(con, backtest_id)


@dataclass
class Cohort:
    """A backtest's prepared cohort: the scratch warehouse holding it, the courses to
    replay, and those to train the risk model on first (if any)."""
    scratch: Path
    courses: list[str]
    train_courses: list[str]


def prepare_cohort(con: duckdb.DuckDBPyConnection, loaded: LoadedCampaign, source: str = "warehouse",
                   presentation: str | None = None, train: str | None = None,
                   sources_file: str | Path | None = None,
                   data: str | Path | None = None) -> Cohort:
    """The scratch warehouse of a backtest: the campaign's courses (narrowed to a
    presentation) and the training presentation's, copied from `con` or loaded from a
    source."""
    if source == "warehouse":
        if data is not None:
            raise BacktestError(f"--data {data}: a folder of OULAD-shaped files is read with "
                                "--source oulad, not from the warehouse")
        courses = select_courses(con, loaded, presentation)
        train_courses = presentation_courses(con, train) if train else []
        scratch = scratch_from_warehouse(con, sorted(set(courses) | set(train_courses)))
    else:
        # only the presentations the backtest reads, when they are named (half of OULAD
        # 2013's files for one presentation, and no other course to set aside after)
        wanted = [p for p in (presentation, train) if p] if presentation else None
        scratch = scratch_from_source(source, con, sources_file=sources_file,
                                      presentations=wanted, data=data)
        held = warehouse.connect(scratch)
        try:
            courses = select_courses(held, loaded, presentation)
            train_courses = presentation_courses(held, train) if train else []
        except BaseException:
            held.close()
            shutil.rmtree(scratch.parent, ignore_errors=True)   # nothing to replay: no leftover
            raise
        held.close()
    return Cohort(scratch, courses, train_courses)


def replay_cohort(con: duckdb.DuckDBPyConnection, loaded: LoadedCampaign, cohort: Cohort, *,
                  source: str = "warehouse", presentation: str | None = None,
                  train: str | None = None, alerts: list[str] | None = None, lead_days: int = 7,
                  early_leaver_days: int = 14, on_week=None) -> dict:
    """Replay and score a prepared cohort (run_backtest), then remove its scratch
    warehouse; the result as the command prints it and the flow returns it."""
    try:
        r = run_backtest(con, loaded, cohort.scratch, cohort.courses, source=source,
                         presentation=presentation, alerts=alerts, lead_days=lead_days,
                         early_leaver_days=early_leaver_days,
                         train_courses=cohort.train_courses or None,
                         train_label=f"{source} {train}" if train else None, on_week=on_week)
    finally:
        shutil.rmtree(cohort.scratch.parent, ignore_errors=True)
    return {**r.__dict__, "reached_share": r.reached_share,
            "false_alarm_share": r.false_alarm_share, "courses": cohort.courses}


def result(con: duckdb.DuckDBPyConnection, backtest_id: str) -> BacktestResult:
    cur = con.execute(
        "select backtest_id, campaign_id, n_weeks, n_learners, n_withdrawers, n_reached, "
        "n_early_leavers, n_early_reached, n_passers, n_flagged_passers, n_messages, "
        "messages_per_learner_week, alert_messages, lead_days, early_leaver_days "
        "from backtest_runs where backtest_id = ?", [backtest_id])
    [row] = cur.fetchall()
    auc = con.execute("select course_week, learners, withdrawers, auc from backtest_auc "
                      "where backtest_id = ? order by course_week", [backtest_id]).fetchall()
    [(model_id,)] = con.execute("select risk_model_id from backtest_runs where backtest_id = ?",
                                [backtest_id]).fetchall()
    return BacktestResult(*row, auc=auc or None,
                          risk_model=model_info(con, model_id) if model_id else None)


def latest_model(con: duckdb.DuckDBPyConnection) -> str | None:
    """The risk model the engine scores with: the latest of the warehouse (risk_score.sql)."""
    rows = con.execute("select arg_max(model_id, created_at) from risk_models").fetchall()
    return rows[0][0] if rows else None


def model_info(con: duckdb.DuckDBPyConnection, model_id: str) -> dict | None:
    """A risk model as a backtest names it: id, what it was trained on and when, how it
    was fitted, its features."""
    rows = con.execute("select model_id, trained_on, created_at, n_rows, n_positive, fitted_with "
                       "from risk_models where model_id = ?", [model_id]).fetchall()
    if not rows:
        return None
    keys = ("model_id", "trained_on", "created_at", "n_rows", "n_positive", "fitted_with")
    info = dict(zip(keys, rows[0]))
    info["features"] = [r[0] for r in con.execute(
        "select feature from risk_coefficients where model_id = ? and feature <> '(intercept)' "
        "order by feature", [model_id]).fetchall()]
    return info


def scratch_from_warehouse(con: duckdb.DuckDBPyConnection, courses: list[str],
                           folder: str | Path | None = None) -> Path:
    """A scratch warehouse file holding the courses' source model, copied from `con`."""
    path = Path(tempfile.mkdtemp(prefix="relance-backtest-", dir=folder)) / "scratch.duckdb"
    try:
        scratch = warehouse.connect(path)
        try:
            copy_source(con, scratch, courses)
        finally:
            scratch.close()
    except BaseException:
        shutil.rmtree(path.parent, ignore_errors=True)      # a failure leaves no scratch file
        raise
    return path


REPO = Path(__file__).resolve().parents[2]


def open_backtest_source(source: str, sources_file: str | Path | None = None,
                         presentations: list[str] | None = None, *,
                         data: str | Path | None = None):
    """A source by its name in the sources file or a CSV mapping's path. `oulad` reads
    OULAD-shaped files in place: from `data` (a folder holding courses.csv,
    assessments.csv, studentInfo.csv, studentRegistration.csv, studentAssessment.csv),
    else from the sources file's `oulad` entry, else from ../shared/data/oulad-2013;
    only the `presentations` named (OULAD's codes, e.g. 2013J: the one replayed and the
    one trained on), or every presentation."""
    from connectors import open_source
    from connectors.sources import DEFAULT_FILE, open_config, read_sources
    file = Path(sources_file or DEFAULT_FILE)
    base = REPO
    if data is not None:
        if source != "oulad":
            raise BacktestError(f"--data {data}: a folder of OULAD-shaped files is read with "
                                f"--source oulad, not --source {source}")
        folder = Path(data).expanduser().resolve()
        if not folder.is_dir():
            raise BacktestError(f"--data {data}: no such folder; name the folder holding the "
                                f"OULAD files (courses.csv, assessments.csv, studentInfo.csv, "
                                f"studentRegistration.csv, studentAssessment.csv)")
        config = {"kind": "oulad", "directory": str(folder)}
    elif source == "oulad":
        # The sources file's `oulad` entry if it has one; `relance demo` writes a file
        # naming only its export, and then `--source oulad` still means the OULAD files
        # in their usual place, as when there is no file.
        named = read_sources(file) if file.exists() else {}
        if "oulad" not in named:
            config = {"kind": "oulad"}
        elif named["oulad"]["kind"] != "oulad":
            return open_source(source, file)
        else:
            config, base = dict(named["oulad"]), file.parent
    else:
        return open_source(source, file)
    if presentations and all(OULAD_PRESENTATION.fullmatch(p) for p in presentations):
        config["presentations"] = presentations
    return open_config("oulad", config, base)


def scratch_from_source(source: str, con: duckdb.DuckDBPyConnection,
                        folder: str | Path | None = None,
                        sources_file: str | Path | None = None,
                        presentations: list[str] | None = None,
                        data: str | Path | None = None) -> Path:
    """A scratch warehouse loaded from a source the connectors open (never the real one);
    OULAD in place (from `data` if given), with only the `presentations` named
    (open_backtest_source). Removed again if anything fails."""
    from connectors import sync
    opened = open_backtest_source(source, sources_file, presentations, data=data)
    path = Path(tempfile.mkdtemp(prefix="relance-backtest-", dir=folder)) / "scratch.duckdb"
    try:
        scratch = warehouse.connect(path)
        try:
            sync(scratch, opened)
            address_everyone(scratch)
            copy_risk_model(con, scratch)
        finally:
            scratch.close()
    except BaseException:
        # a source that is not what it should be (a missing file or column) or any other
        # failure: the scratch warehouse (about 11 MB for OULAD) goes too
        shutil.rmtree(path.parent, ignore_errors=True)
        raise
    return path


def presentation_courses(con: duckdb.DuckDBPyConnection, presentation: str) -> list[str]:
    """Every course of a presentation (to train a risk model on), whatever the campaign."""
    courses = [r[0] for r in con.execute(
        "select distinct c.course_id from courses c left join enrolments e using (course_id) "
        "where contains(c.course_id, ?) or contains(coalesce(e.cohort, ''), ?) order by 1",
        [presentation, presentation]).fetchall()]
    if not courses:
        raise BacktestError(f"no course of presentation {presentation} to train the risk model on")
    return courses


def select_courses(con: duckdb.DuckDBPyConnection, loaded: LoadedCampaign,
                   presentation: str | None) -> list[str]:
    """The campaign's courses (all the warehouse's if it names none), narrowed to those of a
    presentation (course id or cohort containing it, e.g. '2013J')."""
    named = loaded.campaign.audience.course
    rows = con.execute(
        "select distinct c.course_id from courses c left join enrolments e using (course_id) "
        "where ($named is null or list_contains($named, c.course_id)) and ($p is null "
        "or contains(c.course_id, $p) or contains(coalesce(e.cohort, ''), $p)) order by 1",
        {"named": named, "p": presentation}).fetchall()
    courses = [r[0] for r in rows]
    if not courses:
        known = [r[0] for r in con.execute("select course_id from courses order by 1").fetchall()]
        raise BacktestError(
            f"no course of {loaded.id}'s audience{' in presentation ' + presentation if presentation else ''}"
            f" in this source; its courses are: {', '.join(known) or 'none'}")
    return courses
