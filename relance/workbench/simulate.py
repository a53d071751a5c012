"""A whole season before launch: every campaign of a folder replayed together over a
cohort, on the clock, with the real connectors, engine, ledger and outbox, in a scratch
warehouse; invariants checked at every tick.

    cohort (demo generator, a CSV export's mapping, oulad:<presentation>)
      -> holding warehouse (the whole export, loaded once by its connector)
      -> each day at 07:00 Paris: the rows known by then, as CSV files that only grow,
         synced by the CSV connector with now = that day          (the daily sync)
      -> each campaign at its own schedule, in its timezone         (run_campaign)
      -> each hour something is due, at minute 5                     (deliver-due)

The clock jumps from event to event (the next sync, the next run, the first hour a planned
message is due) rather than ticking 3,360 hours. A day's sync is played when something next
reads the warehouse (a run, a delivery): one nothing read before the next day's (a weekend's)
is left to that one, which loads the same rows. Data arrives as it would have: events and
posts once they happened, enrolments once made, completions and withdrawals once they
happened (the engine filters events by its as-of, but not every enrolment status).

After each tick that ran or delivered (syncs write no message), set-based SQL
(simulate_sql/check_*.sql) checks what that tick sent:
the learner's send window, no occasion twice, the per-person caps, the premise (the engine
re-evaluates the campaign as of the send moment for those learners, when the message goes
out later than it was planned), that each cancelled message says why, and that follow-ups
match stages; at the end, that every message due has ended. The checks run on a connection
of their own, beside the ticks that follow (on the other core), each reading the warehouse as
its tick left it (a transaction's snapshot, _Checker).
"""

from __future__ import annotations

import dataclasses
import os
import re
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
import shutil
import tempfile
import time as clock
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import warehouse
from connectors import open_source, sync
from relance import engine
from relance.campaign.loaded import LoadedCampaign
from relance.campaign.loader import load_all
from relance.campaign.types import WEEKDAYS
from relance.channels import for_campaign
from relance.engine import MAX_ATTEMPTS
from relance.runs.deployments import schedule_of
from relance.runs.steps import deliver, run_campaign
from relance.workbench.season_cohort import (PARIS, DailyExport, SimulationError, open_cohort,
                                             season_start)
from warehouse import execute_script, sql_file

SQL = Path(__file__).parent / "simulate_sql"
SYNC_AT = time(7, 0)            # prefect.yaml: sync-progress, daily 07:00 Paris
DELIVER_MINUTE = 5              # prefect.yaml: deliver-due, every hour at minute 5
INVARIANTS = {
    "window": "nothing outside a learner's send window",
    "occasion": "no occasion twice",
    "cap": "the per-person caps (across campaigns, and per campaign)",
    "premise": "no message whose premise was false when it went out",
    "ends": "every planned message ends (sent, cancelled with a reason, or failed)",
    "follow_up": "follow-ups consistent with stages",
}


# What the season's seconds are spent on (Season.timings), in the order the bench prints them.
# (*: run beside the ticks that follow, _Checker; their seconds overlap the others')
PARTS = {
    "cohort": "the cohort generated and loaded into the holding warehouse",
    "exports": "the daily exports written from the holding warehouse",
    "syncs": "the daily syncs (the CSV connector)",
    "runs": "the campaigns' scheduled runs (evaluate, persist, deliver what is due)",
    "deliveries": "the hourly deliveries",
    "premise": "the premise re-checks (the engine re-evaluating late sends' campaigns)*",
    "checks": "the other invariant checks*",
    "report": "the season's report (loads, collisions, the learner's timeline)",
    "cleanup": "the scratch folder removed (exports, outbox), or the warehouse kept (--keep)",
}


@contextmanager
def _timed(season: "Season", part: str):
    started = clock.perf_counter()
    try:
        yield
    finally:
        season.timings[part] = season.timings.get(part, 0.0) + clock.perf_counter() - started


@dataclass
class Violation:
    invariant: str
    campaign_id: str | None
    learner_id: str | None
    message_id: str | None
    moment: datetime
    why: str


