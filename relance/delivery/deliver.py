"""Delivery: planned messages that are due leave the ledger in batches, are rendered and
handed to the channel, and the channel's verdict goes back into the ledger.

    ledger (planned, due) -> context (SQL, per batch) -> render -> channel -> ledger

A message is 'planned' in the ledger before any send; it becomes 'sent' only on the
channel's acceptance and 'failed' with the reason otherwise. Delivery is a pipeline
(send_chunks): while one request is on the wire, the next chunk is read, rendered and
built, and the verdict of the one before is written; so at most one request's verdict
(`concurrency` of them) is ever held in memory unwritten, and it is in flight in the
ledger meanwhile.

Each chunk a channel sends at once (one API request) is first written to `send_attempts`,
and committed: 'connecting', then 'in_flight' from the moment its connection is up, just
before its first byte leaves (the request thread writes that, attempts.ChunkAttempts); its
verdict and the attempt's end are written together. So if the process dies mid-request,
the next delivery finds the attempt still in flight and marks its messages 'uncertain' (the
provider may have accepted them): reported, never resent blindly. Only a channel that
recognises what it already delivered (the outbox) sends them again. A process killed while
a request connects, or waits to retry after a refusal (a 429, a 5xx: that request ended
'refused' before the wait), leaves nothing uncertain; nor, but for the few milliseconds
it takes to record, does it leave the request before uncertain once its answer came.
One delivery per campaign runs at a time (lock.py).
"""

from __future__ import annotations

import gc
import re
import sys
import time
from collections import Counter, deque
from contextlib import contextmanager
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable

import duckdb

import warehouse
from relance import clock
from relance.campaign.loaded import LoadedCampaign
from relance.channels import Channel, OutgoingMessage, SendResult
from relance.delivery import digests, lms, reply_mail
from relance.delivery.attempts import ChunkAttempts, Writer, record, recover_in_flight
from relance.delivery.lock import campaign_lock
from relance.delivery.messages import context_rows, context_table, outgoing, scope
from relance.delivery.recheck import recheck_due, stage_targets
from relance.delivery.render_pool import RenderPool, workers_for
from relance.delivery.rendering import Renderer, RenderError
from relance.engine import MAX_ATTEMPTS

HERE = Path(__file__).parent
# Large enough that the per-batch context query (which scans the events) is paid rarely,
# small enough that memory stays flat: a batch is a few MB of rendered mail.
BATCH_SIZE = 2000
# How long the delivery thread waits for the next request to be written before it records
# the answer to the one before anyway: a request is usually written within it (connected,
# one row in the ledger, a few MB to a socket), so that answer is recorded while the next
# request is on the wire, at no cost; a connection that takes longer (a slow TLS handshake,
# an unreachable host) does not keep it unrecorded, so a process killed meanwhile does not
# leave answered messages uncertain.
ON_THE_WIRE_WAIT = 0.005
# Batches handed to the render workers before the first is collected: while this process
# writes one batch's ledger rows and requests, the workers render the next ones (with two,
# they waited for it at each batch's end). Each is a batch of rendered mail in memory.
AHEAD = 3
# Due messages judged again at once before a delivery (cancel.sql): its memory is bounded
# by this, not by the number due.
CANCEL_WINDOW = 50_000


@dataclass
class DeliveryReport:
    sent: int = 0
    failed: int = 0
    cancelled: int = 0
    # marked uncertain by this delivery (a crash mid-request before it, or no answer now)
    uncertain: int = 0
    # every message of the campaign still uncertain, waiting for a person or an event
    uncertain_pending: int = 0
    seconds: float = 0.0
    errors: Counter = field(default_factory=Counter)
    cancel_reasons: Counter = field(default_factory=Counter)
    # due, but judged again at send time not to go yet: postponed to the next allowed
    # moment, by reason (quiet hours or a non-sending day, the weekly moment)
    waiting: Counter = field(default_factory=Counter)


