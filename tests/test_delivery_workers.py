"""Rendering in worker processes (relance/delivery/render_pool.py): the messages a delivery
writes are those the delivering process would have written itself, a template that fails
in a worker fails its message alone, and a worker killed mid-delivery stops the delivery
without losing a message, sending one twice or leaving one uncertain."""

from __future__ import annotations

import os
import re
import shutil
import signal
from pathlib import Path

import pytest

import warehouse
from relance.channels.outbox import OutboxChannel
from relance.channels.sendgrid import SendGridChannel
from relance.delivery import deliver_due
from relance.delivery.render_pool import RenderWorkerLost
from tests.conftest import MONDAY
from tests.delivery_fixtures import FakeSendGrid, planned_warehouse, sendgrid_campaign


def _deliver(db: Path, loaded, channel, **options):
    con = warehouse.connect(db)
    try:
        return deliver_due(con, loaded, channel, now=MONDAY, **options)
    finally:
        con.close()


def _ledger(db: Path) -> list[tuple]:
    con = warehouse.connect(db, read_only=True)
    try:
        return con.execute("select message_id, status, subject, attempts, error from messages "
                           "order by message_id").fetchall()
    finally:
        con.close()


def _normalised(path: Path) -> bytes:
    # what differs from one build of a message to the next: the Message-ID's random part
    # and pid, and the MIME boundary
    data = path.read_bytes()
    data = re.sub(rb"Message-ID: <[^>]*>", b"Message-ID: <id>", data)
    boundaries = set(re.findall(rb'boundary="([^"]+)"', data))
    for i, boundary in enumerate(sorted(boundaries)):
        data = data.replace(boundary, b"boundary-%d" % i)
    return data


@pytest.mark.parametrize("learners, batch_size, scope", [
    (60, 25, None),     # one context scope, as a delivery of this size reads it
    (100, 10, 25),      # the scope read again as the batches go past its ends
], ids=["one-scope", "several-scopes"])
def test_workers_write_the_messages_the_delivering_process_would(
        tmp_path, campaigns, monkeypatch, learners, batch_size, scope):
    """With workers, whose batches are read ahead of their rendering (across the context
    scope's ends too), the same messages and ledger as the delivering process alone."""
    if scope is not None:
        from relance.delivery import deliver
        monkeypatch.setattr(deliver._Scope, "SCOPE", scope)
    campaigns.write(campaigns.base())
    loaded = planned_warehouse(tmp_path / "here.duckdb", campaigns, learners)
    shutil.copy(tmp_path / "here.duckdb", tmp_path / "workers.duckdb")
    here = _deliver(tmp_path / "here.duckdb", loaded, OutboxChannel(tmp_path / "out-here"),
                    render_workers=0, batch_size=batch_size)
    workers = _deliver(tmp_path / "workers.duckdb", loaded,
                       OutboxChannel(tmp_path / "out-workers"), render_workers=2,
                       batch_size=batch_size)
    assert here.sent == workers.sent == learners and here.failed == workers.failed == 0
    files = sorted(p.name for p in (tmp_path / "out-here" / "test").glob("*.eml"))
    assert files == sorted(p.name for p in (tmp_path / "out-workers" / "test").glob("*.eml"))
    assert len(files) == learners
    for name in files:
        assert (_normalised(tmp_path / "out-here" / "test" / name)
                == _normalised(tmp_path / "out-workers" / "test" / name)), name
    assert _ledger(tmp_path / "here.duckdb") == _ledger(tmp_path / "workers.duckdb")


def test_a_delivery_with_workers_gives_duckdb_its_threads_back(tmp_path, campaigns):
    """While the workers render, the delivery's own queries run on one DuckDB thread (the
    workers need the cores); whatever runs on the connection after it (the rest of a
    flow) has every thread again, after a failed delivery too."""
    campaigns.write(campaigns.base())
    loaded = planned_warehouse(tmp_path / "w.duckdb", campaigns, 60)
    con = warehouse.connect(tmp_path / "w.duckdb")
    seen = []
    try:
        con.execute("set threads = 3")
        reader = con.cursor()

        class Watching(OutboxChannel):
            def send(self, chunk, *args, **kwargs):
                seen.append(reader.execute("select current_setting('threads')").fetchall()[0][0])
                return super().send(chunk, *args, **kwargs)

        report = deliver_due(con, loaded, Watching(tmp_path / "out"), now=MONDAY,
                             render_workers=2, batch_size=25)
        assert report.sent == 60
        assert seen and set(seen) == {1}
        assert con.execute("select current_setting('threads')").fetchall()[0][0] == 3

        class Refusing(OutboxChannel):
            def send(self, chunk, *args, **kwargs):
                raise RuntimeError("the channel broke")

        con.execute("update messages set status = 'planned', attempts = 0")
        with pytest.raises(RuntimeError, match="the channel broke"):
            deliver_due(con, loaded, Refusing(tmp_path / "out2"), now=MONDAY,
                        render_workers=2, batch_size=25)
        assert con.execute("select current_setting('threads')").fetchall()[0][0] == 3
    finally:
        con.close()

