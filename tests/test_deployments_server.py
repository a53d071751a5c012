"""The deployments as an operator runs them: a real `prefect server`, the process work pool,
`prefect deploy --all` from the repository root, workers, and the warehouse they write.

One server for the module (about 10-20 s to start), workers with `--run-once`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

import warehouse
from connectors import open_source, sync
from relance import demo
from tests.conftest import MONDAY, REPO
from tests.deploy_fixtures import start_server

PARIS = ZoneInfo("Europe/Paris")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A small demo cohort, synced into a warehouse of its own, as of MONDAY (its load is
    stamped MONDAY, whatever today's date: the runs below judge freshness against it), with
    the sources file the demo writes (the workers' RELANCE_SOURCES)."""
    root = tmp_path_factory.mktemp("deploy-data")
    mapping = demo.generate(root / "export", as_of=MONDAY, scale=0.1)
    demo.write_sources(root / "sources.yaml", mapping)
    con = warehouse.connect(root / "relance.duckdb")
    try:
        sync(con, open_source(str(mapping)), now=MONDAY)
    finally:
        con.close()
    return root


@pytest.fixture(scope="module")
def server(tmp_path_factory, data):
    root = tmp_path_factory.mktemp("prefect")
    srv = start_server(root, RELANCE_WAREHOUSE=str(data / "relance.duckdb"),
                       RELANCE_CAMPAIGNS=str(REPO / "campaigns"),
                       RELANCE_OUTBOX=str(data / "outbox"),
                       RELANCE_SOURCES=str(data / "sources.yaml"))
    try:
        srv.cli("work-pool", "create", "relance", "--type", "process")
        srv.cli("--no-prompt", "deploy", "--all")
        yield srv
    finally:
        srv.stop()


def campaign_runs(data) -> list[tuple]:
    con = warehouse.connect(data / "relance.duckdb", read_only=True)
    try:
        return con.execute("select campaign_id, flow_run_id, status, error, n_evaluated, n_sent "
                           "from campaign_runs order by started_at").fetchall()
    finally:
        con.close()


def test_deploy_creates_every_campaign_deployment_with_its_schedule(server):
    deployments = {d["name"]: d for d in server.post("/deployments/filter", {})}
    assert set(deployments) == {"sync-progress", "deliver-due", "team-lists",
                                "run-parcours-anglais", "run-mooc-climat", "run-onboarding"}
    anglais = deployments["run-parcours-anglais"]
    assert anglais["parameters"]["campaign_id"] == "parcours-anglais"
    assert anglais["work_pool_name"] == "relance"
    assert [(s["schedule"]["cron"], s["schedule"]["timezone"]) for s in anglais["schedules"]] \
        == [("30 8 * * 1", "Europe/Paris")]
    # two runs of one campaign never overlap
    assert anglais["global_concurrency_limit"]["limit"] == 1
    assert anglais["concurrency_options"]["collision_strategy"] == "ENQUEUE"


def scheduled_starts(server, deployment_id: str, after: datetime, before: datetime) -> list[datetime]:
    runs = server.post("/flow_runs/filter", {"flow_runs": {
        "deployment_id": {"any_": [deployment_id]},
        "expected_start_time": {"after_": after.isoformat(), "before_": before.isoformat()}},
        "sort": "EXPECTED_START_TIME_ASC"})
    return [datetime.fromisoformat(r["expected_start_time"]) for r in runs]


def test_the_scheduler_creates_runs_at_the_campaigns_local_time_across_daylight_saving(server):
    anglais = server.deployment("run-parcours-anglais")
    # what the scheduler created on its own: the coming Mondays, 08:30 in Paris
    now = datetime.now(timezone.utc)
    upcoming = []
    for _ in range(60):
        upcoming = scheduled_starts(server, anglais["id"], now, now + timedelta(days=60))
        if len(upcoming) >= 3:
            break
        time.sleep(0.5)
    assert len(upcoming) >= 3
    assert {(t.astimezone(PARIS).strftime("%A %H:%M")) for t in upcoming} == {"Monday 08:30"}
    # on each side of the change to summer time (Sunday 28 March 2027), asked of the server
    server.post(f"/deployments/{anglais['id']}/schedule",
                {"start_time": "2027-03-15T00:00:00Z", "end_time": "2027-04-06T00:00:00Z",
                 "min_runs": 3})
    around = scheduled_starts(server, anglais["id"], datetime(2027, 3, 15, tzinfo=timezone.utc),
                              datetime(2027, 4, 6, tzinfo=timezone.utc))
    assert [t.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%MZ") for t in around] == [
        "2027-03-15 07:30Z", "2027-03-22 07:30Z",      # winter: UTC+1
        "2027-03-29 06:30Z"]                           # summer: UTC+2
    onboarding = server.deployment("run-onboarding")
    days = scheduled_starts(server, onboarding["id"], datetime.now(timezone.utc),
                            datetime.now(timezone.utc) + timedelta(days=8))
    assert {t.astimezone(PARIS).strftime("%H:%M") for t in days} == {"09:00"}
    assert {t.astimezone(PARIS).strftime("%a") for t in days} <= {"Mon", "Tue", "Wed", "Thu", "Fri"}


