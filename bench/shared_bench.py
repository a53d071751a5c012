"""The shared warehouse (PostgreSQL through DuckDB's postgres extension) against the embedded
file, same data, same run: a campaign's evaluation and a delivery, then the delivery
throughput of two workers against one.

    PYTHONPATH=.venv-shared python bench/shared_bench.py [--learners 100000,1000000] [--deliver 5000]
                                                         [--evaluation-only] [--separate-host]

Needs what `make test-shared` installs (DuckDB 1.5.5 and its postgres extension in
.venv-shared, PostgreSQL 15): both backends run on that DuckDB, so the ratio compares the
backends, not two DuckDB versions. It starts its own PostgreSQL on loopback
(tests/pg_fixtures.py), in a temporary folder, and stops it at the end.

For each size: engine_bench's warehouse (N learners, 10 events each) is generated in a
file, its per-learner summaries rebuilt as a load keeps them, and copied into a fresh
shared database. Then, each in a fresh process:
  1. evaluation: engine_bench's campaign evaluated on each backend, best of 2 interleaved
     rounds; the ratio shared / embedded (goal <= 1.5). Twice: as a replay of a past date
     reads it (the events scanned: `21.evaluation`, the figure earlier runs gave), and as
     `relance plan` / `run` as of now read it (the loaders' summaries:
     `21.evaluation_now`). Each round also gives its CPU seconds, DuckDB's (the evaluating
     process) and PostgreSQL's (every process of the bench's server, read from /proc):
     on this 2-core machine the wall-clock ratio swings with the other sessions' load,
     the CPU each backend spends much less; the seconds each side waited for a core while
     runnable (from /proc schedstat: what the other sessions' work took from it); and the
     time of each engine step.
     With --separate-host, each evaluation also runs a second way, in the same rounds:
     PostgreSQL on a core of its own and the evaluating process on the other, as when the
     database has a host of its own (docs/scheduling.md's two machines) on this one host.
     The bench's PostgreSQL (its postmaster and every child; the backends it forks later
     inherit it) is pinned to the last core and the evaluator to the first, on BOTH sides
     of the ratio, so the evaluator has one core whether it reads the file or PostgreSQL.
     DuckDB's `threads` does not follow the process's CPU affinity (it stays 2 under
     `taskset -c 0`), so these rounds also `set threads = 1`, on both sides. Its ratios
     are recorded under their own keys (`21.evaluation_separate_host`,
     `21.evaluation_now_separate_host`); the same-host ones stay as they were. Under other
     work the emulation is not a separate host: the other sessions' processes run on
     PostgreSQL's core too (its wait for a core, printed, would be about 0 on a host of its
     own);
  2. delivery: DELIVER learners silent for 8 days on a second course get a planned message
     each, sent through the local SendGrid-compatible server; messages per second on each.
Finally, on the smallest size's shared warehouse: two campaigns of DELIVER messages each,
sent by one worker (one after the other) and by two worker processes at once (each takes
the campaign the other does not hold); the ratio of their throughputs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.engine_bench import AS_OF, CAMPAIGN, generate  # noqa: E402
from bench.results import record  # noqa: E402

DELIVER = 5_000
SOURCE_TABLES = ("courses", "activities", "learners", "enrolments", "progress_events")
# what a load keeps beside the events (migration 0055): copied too, so that both backends
# read the same summaries as of now
SUMMARY_TABLES = ("progress_summaries", "activity_completions", "progress_summary_state")
SEND_CAMPAIGN = """
id: {id}
description: Benchmark delivery.
audience: {{course: c2}}
sender: {{name: "Équipe formation", email: formation@example.org}}
control_group: 0%
channel: sendgrid
stages:
  at_risk: {{inactive_days: ">= 7"}}
  active: {{}}
messages:
  relance: {{on_enter: at_risk}}
"""


def campaigns_folder(ids: tuple[str, ...]) -> Path:
    """engine_bench's campaign, and a sendgrid campaign per id with its templates (written
    as the tests write a designer's: tests/conftest.py)."""
    from tests.conftest import CampaignFolder
    folder = Path(tempfile.mkdtemp(prefix="relance-bench-campaigns-"))
    (folder / "bench.yaml").write_text(CAMPAIGN, encoding="utf-8")
    designer = CampaignFolder(folder)
    for cid in ids:
        designer.write(SEND_CAMPAIGN.format(id=cid))
    return folder