def test_a_template_failing_in_a_worker_fails_its_messages_alone(tmp_path, campaigns):
    campaigns.write(campaigns.base())
    loaded = planned_warehouse(tmp_path / "w.duckdb", campaigns, 30)
    # broken after validation (edited while a run was under way): the French messages fail
    # at send time, with the reason; the English ones go
    (campaigns.root / "test" / "relance" / "fr" / "body.txt").write_text("{{ 1 / 0 }}",
                                                                          encoding="utf-8")
    report = _deliver(tmp_path / "w.duckdb", loaded, OutboxChannel(tmp_path / "out"),
                      render_workers=2, batch_size=10)
    assert (report.sent, report.failed) == (10, 20)
    rows = _ledger(tmp_path / "w.duckdb")
    failed = [r for r in rows if r[1] == "failed"]
    assert len(failed) == 20 and all(r[4].startswith("render:") and "division by zero" in r[4]
                                     for r in failed)
    assert len(list((tmp_path / "out" / "test").glob("*.eml"))) == 10


def _render_workers() -> list[int]:
    """This process's render workers: children of its forkserver (or spawned children)."""
    found = []
    todo = [os.getpid()]
    while todo:
        pid = todo.pop()
        try:
            children = [int(c) for task in os.listdir(f"/proc/{pid}/task")
                        for c in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
        except OSError:
            continue
        for child in children:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
            if b"multiprocessing" in cmdline and pid != os.getpid():
                found.append(child)
            todo.append(child)
    return found


@pytest.fixture
def server():
    s = FakeSendGrid()
    yield s
    s.stop()


# over the render budget for the learners whose id ends in 7 (L000007, L000017, L000037
# are French), after validation: a loop that would run for ever, a gigabyte
RUNAWAY = {
    "time": "{% if learner.id.endswith('7') %}{% for i in range(10000) %}{% for j in "
            "range(10000) %}{% endfor %}{% endfor %}{% endif %}Bonjour",
    "size": "{{ 'A' * (10 ** 9 if learner.id.endswith('7') else 1) }}",
}


@pytest.mark.parametrize("kind", RUNAWAY)
def test_a_runaway_template_in_a_worker_fails_its_message_and_nothing_of_it_is_sent(
        tmp_path, campaigns, server, kind):
    """The render budget holds in the render workers (its clock read cheaply there too): a
    render that would loop for ever or write a gigabyte is stopped, its message fails
    saying which budget, file and line, and SendGrid gets the others and nothing of it."""
    sendgrid_campaign(campaigns)
    db = tmp_path / "w.duckdb"
    loaded = planned_warehouse(db, campaigns, 40)
    (campaigns.root / "test" / "relance" / "fr" / "body.txt").write_text(RUNAWAY[kind],
                                                                          encoding="utf-8")
    report = _deliver(db, loaded, SendGridChannel(server.key, host=server.url),
                      render_workers=2, batch_size=10)
    assert (report.sent, report.failed) == (37, 3)
    con = warehouse.connect(db, read_only=True)
    try:
        failed = dict(con.execute("select learner_id, error from messages "
                                  "where status = 'failed'").fetchall())
        sent = {r[0] for r in con.execute("select message_id from messages "
                                          "where status = 'sent'").fetchall()}
    finally:
        con.close()
    assert set(failed) == {"L000007", "L000017", "L000037"}
    for error in failed.values():
        assert error.startswith("render:") and "test/relance/fr/body.txt:1: " in error, error
        assert f"{kind} budget" in error, error
    assert set(server.accepted()) == sent and len(sent) == 37


def test_a_worker_killed_mid_delivery_loses_nothing_and_sends_nothing_twice(tmp_path, campaigns,
                                                                             server):
    sendgrid_campaign(campaigns)
    db = tmp_path / "w.duckdb"
    loaded = planned_warehouse(db, campaigns, 1200)
    channel = SendGridChannel(server.key, host=server.url)
    killed = []

    def kill_a_worker(done: int, total: int) -> None:
        if not killed:
            workers = _render_workers()
            assert workers, "no render worker found"
            os.kill(workers[0], signal.SIGKILL)
            killed.append(workers[0])

    with pytest.raises(RenderWorkerLost, match="render worker stopped"):
        _deliver(db, loaded, channel, render_workers=2, batch_size=200, on_batch=kill_a_worker)
    rows = _ledger(db)
    statuses = {r[1] for r in rows}
    assert "uncertain" not in statuses and statuses <= {"sent", "planned"}
    sent_first = sum(r[1] == "sent" for r in rows)
    assert 0 < sent_first < 1200
    # the next delivery sends the rest, once
    report = _deliver(db, loaded, channel, render_workers=2, batch_size=200)
    assert report.sent == 1200 - sent_first and report.failed == report.uncertain == 0
    assert {r[1] for r in _ledger(db)} == {"sent"}
    accepted = server.accepted()
    assert len(accepted) == 1200 and set(accepted.values()) == {1}


def test_sendgrid_gets_the_same_mails_whether_workers_build_the_requests_or_not(tmp_path,
                                                                                 campaigns,
                                                                                 server):
    """Render workers build each message's SendGrid personalization beside its rendering:
    the e-mails SendGrid accepts are those the delivering process would have built."""
    sendgrid_campaign(campaigns)
    loaded = planned_warehouse(tmp_path / "here.duckdb", campaigns, 60)
    shutil.copy(tmp_path / "here.duckdb", tmp_path / "workers.duckdb")
    channel = SendGridChannel(server.key, host=server.url)
    mails = {}
    for name, workers in (("here", 0), ("workers", 2)):
        server.reset()
        report = _deliver(tmp_path / f"{name}.duckdb", loaded, channel, render_workers=workers,
                          batch_size=25)
        assert report.sent == 60 and report.failed == report.uncertain == 0
        mails[name] = sorted(({k: v for k, v in m.items() if k != "x_message_id"}
                              for m in server.mails()),
                             key=lambda m: m["custom_args"]["relance_message_id"])
    assert len(mails["here"]) == 60 and mails["here"] == mails["workers"]
    assert mails["here"][0]["text"] and "-relance-" not in mails["here"][0]["text"]


def test_context_rows_reach_the_workers_as_arrow_would_give_them():
    """What a worker renders from (python_rows) is exactly Arrow's own to_pylist: the same
    values of the same types (time zones included), nulls at every level, and a slice
    (a batch's piece) read from its own offset."""
    from datetime import date, datetime, timezone

    import pyarrow as pa

    from relance.delivery.render_pool import _ipc, python_rows

    at = datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc)
    item = pa.struct([("id", pa.string()), ("due_at", pa.timestamp("us", tz="UTC")),
                      ("week", pa.int32())])
    rows = [
        {"message_id": f"m{i}", "as_of": at, "starts_on": date(2026, 9, 1 + i % 3),
         "percent": i / 7, "done": i % 2 == 0,
         "learner": None if i == 3 else {"name": f"L{i}", "tz": None if i % 4 else "Europe/Paris"},
         "open": None if i == 5 else [
             None if (i + k) % 6 == 0 else
             {"id": f"a{k}", "due_at": None if k == 1 else at, "week": k} for k in range(i % 4)]}
        for i in range(12)]
    schema = pa.schema([("message_id", pa.string()), ("as_of", pa.timestamp("us", tz="UTC")),
                        ("starts_on", pa.date32()), ("percent", pa.float64()),
                        ("done", pa.bool_()),
                        ("learner", pa.struct([("name", pa.string()), ("tz", pa.string())])),
                        ("open", pa.list_(item))])
    table = pa.Table.from_pylist(rows, schema=schema)

    def typed(value):
        if isinstance(value, dict):
            return {k: typed(v) for k, v in value.items()}
        if isinstance(value, list):
            return [typed(v) for v in value]
        return (type(value), value, getattr(getattr(value, "tzinfo", None), "key", None))

    for piece in (table, table.slice(5, 4), pa.ipc.open_stream(_ipc(table.slice(3, 7))).read_all()):
        assert typed(python_rows(piece)) == typed(piece.to_pylist())
    assert python_rows(table.slice(0, 0)) == []