def _sql(name: str) -> str:
    return (HERE / f"{name}.sql").read_text(encoding="utf-8")


def cancel_stale(con: duckdb.DuckDBPyConnection, loaded: LoadedCampaign, now: datetime) -> Counter:
    """Cancel due messages that no longer make sense (cancel.sql); count them by reason.
    CANCEL_WINDOW due messages at a time, in message_id order."""
    params = {"campaign_id": loaded.id, "now": now, "targets": stage_targets(loaded),
              "timezone": loaded.campaign.timezone}
    *keys, update = warehouse.statements(_sql("cancel"))
    reasons: Counter = Counter()
    after = ""
    try:
        while True:
            upto, n = warehouse.run(
                con, "select max(message_id), count(*) from (select message_id from messages "
                "where campaign_id = ? and status in ('planned', 'failed') and not_before <= ? "
                "and message_id > ? order by message_id limit ?)",
                [loaded.id, now, after, CANCEL_WINDOW]).fetchall()[0]
            if upto is None:
                return reasons
            window = params | {"after": after, "upto": upto}
            warehouse.execute_script(con, ";\n".join(keys), window)     # its key tables first
            reasons.update(r[0] for r in warehouse.run(con, update, window).fetchall())
            if n < CANCEL_WINDOW:
                # a window short of full was the last: no query to find the next one empty
                # (one statement less in nearly every delivery)
                return reasons
            after = upto
    finally:
        # a window's keys: dropped rather than held, in the connection's memory, for the
        # rest of the delivery
        for name in _created(keys):
            con.execute(f"drop table if exists {name}")


def _created(statements: list[str]) -> list[str]:
    """The temp tables these statements create (`create or replace temp table <name>`)."""
    return [m.group(1) for s in statements
            for m in [re.search(r"create\s+or\s+replace\s+temp\s+table\s+(\w+)", s, re.I)] if m]


_DUE = ("from messages where campaign_id = ? and not_before <= ? "
        "and (status = 'planned' or (status = 'failed' and attempts < ?))")


def due_ids(con: duckdb.DuckDBPyConnection, campaign_id: str, now: datetime, limit: int,
            after: str = "") -> list[str]:
    """The next batch of messages to send: planned and due, or failed and worth another try."""
    return [r[0] for r in con.execute(
        "select message_id from messages where campaign_id = ? and not_before <= ? "
        "and (status = 'planned' or (status = 'failed' and attempts < ?)) and message_id > ? "
        "order by message_id limit ?",
        [campaign_id, now, MAX_ATTEMPTS, after, limit]).fetchall()]


def deliver_due(con: duckdb.DuckDBPyConnection, loaded: LoadedCampaign, channel: Channel, *,
                now: datetime | None = None, batch_size: int = BATCH_SIZE,
                on_batch: Callable[[int, int], None] | None = None,
                lock_wait_seconds: float | None = None,
                render_workers: int | None = None) -> DeliveryReport:
    """Send every planned message of the campaign that is due at `now`, batch by batch;
    failed ones are tried again, up to MAX_ATTEMPTS in all, then stay failed (reported).
    `render_workers`: processes rendering the messages (render_pool.py; 0: this one;
    default RELANCE_RENDER_WORKERS, else one per core for a delivery of 1,000 or more).
    Raises DeliveryBusy if another delivery of the campaign is under way."""
    if lock_wait_seconds is None or render_workers is None:
        from relance.settings import Settings
        settings = Settings()
        if lock_wait_seconds is None:
            lock_wait_seconds = settings.lock_wait_seconds
        if render_workers is None:
            render_workers = settings.render_workers
    with campaign_lock(con, loaded.id, wait_seconds=lock_wait_seconds):
        try:
            return _deliver(con, loaded, channel, clock.or_now(now), batch_size,
                            on_batch, render_workers)
        finally:
            if hasattr(channel, "close"):       # an SMTP connection kept for the delivery
                channel.close()