def test_a_worker_runs_a_triggered_campaign_and_the_warehouse_records_it(server, data):
    as_of = MONDAY.isoformat()
    ok = server.trigger("run-parcours-anglais", as_of=as_of)
    # a week later with no sync since: the sources are stale, nothing is planned or sent
    stale = server.trigger("run-onboarding", as_of=(MONDAY + timedelta(days=7)).isoformat())
    server.run_once()
    ok_run, stale_run = server.wait([ok, stale])
    assert ok_run["state_type"] == "COMPLETED", (ok_run["state"], server.root)
    assert ok_run["name"] == "run parcours-anglais 2026-W48"
    assert stale_run["state_type"] == "FAILED"
    assert "stale" in stale_run["state"]["message"]

    rows = {r[1]: r for r in campaign_runs(data)}
    campaign, _, status, error, evaluated, sent = rows[ok]
    assert (campaign, status, error) == ("parcours-anglais", "succeeded", None)
    assert evaluated > 0 and sent > 0
    assert len(list((data / "outbox" / "parcours-anglais").glob("*.eml"))) == sent
    campaign, _, status, error, _, _ = rows[stale]
    assert (campaign, status) == ("onboarding", "failed")
    assert "source 'demo' was last loaded at" in error and "more than 26 h before 2026-11-30 08:00 UTC" in error

    # only the step that meets the network is retried
    tasks = server.post("/task_runs/filter", {"flow_runs": {"id": {"any_": [ok]}}})
    retries = {t["name"].rsplit("-", 1)[0]: t["empirical_policy"]["retries"] for t in tasks}
    assert retries == {"check-sources": 0, "plan": 0, "deliver": 2, "notify-team": 0}, retries

    artifacts = {a["key"]: a for a in server.artifacts(ok)}
    summary = artifacts["parcours-anglais-run-summary"]["data"]
    assert "## Stages" in summary and "## Decisions" in summary and f"planned, {sent} sent," in summary
    assert "## Where to look" in summary and str(data / "outbox" / "parcours-anglais") in summary
    table = artifacts["parcours-anglais-follow-ups"]
    assert table["type"] == "table"
    con = warehouse.connect(data / "relance.duckdb", read_only=True)
    try:
        expected = con.execute("select f.learner_id, f.rule from follow_ups f join campaign_runs r "
                               "using (run_id) where r.flow_run_id = ? order by all", [ok]).fetchall()
    finally:
        con.close()
    rows = json.loads(table["data"])
    assert expected and sorted((r["learner"], r["rule"]) for r in rows) == expected
    link = artifacts["parcours-anglais-outbox"]
    assert (data / "outbox" / "parcours-anglais").as_uri() in link["data"]


def test_two_workers_share_the_runs_and_one_campaign_never_runs_twice_at_once(server, data):
    as_of = MONDAY.isoformat()
    climat = [server.trigger("run-mooc-climat", as_of=as_of) for _ in range(2)]
    others = [server.trigger("run-parcours-anglais", as_of=as_of),
              server.trigger("run-onboarding", as_of=as_of)]
    # one run at a time each, so that neither can take everything
    for name in ("alpha", "beta"):
        server.worker("--limit", "1", name=name)
    runs = server.wait(climat + others)
    assert [r["state_type"] for r in runs] == ["COMPLETED"] * 4, [r["state"] for r in runs]

    # both workers took runs (each worker's log names the runs it submitted)
    taken = {name: {r for r in climat + others
                    if r in (server.root / f"worker-{name}.log").read_text(errors="replace")}
             for name in ("alpha", "beta")}
    assert taken["alpha"] and taken["beta"], taken
    assert taken["alpha"] | taken["beta"] == set(climat + others)

    # the two runs of one campaign did not overlap: the second waited for a slot
    first, second = sorted((r for r in runs[:2]), key=lambda r: r["start_time"])
    assert datetime.fromisoformat(first["end_time"]) <= datetime.fromisoformat(second["start_time"])
    waited = [r["id"] for r in runs[:2] if "AwaitingConcurrencySlot" in server.states(r["id"])]
    assert waited, "neither run of mooc-climat had to wait for the other"
    # and the second one sent nothing new: the ledger had it all
    rows = {r[1]: r for r in campaign_runs(data)}
    assert rows[first["id"]][5] > 0 and rows[second["id"]][5] == 0


