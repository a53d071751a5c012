"""The flows under a real Prefect engine (one test harness for the module), and the CLI as a
newcomer uses it: demo, plan, preview, run."""

from __future__ import annotations

import email
import re
import shutil
from email import policy
from pathlib import Path
from typing import NamedTuple

import pytest
from typer.testing import CliRunner

import warehouse
from relance.cli.main import app
from tests.conftest import MONDAY, REPO
from tests.delivery_fixtures import (big_cohort, planned_warehouse, sendgrid,  # noqa: F401
                                     sendgrid_campaign, sendgrid_server)

AS_OF = MONDAY.isoformat()


@pytest.fixture(scope="module")
def prefect():
    from prefect.testing.utilities import prefect_test_harness
    with prefect_test_harness(server_startup_timeout=120):
        yield


class Files:
    """This module's warehouses as DuckDB files (the default)."""
    shared = False

    def demo(self, root: Path) -> str:
        return str(root / "relance.duckdb")          # `relance demo`'s own default

    def new(self, folder: Path) -> str:
        return str(folder / "w.duckdb")

    def copy(self, where: str, folder: Path) -> str:
        shutil.copy(where, self.new(folder))
        return self.new(folder)


class Shared:
    """Under `--warehouse=shared`: databases of the session's real PostgreSQL, so that the
    demo, its flows on Prefect and every command below run on the shared warehouse."""
    shared = True

    def __init__(self, server):
        self.server = server

    def demo(self, root: Path) -> str:
        return self.server.fresh_database("demo")

    def new(self, folder: Path) -> str:
        return self.server.fresh_database()

    def copy(self, where: str, folder: Path) -> str:
        return self.server.copy_database(where)


@pytest.fixture(scope="module")
def backend(request):
    if request.config.getoption("--warehouse") == "shared":
        return Shared(request.getfixturevalue("postgres_server"))
    return Files()


@pytest.fixture
def file_only(backend):
    """A test about warehouse files themselves (the shared warehouse's own are in
    tests/test_shared_warehouse.py)."""
    if backend.shared:
        pytest.skip("about a warehouse file")


class Demo(NamedTuple):
    root: Path          # the folder `relance demo` ran in (outbox, sources file)
    output: str
    warehouse: str      # its warehouse: a file of that folder, or a shared database's URL


@pytest.fixture(scope="module")
def demo_dir(prefect, backend, tmp_path_factory):
    """`relance demo` once for the module, in its own folder, its runs flow runs on the
    test harness's Prefect server (configured for it as PREFECT_API_URL: without a server
    the demo runs the same steps in its own process, test_the_demo_without_a_prefect_server...)."""
    import os
    from unittest import mock

    from prefect.settings import PREFECT_API_URL
    root = tmp_path_factory.mktemp("demo")
    where = backend.demo(root)
    cwd = os.getcwd()
    os.chdir(root)
    try:
        with mock.patch.dict(os.environ, {"PREFECT_API_URL": PREFECT_API_URL.value()}):
            result = CliRunner().invoke(app, ["demo", "--as-of", AS_OF, "--campaigns",
                                              str(REPO / "campaigns")]
                                        + (["--warehouse", where] if backend.shared else []))
    finally:
        os.chdir(cwd)
    assert result.exit_code == 0, result.output
    return Demo(root, result.output, where)


def cli(demo: Demo, *args):
    return CliRunner().invoke(app, [*args, "--warehouse", demo.warehouse,
                                    "--campaigns", str(REPO / "campaigns")])


