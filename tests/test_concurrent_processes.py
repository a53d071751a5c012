"""Two relance processes on one warehouse, as an operator meets them: a second `relance run`
or `relance deliver` started while another process holds the warehouse either waits for it
(RELANCE_LOCK_WAIT_SECONDS) or exits at once with one line naming that process, never a
DuckDB traceback. Every process here is a real one; every wait is bounded."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

import warehouse
from relance.runs import steps
from tests.conftest import MONDAY, REPO, CampaignFolder, Cohort
from tests.delivery_fixtures import sendgrid_campaign, sendgrid_server  # noqa: F401

NOW = MONDAY.replace(hour=12).isoformat()        # the planned messages are due
LEARNERS = 5


@pytest.fixture(scope="module")
def prefect_home(tmp_path_factory) -> Path:
    # the module's own Prefect home, not the user's: the commands configure no server
    return tmp_path_factory.mktemp("prefect-home")


@pytest.fixture
def site(tmp_path, prefect_home):
    """A warehouse with LEARNERS planned messages of campaign 'test' (and of 'other'),
    its campaigns folder, and the environment of a relance process in that folder."""
    folder = CampaignFolder(tmp_path / "campaigns")
    folder.root.mkdir()
    for cid in ("test", "other"):
        folder.write(folder.base(cid))
    db = tmp_path / "w.duckdb"
    con = warehouse.connect(db)
    cohort = Cohort(con)
    for _ in range(LEARNERS):
        cohort.learner(inactive_days=8)          # at risk: each gets a `relance`
    for cid in ("test", "other"):
        steps.plan_step(con, folder.load(cid), MONDAY)
    con.close()
    # an operator's shell: no Prefect server (the commands run their steps in-process),
    # Prefect's logging as the CLI sets it
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RELANCE_", "PREFECT_"))}
    env.update(PYTHONPATH=str(REPO), PREFECT_HOME=str(prefect_home), COLUMNS="200",
               PREFECT_SERVER_ANALYTICS_ENABLED="false", RELANCE_LOCK_WAIT_SECONDS="0")
    return {"root": tmp_path, "db": db, "campaigns": folder.root, "outbox": tmp_path / "outbox",
            "env": env, "folder": folder}


def relance(site, *args: str, wait: float = 0, timeout: float = 300, start=False):
    cmd = [sys.executable, "-m", "relance.cli", *args, "--warehouse", str(site["db"]),
           "--campaigns", str(site["campaigns"]), "--outbox", str(site["outbox"])]
    env = {**site["env"], "RELANCE_LOCK_WAIT_SECONDS": str(wait)}
    if start:
        return subprocess.Popen(cmd, cwd=site["root"], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    return subprocess.run(cmd, cwd=site["root"], env=env, capture_output=True, text=True,
                          timeout=timeout)


# A process that holds the warehouse: relance's own connect (which leaves a holder note),
# or an analyst's plain read-only DuckDB session (which leaves none); or one that holds a
# campaign's delivery lock only.
HOLD = {
    "relance": "import sys, time, warehouse\n"
               "con = warehouse.connect(sys.argv[1])\n",
    "reader": "import sys, time, duckdb\n"
              "con = duckdb.connect(sys.argv[1], read_only=True)\n",
    # a delivery of campaign 'test' between two steps: its lock held, the warehouse free
    "campaign-lock": "import sys, time, warehouse\n"
                     "from relance.delivery.lock import campaign_lock\n"
                     "con = warehouse.connect(sys.argv[1])\n"
                     "lock = campaign_lock(con, 'test')\n"
                     "lock.__enter__()\n"
                     "con.close()\n",
}


def hold(site, kind: str, seconds: float) -> subprocess.Popen:
    """Start a process holding the warehouse for `seconds`; return once it holds it."""
    script = HOLD[kind] + "print('holding', flush=True)\ntime.sleep(float(sys.argv[2]))\n"
    proc = subprocess.Popen([sys.executable, "-c", script, str(site["db"]), str(seconds)],
                            cwd=REPO, env=site["env"], stdout=subprocess.PIPE, text=True)
    ready, _, _ = select.select([proc.stdout], [], [], 60)
    assert ready and proc.stdout.readline() == "holding\n", "the holder never got the warehouse"
    return proc


def stop(proc: subprocess.Popen) -> None:
    proc.kill()
    proc.wait(timeout=30)


def sent(site, campaign: str) -> int:
    return len(list((site["outbox"] / campaign).glob("*.eml")))


def error_lines(result) -> list[str]:
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    return [line for line in result.stderr.splitlines() if line.startswith("error ")]


@pytest.mark.parametrize("kind", ["relance", "reader"])
@pytest.mark.parametrize("command", [["deliver", "--now", NOW], ["run", "test", "--as-of", NOW]])
def test_a_second_process_says_at_once_which_process_holds_the_warehouse(site, kind, command):
    # a note left by a relance process that is long gone must neither block nor be named
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, timeout=60)
    Path(f"{site['db']}.holder.json").write_text(json.dumps(
        {"pid": int(gone.stdout), "argv": ["relance"], "command": "relance stale-note",
         "since": "2026-11-23T07:00:00+00:00"}))
    holder = hold(site, kind, 120)
    try:
        started = time.monotonic()
        result = relance(site, *command, timeout=120)
        took = time.monotonic() - started
    finally:
        stop(holder)
    assert result.returncode == 1
    [line] = error_lines(result)
    assert line.startswith(f"error the warehouse {site['db']} is in use by process {holder.pid} "
                           "(`python -c 'import sys, time, ")
    assert "stale-note" not in line
    if kind == "relance":
        assert ", since 20" in line                 # the holder's note, believed: same process
    else:
        assert "(reading it)" in line                # an analyst's read-only session
    assert line.endswith("Run again once that process has finished, or set "
                         "RELANCE_LOCK_WAIT_SECONDS (e.g. RELANCE_LOCK_WAIT_SECONDS=600) to "
                         "wait for it.")
    assert took < 60, f"a refused process took {took:.1f} s to say so"
    con = warehouse.connect(site["db"], read_only=True)
    assert con.execute("select count(*) from messages where status = 'planned'"
                       ).fetchall() == [(2 * LEARNERS,)]
    con.close()


def test_a_second_run_of_the_same_campaign_names_the_first_which_carries_on(site,
                                                                          sendgrid_server):
    # the first run is at SendGrid for a while (its answer held back): it holds the
    # warehouse meanwhile, as a long delivery does
    sendgrid_campaign(site["folder"])
    sendgrid_server.reset()
    sendgrid_server.script({"hold": 10})
    site["env"].update(SENDGRID_API_KEY=sendgrid_server.key,
                       RELANCE_SENDGRID_HOST=sendgrid_server.url)
    first = relance(site, "run", "test", "--as-of", NOW, start=True)
    deadline = time.monotonic() + 120
    while not sendgrid_server.state()["holding"]:
        assert time.monotonic() < deadline and first.poll() is None, "the first run never sent"
        time.sleep(0.1)
    second = relance(site, "run", "test", "--as-of", NOW, timeout=120)
    out, errors = first.communicate(timeout=300)
    assert first.returncode == 0, errors
    [line] = error_lines(second)
    assert line.startswith(f"error the warehouse {site['db']} is in use by process {first.pid} "
                           "(`python -m relance.cli run test --as-of ")
    assert second.returncode == 1
    # the first run, undisturbed, sent them all
    assert sum(sendgrid_server.accepted().values()) == LEARNERS


def test_with_a_wait_a_second_delivery_waits_for_the_holder_then_sends(site):
    holder = hold(site, "relance", 8)
    second = relance(site, "deliver", "--now", NOW, wait=120, start=True)
    holder.wait(timeout=60)
    freed = datetime.now(timezone.utc)
    out, errors = second.communicate(timeout=300)
    assert second.returncode == 0, errors
    assert "Traceback" not in out + errors and "error" not in errors
    assert sent(site, "test") == LEARNERS and sent(site, "other") == LEARNERS
    # the second process took the warehouse once the holder had gone, not before
    note = json.loads(Path(f"{site['db']}.holder.json").read_text())
    assert note["pid"] == second.pid
    got = datetime.fromisoformat(note["since"])
    assert got >= freed.replace(microsecond=0)
    print(f"the waiting delivery had the warehouse {(got - freed).total_seconds():.1f} s "
          "(to the second) after its holder exited")


def test_a_delivery_of_one_campaign_does_not_block_the_others(site):
    # A delivery of 'test' that holds its campaign lock but not the warehouse (between two
    # steps, or on a file system that does not honour DuckDB's lock): the other campaign is
    # delivered at once, and 'test' is reported in relance's words.
    holder = hold(site, "campaign-lock", 300)
    try:
        result = relance(site, "deliver", "--now", NOW)
    finally:
        stop(holder)
    [line] = error_lines(result)
    assert line.startswith(f"error not delivered: campaign 'test' is already being delivered by "
                           f"process {holder.pid} (since ")
    assert result.returncode == 1
    assert sent(site, "other") == LEARNERS and sent(site, "test") == 0