def _deliver(con, loaded, channel, now, batch_size, on_batch, render_workers) -> DeliveryReport:
    started = time.perf_counter()
    report = DeliveryReport()
    # the render workers start (a fresh interpreter each) while the ledger is judged again
    # below; how many is decided on what may be due, before cancellations
    workers = workers_for(_n_due(con, loaded.id, now), render_workers)
    worker_side = getattr(channel, "worker_side", None)
    render_pool = (RenderPool(loaded, workers, build_mime=getattr(channel, "sends_mime", False),
                              wire=worker_side(loaded) if worker_side else None)
                   if workers else None)
    try:
        return _deliver_with(con, loaded, channel, now, batch_size, on_batch, report,
                             render_pool, started)
    finally:
        if render_pool is not None:
            render_pool.close()


@contextmanager
def _threads(con, n: int | None):
    """DuckDB on `n` threads meanwhile (None: as it is). While render workers hold the
    cores, the per-batch queries (context.sql, the ledger's updates) gain nothing from
    DuckDB's own threads and pay for them: a batch's context query took 0.13 s of CPU on
    two threads and 0.09 s on one, and its threads took the cores from the workers."""
    if n is None:
        yield None
        return
    before = con.execute("select current_setting('threads')").fetchall()[0][0]
    con.execute(f"set threads = {int(n)}")
    try:
        yield before
    finally:
        try:
            con.execute(f"set threads = {int(before)}")
        except duckdb.Error:
            # a connection that failed (invalidated by a fatal error): the error the
            # delivery raises says why, and this connection sets nothing any more
            pass


def _n_due(con, campaign_id: str, now: datetime) -> int:
    return con.execute(f"select count(*) {_DUE}", [campaign_id, now, MAX_ATTEMPTS]).fetchall()[0][0]


def _deliver_with(con, loaded, channel, now, batch_size, on_batch, report, render_pool,
                  started) -> DeliveryReport:
    report.uncertain = recover_in_flight(con, loaded.id, channel)
    cancelled = cancel_stale(con, loaded, now)
    # what is about to go out, judged again as of now (recheck.py)
    rechecked = recheck_due(con, loaded, now)
    cancelled += rechecked.cancelled
    report.cancelled = sum(cancelled.values())
    report.cancel_reasons = cancelled
    report.waiting = rechecked.waiting
    renderer = Renderer(loaded)
    # what is due now, for the progress shown (on_batch) alone: not counted again for a
    # delivery nobody watches (a statement of every delivery a season or a scheduler runs)
    total = _n_due(con, loaded.id, now) if on_batch else 0
    chunks = getattr(channel, "chunks", lambda batch: [batch])
    workers = max(1, int(getattr(channel, "concurrency", 1)))
    with ThreadPoolExecutor(workers, thread_name_prefix=f"send-{channel.name}") as pool, \
            _threads(con, 1 if render_pool is not None else None) as threads:
        # what the batches' context needs of the events, read once for the next SCOPE
        # messages due, as the batches reach them
        scoped = _Scope(con, loaded, now, threads)
        _batches(con, loaded, channel, now, batch_size, on_batch, report, renderer, chunks,
                 total, pool, render_pool, scoped)
    report.uncertain_pending = con.execute(
        "select count(*) from messages where campaign_id = ? and status = 'uncertain'",
        [loaded.id]).fetchall()[0][0]
    report.seconds = time.perf_counter() - started
    return report