def add_send_course(con) -> None:
    """Course c2: the first DELIVER learners, silent for 8 days (one `relance` each)."""
    con.execute("insert into courses values ('c2', 'Anglais B2', null, null, date '2026-08-31', "
                "date '2027-01-17', 'bench', now())").fetchall()
    con.execute(f"insert into enrolments select learner_id, 'c2', '2026-09', "
                f"timestamptz '2026-09-01 00:00:00+00', 'enrolled', null, null, 'bench', now() "
                f"from learners order by learner_id limit {DELIVER}").fetchall()
    con.execute("insert into progress_events select 'c2-' || learner_id, learner_id, 'c2', null, "
                "'accessed', ?, null, 'bench', now() from enrolments where course_id = 'c2'",
                [AS_OF - timedelta(days=8)]).fetchall()


def copy_to_shared(path: Path, url: str) -> float:
    import warehouse
    t0 = time.perf_counter()
    con = warehouse.connect(url)
    raw = con.raw
    raw.execute(f"attach '{path}' as src (read_only)")
    raw.execute("delete from wh.public.progress_summary_state").fetchall()
    for table in SOURCE_TABLES + SUMMARY_TABLES:
        raw.execute(f"insert into wh.public.{table} select * from src.main.{table}").fetchall()
    raw.execute("detach src")
    con.close()
    # what autovacuum does after a large load (outside a transaction: postgres_execute runs
    # in one): the statistics, and the visibility map the index-only scans of the events'
    # partial indexes read (migration 0090)
    import psycopg
    from warehouse.shared import dsn
    with psycopg.connect(dsn(url), autocommit=True) as pg:
        pg.execute("vacuum analyze")
    return time.perf_counter() - t0


def postgres_stats() -> dict[int, list[str]]:
    """The /proc stat fields (those after the command's closing parenthesis: state is [0],
    ppid [1]) of the bench's PostgreSQL server (RELANCE_BENCH_PG_PID: its postmaster) and
    of its live children, by PID, the postmaster first; empty when no server is named."""
    pid = os.environ.get("RELANCE_BENCH_PG_PID")

    def stat(p: str) -> list[str] | None:
        try:
            return Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None                             # ended meanwhile
    own = stat(pid) if pid else None
    if own is None:
        return {}
    found = {int(pid): own}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = stat(entry.name)
            if fields and fields[1] == pid:
                found[int(entry.name)] = fields
    return found


def postgres_cpu() -> float:
    """CPU seconds used so far by the bench's PostgreSQL server: the postmaster's own, its
    live children's (backends, autovacuum, writers) and what its exited children used
    (counted in its cutime when it reaped them); 0 when no server is named. The difference
    of two readings is the server's CPU in between."""
    stats = postgres_stats()
    if not stats:
        return 0.0
    (postmaster, own), *children = stats.items()
    total = sum(int(own[i]) for i in (11, 12, 13, 14))     # utime stime cutime cstime
    total += sum(int(fields[11]) + int(fields[12]) for _, fields in children)
    return total / os.sysconf("SC_CLK_TCK")


def runqueue(pids) -> dict[int, float]:
    """Seconds each process's threads spent runnable but waiting for a core (the second
    field of /proc/<pid>/task/<tid>/schedstat), by PID: on this shared machine, the time
    the other sessions' work took from them."""
    waited = {}
    for pid in pids:
        total = 0
        for task in Path(f"/proc/{pid}/task").glob("*"):
            try:
                total += int((task / "schedstat").read_text().split()[1])
            except (OSError, IndexError, ValueError):
                pass                                # a thread that ended meanwhile
        waited[pid] = total / 1e9
    return waited


def waited_since(before: dict[int, float], pids) -> float:
    """Run-queue seconds of the live processes among `pids` since `before` was read (a
    process started since counts whole; one that ended is left out)."""
    return sum(w - before.get(pid, 0.0) for pid, w in runqueue(pids).items())


def pin_postgres(cores: set[int]) -> None:
    """The bench's PostgreSQL on `cores`: its postmaster and every live child (the backends
    it forks later inherit the postmaster's affinity)."""
    for pid in postgres_stats():
        try:
            os.sched_setaffinity(pid, cores)
        except ProcessLookupError:
            pass                                    # a child that ended meanwhile


def postgres_cores() -> list[int]:
    """The cores the bench's PostgreSQL processes may run on, all of them together: read
    while an evaluation's connections are open, it shows the pinning held for its backends."""
    cores: set[int] = set()
    for pid in postgres_stats():
        try:
            cores |= os.sched_getaffinity(pid)
        except ProcessLookupError:
            pass
    return sorted(cores)