@dataclass
class Season:
    """What a simulated season did; its tables read the scratch warehouse while open."""
    start: datetime
    weeks: int
    campaigns: list[str]
    learners: int = 0
    syncs: int = 0
    syncs_played: int = 0           # of them, those a run or a delivery read (the others
                                    # left to the next: the same rows)
    runs: int = 0
    deliveries: int = 0
    ticks: int = 0
    seconds: float = 0.0
    status: dict[str, int] = field(default_factory=dict)
    checked: dict[str, int] = field(default_factory=dict)      # messages checked, per invariant
    violations: dict[str, int] = field(default_factory=dict)
    examples: dict[str, Violation] = field(default_factory=dict)
    load: list[tuple] = field(default_factory=list)            # week, learners, mean, p95, max, n
    per_campaign: dict[tuple[int, str], int] = field(default_factory=dict)
    collisions: list[tuple] = field(default_factory=list)      # first, second, n, example
    collision_total: int = 0
    timeline: list[tuple] | None = None
    folder: Path | None = None
    # wall seconds by part of the season (PARTS), for the bench to say where the time goes
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not any(self.violations.values())

    @property
    def end(self) -> datetime:
        return self.start + timedelta(weeks=self.weeks)


# -- the cohort ------------------------------------------------------------------------------


# -- the clock -------------------------------------------------------------------------------

def run_moments(loaded: LoadedCampaign, start: datetime, end: datetime) -> list[datetime]:
    """A campaign's scheduled runs in [start, end), as its deployment would fire them."""
    run_at, _ = schedule_of(loaded.campaign)
    days = {"daily": range(7), "weekdays": range(5)}.get(run_at.days) or [
        WEEKDAYS.index(run_at.days)]
    tz = ZoneInfo(loaded.campaign.timezone)
    first = start.astimezone(tz).date() - timedelta(days=1)
    out = []
    for i in range((end - start).days + 2):
        day = first + timedelta(days=i)
        moment = datetime.combine(day, run_at.at, tz).astimezone(timezone.utc)
        if day.weekday() in days and start <= moment < end:
            out.append(moment)
    return out


def sync_moments(start: datetime, end: datetime) -> list[datetime]:
    first = start.astimezone(PARIS).date()
    moments = [datetime.combine(first + timedelta(days=i), SYNC_AT, PARIS).astimezone(timezone.utc)
               for i in range((end - start).days + 1)]
    return [m for m in moments if start <= m < end]


def delivery_moment(due: datetime) -> datetime:
    """The first hourly delivery (minute 5) at or after `due`."""
    due = due.astimezone(timezone.utc)
    at = due.replace(minute=DELIVER_MINUTE, second=0, microsecond=0)
    return at if at >= due else at + timedelta(hours=1)


# -- the season ------------------------------------------------------------------------------

def _limits(con, campaigns: list[LoadedCampaign]) -> None:
    con.execute("create or replace temp table sim_limits (campaign_id varchar, tz varchar, "
                "send_days integer[], quiet_start time, quiet_end time, per_week integer, "
                "per_campaign integer)")
    con.execute("create or replace temp table sim_rules (campaign_id varchar, rule varchar, "
                "stages varchar[])")
    for item in campaigns:
        c = item.campaign
        quiet = c.limits.quiet_span
        con.execute("insert into sim_limits values (?, ?, ?, ?, ?, ?, ?)",
                    [c.id, c.timezone, [WEEKDAYS.index(d) + 1 for d in c.limits.send_days],
                     quiet[0] if quiet else None, quiet[1] if quiet else None,
                     c.limits.per_learner_per_week, c.limits.per_campaign_per_week])
        for rule, spec in c.follow_up.items():
            stages = [spec.stage] if isinstance(spec.stage, str) else spec.stage
            con.execute("insert into sim_rules values (?, ?, ?)", [c.id, rule, stages])