def test_demo_builds_warehouse_outbox_and_summary(demo_dir):
    root, output, where = demo_dir
    assert "demo: load demo-" in output and "quarantined" in output
    assert "Campaign runs" in output and "parcours-anglais" in output
    assert "Why some learners got nothing" in output
    files = {c: list((root / "outbox" / c).glob("*.eml")) for c in ("parcours-anglais", "mooc-climat", "onboarding")}
    assert all(files.values()), {c: len(f) for c, f in files.items()}
    con = warehouse.connect(where)
    runs = con.execute("select campaign_id, status, flow_run_id from campaign_runs").fetchall()
    assert len(runs) == 6 and all(s == "succeeded" and f for _, s, f in runs)
    sent = con.execute("select count(*) from messages where status = 'sent'").fetchall()[0][0]
    assert sent == sum(len(f) for f in files.values())
    # every sent message is a readable e-mail in its learner's language
    one = email.message_from_bytes(files["parcours-anglais"][0].read_bytes(), policy=policy.default)
    assert one["List-Unsubscribe"] and one.get_body(("plain",)).get_content().strip()
    assert con.execute("select count(*) from quarantine").fetchall()[0][0] == 5
    con.close()


def test_run_again_for_the_same_week_sends_nothing(demo_dir):
    root, _, where = demo_dir
    con = warehouse.connect(where)
    before = con.execute("select count(*) from messages").fetchall()[0][0]
    con.close()
    result = CliRunner().invoke(app, ["run", "parcours-anglais", "--as-of", AS_OF,
                                      "--warehouse", where,
                                      "--campaigns", str(REPO / "campaigns"),
                                      "--outbox", str(root / "outbox")])
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if "parcours-anglais" in line)
    assert row.split("│")[4].strip() == "0"             # sent
    con = warehouse.connect(where)
    assert con.execute("select count(*) from messages").fetchall()[0][0] == before
    # no Prefect server configured in this shell: the run went in the command's own
    # process, with no flow run to point to (the demo's runs were flows: they have one)
    flow_run_id = con.execute("select flow_run_id from campaign_runs order by started_at desc limit 1").fetchall()[0][0]
    con.close()
    assert flow_run_id is None


def test_run_publishes_an_artifact_a_person_can_read(demo_dir):
    from prefect.artifacts import Artifact
    artifact = Artifact.get("parcours-anglais-run-summary")
    assert artifact is not None
    assert "## Stages" in artifact.data and "## Decisions" in artifact.data
    assert "Follow-up list for the community manager" in artifact.data


def test_deliver_sends_what_was_deferred_once_it_is_due(demo_dir):
    """At 23:00 UTC, what is due goes to the learners whose day it still is (the Americas,
    Asia's morning); the rest waits for its morning (quiet hours in Europe) or, no longer
    holding, is cancelled with its reason: nothing goes out at night, nothing is lost."""
    root, _, where = demo_dir
    late = MONDAY.replace(hour=23)
    con = warehouse.connect(where)
    waiting = [r[0] for r in con.execute("select message_id from messages where status = 'planned' "
                                         "and not_before <= ? ", [late]).fetchall()]
    sent_before = con.execute("select count(*) from messages where status = 'sent'").fetchall()[0][0]
    con.close()
    assert waiting                                      # deferred by quiet hours overseas
    result = CliRunner().invoke(app, ["deliver", "--now", late.isoformat(),
                                      "--warehouse", where,
                                      "--campaigns", str(REPO / "campaigns"),
                                      "--outbox", str(root / "outbox")])
    assert result.exit_code == 0, result.output
    con = warehouse.connect(where)
    sent_now, cancelled, still = con.execute(
        "select count(*) filter (where status = 'sent' and sent_at = $late), "
        "count(*) filter (where status = 'cancelled' and error is not null), "
        "count(*) filter (where status = 'planned' and not_before > $late) "
        "from messages where list_contains($waiting, message_id)",
        {"late": late, "waiting": waiting}).fetchall()[0]
    assert sent_now > 0 and still > 0 and sent_now + cancelled + still == len(waiting)
    # every message this delivery sent went out in its reader's day (08:00-20:00, weekdays)
    assert con.execute(
        "select count(*) from messages m join learners l using (learner_id) "
        "where m.sent_at = $late and not (hour(timezone(l.timezone, $late)) between 8 and 19 "
        "and isodow(timezone(l.timezone, $late)) <= 5)", {"late": late}).fetchall()[0][0] == 0
    con.close()
    assert "waiting (send window)" in result.output
    files = sum(1 for _ in (root / "outbox").rglob("*.eml"))
    assert files == sent_before + sent_now