def child(kind: str, target: str, extra: list[str]) -> None:
    """Runs in its own process; prints one JSON line."""
    import warehouse
    from relance.campaign.loader import load
    core = os.environ.get("RELANCE_BENCH_EVALUATOR_CORE")
    if core:                    # before DuckDB starts its threads: they inherit it
        os.sched_setaffinity(0, {int(core)})
    con = warehouse.connect(target, memory_limit="2GB")
    if core:                    # DuckDB's threads do not follow the affinity: one, to match
        getattr(con, "raw", con).execute("set threads = 1")
    if kind == "evaluate":
        from relance import engine
        loaded = load(Path(extra[0]) / "bench.yaml", check_templates=False)
        replay = extra[1] == "replay"
        own_wait, pg_wait = runqueue([os.getpid()]), runqueue(postgres_stats())
        pg0, cpu0, t0 = postgres_cpu(), time.process_time(), time.perf_counter()
        evaluation = engine.evaluate(con, loaded, AS_OF, full_scan=replay)
        seconds, cpu, pg = (time.perf_counter() - t0, time.process_time() - cpu0,
                            postgres_cpu() - pg0)
        assert evaluation.summaries is not replay, "the summaries do not cover AS_OF"
        n = evaluation.totals()["evaluated"]
        threads = getattr(con, "raw", con).execute(
            "select current_setting('threads')").fetchall()[0][0]
        print(json.dumps({"seconds": seconds, "rows": n, "cpu": cpu, "pg_cpu": pg,
                          "steps": evaluation.timings, "threads": threads,
                          "cores": sorted(os.sched_getaffinity(0)),
                          # the connection is still open: its backends are among these
                          "pg_cores": postgres_cores(),
                          # runnable, waiting for a core: the other sessions' load
                          "waited": waited_since(own_wait, [os.getpid()]),
                          "pg_waited": waited_since(pg_wait, postgres_stats())}))
    elif kind == "plan":
        from relance.runs import steps
        for cid in extra[1:]:
            steps.plan_step(con, load(Path(extra[0]) / f"{cid}.yaml", campaigns_dir=Path(extra[0])), AS_OF)
        print(json.dumps({"planned": con.execute(
            "select count(*) from messages where status = 'planned'").fetchall()[0][0]}))
    elif kind == "deliver":
        from relance.channels.sendgrid import SendGridChannel
        from relance.delivery import deliver_due
        from relance.delivery.lock import DeliveryBusy
        folder, url, key = Path(extra[0]), extra[1], extra[2]
        t0, sent = time.perf_counter(), 0
        for cid in extra[3:]:
            loaded = load(folder / f"{cid}.yaml", campaigns_dir=folder)
            try:
                report = deliver_due(con, loaded, SendGridChannel(key, host=url), now=AS_OF)
                sent += report.sent
            except DeliveryBusy:
                continue
        print(json.dumps({"seconds": time.perf_counter() - t0, "sent": sent}))
    con.close()


PG_PID: dict[str, str] = {}       # RELANCE_BENCH_PG_PID for the children: postgres_cpu