def _recheck(con, loaded: LoadedCampaign, now: datetime) -> None:
    """Re-evaluate, as of `now`, the learners this tick sent a message of `loaded` it had
    planned earlier (the caller knows there are some), and check each was still a
    candidate (check_premise.sql)."""
    con.execute("create or replace temp table sim_recheck as select distinct t.learner_id "
                "from sim_tick t join campaign_runs r using (run_id) "
                "where t.campaign_id = ? and t.trigger <> 'digest' and r.as_of < ?",
                [loaded.id, now])
    campaign = loaded.campaign
    own = campaign.audience.where
    where = "learner_id in (select learner_id from sim_recheck)"
    # the same campaign narrowed to those learners; its managers' digests are not re-checked
    narrowed = campaign.model_copy(update={
        "digest": None, "audience": campaign.audience.model_copy(
            update={"where": f"({own}) and {where}" if own else where})})
    # (what check_premise reads: the candidates, the audience, the stages; no decisions)
    engine.evaluate(con, dataclasses.replace(loaded, campaign=narrowed), now, decisions=False)
    execute_script(con, sql_file(SQL, "check_premise"), {"now": now, "campaign_id": loaded.id})


def _check_tick(con, campaigns: list[LoadedCampaign], now: datetime, season: Season,
                ran: bool) -> None:
    season.checked.setdefault("premise", 0)
    execute_script(con, sql_file(SQL, "record"), {"now": now})
    execute_script(con, sql_file(SQL, "tick_sent"), {"now": now})
    execute_script(con, sql_file(SQL, "check_ends"), {"now": now})
    # per campaign: the messages this tick sent, and those of them sent later than the run
    # that planned them (managers' digests aside), whose premise is checked again
    sent = con.execute(
        "select t.campaign_id, count(*), count(*) filter (where r.as_of < ? and t.trigger "
        "<> 'digest') from sim_tick t left join campaign_runs r using (run_id) group by all",
        [now]).fetchall()
    if sent:
        # (the window's macro: the engine's, defined on `con` by _Checker)
        for name in ("check_window", "check_occasion", "check_cap"):
            execute_script(con, sql_file(SQL, name), {"now": now})
    for campaign_id, n, late in sent:
        for invariant in ("window", "occasion", "cap"):
            season.checked[invariant] = season.checked.get(invariant, 0) + n
        season.checked["premise"] = season.checked.get("premise", 0) + late
        if late:
            with _timed(season, "premise"):
                _recheck(con, next(c for c in campaigns if c.id == campaign_id), now)
    if ran:
        execute_script(con, sql_file(SQL, "check_follow_ups"), {"now": now})
        season.checked["follow_up"] = season.checked.get("follow_up", 0) + con.execute(
            "select count(*) from follow_ups join campaign_runs using (run_id) where as_of = ?",
            [now]).fetchall()[0][0]


_ENGINE_SQL = Path(engine.__file__).parent / "sql"


def _window_macro() -> str:
    """The engine's own send-window macro (relance_allowed, policies.sql), for check_window
    on a connection the engine has not evaluated on."""
    return next(s for s in warehouse.statements(sql_file(_ENGINE_SQL, "policies"))
                if "temp macro relance_allowed" in s)


class _Checker:
    """The invariant checks, on a connection of their own (a cursor of the season's
    warehouse: the sim_* tables are its temp tables), each tick's run beside the ticks that
    follow, on the other core: they took a sixth of the season, waited for at every tick.

    Each tick's checks read the warehouse as it was when the tick ended, whatever the clock
    does next: their transaction begins, and reads the ledger (DuckDB's snapshot is taken
    then), before the next tick starts; they write only their own temp tables. One tick's
    checks at a time, in the ticks' order; an error in them is raised at the next tick's
    or at the season's end."""

    def __init__(self, con, campaigns: list[LoadedCampaign], season: Season):
        self.con = con.cursor()
        self.campaigns, self.season = campaigns, season
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="season-checks")
        self.pending: Future | None = None
        execute_script(self.con, sql_file(SQL, "tables"))
        _limits(self.con, campaigns)
        self.con.execute(_window_macro())

    def submit(self, now: datetime, ran: bool) -> None:
        self.wait()
        self.con.execute("begin transaction")
        self.con.execute("select count(*) from messages").fetchall()     # the snapshot
        self.pending = self.pool.submit(self._check, now, ran)

    def _check(self, now: datetime, ran: bool) -> None:
        try:
            with _timed(self.season, "checks"):
                _check_tick(self.con, self.campaigns, now, self.season, ran)
            self.con.execute("commit")
        except BaseException:
            self.con.execute("rollback")
            raise

    def wait(self) -> None:
        """Until the last tick's checks are done (raising their error, if any)."""
        pending, self.pending = self.pending, None
        if pending is not None:
            pending.result()

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        self.con.close()