def test_the_deployed_sync_then_a_campaign_run_complete_a_week_later(server, data):
    """The operator's path as shipped: the sync deployment names no file of its own (it
    loads the worker's sources file), its load makes the sources fresh, and the campaign
    run that a week without sync would refuse (test above) completes."""
    assert server.deployment("sync-progress", flow="sync-progress")["parameters"] == {}
    later = MONDAY + timedelta(days=7)
    synced = server.trigger("sync-progress", flow="sync-progress", now=later.isoformat())
    server.run_once()
    sync_run, = server.wait([synced])
    assert sync_run["state_type"] == "COMPLETED", (sync_run["state"], server.root)
    ran = server.trigger("run-parcours-anglais", as_of=(later + timedelta(minutes=30)).isoformat())
    server.run_once()
    campaign_run, = server.wait([ran])
    assert campaign_run["state_type"] == "COMPLETED", (campaign_run["state"], server.root)

    con = warehouse.connect(data / "relance.duckdb", read_only=True)
    try:
        loads = con.execute("select source, status, finished_at from loads where flow_run_id = ?",
                            [synced]).fetchall()
    finally:
        con.close()
    assert loads == [("demo", "succeeded", later)]
    rows = {r[1]: r for r in campaign_runs(data)}
    assert rows[ran][2:4] == ("succeeded", None) and rows[ran][5] > 0