def test_one_broken_campaign_does_not_hold_back_the_others_mail(demo_dir, backend, tmp_path):
    import shutil
    root, _, where = demo_dir
    folder = tmp_path / "campaigns"
    shutil.copytree(REPO / "campaigns", folder)
    path = folder / "onboarding.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("on_enter: welcome", "on_enter: welcom"),
                    encoding="utf-8")
    db = backend.copy(where, tmp_path)
    result = CliRunner().invoke(app, ["deliver", "--now", "2026-11-24T08:00:00+00:00",
                                      "--warehouse", str(db), "--campaigns", str(folder),
                                      "--outbox", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "parcours-anglais" in result.output and "mooc-climat" in result.output
    assert "not delivered:" in result.output and "unknown stage 'welcom'" in result.output


def test_plan_is_a_dry_run_that_explains(demo_dir):
    root, _, where = demo_dir
    con = warehouse.connect(where)
    before = con.execute("select count(*) from decisions").fetchall()[0][0]
    con.close()
    result = cli(demo_dir, "plan", "parcours-anglais", "--as-of", "2026-11-30T08:00:00+00:00")
    assert result.exit_code == 0, result.output
    assert "Learners per stage" in result.output and "Decisions" in result.output
    assert "send now" in result.output and "Dry run: nothing was written or sent" in result.output
    con = warehouse.connect(where)
    assert con.execute("select count(*) from decisions").fetchall()[0][0] == before
    con.close()


def test_plan_explains_one_learner(demo_dir):
    root, _, where = demo_dir
    result = cli(demo_dir, "plan", "parcours-anglais", "--as-of", AS_OF, "--learner", "L00001")
    assert result.exit_code == 0, result.output
    assert "L00001 on anglais-b2: stage" in result.output
    assert "timezone" in result.output


def test_preview_renders_a_message_in_the_learners_language(demo_dir):
    root, _, where = demo_dir
    con = warehouse.connect(where)
    fr, en = (con.execute(
        "select learner_id from learners l join enrolments e using (learner_id) "
        "where course_id = 'anglais-b2' and locale like ? order by learner_id limit 1", [p]
    ).fetchall()[0][0] for p in ("fr%", "en%"))
    con.close()
    result = cli(demo_dir, "preview", "parcours-anglais", fr, "--message", "recap-hebdo", "--as-of", AS_OF)
    assert result.exit_code == 0, result.output
    assert "Subject: Semaine" in result.output and "Cette semaine" in result.output
    result = cli(demo_dir, "preview", "parcours-anglais", en, "--message", "recap-hebdo", "--as-of", AS_OF)
    assert "Subject: Week" in result.output and "This week" in result.output


def test_preview_of_an_unknown_learner_says_so(demo_dir):
    root, _, where = demo_dir
    result = cli(demo_dir, "preview", "parcours-anglais", "NOBODY", "--as-of", AS_OF)
    assert result.exit_code == 1
    assert "learner 'NOBODY' is not in the audience of parcours-anglais" in result.output


def test_run_exits_3_when_a_send_fails(demo_dir, backend, tmp_path):
    import shutil
    root, _, where = demo_dir
    broken = tmp_path / "campaigns"
    shutil.copytree(REPO / "campaigns", broken)
    db = backend.copy(where, tmp_path)
    # valid when checked, broken when sent: a template edited during the run
    import relance.delivery.deliver as delivery     # where the batches call it
    real = delivery.outgoing

    def failing(loaded, renderer, row, **_):
        raise delivery.RenderError("parcours-anglais/recap-hebdo/fr: ZeroDivisionError: division by zero")
    delivery.outgoing = failing
    try:
        result = CliRunner().invoke(app, ["run", "parcours-anglais", "--as-of", "2026-11-30T08:00:00+00:00",
                                          "--warehouse", str(db), "--campaigns", str(broken),
                                          "--outbox", str(tmp_path / "out")])
    finally:
        delivery.outgoing = real
    assert result.exit_code == 3, result.output
    assert "failed (render:" in result.output
    assert "tried again by the next delivery" in result.output


def test_demo_never_deletes_an_outbox_it_did_not_write(file_only, tmp_path):
    outbox = tmp_path / "outbox"
    (outbox / "real").mkdir(parents=True)
    (outbox / "real" / "important.eml").write_text("x", encoding="utf-8")
    result = CliRunner().invoke(app, ["demo", "--warehouse", str(tmp_path / "demo.duckdb"),
                                      "--outbox", str(outbox), "--campaigns", str(REPO / "campaigns")])
    assert result.exit_code == 1
    assert "already holds messages that are not the demo's" in result.output
    assert (outbox / "real" / "important.eml").exists()


def test_demo_refuses_to_overwrite_a_real_warehouse(file_only, tmp_path):
    path = tmp_path / "real.duckdb"
    warehouse.connect(path).close()
    result = CliRunner().invoke(app, ["demo", "--warehouse", str(path), "--campaigns",
                                      str(REPO / "campaigns")])
    assert result.exit_code == 1
    assert "holds data that is not the demo's" in result.output


def test_commands_without_a_warehouse_say_how_to_get_one(file_only, tmp_path):
    result = CliRunner().invoke(app, ["plan", "parcours-anglais", "--warehouse",
                                      str(tmp_path / "none.duckdb"), "--campaigns", str(REPO / "campaigns")])
    assert result.exit_code == 1
    assert "run `relance demo`" in result.output


def test_every_command_has_help_with_an_example():
    runner = CliRunner()
    for command in ("validate", "plan", "preview", "run", "deliver", "sync", "demo", "schema"):
        result = runner.invoke(app, [command, "--help"])
        assert result.exit_code == 0
        assert "Example: relance" in result.output, command


def loaded_modules(root, *args) -> set[str]:
    """The top-level packages `relance <args>` loads, in a fresh process (-X importtime)."""
    import os
    import subprocess
    import sys
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "relance.cli", *args],
                          cwd=root, env=env | {"PYTHONPATH": os.pathsep.join(
                              # (under --warehouse=shared, the DuckDB overlay it needs)
                              [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
    return {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in done.stderr.splitlines()
            if line.startswith("import time:")}


def test_quick_commands_load_only_what_they_use(demo_dir):
    """`relance --help` loads no campaign format, database or workflow engine; validate,
    plan, preview and test never load Prefect (two seconds before a command starts), and
    a preview or a test neither Arrow nor numpy (a quarter of a preview's time)."""
    root, _, where = demo_dir
    heavy = {"prefect", "duckdb", "jinja2", "yaml", "pandas", "pyarrow"}
    assert not loaded_modules(root, "--help") & heavy
    options = ["--warehouse", where, "--campaigns", str(REPO / "campaigns")]
    for command in (["validate", "parcours-anglais"], ["plan", "parcours-anglais"],
                    ["preview", "parcours-anglais", "L00042", "--message", "recap-hebdo"]):
        loaded = loaded_modules(root, *command, *options)
        assert "prefect" not in loaded, command
        assert command[0] != "preview" or not loaded & {"pyarrow", "numpy"}
    assert not loaded_modules(root, "test", "parcours-anglais", *options[2:]) & {
        "prefect", "pyarrow", "numpy"}


def test_the_demo_without_a_prefect_server_records_what_its_flows_record(demo_dir, backend,
                                                                          tmp_path):
    """Without a Prefect server, `relance demo` and `relance sync` run the flows' steps in
    their own process (no temporary server, no Prefect loaded): the same loads, runs,
    decisions and messages as the demo's flow runs, only without flow runs to point to."""
    root, _, where = demo_dir
    here_at = backend.demo(tmp_path)
    assert "prefect" not in loaded_modules(tmp_path, "demo", "--as-of", AS_OF, "--campaigns",
                                           str(REPO / "campaigns"),
                                           *(["--warehouse", here_at] if backend.shared else []))
    # (the demo's runs only: this module's other tests run parcours-anglais again there)
    counts = ("select r.campaign_id, r.as_of, d.outcome, d.reason, count(*) from decisions d "
              "join campaign_runs r using (run_id) where r.as_of <= ? "
              "and r.run_id in (select arg_min(run_id, started_at) from campaign_runs "
              "group by campaign_id, as_of) "
              "group by all order by all")
    sent = "select campaign_id, count(*) from messages where status = 'sent' group by all order by all"
    flows, here = (warehouse.connect(w, read_only=True) for w in (where, here_at))
    try:
        assert here.execute(counts, [MONDAY]).fetchall() == flows.execute(counts, [MONDAY]).fetchall()
        assert here.execute("select count(*), count(flow_run_id) from campaign_runs").fetchall() == [(6, 0)]
        demo_sent = here.execute(sent).fetchall()
        assert demo_sent and all(n for _, n in demo_sent)
    finally:
        flows.close()
        here.close()
    # the demo named its export in the sources file: a sync of it, with nothing new
    assert "prefect" not in loaded_modules(tmp_path, "sync", "--warehouse", here_at)


def _squash(text: str) -> str:
    return " ".join(text.split())


def test_the_demo_names_its_sources_file_and_a_preview_that_works(demo_dir):
    root, output, where = demo_dir
    text = _squash(output)
    assert ("Sources file: sources.yaml names the demo's export (source demo, "
            ".relance/demo-export/mapping.yaml)") in text
    assert "mapping: .relance/demo-export/mapping.yaml" in (root / "sources.yaml").read_text()
    hint = re.search(r"`relance preview parcours-anglais (L\d+)` \(who gets ([\w-]+) then\)", text)
    assert hint, text
    result = cli(demo_dir, "preview", "parcours-anglais", hint[1])
    assert result.exit_code == 0, result.output
    assert f"would get '{hint[2]}'" in result.output


def readme_tour_commands() -> list[str]:
    """The `relance` commands of the README tour's steps 3 and 4, as printed there."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    tour = readme[readme.index("## A five-minute tour"):readme.index("**5. Make a mistake.**")]
    blocks = re.findall(r"```\n(.*?)```", tour, re.S)
    return [line for block in blocks for line in block.splitlines() if line.startswith("relance ")]


def test_the_readme_tour_plans_and_previews_the_coming_run(demo_dir, tmp_path):
    """After the demo (this week sent), plan and preview default to the campaign's next
    run: what it will send, not a week of suppressions."""
    root, _, where = demo_dir
    commands = readme_tour_commands()
    assert commands == ["relance plan parcours-anglais",
                        "relance plan parcours-anglais --learner L00042",
                        "relance preview parcours-anglais L00042 --message recap-hebdo "
                        "--html /tmp/recap.html"]
    outputs = []
    for command in commands:
        args = command.replace("/tmp/recap.html", str(tmp_path / "recap.html")).split()[1:]
        result = cli(demo_dir, *args)
        assert result.exit_code == 0, (command, result.output)
        outputs.append(_squash(result.output))
    plan, learner, preview = outputs
    assert plan.startswith("As of parcours-anglais's next weekly run, 2026-11-30 08:00 UTC: the "
                           "demo already ran it for the week of 2026-11-23, where its data "
                           "stops (pass --as-of to choose another).")
    assert "send now │ recap-hebdo" in plan and "send now │ relance" in plan
    assert "L00042 on anglais-b2: stage" in learner and "recap-hebdo │ every │ planned" in learner
    assert "L00042 is in stage" in preview and "(the engine's own choice: recap-hebdo, planned)" \
        in preview
    assert (tmp_path / "recap.html").read_text(encoding="utf-8").startswith("<!")


def test_run_on_the_demo_sends_the_coming_week_then_nothing_more(demo_dir, backend, tmp_path):
    root, _, where = demo_dir
    db = backend.copy(where, tmp_path)
    sent = []
    for _ in range(2):
        result = CliRunner().invoke(app, ["run", "parcours-anglais", "--warehouse", str(db),
                                          "--campaigns", str(REPO / "campaigns"),
                                          "--outbox", str(tmp_path / "out")])
        assert result.exit_code == 0, result.output
        row = next(line for line in result.output.splitlines() if "parcours-anglais" in line
                   and "│" in line)
        assert "2026-11-30 08:00" in row
        sent.append(int(row.split("│")[4].strip()))
        # where they went: the outbox channel's folder for the campaign
        assert (f"parcours-anglais: {sent[-1]} messages in {tmp_path / 'out' / 'parcours-anglais'}/."
                in " ".join(result.output.split()))
    assert sent[0] > 0 and sent[1] == 0


def _squashed_output(result) -> str:
    return " ".join(result.output.split())


@pytest.fixture(params=["prefect server", "no server"])
def configured(request, prefect, monkeypatch):
    """An operator's shell with the module's Prefect server configured (PREFECT_API_URL:
    the commands run flows on it), or with none (they run the same steps in-process)."""
    from prefect.settings import PREFECT_API_URL
    if request.param == "prefect server":
        monkeypatch.setenv("PREFECT_API_URL", PREFECT_API_URL.value())
        return True
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    return False


def test_a_provider_that_never_answers_fails_the_run_and_says_how_to_resolve_it(
        configured, backend, tmp_path, campaigns, sendgrid):
    """SendGrid takes each request and never answers: the messages are uncertain, and the
    run says so everywhere an operator looks: exit status 4, the runs table's and the
    ledger's `uncertain` counts, the commands that resolve them, and with a Prefect server,
    the flow run Failed with an artifact that counts them. Without one, the same."""
    from prefect.artifacts import Artifact
    from prefect.client.orchestration import get_client
    db = backend.new(tmp_path)
    con = warehouse.connect(db)
    big_cohort(con, 5)
    con.close()
    sendgrid_campaign(campaigns)
    sendgrid.script({"hang": 1, "times": 5})
    result = CliRunner().invoke(app, ["run", "test", "--as-of", AS_OF, "--warehouse", str(db),
                                      "--campaigns", str(campaigns.root),
                                      "--outbox", str(tmp_path / "out")])
    assert result.exit_code == 4, result.output
    row = next(line for line in result.output.splitlines() if line.startswith("│ test"))
    cells = [c.strip() for c in row.split("│")[1:-1]]
    assert (cells[3], cells[6], cells[7]) == ("0", "0", "5")        # sent, failed, uncertain
    text = _squashed_output(result)
    assert "5 messages (test: 5) went to the provider and got no answer" in text
    assert "`relance uncertain confirm` those it accepted and `relance uncertain resend`" in text
    # where the messages went is the campaign's channel, not the outbox
    assert f"test: 0 messages accepted by SendGrid at {sendgrid.url} (5 uncertain)." in text
    assert "outbox" not in text
    con = warehouse.connect(db)
    (n_uncertain, n_failed, flow_run_id), = con.execute(
        "select n_uncertain, n_failed, flow_run_id from campaign_runs").fetchall()
    con.close()
    assert (n_uncertain, n_failed) == (5, 0)
    if not configured:
        assert flow_run_id is None
        return
    with get_client(sync_client=True) as client:
        state = client.read_flow_run(flow_run_id).state
    assert state.is_failed() and state.message.startswith("5 messages uncertain")
    summary = Artifact.get("test-run-summary").data
    assert "| sent | failed | uncertain | cancelled | deferred |" in summary
    assert "| 0 | 0 | 5 | 0 | 0 |" in summary


def test_deliver_exits_3_when_messages_failed(configured, backend, tmp_path, campaigns,
                                              sendgrid):
    """A refusal fails the messages (tried again by the next delivery): exit status 3, not 0,
    and not 1, which says an error stopped the command; with a Prefect server or without."""
    sendgrid_campaign(campaigns)
    db = backend.new(tmp_path)
    planned_warehouse(db, campaigns, 3)
    sendgrid.script({"status": 403})
    result = CliRunner().invoke(app, ["deliver", "--now", AS_OF, "--warehouse", str(db),
                                      "--campaigns", str(campaigns.root),
                                      "--outbox", str(tmp_path / "out")])
    assert result.exit_code == 3, result.output
    assert "3 messages failed (SendGrid refused the request (status_code=403): 3)" in \
        _squashed_output(result)
    assert "Exit status: 0 when every message due went" in " ".join(
        CliRunner().invoke(app, ["deliver", "--help"]).output.split())
    if not configured:
        return
    # the hourly flow's run is Failed, and its table says which campaign
    import json
    from prefect.artifacts import Artifact
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName
    from prefect.client.schemas.sorting import FlowRunSort
    with get_client(sync_client=True) as client:
        last = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["deliver-due"])),
                                     sort=FlowRunSort.START_TIME_DESC, limit=1)[0]
    assert last.state.is_failed()
    assert last.state.message == "3 messages failed (tried again by the next delivery)"
    rows = json.loads(Artifact.get("deliver-due").data)
    assert [(r["campaign"], r["sent"], r["failed"], r["uncertain"]) for r in rows] == [("test", 0, 3, 0)]


def test_a_run_without_a_prefect_server_retries_its_sending_as_the_flow_does(
        wh, cohort, campaigns, tmp_path, monkeypatch):
    """`relance run` with no Prefect server runs the flow's steps in its process, retries
    included: a send stopped by an error is tried again a minute later (twice at most, as
    the flow's deliver task), and one that needs a person (no API key) is not retried."""
    from relance.channels.base import DeliveryError
    from relance.runs import jobs
    campaigns.write(campaigns.base())
    cohort.learner(inactive_days=8)
    outbox = tmp_path / "out"
    outbox.mkdir()
    (outbox / "test").write_text("a file where the campaign's folder goes", encoding="utf-8")
    waits = []

    def sleep(seconds):
        waits.append(seconds)
        (outbox / "test").unlink()              # the disk is fixed while the run waits
    result = jobs.run_campaign(wh, campaigns.load(), MONDAY, str(outbox), sleep=sleep)
    assert waits == [60] and result["sent"] == 1
    assert len(list((outbox / "test").glob("*.eml"))) == 1
    assert wh.execute("select status, error, n_sent from campaign_runs").fetchall() == [
        ("succeeded", None, 1)]

    campaigns.write(campaigns.base("other").replace("control_group: 0%\n",
                                                    "control_group: 0%\nchannel: sendgrid\n"))
    monkeypatch.delenv("SENDGRID_API_KEY", raising=False)
    waits.clear()
    with pytest.raises(DeliveryError, match="SENDGRID_API_KEY"):
        jobs.run_campaign(wh, campaigns.load("other"), MONDAY, str(outbox), sleep=sleep)
    assert waits == []
    status, error = wh.execute("select status, error from campaign_runs where campaign_id = "
                               "'other'").fetchall()[0]
    assert status == "failed" and "SENDGRID_API_KEY" in error