def simulate(campaigns_dir: str | Path, *, cohort: str = "demo", weeks: int = 20,
             scale: float = 1.0, start: datetime | None = None, learner: str | None = None,
             keep: str | Path | None = None, on_tick=None,
             check_every_tick: bool = False) -> Season:
    """Play a season; return what happened. The scratch folder (warehouses, exports,
    outbox) is removed at the end, failure or not, unless `keep` names where to leave it.
    The invariants are checked after each tick that ran a campaign or delivered; with
    `check_every_tick`, after syncs alone too (they write no message: the same verdicts,
    slower; tests/test_simulate.py compares both)."""
    started = clock.perf_counter()
    campaigns = load_all(campaigns_dir)
    if not campaigns:
        raise SimulationError(f"{campaigns_dir}: no campaign to simulate (add a campaign file "
                              "or pass --campaigns with the folder that has them)")
    if keep:
        folder = Path(keep)
        if folder.exists() and any(folder.iterdir()):
            raise SimulationError(f"--keep {folder}: the folder is not empty; name a new or "
                                  "empty folder for the season's warehouse and outbox")
        folder.mkdir(parents=True, exist_ok=True)
    else:
        folder = Path(tempfile.mkdtemp(prefix="relance-simulate-", dir=_scratch_root(scale, weeks)))
    # what exceeds DuckDB's memory limit spills to disk, never into memory
    spill = Path(tempfile.mkdtemp(prefix="relance-simulate-spill-"))
    try:
        season = _play(campaigns, folder, cohort, weeks, scale, start, learner, on_tick,
                       check_every_tick, kept=folder / "season.duckdb" if keep else None,
                       spill=spill)
    except BaseException:
        shutil.rmtree(spill, ignore_errors=True)
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)
        raise
    with _timed(season, "cleanup"):
        shutil.rmtree(spill, ignore_errors=True)
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)
        else:
            season.folder = folder
    season.seconds = clock.perf_counter() - started
    return season


# A season's outbox and daily exports in memory (a tmpfs) when it has room for them: they
# are removed at the season's end, and on disk their removal alone took 13-22 s of a
# 20-week demo season (20,000 messages written minutes before, each file's blocks freed
# and journaled; load 3-5), writing them 3 s more. About 6 KB a message, a thousand
# messages a week at scale 1; room for four times that, in the tmpfs and in free memory.
SCRATCH_IN_MEMORY = Path("/dev/shm")
_BYTES_PER_SCALED_WEEK = 8_000_000


def _scratch_root(scale: float, weeks: int) -> str | None:
    """Where the season's scratch folder goes: SCRATCH_IN_MEMORY if it is there with room
    to spare, else the system's temporary folder (None)."""
    need = 4 * _BYTES_PER_SCALED_WEEK * max(scale, 0.01) * max(weeks, 1)
    try:
        free_memory = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        room = shutil.disk_usage(SCRATCH_IN_MEMORY).free
        writable = os.access(SCRATCH_IN_MEMORY, os.W_OK)
    except (OSError, ValueError):
        return None
    return str(SCRATCH_IN_MEMORY) if writable and min(room, free_memory) >= need else None