def relance_cli(root, server_api: str | None, *args: str,
                profile: bool = False) -> subprocess.CompletedProcess:
    """`relance ...` in an operator's shell in `root`, its own PREFECT_HOME: with the Prefect
    server at `server_api` configured in the environment (PREFECT_API_URL) or, `profile`,
    in the active Prefect profile (`prefect config set PREFECT_API_URL=...`), or with none
    at all. With -X importtime, stderr also says which modules the command loaded."""
    home = root / "prefect-home"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PREFECT_", "RELANCE_"))}
    env |= {"PYTHONPATH": str(REPO), "PREFECT_HOME": str(home),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_LOGGING_LEVEL": "INFO"}
    if server_api and profile:
        home.mkdir(exist_ok=True)
        (home / "profiles.toml").write_text(
            f'active = "ops"\n\n[profiles.ops]\nPREFECT_API_URL = "{server_api}"\n',
            encoding="utf-8")
    elif server_api:
        env["PREFECT_API_URL"] = server_api
    return subprocess.run([sys.executable, "-X", "importtime", "-m", "relance.cli", *args,
                           "--warehouse", "relance.duckdb", "--campaigns", str(REPO / "campaigns"),
                           "--outbox", "outbox"], cwd=root, env=env, capture_output=True,
                          text=True, timeout=600)


def _rows(db) -> dict[str, list[tuple]]:
    """What a run and a delivery leave in the warehouse, but for the run's own id, its
    wall-clock times and its flow run."""
    con = warehouse.connect(db, read_only=True)
    try:
        return {table: con.execute(f"select * exclude ({columns}) from {table} order by all").fetchall()
                for table, columns in (
                    ("campaign_runs", "run_id, started_at, finished_at, evaluate_ms, deliver_ms, "
                                      "flow_run_id"),
                    ("decisions", "run_id"), ("candidates", "run_id"), ("follow_ups", "run_id"),
                    ("stage_state", "run_id"), ("messages", "run_id, sent_wall_at"))}
    finally:
        con.close()


def _table_rows(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("│ ")]


def test_relance_run_and_deliver_record_the_same_rows_with_a_prefect_server_or_without(
        server, tmp_path):
    """An operator's `relance run` and `relance deliver`: with a Prefect server configured
    (in the active profile for the run, in the environment for the delivery), flow runs
    on it; without, the same steps in the command's own process, which starts no
    Prefect server (a temporary one took 10 to 20 s) and does not even load Prefect. The
    warehouse holds the same run, decisions, ledger and follow-ups either way, the outbox
    the same files, the command prints the same tables; only campaign_runs.flow_run_id
    tells them apart (the flow run on the server, or NULL)."""
    mapping = demo.generate(tmp_path / "export", as_of=MONDAY, scale=0.1)
    base = tmp_path / "base.duckdb"
    con = warehouse.connect(base)
    try:
        sync(con, open_source(str(mapping)), now=MONDAY)
    finally:
        con.close()
    late = MONDAY.replace(hour=23)                  # the evening's deliver-due
    seen = {}
    for how, api in (("server", server.api), ("none", None)):
        root = tmp_path / how
        root.mkdir()
        shutil.copy(base, root / "relance.duckdb")
        ran = relance_cli(root, api, "run", "parcours-anglais", "mooc-climat",
                          "--as-of", MONDAY.isoformat(), profile=True)
        assert ran.returncode == 0, (how, ran.stdout, ran.stderr[-3000:])
        delivered = relance_cli(root, api, "deliver", "--now", late.isoformat())
        assert delivered.returncode == 0, (how, delivered.stdout, delivered.stderr[-3000:])
        seen[how] = {"rows": _rows(root / "relance.duckdb"),
                     "files": sorted(p.relative_to(root).as_posix()
                                     for p in (root / "outbox").rglob("*.eml")),
                     "tables": _table_rows(ran.stdout) + _table_rows(delivered.stdout),
                     "loaded": {line.rsplit("|", 1)[-1].strip().split(".")[0]
                                for done in (ran, delivered)
                                for line in done.stderr.splitlines()
                                if line.startswith("import time:")},
                     "log": ran.stdout + ran.stderr + delivered.stdout + delivered.stderr}
        con = warehouse.connect(root / "relance.duckdb", read_only=True)
        try:
            seen[how]["flow_runs"] = [r[0] for r in con.execute(
                "select flow_run_id from campaign_runs order by campaign_id").fetchall()]
        finally:
            con.close()

    with_server, without = seen["server"], seen["none"]
    assert any("sent" in row for row in with_server["rows"]["messages"]) and with_server["files"]
    for table in with_server["rows"]:
        assert without["rows"][table] == with_server["rows"][table], table
    assert without["files"] == with_server["files"]
    assert without["tables"] == with_server["tables"] and len(without["tables"]) >= 4
    # the server recorded a completed flow run for each campaign; without it, none exists
    runs = [server.flow_run(run_id) for run_id in with_server["flow_runs"]]
    assert [(r["name"], r["state_type"]) for r in runs] == [
        ("run mooc-climat 2026-W48", "COMPLETED"), ("run parcours-anglais 2026-W48", "COMPLETED")]
    assert without["flow_runs"] == [None, None]
    # and no Prefect server was started: none was even loaded, nor any home made for one
    assert "prefect" in with_server["loaded"]
    assert "prefect" not in without["loaded"]
    assert not (tmp_path / "none" / "prefect-home").exists()
    assert "temporary server" not in without["log"].lower()


SECRETS_SCRIPT = r'''
import json, sys
from prefect.blocks.system import Secret
from connectors.base import SourceError
from connectors.secrets import resolve_secret
from relance.channels.base import ChannelConfigError, OutgoingMessage
from relance.channels.sendgrid import SendGridChannel, api_key

key, url = sys.argv[1], sys.argv[2]
Secret(value=key).save("sendgrid-key", overwrite=True)
Secret(value="moodle-s3cret").save("moodle-token", overwrite=True)
out = {"token": resolve_secret({"prefect_secret": "moodle-token"}, "source m: token")}
channel = SendGridChannel(api_key("sendgrid-key"), host=url)
msg = OutgoingMessage("m1", "test", "zoe@example.org", "Zoé", "formation@example.org", "Julie",
                      None, "Bonjour", "Bonjour Zoé", None, "https://relance.example/u?t=1",
                      "mailto:formation@example.org", message_key="relance")
out["sent"] = [r.status for r in channel.send([msg])]
out["repr"] = repr(channel)
for call in (lambda: api_key("no-such-block"),
             lambda: resolve_secret({"prefect_secret": "no-such-block"}, "source m: token")):
    try:
        call()
    except (ChannelConfigError, SourceError) as exc:
        out.setdefault("errors", []).append(str(exc))
print(json.dumps(out))
'''


def test_the_sendgrid_key_and_a_source_token_come_from_prefect_secret_blocks(server):
    """With no SENDGRID_API_KEY, the key is read from the Secret block the campaign names
    (sendgrid.api_key_secret) on the real server, and a source's {prefect_secret: ...}
    likewise; a missing block is an error saying how to create it, never showing a value."""
    import subprocess
    import sys

    from tests.delivery_fixtures import FakeSendGrid
    fake = FakeSendGrid(details=False, key="SG.from-a-prefect-secret")
    try:
        env = {k: v for k, v in server.env.items() if k != "SENDGRID_API_KEY"}
        done = subprocess.run([sys.executable, "-c", SECRETS_SCRIPT, fake.key, fake.url],
                              env=env, capture_output=True, text=True, timeout=120, cwd=REPO)
        assert done.returncode == 0, done.stderr[-3000:]
        out = json.loads(done.stdout.strip().splitlines()[-1])
        assert fake.state()["accepted_messages"] == 1     # the fake checks the Bearer key
    finally:
        fake.stop()
    assert out["token"] == "moodle-s3cret" and out["sent"] == ["sent"]
    assert fake.key not in out["repr"] and fake.key not in done.stderr
    block_error, source_error = out["errors"]
    assert "the Prefect Secret block 'no-such-block' (sendgrid.api_key_secret) could not be " \
           "loaded" in block_error and "prefect block create secret" in block_error
    assert source_error.startswith("source m: token: cannot read the Prefect Secret block "
                                   "'no-such-block'")