def send_chunks(channel: Channel, chunks, begin, end, pool: ThreadPoolExecutor) -> None:
    """Send each chunk: `begin(chunk)` (records it, returns the attempt) before its request,
    `end(attempt, chunk, results)` after. `begin` and `end` always run on this thread (the
    warehouse connection is not shared); the requests run on the pool's. A channel that
    reports its requests (`reports_attempts`) is handed the attempt (an `Attempts`) to say
    when each request starts to leave, each refusal before it waits, and each retry.

    A pipeline: while up to `channel.concurrency` requests are on the wire, this thread
    produces the next chunk (`chunks` may read and render the next batch), builds its body
    (`channel.prepare`, if the channel has one), records it ('connecting': harmless if the
    process dies now) and records the verdict of the request before, once the next one is
    written, or after ON_THE_WIRE_WAIT if it is slow to leave. So the provider never waits
    for the sender's own work, and the sender's work costs no wall time as long as it takes
    less than a request."""
    workers = max(1, int(getattr(channel, "concurrency", 1)))
    prepare = getattr(channel, "prepare", None)
    reports = getattr(channel, "reports_attempts", False)
    pending: deque = deque()

    def finish(item) -> None:
        attempt, chunk, future = item
        answered = list(future.result())
        for message_id in {m.message_id for m in chunk} - {r.message_id for r in answered}:
            answered.append(SendResult(message_id, "failed",
                                       error=f"{channel.name}: the channel returned no result"))
        end(attempt, chunk, answered)

    with _prompt_threads(), _heap_set_aside():
        answered = None
        try:
            for chunk in chunks:
                prepared = prepare(chunk) if prepare else None
                # recorded while the requests before are on the wire: a channel that reports
                # says when this one really leaves (until then it is only 'connecting')
                attempt = begin(chunk)
                if len(pending) >= workers:
                    answered = pending.popleft()
                    wait([answered[2]])
                args = (chunk, prepared) if prepare else (chunk,)
                future = (pool.submit(channel.send, *args, attempts=attempt)
                          if reports and hasattr(attempt, "sending")
                          else pool.submit(channel.send, *args))
                pending.append((attempt, chunk, future))
                written = getattr(prepared, "on_the_wire", None)
                if written is not None and answered and not written.wait(ON_THE_WIRE_WAIT):
                    # the request is slow to leave (a TLS handshake, say): the answer before
                    # is recorded now, so a process killed meanwhile does not leave it unknown
                    item, answered = answered, None
                    finish(item)
                if written is not None:
                    # let the request thread write its request before this thread takes
                    # the GIL back for its own work: it would wait for it at every step up
                    # to the socket
                    written.wait()
                if answered:
                    # recorded while the next request is on the wire
                    item, answered = answered, None
                    finish(item)
        except BaseException:
            # the loop stopped (reading the next batch failed, say): the requests already made
            # are still waited for and recorded, so none stays in flight while its answer is
            # known; the first error is the one raised (a chunk begun but not handed over
            # stays 'connecting': the next delivery ends it, its messages due as they were)
            for item in ([answered] if answered else []) + list(pending):
                try:
                    finish(item)
                except Exception:
                    pass
            raise
        while pending:
            finish(pending.popleft())