def _play(campaigns, folder: Path, cohort: str, weeks: int, scale: float,
          start: datetime | None, learner: str | None, on_tick,
          check_every_tick: bool = False, kept: Path | None = None,
          spill: Path | None = None) -> Season:
    started = clock.perf_counter()
    connector, start = open_cohort(cohort, folder, start, weeks, scale)
    # Both warehouses live in memory, as scratch warehouses may: a season commits thousands
    # of times (every sync, run and delivery, several times each), and in a file every
    # commit wrote and flushed its log, the close checkpointed every table and the folder's
    # removal deleted them (a 20-week demo season: 642 s against 725 s in files, the two
    # played at once, load 8-13: syncs a sixth faster, runs a tenth, the cleanup 3 times). The
    # CSV export and the outbox stay files; `kept` receives a copy of the season's
    # warehouse at the end (--keep). What exceeds DuckDB's memory limit (a large cohort)
    # spills into `spill` (a scratch folder on disk), not into a `.tmp` of the working
    # directory.
    spill = spill or folder / "spill"
    holding = _in_memory(spill)
    try:
        if start is None:
            sync(holding, connector)
            first = holding.execute("select min(starts_on) from courses").fetchall()[0][0]
            if first is None:
                raise SimulationError(f"cohort {cohort!r}: no course has a start date; "
                                      "pass a start")
            start = season_start(datetime.combine(first, time(12), PARIS))
        else:
            sync(holding, connector, now=start + timedelta(weeks=weeks))
        con = _in_memory(spill)
        try:
            season = _season(con, holding, campaigns, folder, start, weeks, learner, on_tick,
                             check_every_tick, clock.perf_counter() - started)
            if kept:
                with _timed(season, "cleanup"):
                    _copy_to(con, kept)
            return season
        finally:
            con.close()
    finally:
        holding.close()


def _in_memory(spill: Path):
    con = warehouse.connect(":memory:")
    con.execute("set temp_directory = '{}'".format(str(spill).replace("'", "''")))
    return con


def _copy_to(con, path: Path) -> None:
    """The season's warehouse (tables, views, macros; not the checks' temp tables) copied
    into a warehouse file at `path`, for `--keep`: `duckdb -readonly` or relance opens it."""
    quoted = str(path).replace("'", "''")
    con.execute(f"attach '{quoted}' as kept (storage_version '{warehouse.STORAGE_VERSION}')")
    try:
        current = con.execute("select current_database()").fetchall()[0][0]
        con.execute(f'copy from database "{current}" to kept')
    finally:
        con.execute("detach kept")


def _season(con, holding, campaigns, folder: Path, start: datetime, weeks: int,
            learner: str | None, on_tick, check_every_tick: bool = False,
            cohort_seconds: float = 0.0) -> Season:
    season = Season(start, weeks, [c.id for c in campaigns])
    season.timings["cohort"] = cohort_seconds
    export = DailyExport(holding, folder / "export")
    daily = open_source(str(export.mapping))
    channels = {c.id: for_campaign(c, folder / "outbox") for c in campaigns}
    checker = _Checker(con, campaigns, season)
    try:
        return _ticks(con, checker, export, daily, channels, campaigns, season, learner,
                      on_tick, check_every_tick)
    finally:
        checker.close()


