"""Several machines, one warehouse (issue 21): the shared warehouse is a real PostgreSQL 15
(tests/pg_fixtures.py), and each "machine" is a process in a working folder of its own
(its campaigns, outbox, Prefect home) with nothing shared but the warehouse's address and
the e-mail provider (the local SendGrid-compatible server)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import warehouse
from relance.delivery.lock import DeliveryBusy, campaign_lock, run_lock
from relance.runs import steps
from tests.conftest import MONDAY, REPO
from tests.delivery_fixtures import FakeSendGrid, big_cohort, kill_when, run_cli, sendgrid_campaign

N = 3_000                         # planned messages per campaign (3 SendGrid requests each)


@pytest.fixture(scope="module")
def server():
    s = FakeSendGrid(details=False)
    yield s
    s.stop()


def test_the_schema_is_the_files_and_is_applied_once_whatever_the_number_of_machines(postgres_server):
    url = postgres_server.empty_database()
    # three "machines" open an empty shared warehouse at once: each migration runs once
    procs = [subprocess.Popen([sys.executable, "-c", "import sys, warehouse; "
                               "warehouse.connect(sys.argv[1]).close()", url],
                              env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    for p in procs:
        assert p.wait(timeout=300) == 0, p.stderr.read()
    con = warehouse.connect(url)
    applied = con.execute("select version, count(*) from schema_migrations group by version "
                          "order by version").fetchall()
    assert [v for v, _ in applied] == [m.version for m in warehouse.migrations()]
    assert {n for _, n in applied} == {1}
    # the analysts' views answer there too
    assert con.execute("select count(*) from campaign_funnel").fetchall() == [(0,)]
    con.close()


def test_keys_and_checks_hold_across_connections(postgres_server, tmp_path, campaigns):
    url = postgres_server.fresh_database()
    a, b = warehouse.connect(url), warehouse.connect(url)
    campaigns.write(campaigns.base())
    big_cohort(a, 10)
    steps.plan_step(a, campaigns.load(), MONDAY)
    key = a.execute("select idempotency_key from messages limit 1").fetchall()[0][0]
    # another machine planning the same occasion again is refused by PostgreSQL's key
    with pytest.raises(Exception, match="duplicate key"):
        b.execute("insert into messages select * replace ('copy' as message_id) "
                  "from messages where idempotency_key = ?", [key])
    with pytest.raises(Exception, match="check constraint"):
        b.execute("update messages set status = 'lost' where idempotency_key = ?", [key])
    assert b.execute("select count(*) from messages").fetchall() == [(10,)]
    a.close(), b.close()


def test_a_campaigns_delivery_and_run_are_one_at_a_time_across_connections(postgres_server):
    url = postgres_server.fresh_database()
    a, b = warehouse.connect(url), warehouse.connect(url)
    with campaign_lock(a, "test"):
        with pytest.raises(DeliveryBusy, match="already being delivered by 'relance delivery test pid"):
            with campaign_lock(b, "test"):
                pass
        with campaign_lock(b, "other"):          # another campaign goes on meanwhile
            pass
    with campaign_lock(b, "test"):               # released at the end of the first
        pass
    with run_lock(url, "test"):
        with pytest.raises(DeliveryBusy, match="already being run by"):
            with run_lock(b, "test"):
                pass
    a.close(), b.close()


def _machine(root: Path, name: str, campaigns: Path, url: str, server: FakeSendGrid) -> dict:
    """A working folder standing for one machine: its own copy of the campaigns, outbox and
    Prefect home; its environment names the shared warehouse and SendGrid."""
    home = root / name
    shutil.copytree(campaigns, home / "campaigns")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RELANCE_", "PREFECT_"))}
    env.update(PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
               PREFECT_HOME=str(home / "prefect"), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               RELANCE_WAREHOUSE=url, RELANCE_CAMPAIGNS=str(home / "campaigns"),
               RELANCE_OUTBOX=str(home / "outbox"), RELANCE_LOCK_WAIT_SECONDS="0",
               SENDGRID_API_KEY=server.key, RELANCE_SENDGRID_HOST=server.url, COLUMNS="200")
    return {"home": home, "env": env}


def _deliver(machine: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "relance.cli", "deliver",
                             "--now", MONDAY.replace(hour=12).isoformat()],
                            cwd=machine["home"], env=machine["env"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def test_two_machines_deliver_concurrently_one_dies_mid_send_nothing_twice_nothing_lost(
        postgres_server, tmp_path, campaigns, server):
    """Two workers deliver the two campaigns at once: A takes 'other' (the first in order),
    B finds it busy and sends 'test' meanwhile. A is killed (SIGKILL) while SendGrid holds
    the answer to a request it accepted; its lock goes with its connection, and B's next
    delivery takes 'other' over: what A had in flight is uncertain and reported, the rest
    goes once."""
    sendgrid_campaign(campaigns)
    campaigns.write(campaigns.base("other").replace(
        "control_group: 0%\n", "control_group: 0%\nchannel: sendgrid\n"))
    url = postgres_server.fresh_database()
    con = warehouse.connect(url)
    big_cohort(con, N)
    for cid in ("test", "other"):
        steps.plan_step(con, campaigns.load(cid), MONDAY)
    assert con.execute("select count(*) from messages where status = 'planned'").fetchall() == [(2 * N,)]
    con.close()
    a = _machine(tmp_path, "machine-a", campaigns.root, url, server)
    b = _machine(tmp_path, "machine-b", campaigns.root, url, server)

    server.script({"status": 202, "hold": 120})        # accepted; the answer never arrives
    worker_a = _deliver(a)                              # 'other' first, then 'test'
    deadline = time.monotonic() + 120
    while server.state()["holding"] == 0:
        assert worker_a.poll() is None and time.monotonic() < deadline, worker_a.stdout.read()
        time.sleep(0.05)
    held = server.state()
    # B starts while A's request is held: the campaign A sends is busy, B sends the other
    worker_b = _deliver(b)
    seen_b = time.monotonic()
    while server.state()["requests"] == held["requests"] and time.monotonic() - seen_b < 120:
        time.sleep(0.05)
    assert kill_when(worker_a, lambda: True), "worker A ended before it was killed"
    out_b, _ = worker_b.communicate(timeout=300)
    server.clear_script()
    # the next hourly delivery on B takes over the campaign A was sending
    worker_b2 = _deliver(b)
    out_b2, _ = worker_b2.communicate(timeout=300)

    con = warehouse.connect(url)
    status = dict(con.execute("select message_id, status from messages").fetchall())
    accepted = server.accepted()
    assert len(status) == 2 * N
    assert set(accepted.values()) == {1}, "a message was accepted twice"
    sent = {m for m, s in status.items() if s == "sent"}
    uncertain = {m for m, s in status.items() if s == "uncertain"}
    assert sent | uncertain == set(status), (
        f"lost: {len(set(status) - sent - uncertain)} neither sent nor uncertain\n{out_b}\n{out_b2}")
    assert sent <= set(accepted) and set(accepted) <= sent | uncertain
    # what A had in flight: SendGrid accepted it, A never knew: uncertain, and said so
    assert uncertain and uncertain <= set(accepted)
    assert len(uncertain) <= 1000
    assert f"{len(uncertain)} messages (other: {len(uncertain)}) went to the provider and got no answer" in out_b2, out_b2
    assert "'other' is already being delivered by 'relance delivery other pid" in out_b, out_b
    assert worker_b2.returncode == 4, out_b2                      # uncertain: exit status 4
    # each worker's runs are in the shared warehouse's attempts, from two processes
    pids = {r[0] for r in con.execute("select distinct pid from send_attempts").fetchall()}
    assert len(pids) >= 2
    con.close()
    out = run_cli("uncertain", "list", "--warehouse", url)
    assert f"{len(uncertain)} uncertain messages" in out


def test_prefect_workers_in_two_folders_share_the_runs_of_one_pool_on_the_shared_warehouse(
        postgres_server, tmp_path):
    """The operator's set-up of docs/scheduling.md with two "machines": a real `prefect
    server`, the `relance` process pool, `prefect deploy --all`, and a worker per machine,
    each in its own folder (its own Prefect home and outbox) with RELANCE_WAREHOUSE naming
    the one PostgreSQL database. Two runs of one campaign and two other campaigns: every
    run completes, both workers take runs, the two runs of one campaign do not overlap and
    the second sends nothing the first sent."""
    from connectors import open_source, sync
    from relance import demo
    from tests.deploy_fixtures import start_server

    url = postgres_server.fresh_database()
    mapping = demo.generate(tmp_path / "export", as_of=MONDAY, scale=0.1)
    con = warehouse.connect(url)
    sync(con, open_source(str(mapping)), now=MONDAY)
    con.close()
    overlay = os.environ.get("PYTHONPATH", "")
    (tmp_path / "prefect").mkdir()
    server = start_server(tmp_path / "prefect", RELANCE_WAREHOUSE=url,
                          RELANCE_CAMPAIGNS=str(REPO / "campaigns"),
                          PYTHONPATH=os.pathsep.join([str(REPO), overlay]))
    try:
        server.cli("work-pool", "create", "relance", "--type", "process")
        server.cli("--no-prompt", "deploy", "--all")
        as_of = MONDAY.isoformat()
        climat = [server.trigger("run-mooc-climat", as_of=as_of) for _ in range(2)]
        others = [server.trigger("run-parcours-anglais", as_of=as_of),
                  server.trigger("run-onboarding", as_of=as_of)]
        for name in ("alpha", "beta"):
            home = tmp_path / name
            home.mkdir()
            log = open(home / "worker.log", "ab")
            env = {**server.env, "PREFECT_HOME": str(home / "prefect-home"),
                   "RELANCE_OUTBOX": str(home / "outbox")}
            server.workers.append(subprocess.Popen(
                [str(Path(sys.executable).parent / "prefect"), "worker", "start", "--pool",
                 "relance", "--type", "process", "--name", name, "--limit", "1"],
                env=env, cwd=home, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        runs = server.wait(climat + others, timeout=600)
        assert [r["state_type"] for r in runs] == ["COMPLETED"] * 4, [r["state"] for r in runs]
        taken = {name: {r for r in climat + others
                        if r in (tmp_path / name / "worker.log").read_text(errors="replace")}
                 for name in ("alpha", "beta")}
        assert taken["alpha"] and taken["beta"], taken
        first, second = sorted(runs[:2], key=lambda r: r["start_time"])
        assert first["end_time"] <= second["start_time"]
    finally:
        server.stop()
    con = warehouse.connect(url)
    rows = dict(con.execute("select flow_run_id, n_sent from campaign_runs "
                            "where flow_run_id is not null").fetchall())
    assert rows[first["id"]] > 0 and rows[second["id"]] == 0
    # every message sent once, each in one of the two machines' outboxes
    sent = con.execute("select count(*), count(distinct idempotency_key) from messages "
                       "where status = 'sent'").fetchall()[0]
    con.close()
    files = [p.name for name in ("alpha", "beta") for p in (tmp_path / name / "outbox").rglob("*.eml")]
    assert sent[0] == sent[1] == len(files) == len(set(files)) > 0


def test_an_unreachable_or_misnamed_shared_warehouse_is_said_in_one_line_without_its_password(
        postgres_server):
    from warehouse.shared import SharedWarehouseError
    closed = f"postgres:host=127.0.0.1 port={postgres_server.port + 1} dbname=x user=postgres password=s3cret"
    with pytest.raises(SharedWarehouseError) as caught:
        warehouse.connect(closed)
    text = str(caught.value)
    assert text.startswith(f"cannot open the shared warehouse postgres:host=127.0.0.1 port={postgres_server.port + 1}")
    assert "password=***" in text and "s3cret" not in text
    assert "docs/scheduling.md" in text
    with pytest.raises(SharedWarehouseError, match="DuckLake enforces no primary or unique key"):
        warehouse.connect("ducklake:postgres:dbname=lake")


def test_a_migration_the_attached_catalog_cannot_run_is_refused_naming_where_its_twin_goes(
        postgres_server, tmp_path, monkeypatch):
    url = postgres_server.fresh_database()
    folder = tmp_path / "migrations"
    shutil.copytree(warehouse.MIGRATIONS, folder)
    (folder / "0099_widen.sql").write_text(
        "alter table learners alter column email set not null;\n", encoding="utf-8")
    monkeypatch.setattr(warehouse, "MIGRATIONS", folder)
    with pytest.raises(warehouse.MigrationError,
                       match=r"0099_widen.sql cannot run on the shared warehouse: .*"
                             r"warehouse/migrations/postgres/0099_widen.sql"):
        warehouse.connect(url)
    # with its PostgreSQL twin it applies, and is recorded under the file's own checksum
    (folder / "postgres").mkdir(exist_ok=True)
    (folder / "postgres" / "0099_widen.sql").write_text(
        "alter table learners alter column email set not null;\n", encoding="utf-8")
    monkeypatch.setattr("warehouse.shared.POSTGRES_TWINS", folder / "postgres")
    con = warehouse.connect(url)
    assert con.execute("select name from schema_migrations where version = 99").fetchall() == [("widen",)]
    con.close()


def test_confirming_and_replanning_uncertain_messages_return_what_changed(postgres_server, campaigns):
    """`relance uncertain confirm/resend` rest on UPDATE ... RETURNING, which the attached
    tables do not run: warehouse/shared.py runs it for them, with the same answer."""
    from relance.delivery import uncertain
    url = postgres_server.fresh_database()
    con = warehouse.connect(url)
    campaigns.write(campaigns.base())
    big_cohort(con, 6)
    steps.plan_step(con, campaigns.load(), MONDAY)
    ids = [r[0] for r in con.execute("select message_id from messages order by message_id").fetchall()]
    con.execute("update messages set status = 'uncertain' where message_id in (?, ?, ?, ?)", ids[:4])
    assert uncertain.resolve(con, ids[:2] + ids[4:], accepted=True, by="a test") == 2
    assert uncertain.resolve(con, ids[2:], accepted=False, by="a test") == 2
    status = dict(con.execute("select message_id, status from messages").fetchall())
    assert [status[i] for i in ids] == ["sent", "sent", "planned", "planned", "planned", "planned"]
    assert con.execute("select count(*) from messages where error like 'was uncertain; confirmed sent by a test'"
                       ).fetchall() == [(2,)]
    con.close()


def test_a_delivery_asks_postgresql_for_its_learners_rows_not_whole_tables(
        postgres_server, campaigns, capfd):
    """DuckDB's postgres extension sends a table's own filters to PostgreSQL, not a join's
    keys: a delivery's cancellations (cancel.sql) and its messages' context
    (context_scope.sql) filter each learner-sized table on the due messages' keys
    (warehouse/shared.py, push_keys), so at 1M learners a delivery of 5,000 reads those
    learners' rows, not 10M events per batch. Checked on what the extension sends (its
    pg_debug_show_queries), and on the context it gives."""
    from relance.delivery.deliver import _DUE, cancel_stale
    from relance.delivery.messages import context_rows, scope
    from relance.engine import MAX_ATTEMPTS
    campaigns.write(campaigns.base())
    url = postgres_server.fresh_database()
    con = warehouse.connect(url)
    big_cohort(con, 12)
    loaded = campaigns.load()
    steps.plan_step(con, loaded, MONDAY)
    now = MONDAY.replace(hour=12)
    # one has withdrawn since: cancelled, the others' context read
    con.execute("update enrolments set status = 'withdrawn' where learner_id = 'L000003'")
    capfd.readouterr()
    con.execute("set pg_debug_show_queries = true")
    cancelled = cancel_stale(con, loaded, now)
    scope(con, f"select message_id {_DUE}", [loaded.id, now, MAX_ATTEMPTS])
    ids = [r[0] for r in con.execute(f"select message_id {_DUE} order by message_id",
                                     [loaded.id, now, MAX_ATTEMPTS]).fetchall()]
    rows = context_rows(con, ids, loaded.campaign.timezone, scoped=True)
    con.execute("set pg_debug_show_queries = false")
    sent = capfd.readouterr()
    reads = [line for line in (sent.out + sent.err).splitlines() if line.startswith("COPY (SELECT")]
    assert cancelled == {"withdrawn": 1} and len(rows) == len(ids) == 11
    assert "L000003" not in {r["learner_id"] for r in rows}
    assert {r["learner"]["name"] for r in rows} == {"Zoé Lefèvre"}
    learner_sized = ("progress_events", "learners", "decisions", "enrolments", "stage_state",
                     "contributions", "follow_up_actions", "digest_members")
    read = {t: [q for q in reads if f'"public"."{t}"' in q] for t in learner_sized}
    assert read["progress_events"] and read["learners"] and read["decisions"]
    whole = [q for t in learner_sized for q in read[t] if " WHERE " not in q]
    assert not whole, "read whole:\n" + "\n".join(q[:200] for q in whole)
    assert any("\"learner_id\" IN ('L000000', " in q for q in read["progress_events"])
    con.close()


def test_keys_written_as_literals_give_what_the_subquery_gave(postgres_server):
    from warehouse.shared import push_keys
    con = warehouse.connect(postgres_server.fresh_database())
    con.execute("insert into courses values ('c1', 'A', null, null, null, null, 't', now()), "
                "('c''2', 'B', null, null, null, null, 't', now()), "
                "('c3', 'C', null, null, null, null, 't', now())")
    con.execute("create temp table wanted as select unnest(['c''2', 'c1', 'c1']) as course_id")
    con.execute("create temp table nothing (course_id varchar)")
    query = "select title from courses where course_id in (select course_id from {}) order by 1"
    assert con.execute(query.format("wanted")).fetchall() == [("A",), ("B",)]
    assert "'c''2'" in push_keys(con.raw, query.format("wanted"))
    assert con.execute(query.format("nothing")).fetchall() == []
    unchanged = "select title from courses where course_id not in (select course_id from wanted)"
    assert push_keys(con.raw, unchanged) == unchanged
    assert con.execute(unchanged).fetchall() == [("C",)]
    con.close()


def test_the_demo_run_deliver_and_report_on_a_shared_warehouse(postgres_server, tmp_path,
                                                               monkeypatch):
    """A newcomer's tour with RELANCE_WAREHOUSE naming a shared database: `relance demo`
    (its steps in this process: no Prefect server), next week's `run`, `deliver`, `report`;
    a second demo does not empty the shared database."""
    from datetime import timedelta

    from typer.testing import CliRunner

    from relance.cli.main import app
    url = postgres_server.fresh_database()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RELANCE_WAREHOUSE", url)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    where = ["--campaigns", str(REPO / "campaigns")]
    out = run_cli("demo", "--as-of", MONDAY.isoformat(), *where)
    assert "Campaign runs" in out and "warehouse.connect(" in out and "duckdb -readonly" not in out
    con = warehouse.connect(url)
    runs = con.execute("select status, count(*) from campaign_runs group by all").fetchall()
    sent = con.execute("select count(*) from messages where status = 'sent'").fetchall()[0][0]
    assert runs == [("succeeded", 6)]
    assert sent == len(list((tmp_path / "outbox").rglob("*.eml"))) > 0
    con.close()

    again = CliRunner().invoke(app, ["demo", *where])
    assert again.exit_code == 1 and "already holds a demo (2000 learners)" in again.output
    assert "does not empty a shared database" in again.output

    week = MONDAY + timedelta(weeks=1)
    out = run_cli("run", "parcours-anglais", "--as-of", week.isoformat(), *where)
    assert "parcours-anglais" in out
    run_cli("deliver", "--now", (week + timedelta(hours=10)).isoformat(), *where)
    con = warehouse.connect(url)
    assert con.execute("select count(*) from campaign_runs where as_of = ?", [week]
                       ).fetchall() == [(1,)]
    assert con.execute("select count(*) from messages where status = 'sent'").fetchall()[0][0] \
        == len(list((tmp_path / "outbox").rglob("*.eml"))) > sent
    con.close()
    run_cli("report", "parcours-anglais", "--output", str(tmp_path / "roi.html"), *where)
    page = (tmp_path / "roi.html").read_text(encoding="utf-8")
    assert "parcours-anglais" in page


def test_a_whole_tables_count_or_bound_is_asked_of_postgresql_and_gives_what_duckdb_gave(
        postgres_server):
    """`(select count(*) from t)` and `(select max(c) from t)` over a table of the shared
    database run in PostgreSQL (warehouse/shared.py, push_aggregates): the same answers,
    a transaction's own writes included; a temp table or a view of the same name is left
    to DuckDB."""
    from warehouse.shared import pushed
    con = warehouse.connect(postgres_server.fresh_database())
    big_cohort(con, 5)
    count = "select count(*) from progress_events"
    bound = "select (select count(*) from learners), (select max(occurred_at) from progress_events)"
    assert "postgres_query" in pushed(con.raw, count) and "postgres_query" in pushed(con.raw, bound)
    expected = con.raw.execute(bound).fetchall()
    assert con.execute(bound).fetchall() == expected and expected[0][0] == 5
    con.execute("begin")
    con.execute("delete from progress_events where learner_id = 'L000001'")
    assert con.execute(count).fetchall() == [(4,)]
    con.execute("rollback")
    assert con.execute(count).fetchall() == [(5,)]
    con.execute("create temp table progress_events as select 1 as x")
    assert pushed(con.raw, count) == count and con.execute(count).fetchall() == [(1,)]
    inside = "select count(*) from learners where learner_id = 'L000001'"
    assert pushed(con.raw, inside) == inside
    con.close()


def test_an_evaluation_reads_no_whole_ledger_nor_counts_the_events_through_duckdb(
        postgres_server, campaigns, capfd):
    """What an evaluation asks PostgreSQL for (the extension's pg_debug_show_queries): the
    events' count is PostgreSQL's (the summaries' check), the ledger is read for the
    campaign's keys only, the events with a progress figure are filtered there; and the
    decisions are the embedded file's."""
    from datetime import timedelta

    from relance import engine
    campaigns.write(campaigns.base())
    loaded = campaigns.load()
    decisions = {}
    for kind in ("embedded", "shared"):
        con = warehouse.connect(postgres_server.fresh_database() if kind == "shared" else ":memory:")
        big_cohort(con, 12)
        con.execute("insert into progress_events select 'p-' || learner_id, learner_id, 'c1', "
                    "null, 'progressed', ?, 0.5, 'test', now() from learners where learner_id < 'L000004'",
                    [MONDAY.replace(hour=0)]).fetchall()
        steps.plan_step(con, loaded, MONDAY - timedelta(weeks=1))
        capfd.readouterr()
        if kind == "shared":
            con.execute("set pg_debug_show_queries = true")
        engine.evaluate(con, loaded, MONDAY)
        if kind == "shared":
            con.execute("set pg_debug_show_queries = false")
        decisions[kind] = con.execute("select * from eval_decisions order by all").fetchall()
        con.close()
    sent = capfd.readouterr()
    reads = [line for line in (sent.out + sent.err).splitlines() if line.startswith("COPY (")]
    assert decisions["shared"] == decisions["embedded"] and len(decisions["shared"]) == 12
    assert not [q for q in reads if q.startswith('COPY (SELECT NULL FROM "public"."progress_events"')]
    assert any("count(*)" in q and "progress_events" in q for q in reads)
    ledger = [q for q in reads if '"public"."messages"' in q]
    assert ledger and all(" WHERE " in q for q in ledger), "\n".join(ledger)
    assert any('"idempotency_key" >= \'test/\'' in q for q in ledger)
    assert any('"progress" >= ' in q for q in reads if '"progress"' in q)


def _copied(out: str) -> dict[str, list[str]]:
    """The extension's reads (pg_debug_show_queries) by table; a read is whole when its only
    condition is the ctid range of a parallel scan."""
    import re
    reads = {}
    for line in out.splitlines():
        m = re.match(r'COPY \(SELECT .*? FROM "public"\."(\w+)"(.*)', line)
        if m:
            rest = re.sub(r"WHERE ctid BETWEEN '\([\d,]+\)'::tid AND '\([\d,]+\)'::tid( AND)?",
                          "WHERE", m[2])
            reads.setdefault(m[1], []).append("whole" if rest.strip().startswith(
                ("WHERE)", ")")) else rest)
    return reads


def test_a_batchs_replies_and_digests_read_their_rows_not_whole_tables(
        postgres_server, campaigns, tmp_path, capfd):
    """The replies' context (reply_context.sql) and the managers' digests' (digest_context.sql)
    ask PostgreSQL for the batch's rows: the ledger's, the replies' and members', their
    learners' and events (warehouse/shared.py: push_keys, push_derived_keys); and give what
    the same query gives without the pushdown (con.raw)."""
    from relance import clock
    from relance.delivery import digests as digest_mail
    from relance.delivery import reply_mail
    from relance.replies import ingest
    from relance.replies.mail import from_bytes
    from tests.conftest import Cohort
    from tests.replies_fixtures import reply, sent_relance
    from tests.test_digests import managed, write_campaign as write_digest_campaign
    from warehouse import sql_file

    def batch(con, where: str) -> None:
        con.execute("create or replace temp table delivery_batch as select message_id "
                    f"from messages where {where}")

    def read(con, call):
        capfd.readouterr()
        con.execute("set pg_debug_show_queries = true")
        rows = call()
        con.execute("set pg_debug_show_queries = false")
        sent = capfd.readouterr()
        return rows, _copied(sent.out + sent.err)

    con = warehouse.connect(postgres_server.fresh_database())
    cohort = Cohort(con)
    for _ in range(5):
        cohort.learner(inactive_days=2)
    lid, _, reply_to, _ = sent_relance(con, cohort, campaigns, tmp_path)
    with clock.at(MONDAY.replace(hour=10)):
        ingest.store(con, from_bytes(reply(reply_to, "je n'arrive pas à me connecter"), "imap"),
                     ingest.Campaigns(campaigns.root))
    batch(con, "trigger like 'reply:%'")
    rows, reads = read(con, lambda: reply_mail.context_rows(con))
    assert {(r["trigger"], r["reply_learner_id"]) for r in rows} == {
        ("reply:ack", lid), ("reply:forward", lid)}
    assert rows == con.raw.sql(sql_file(reply_mail.HERE, "reply_context")).to_arrow_table().to_pylist()
    for table in ("messages", "learner_replies", "learners"):
        assert reads.get(table) and "whole" not in reads[table], (table, reads.get(table))
    con.close()

    con = warehouse.connect(postgres_server.fresh_database())
    cohort = Cohort(con)
    for i in range(6):
        managed(con, cohort.learner(inactive_days=1 + 5 * i), f"chef{i % 2}@example.org")
    cohort.learner(inactive_days=3)                     # no manager: in no digest
    write_digest_campaign(campaigns)
    steps.plan_step(con, campaigns.load(), MONDAY)
    batch(con, "trigger = 'digest'")
    params = {"timezone": "Europe/Paris", "per_group": digest_mail.PER_GROUP}
    rows, reads = read(con, lambda: digest_mail.context_rows(con, "Europe/Paris"))
    assert len(rows) == 2 and sorted(r["n_listed"] for r in rows) == [3, 3]
    assert rows == con.raw.sql(sql_file(digest_mail.HERE, "digest_context"),
                               params=params).to_arrow_table().to_pylist()
    for table in ("messages", "digest_members", "learners", "decisions", "progress_events",
                  "campaign_runs"):
        assert reads.get(table) and "whole" not in reads[table], (table, reads.get(table))
    con.close()


def test_the_send_time_recheck_reads_its_learners_rows_and_judges_as_the_file_does(
        postgres_server, campaigns, capfd):
    """The recheck before a send (delivery/recheck.py) evaluates the due messages' learners
    only: their enrolments, learners' rows, events and ledger rows are asked of PostgreSQL
    by key (engine.evaluate's recheck, recheck.sql), none of those tables copied whole;
    and it cancels what the file's recheck cancels."""
    from relance.delivery.recheck import recheck_due
    campaigns.write(campaigns.base())
    loaded = campaigns.load()
    results = {}
    for kind in ("embedded", "shared"):
        con = warehouse.connect(postgres_server.fresh_database() if kind == "shared" else ":memory:")
        big_cohort(con, 12)
        con.execute("insert into learners values ('X1', 'x1@example.org', 'Not', 'Due', 'fr', "
                    "'Europe/Paris', null, 'test', now())")
        steps.plan_step(con, loaded, MONDAY)
        # since planned: one completed the course, one came back
        con.execute("update enrolments set status = 'completed', completed_at = ? "
                    "where learner_id = 'L000004'", [MONDAY])
        con.execute("insert into progress_events values ('back', 'L000007', 'c1', null, "
                    "'accessed', ?, null, 'test', now())", [MONDAY.replace(hour=9)])
        capfd.readouterr()
        con.execute("set global pg_debug_show_queries = true" if kind == "shared" else "select 1")
        checked = recheck_due(con, loaded, MONDAY.replace(hour=12))
        con.execute("set global pg_debug_show_queries = false" if kind == "shared" else "select 1")
        sent = capfd.readouterr()
        results[kind] = (checked.checked, dict(checked.cancelled), dict(checked.waiting),
                         con.execute("select learner_id, status, error from messages "
                                     "order by all").fetchall())
        con.close()
    assert results["shared"] == results["embedded"]
    assert results["shared"][0] == 12 and sum(results["shared"][1].values()) == 2
    reads = _copied(sent.out + sent.err)
    for table in ("learners", "enrolments", "progress_events", "messages", "stage_state"):
        assert reads.get(table) and "whole" not in reads[table], (table, reads.get(table))
    assert any("'L000011'" in q for q in reads["progress_events"])
    # the campaign's stage state: these learners' rows, not the campaign's every learner's
    assert all('"learner_id" IN (' in q for q in reads["stage_state"]), reads["stage_state"]


def test_a_replay_reads_progress_figures_and_completions_from_postgresqls_indexes(
        postgres_server, campaigns, capfd):
    """A replay of a past date (the events scanned, not the loaders' summaries) asks
    PostgreSQL for the events with a progress figure and for the completions in one query
    each, through the views of migration 0090, which PostgreSQL can answer from their
    partial indexes alone; every event is read once, for the last activity. The measures and
    decisions are the embedded file's, events after the replayed date left out, and only
    the completing verbs counted as completions."""
    import re
    from datetime import timedelta

    import psycopg

    from relance import engine
    from warehouse.shared import dsn
    campaigns.write(campaigns.base())
    loaded = campaigns.load()
    as_of = MONDAY - timedelta(days=3)
    verbs = ["completed", "passed", "submitted", "progressed", "attempted", "accessed"]
    states, decisions, sent = {}, {}, ""
    for kind in ("embedded", "shared"):
        url = postgres_server.fresh_database() if kind == "shared" else ":memory:"
        con = warehouse.connect(url)
        big_cohort(con, 12)
        con.execute("insert into activities select 'c1', 'a' || i, 'Activité ' || i, 'quiz', 1, "
                    "null, ?, 1, true, null, 'test', now() from range(4) t(i)",
                    [MONDAY - timedelta(weeks=3)]).fetchall()
        # each learner: a progress figure reached twice (the earlier counts), one after the
        # replayed date (ignored), and an event per verb on an activity of their own
        con.execute(
            "insert into progress_events select 'p-' || learner_id || '-' || d, learner_id, "
            "'c1', null, 'progressed', ? - to_days(d::integer), "
            "case when d = 0 then 0.9 else 0.25 * (1 + right(learner_id, 1)::integer % 3) end, "
            "'test', now() from learners, range(0, 3) t(d) where d <> 1 or learner_id < 'L000006'",
            [as_of + timedelta(days=1)]).fetchall()
        con.execute(
            "insert into progress_events select 'v-' || learner_id || '-' || v, learner_id, 'c1', "
            "'a' || (right(learner_id, 1)::integer % 4), v, ? - to_days(right(learner_id, 1)::integer), "
            "null, 'test', now() from learners, unnest(?) t(v)",
            [as_of - timedelta(days=1), verbs]).fetchall()
        assert con.execute("select count(*) from completion_events").fetchall() == \
            con.execute("select count(*) from progress_events "
                        "where activity_id is not null and is_completion(verb)").fetchall()
        if kind == "shared":
            with psycopg.connect(dsn(url), autocommit=True) as pg:
                pg.execute("vacuum analyze progress_events")
            capfd.readouterr()
            con.execute("set pg_debug_show_queries = true")
        evaluation = engine.evaluate(con, loaded, as_of, full_scan=True)
        if kind == "shared":
            con.execute("set pg_debug_show_queries = false")
            out = capfd.readouterr()
            sent = out.out + out.err
        assert not evaluation.summaries
        states[kind] = con.execute(
            "select learner_id, stage, progress, inactive_days, stalled_days, overdue "
            "from eval_state order by all").fetchall()
        decisions[kind] = con.execute("select * from eval_decisions order by all").fetchall()
        con.close()
    assert states["shared"] == states["embedded"] and len(states["shared"]) == 12
    assert decisions["shared"] == decisions["embedded"]
    assert len({r[2] for r in states["shared"]}) > 2          # the figures differ by learner
    reads = re.findall(r'COPY \((SELECT .*?)\) TO STDOUT', sent)
    views = {name: [q for q in reads if f'"public"."{name}"' in q]
             for name in ("progress_reports", "completion_events", "progress_events")}
    for name in ("progress_reports", "completion_events"):
        assert len(views[name]) == 1 and "ctid" not in views[name][0], views[name]
        with psycopg.connect(dsn(url), autocommit=True) as pg:
            pg.execute("set enable_seqscan = off")
            plan = "\n".join(r[0] for r in pg.execute("explain " + views[name][0]).fetchall())
        assert "Index Only Scan" in plan, plan
    # the table itself once, for the last activity (a large one in ranges of its pages)
    assert views["progress_events"] and all(
        q.startswith('SELECT "occurred_at", "course_id", "learner_id" FROM')
        for q in views["progress_events"]), views["progress_events"]