@contextmanager
def _heap_set_aside():
    """While a send runs, the collector leaves alone what existed before it (the warehouse
    client, Prefect, the campaign): its full collections then walk only what the send
    made. Each one walked the whole process (a flow process with Prefect loaded: 136,000
    objects, 77 ms; the bench holding 100,000 rendered messages: 0.1 s, 7 % of its send).
    Put back at the end, so nothing is kept longer than the send."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


@contextmanager
def _prompt_threads(interval: float = 0.0005):
    """While a send runs: a thread waiting for the GIL gets it within half a millisecond.
    CPython's default (5 ms) lets the thread building the next request keep the GIL
    while the request thread's answer has arrived, and that wait alone took a third of a
    SendGrid send's time (bench/sendgrid_bench.py: ratio 0.70 at 5 ms, 0.89 at 0.5 ms)."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(min(before, interval))
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def _batches(con, loaded, channel, now, batch_size, on_batch, report, renderer, chunks, total,
             pool, render_pool: RenderPool | None = None, scoped: "_Scope | None" = None) -> None:
    scoped = scoped or _Scope(con, loaded, now)
    subjects: dict[str, str] = {}
    writer = Writer(con)

    connecting = getattr(channel, "reports_attempts", False)
    # a request is filled up to the channel's limit or a batch, whichever is smaller
    limit = getattr(channel, "chunk_limit", None)
    regrouped = _Regrouped(chunks, min(limit, batch_size) if limit else None)

    def begin(chunk):
        return ChunkAttempts(con, writer, loaded.id, channel.name, chunk, connecting)

    def end(attempt, chunk, answered):
        record(con, answered, subjects, now, attempt.attempt_id)
        _count(report, answered)
        for m in chunk:
            subjects.pop(m.message_id, None)

    def all_chunks():
        done, last = 0, ""
        while True:
            # keyset pagination: a message that fails stays behind `last`, so one delivery
            # tries each message once, and a retry waits for the next delivery
            ids = due_ids(con, loaded.id, now, batch_size, last) if last is not None else []
            if not ids:
                break
            # a batch short of full was the last: no query to find the next one empty
            last = ids[-1] if len(ids) == batch_size else None
            batch = _rendered(con, loaded, renderer, ids, subjects, report, now, scoped)
            if batch and getattr(channel, "lms_source", None):     # moodle, canvas
                batch = lms.with_accounts(con, batch, channel.lms_source)
            if batch:
                yield from regrouped.add(batch)
            done += len(ids)
            if on_batch:
                on_batch(done, total)
        yield from regrouped.rest()

    def all_chunks_rendered_by_workers():
        # the same batches, one ahead: while the workers render the next batch, this
        # process writes and records the one before (no more than two batches are ever
        # held, however many are due)
        done, last = 0, ""
        ahead: deque = deque()
        while True:
            ids = due_ids(con, loaded.id, now, batch_size, last) if last is not None else []
            if ids:
                # a batch short of full was the last: no query to find the next one empty
                last = ids[-1] if len(ids) == batch_size else None
                ahead.append(_submitted(con, loaded, render_pool, ids, now, scoped))
            else:
                last = None
            if not ahead:
                yield from regrouped.rest()
                break
            if ids and len(ahead) < AHEAD:
                continue
            submitted = ahead.popleft()
            batch = _collected(con, submitted, subjects, report, now)
            if batch and getattr(channel, "lms_source", None):     # moodle, canvas
                batch = lms.with_accounts(con, batch, channel.lms_source)
            if batch:
                yield from regrouped.add(batch)
            done += len(submitted[0])
            if on_batch:
                on_batch(done, total)

    # one pipeline across batches: the next batch is read and rendered while the last
    # requests of this one are on the wire
    try:
        send_chunks(channel, all_chunks() if render_pool is None
                    else all_chunks_rendered_by_workers(), begin, end, pool)
    finally:
        writer.close()


def _rendered(con, loaded, renderer, ids: list[str], subjects: dict[str, str],
              report: DeliveryReport, now: datetime, scoped: "_Scope") -> list[OutgoingMessage]:
    """The batch's messages, rendered and dated `now` (the send moment, not the planned
    one); those that cannot be rendered are recorded failed at once."""
    extras = scoped.covering(ids)
    rows = context_rows(con, ids, loaded.campaign.timezone, scoped=True, skipped=scoped.skipped)
    rows += extras.rows(con, loaded, ids)
    batch, unsent = render_rows(loaded, renderer, rows, now)
    return _kept(con, ids, {r["message_id"] for r in rows}, batch, unsent, subjects, report, now)


def render_rows(loaded, renderer, rows: list[dict], now: datetime
                ) -> tuple[list[OutgoingMessage], list[SendResult]]:
    """Context rows rendered: the messages, and a failed result for each that could not
    be (in this process, or in a render worker: relance/delivery/render_pool.py)."""
    unsent: list[SendResult] = []
    batch: list[OutgoingMessage] = []
    for row in rows:
        try:
            out = (digests.outgoing(loaded, renderer, row, date=now) if row.get("is_digest")
                   else reply_mail.outgoing(loaded, renderer, row, date=now)
                   if row.get("is_reply") else outgoing(loaded, renderer, row, date=now))
        except RenderError as exc:
            unsent.append(SendResult(row["message_id"], "failed", error=f"render: {exc}"))
            continue
        except KeyError as exc:
            # planned under a message (or digest group) the campaign file no longer
            # has: that message fails with the reason, the batch goes on
            unsent.append(SendResult(row["message_id"], "failed",
                                     error=f"not in the campaign file any more: {exc}"))
            continue
        batch.append(out)
    return batch, unsent