def run_child(kind: str, target: str, *extra: str, core: int | None = None) -> dict:
    """`core`: the evaluating process on that core alone, with one DuckDB thread."""
    pinned = {} if core is None else {"RELANCE_BENCH_EVALUATOR_CORE": str(core)}
    out = subprocess.run([sys.executable, __file__, "--child", kind, target, *extra],
                         capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "RELANCE_LOCK_WAIT_SECONDS": "0", **PG_PID,
                              **pinned})
    if out.returncode:
        raise SystemExit(f"{kind} on {target[:60]} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    global DELIVER
    parser = argparse.ArgumentParser()
    parser.add_argument("--learners", default="100000,1000000")
    parser.add_argument("--events-per-learner", type=int, default=10)
    parser.add_argument("--deliver", type=int, default=DELIVER,
                        help="messages each delivery sends (default %(default)s)")
    parser.add_argument("--evaluation-only", action="store_true",
                        help="the evaluations only: no delivery, no two workers (the replay's "
                             "and as of now's ratios in a few minutes at 1M learners)")
    parser.add_argument("--separate-host", action="store_true",
                        help="also evaluate with PostgreSQL on a core of its own and the "
                             "evaluator on another, on both sides (a database host of its "
                             "own, emulated on this one; needs 2 cores)")
    parser.add_argument("--child", nargs="+")
    args = parser.parse_args()
    DELIVER = args.deliver
    if args.child:
        child(args.child[0], args.child[1], args.child[2:])
        return
    import duckdb
    from tests.delivery_fixtures import FakeSendGrid
    from tests.pg_fixtures import make_template, shared_backend_available, start_postgres, stop_postgres
    why = shared_backend_available()
    if why:
        raise SystemExit(f"the shared warehouse cannot run here: {why} (make test-shared installs it)")
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    pg_folder = Path(tempfile.mkdtemp(prefix="relance-bench-pg-"))
    server = start_postgres(pg_folder)
    PG_PID["RELANCE_BENCH_PG_PID"] = str(server.process.pid)
    all_cores = sorted(os.sched_getaffinity(0))
    setups = [("same host", None)]
    if args.separate_host:
        if len(all_cores) < 2:
            raise SystemExit(f"--separate-host needs 2 cores to give PostgreSQL one of its "
                             f"own; this process may use {len(all_cores)}")
        # (set-up, the evaluator's core): PostgreSQL gets the last core
        setups.append(("separate host", all_cores[0]))
    os.environ.update(PG_PID)          # for pin_postgres / postgres_cores in this process
    sendgrid = FakeSendGrid(details=False)
    folder = campaigns_folder(("send", "send2"))
    try:
        make_template(server)
        sizes = [int(s) for s in args.learners.split(",")]
        for n in sizes:
            scale = f"{n:,} learners, {n * args.events_per_learner:,} events"
            path = out / f"shared-{n}-{duckdb.__version__}.duckdb"
            generate(path, n, n * args.events_per_learner)
            work = Path(tempfile.mkdtemp(prefix="relance-bench-"))
            embedded = work / "w.duckdb"
            shutil.copy(path, embedded)
            import warehouse
            con = warehouse.connect(embedded)
            add_send_course(con)
            from connectors import summaries
            summaries.rebuild(con, AS_OF)               # as a load of course c2 would have
            con.close()
            url = server.fresh_database("bench")
            copied = copy_to_shared(embedded, url)
            print(f"{scale}: copied to PostgreSQL in {copied:.0f} s", flush=True)
            for mode, goal in (("replay", "21.evaluation"), ("now", "21.evaluation_now")):
                # rounds alternate the set-ups and, within each, the backends
                rounds = {(setup, kind): [] for setup, _ in setups
                          for kind in ("embedded", "shared")}
                for _ in range(2):
                    for setup, core in setups:
                        pin_postgres(set(all_cores) if core is None else {all_cores[-1]})
                        for kind, target in (("embedded", str(embedded)), ("shared", url)):
                            rounds[setup, kind].append(run_child(
                                "evaluate", target, str(folder), mode, core=core))
                pin_postgres(set(all_cores))
                for setup, core in setups:
                    report_evaluation(scale, mode, goal, setups, core, all_cores,
                                      {kind: rounds[setup, kind] for kind in ("embedded", "shared")})
            if args.evaluation_only:
                shutil.rmtree(work, ignore_errors=True)
                continue
            rates = {}
            for kind, target in (("embedded", str(embedded)), ("shared", url)):
                planned = run_child("plan", target, str(folder), "send")["planned"]
                sendgrid.reset()
                got = run_child("deliver", target, str(folder), sendgrid.url, sendgrid.key, "send")
                rates[kind] = got["sent"] / got["seconds"]
                print(f"{scale}: delivery {kind}: {got['sent']:,} of {planned:,} sent in "
                      f"{got['seconds']:.1f} s, {rates[kind]:,.0f}/s", flush=True)
            record("21.delivery", rates["shared"] / rates["embedded"], 0.5, ">=", scale=scale,
                   script="shared_bench.py", unit="x embedded",
                   detail=f"embedded {rates['embedded']:,.0f}/s, shared {rates['shared']:,.0f}/s")
            shutil.rmtree(work, ignore_errors=True)
            if n == sizes[0]:
                two_workers(server, path, folder, sendgrid, scale)
    finally:
        sendgrid.stop()
        stop_postgres(server)
        shutil.rmtree(pg_folder, ignore_errors=True)
        shutil.rmtree(folder, ignore_errors=True)


def report_evaluation(scale: str, mode: str, goal: str, setups: list, core: int | None,
                      all_cores: list[int], rounds: dict[str, list[dict]]) -> None:
    """Prints and records one set-up's ratio, shared / embedded, of its best rounds."""
    best = {kind: min(runs, key=lambda r: r["seconds"]) for kind, runs in rounds.items()}
    e, s = best["embedded"]["seconds"], best["shared"]["seconds"]
    walls = {kind: [round(r["seconds"], 2) for r in runs] for kind, runs in rounds.items()}
    # CPU of the best rounds: the evaluating process's, and on the shared warehouse
    # PostgreSQL's besides
    e_cpu = best["embedded"]["cpu"]
    s_cpu, s_pg = best["shared"]["cpu"], best["shared"]["pg_cpu"]
    what = "replay" if mode == "replay" else "as of now"
    if core is None:
        name = f"evaluation ({mode})" + (", same host: PostgreSQL and the evaluator share "
                                         "every core" if len(setups) > 1 else "")
        key = goal
    else:
        # what the pinning was, as each round saw it
        pg_cores = sorted({c for r in rounds["shared"] for c in r["pg_cores"]})
        evaluator = sorted({c for runs in rounds.values() for r in runs for c in r["cores"]})
        threads = sorted({r["threads"] for runs in rounds.values() for r in runs})
        name = (f"evaluation ({what}), PostgreSQL on a core of its own (separate host "
                f"emulated: PostgreSQL on core(s) {pg_cores}), evaluator on 1 core both sides "
                f"(core(s) {evaluator}, DuckDB threads {threads})")
        key = f"{goal}_separate_host"
        if pg_cores != [all_cores[-1]] or evaluator != [core] or threads != [1]:
            raise SystemExit(f"the separate host's emulation did not hold: {name}")
    print(f"{scale}: {name}: embedded {e:.2f} s, shared {s:.2f} s, ratio {s / e:.2f} "
          f"(goal <= 1.5; rounds {walls}, load {os.getloadavg()[0]:.1f}); CPU embedded "
          f"{e_cpu:.1f} s, shared {s_cpu:.1f} s DuckDB + {s_pg:.1f} s PostgreSQL, ratio "
          f"{(s_cpu + s_pg) / e_cpu:.2f}; waited for a core (runnable while other work ran "
          f"on it): embedded {best['embedded']['waited']:.1f} s, shared "
          f"{best['shared']['waited']:.1f} s DuckDB + {best['shared']['pg_waited']:.1f} s "
          f"PostgreSQL", flush=True)
    for kind in ("embedded", "shared"):
        steps = ", ".join(f"{k} {v:.2f}" for k, v in best[kind]["steps"].items())
        print(f"    steps ({kind}, s): {steps}", flush=True)
    detail = (f"embedded {e:.2f} s, shared {s:.2f} s; CPU embedded {e_cpu:.1f} s, shared "
              f"{s_cpu:.1f} + {s_pg:.1f} s (PostgreSQL); waited for a core embedded "
              f"{best['embedded']['waited']:.1f} s, shared {best['shared']['waited']:.1f} + "
              f"{best['shared']['pg_waited']:.1f} s")
    if core is not None:
        detail = (f"{what}, PostgreSQL on a core of its own (separate host emulated), "
                  f"evaluator 1 core and 1 DuckDB thread both sides; {detail}")
    record(key, s / e, 1.5, "<=", scale=scale, script="shared_bench.py", detail=detail)


def two_workers(server, path: Path, folder: Path, sendgrid, scale: str) -> None:
    """Two campaigns of DELIVER messages: one worker sends both, then (planned again in a
    fresh database) two workers at once, each taking the campaign the other does not hold."""
    walls = {}
    for workers in (1, 2):
        url = server.fresh_database("two")
        work = Path(tempfile.mkdtemp(prefix="relance-bench-"))
        embedded = work / "w.duckdb"
        shutil.copy(path, embedded)
        import warehouse
        con = warehouse.connect(embedded)
        add_send_course(con)
        con.close()
        copy_to_shared(embedded, url)
        run_child("plan", url, str(folder), "send", "send2")
        sendgrid.reset()
        orders = [["send", "send2"]] if workers == 1 else [["send", "send2"], ["send2", "send"]]
        t0 = time.perf_counter()
        procs = [subprocess.Popen([sys.executable, __file__, "--child", "deliver", url, str(folder),
                                   sendgrid.url, sendgrid.key, *order], cwd=ROOT,
                                  stdout=subprocess.PIPE, text=True,
                                  env={**os.environ, "RELANCE_LOCK_WAIT_SECONDS": "0"})
                 for order in orders]
        sent = sum(json.loads(p.communicate()[0].strip().splitlines()[-1])["sent"] for p in procs)
        walls[workers] = (time.perf_counter() - t0, sent)
        shutil.rmtree(work, ignore_errors=True)
        print(f"{workers} worker(s): {sent:,} sent in {walls[workers][0]:.1f} s", flush=True)
    one = walls[1][1] / walls[1][0]
    two = walls[2][1] / walls[2][0]
    print(f"two workers / one: {two / one:.2f}x ({two:,.0f}/s against {one:,.0f}/s)", flush=True)
    record("21.two_workers", two / one, 1.0, ">=", scale=f"2 x {DELIVER:,} messages; {scale}",
           script="shared_bench.py", unit="x one worker",
           detail=f"one {one:,.0f}/s, two {two:,.0f}/s (2 cores shared by both)")


if __name__ == "__main__":
    main()
