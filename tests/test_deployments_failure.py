"""A run killed in the middle of sending (a worker lost with its machine): the next run
finishes the job, nobody gets a message twice, and the dead run is marked failed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

import warehouse
from connectors import open_source, sync
from relance import demo
from tests.conftest import MONDAY, REPO

# The library chain a worker's flow run executes (plan, then deliver to the outbox).
RUN = """
import sys
from datetime import datetime
import warehouse
from relance.campaign import loader
from relance.runs import steps
wh, campaigns, outbox, as_of = sys.argv[1:]
loaded = loader.load(loader.find(campaigns, "parcours-anglais"), campaigns_dir=campaigns)
con = warehouse.connect(wh)
steps.run_campaign(con, loaded, as_of=datetime.fromisoformat(as_of), outbox_dir=outbox)
"""


@pytest.fixture
def synced(tmp_path, wh_location):
    mapping = demo.generate(tmp_path / "export", as_of=MONDAY, scale=0.5)
    con = warehouse.connect(wh_location)
    try:
        sync(con, open_source(str(mapping)))
    finally:
        con.close()
    return tmp_path, wh_location


def start_run(root, where) -> subprocess.Popen:
    # (PYTHONPATH kept after the repository's: under --warehouse=shared, the DuckDB overlay)
    path = os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])
    return subprocess.Popen(
        [sys.executable, "-c", RUN, where, str(REPO / "campaigns"),
         str(root / "outbox"), MONDAY.isoformat()],
        env={**os.environ, "PYTHONPATH": path}, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def test_a_run_killed_while_sending_is_finished_by_the_next_without_a_double_send(synced):
    root, where = synced
    outbox = root / "outbox" / "parcours-anglais"
    proc = start_run(root, where)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if outbox.exists() and len(list(outbox.glob("*.eml"))) >= 5:
            os.killpg(proc.pid, signal.SIGKILL)     # mid-batch: files written, ledger not told
            break
        time.sleep(0.005)
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL, proc.stdout.read().decode()
    written_before = {p.stem for p in outbox.glob("*.eml")}

    con = warehouse.connect(where)
    try:
        (status,), = con.execute("select status from campaign_runs").fetchall()
        assert status == "running"
        recorded = {m for (m,) in con.execute(
            "select message_id from messages where status = 'sent'").fetchall()}
        # the kill fell between the writes and the ledger: mail out, not yet recorded
        assert written_before - recorded
    finally:
        con.close()

    again = start_run(root, where)
    assert again.wait(120) == 0, again.stdout.read().decode()
    con = warehouse.connect(where, read_only=True)
    try:
        runs = con.execute("select status, error from campaign_runs order by started_at").fetchall()
        sent = {m for (m,) in con.execute(
            "select message_id from messages where status = 'sent'").fetchall()}
        planned = con.execute("select count(*) from messages where status = 'planned' "
                              "and not_before <= ?", [MONDAY]).fetchall()[0][0]
    finally:
        con.close()
    assert runs[0][0] == "failed" and runs[0][1].startswith("interrupted")
    assert runs[1] == ("succeeded", None)
    files = [p.stem for p in outbox.glob("*.eml")]
    # one file per message recorded as sent, and every one written before the kill is among them
    assert sorted(files) == sorted(sent) and written_before <= sent
    assert planned == 0