def _kept(con, ids: list[str], found: set[str], batch: list[OutgoingMessage],
          unsent: list[SendResult], subjects: dict[str, str], report: DeliveryReport,
          now: datetime) -> list[OutgoingMessage]:
    """What of a rendered batch goes to the channel; what could not be rendered, or had no
    context row, is recorded failed at once."""
    for out in batch:
        subjects[out.message_id] = out.subject
    for message_id in set(ids) - found:
        unsent.append(SendResult(message_id, "failed", error="no decision row for this message"))
    if unsent:
        record(con, unsent, {}, now)
        _count(report, unsent)
    return batch


def _submitted(con, loaded, pool: RenderPool, ids: list[str], now: datetime,
               scoped: "_Scope") -> tuple:
    """A batch handed to the render workers: its context read here (the warehouse is this
    process's), rendered there. What _collected turns into the batch's messages."""
    extras = scoped.covering(ids)
    table = context_table(con, ids, loaded.campaign.timezone, scoped=True,
                          skipped=scoped.skipped)
    # read now: the batch table is the next batch's by the time this one is collected
    extra = extras.rows(con, loaded, ids)
    found = set(table.column("message_id").to_pylist()) | {r["message_id"] for r in extra}
    return ids, found, pool.submit(table, now) + pool.submit_rows(extra, now)


def _collected(con, submitted: tuple, subjects: dict[str, str],
               report: DeliveryReport, now: datetime) -> list[OutgoingMessage]:
    ids, found, futures = submitted
    batch: list[OutgoingMessage] = []
    unsent: list[SendResult] = []
    for future in futures:
        messages, failed = RenderPool.result(future)
        batch += messages
        unsent += failed
    return _kept(con, ids, found, batch, unsent, subjects, report, now)


class _Regrouped:
    """A channel's requests filled across batches: the messages of a request that is not
    full (`limit`: SendGrid's 1,000, or a batch) wait for the next batch's of the same kind. A
    batch of 2,000 holds several message keys, each its own request: a 30,000-learner week
    went out in 60 requests of 350 on average, and each request costs the ledger two
    commits and an update (a third of the delivering process's time). Held back: fewer
    than `HOLD` messages (beyond, all go), rendered and not yet begun, so still 'planned'
    in the ledger if the process stops."""

    HOLD = 4000

    def __init__(self, chunks, limit: int | None):
        self.chunks, self.limit, self.held = chunks, limit, []

    def add(self, batch: list[OutgoingMessage]):
        if not self.limit:
            yield from self.chunks(batch)
            return
        held: list[OutgoingMessage] = []
        for chunk in self.chunks(self.held + batch):
            if len(chunk) >= self.limit:
                yield chunk
            else:
                held += chunk
        self.held = held
        if len(held) > self.HOLD:
            yield from self.rest()

    def rest(self):
        held, self.held = self.held, []
        if held:
            yield from self.chunks(held)