def _ticks(con, checker: _Checker, export: DailyExport, daily, channels: dict, campaigns,
           season: Season, learner: str | None, on_tick, check_every_tick: bool) -> Season:
    start, end = season.start, season.end
    # the fixed events: (moment, order at that moment, what); syncs before runs
    fixed = [(m, 0, None) for m in sync_moments(start, end)]
    fixed += [(m, 1 + i, c) for i, c in enumerate(campaigns) for m in run_moments(c, start, end)]
    fixed.sort(key=lambda e: (e[0], e[1]))
    i = 0
    delivered_until = start
    # A sync's rows are read by the next run or delivery, not by the clock: a day's sync
    # waits (pending) until something reads the warehouse, and one that nothing read before
    # the next is left to that one, which brings the same rows (the export only grows, so
    # its files are the same bytes; tests/test_simulate.py pins the ledger). With the repo's
    # campaigns, that is every weekend's two syncs: 2 of 7 a week.
    pending: list[datetime] = []

    def synced() -> None:
        if pending:
            moment = pending.pop()
            with _timed(season, "exports"):
                export.write(moment)
            with _timed(season, "syncs"):
                sync(con, daily, now=moment)
            season.syncs_played += 1

    while True:
        due = con.execute(
            "select min(not_before) from messages where not_before > ? and (status = 'planned' "
            "or (status = 'failed' and attempts < ?))", [delivered_until, MAX_ATTEMPTS]
        ).fetchall()[0][0]
        next_delivery = delivery_moment(due) if due else None
        candidates = [m for m in (fixed[i][0] if i < len(fixed) else None, next_delivery) if m]
        if not candidates or min(candidates) >= end:
            break
        now = min(candidates)
        ran = delivered = False
        while i < len(fixed) and fixed[i][0] == now:
            _, _, campaign = fixed[i]
            if campaign is None:
                pending[:] = [now]
                season.syncs += 1
            else:
                synced()
                with _timed(season, "runs"):
                    run_campaign(con, campaign, as_of=now, channel=channels[campaign.id])
                season.runs += 1
                ran = True
            i += 1
        if now == next_delivery:
            synced()
            busy = [r[0] for r in con.execute(
                "select distinct campaign_id from messages where not_before <= ? and "
                "(status = 'planned' or (status = 'failed' and attempts < ?))",
                [now, MAX_ATTEMPTS]).fetchall()]
            for c in campaigns:
                if c.id in busy:
                    with _timed(season, "deliveries"):
                        deliver(con, c, channels[c.id], now=now)
                    delivered = True
            season.deliveries += 1
            delivered_until = now
        season.ticks += 1
        if ran or delivered or check_every_tick:
            # only runs and deliveries write the ledger: after a tick of syncs alone (or an
            # hour with nothing due) there is nothing new to record or check
            synced()
            checker.submit(now, ran)
        if on_tick:
            on_tick(now, season)

    synced()        # the season's last days, for its report
    checker.wait()
    with _timed(season, "checks"):
        execute_script(checker.con, sql_file(SQL, "record"), {"now": end})
        execute_script(checker.con, sql_file(SQL, "check_final"),
                       {"now": end, "max_attempts": MAX_ATTEMPTS})
    # (the checks' time included the premise re-checks', counted apart)
    season.timings["checks"] -= season.timings.get("premise", 0.0)
    with _timed(season, "report"):
        _report(checker.con, season, learner)
    return season


def _report(con, season: Season, learner: str | None) -> None:
    params = {"start": season.start, "weeks": season.weeks,
              "start_date": season.start.astimezone(PARIS).date()}
    season.learners = con.execute("select count(distinct learner_id) from enrolments").fetchall()[0][0]
    season.status = dict(con.execute("select status, count(*) from messages group by all").fetchall())
    for inv, campaign_id, learner_id, message_id, moment, why in con.execute(
            "select * from sim_violations order by moment, invariant, message_id").fetchall():
        season.violations[inv] = season.violations.get(inv, 0) + 1
        season.examples.setdefault(inv, Violation(inv, campaign_id, learner_id, message_id,
                                                  moment, why))
    season.load = _rows(con, "load", params)
    season.per_campaign = {(w, c): n for w, c, n in _rows(con, "load_campaigns", params)}
    rows = _rows(con, "collisions", {})
    season.collisions = [r[:4] for r in rows]
    season.collision_total = rows[0][4] if rows else 0
    if learner:
        season.timeline = _rows(con, "timeline", {"learner": learner})
        if not season.timeline and not con.execute(
                "select count(*) from learners where learner_id = ?", [learner]).fetchall()[0][0]:
            raise SimulationError(f"--learner {learner}: no such learner in the cohort "
                                  "(ids look like L00042 in the demo)")


def _rows(con, name: str, params: dict) -> list[tuple]:
    sql = sql_file(SQL, name)
    used = {k: v for k, v in params.items() if re.search(rf"\${k}\b", sql)}
    return con.execute(sql, used).fetchall()


__all__ = ["INVARIANTS", "PARTS", "Season", "SimulationError", "Violation", "delivery_moment",
           "run_moments", "season_start", "simulate", "sync_moments"]