class _Scope:
    """The messages whose context is read ahead (messages.scope, context_scope.sql): the
    next SCOPE due from the batch about to be read, made again once the batches go past
    them. Not every message due at once: what the scope holds (each message's decision,
    learner, activities done) grew with the delivery, and at 1,000,000 messages it was
    most of the delivering process's memory."""

    SCOPE = 50_000

    def __init__(self, con, loaded: LoadedCampaign, now: datetime, threads: int | None = None):
        """`threads`: DuckDB's threads while a scope is read (None: as they are)."""
        self.con, self.loaded, self.now, self.threads = con, loaded, now, threads
        self.campaign_id = loaded.id
        self.upto: str | None = None
        self.extras = _Extras()
        self.skipped: frozenset[str] = frozenset()     # the scope's tables not made

    def covering(self, ids: list[str]) -> "_Extras":
        """Scope the messages from ids[0] on (ids: the batch, due, in message_id order),
        unless the current scope holds them; the digests and replies among them."""
        if self.upto is None or ids[-1] > self.upto:
            # on every core: the scope reads the events (the batches' query reads it), and
            # the first is read before the workers have anything to render
            with _threads(self.con, self.threads):
                self.skipped = scope(
                    self.con, f"select message_id {_DUE} and message_id >= ? "
                    "order by message_id limit ?",
                    [self.campaign_id, self.now, MAX_ATTEMPTS, ids[0],
                     max(self.SCOPE, len(ids))], self.loaded)
                self.upto = self.con.execute("select max(message_id) from delivery_scope"
                                             ).fetchall()[0][0] or ""
                self.extras = _Extras.of_scope(self.con, self.loaded)
        return self.extras


class _Extras:
    """The messages due that context.sql does not cover: managers' digests and learners'
    replies (their acknowledgements and forwards), each with its own context query. Those
    ran for every batch, and found nothing in almost all of them (a few digests in a
    week's 20,000 messages): 0.1 ms a message of the delivering process, a tenth of its
    work. Now only for a batch holding one."""

    def __init__(self, digest_ids: frozenset = frozenset(), reply_ids: frozenset = frozenset()):
        self.digest_ids, self.reply_ids = digest_ids, reply_ids
        self.digests: dict[str, dict] = {}      # the digests' context rows, by message id

    @classmethod
    def of_scope(cls, con, loaded) -> "_Extras":
        rows = con.execute(
            "select m.message_id, m.trigger = 'digest' from messages m "
            "join delivery_scope using (message_id) "
            "where m.trigger = 'digest' or list_contains(?::varchar[], m.trigger)",
            [list(reply_mail.TRIGGERS)]).fetchall()
        extras = cls(frozenset(i for i, digest in rows if digest),
                     frozenset(i for i, digest in rows if not digest))
        if loaded.campaign.digest and extras.digest_ids:
            extras.digests = extras._digest_rows(con, loaded)
        return extras

    def _digest_rows(self, con, loaded) -> dict[str, dict]:
        """The scope's digests' context rows, read at once: by a query for each batch
        holding one, a week's nine digests at 100,000 learners ran nine times the query
        that reads their teams (6 % of the delivering process's samples). A few rows (a
        digest lists at most digests.PER_GROUP learners a group); nothing they read
        changes during the delivery. Made before the next batch's delivery_batch, which
        holds the scope's digests meanwhile."""
        con.execute("create or replace temp table delivery_batch (message_id varchar primary key)")
        con.execute("insert into delivery_batch select unnest(?::varchar[])",
                    [sorted(self.digest_ids)])
        return {r["message_id"]: r | {"is_digest": True}
                for r in digests.context_rows(con, loaded.campaign.timezone)}

    def rows(self, con, loaded, ids: list[str]) -> list[dict]:
        """The context rows of the batch `ids` (delivery_batch) that context.sql leaves out."""
        rows: list[dict] = []
        if self.digests and not self.digest_ids.isdisjoint(ids):
            rows += [self.digests[i] for i in ids if i in self.digests]
        if not self.reply_ids.isdisjoint(ids):
            rows += [r | {"is_reply": True} for r in reply_mail.context_rows(con)]
        return rows


def _count(report: DeliveryReport, results: list[SendResult]) -> None:
    for r in results:
        if r.status == "sent":
            report.sent += 1
        elif r.status == "uncertain":
            report.uncertain += 1
        else:
            report.failed += 1
            report.errors[(r.error or "unknown").split(":")[0]] += 1


