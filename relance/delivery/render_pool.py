"""Rendering on every core: a delivery's messages rendered (and, for channels that send
RFC 5322 bytes, built) in worker processes while the delivering process reads the next
batch, writes what was rendered and records the verdicts.

Rendering and building a message is pure CPU in Python (Jinja2, the email package): in one
process it held one core, and the whole delivery with it (a 30,000-learner week: 60 % of
the delivery's samples in rendering and MIME building, the rest in the warehouse's context
query and the ledger). Workers run the same code as the delivering process would: the
campaign's templates in the same sandbox, under the same render budget
(relance/campaign/sandbox.py, budget.py), loaded once per worker by its initialiser from
the LoadedCampaign handed over (no campaign file read again, so a worker renders exactly
what the delivery validated). Nothing of the ledger is written here: a worker returns
messages and render failures, and the delivering process records them, before any send
(a message is still recorded before it leaves, by the process that owns the warehouse).

Workers are started through multiprocessing's forkserver (spawn where there is none):
never forked from a process holding a DuckDB connection, threads and Prefect's clients.
A batch's context rows go to the workers as Arrow IPC (no Python objects built in the
delivering process), in pieces, one or two batches ahead at most, so memory stays flat
whatever the number of messages.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.context
import os
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime
from typing import TYPE_CHECKING

import pyarrow as pa

from relance.channels.base import OutgoingMessage, SendResult

if TYPE_CHECKING:
    from relance.campaign.loaded import LoadedCampaign

# Below this many messages due, a delivery renders in its own process: starting workers
# (a fresh interpreter importing Jinja2, Babel and the campaign model, ~0.3 s each) would
# cost more than it saves.
WORKERS_FROM = 1000
# Rows a worker renders at once: small enough that every worker gets several pieces of a
# batch (they end together), large enough that handing one over costs nothing.
PIECE = 250

class RenderWorkerLost(RuntimeError):
    """A render worker stopped (killed, out of memory) during a delivery: the delivery
    stops there. What it had handed to the channel is recorded as usual; the rest stays
    due, for the next delivery (or the flow's retry) to send once."""


def _lost() -> RenderWorkerLost:
    return RenderWorkerLost(
        "a render worker stopped (killed, or out of memory?) during the delivery: what was "
        "handed to the channel is recorded, the rest stays due; run the delivery again "
        "(RELANCE_RENDER_WORKERS=0 renders in the delivering process)")


# one per worker process: what its initialiser loaded
_worker: dict = {}


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:         # not Linux
        return os.cpu_count() or 1


def workers_for(total: int, configured: int | None) -> int:
    """How many worker processes a delivery of `total` messages renders with: none (in
    this process) when it is small or when RELANCE_RENDER_WORKERS is 0."""
    if configured is not None:
        return max(0, configured)
    if total < WORKERS_FROM:
        return 0
    n = cores()
    return n if n > 1 else 0


_NAME = "relance-render"


def _without_main(get_preparation_data):
    """multiprocessing makes each spawned process run the parent's main script again (as
    `__mp_main__`), so that what it defines can be unpickled there: an unguarded script
    would start its delivery again in every worker, and a guarded one (the `relance`
    command) would import all it imports for nothing. Render workers need only this
    module: for them (and them only: by their name) the main script is left out."""
    def prepared(name):
        data = get_preparation_data(name)
        if str(name).startswith(_NAME):
            data.pop("init_main_from_path", None)
            data.pop("init_main_from_name", None)
        return data
    prepared.relance_render = True
    return prepared


_FORKSERVER = "forkserver" in multiprocessing.get_all_start_methods()
_Base = (multiprocessing.context.ForkServerContext if _FORKSERVER
         else multiprocessing.context.SpawnContext)


class _Worker(_Base.Process):
    """A render worker: named so that _without_main knows it."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.name = f"{_NAME}-{self.name}"


class _Context(_Base):
    Process = _Worker


# What a render worker imports (the forkserver imports it once, with no warehouse open: a
# module, not a connection): its initialiser's (the renderer, the links, the campaign
# unpickled), _render's (deliver.render_rows), and the channels' worker sides.
_PRELOAD = ["relance.delivery.render_pool", "relance.delivery.deliver",
            "relance.delivery.rendering", "relance.delivery.links", "relance.campaign.loaded",
            "relance.channels.sendgrid"]


def _context() -> _Context:
    from multiprocessing import spawn
    if not getattr(spawn.get_preparation_data, "relance_render", False):
        spawn.get_preparation_data = _without_main(spawn.get_preparation_data)
    ctx = _Context()
    if _FORKSERVER:
        # the forkserver imports what a worker runs once; each worker then starts from it
        # in milliseconds. Not only this module: a worker importing the renderer, the
        # campaign model and the channels itself spent 0.4 s of CPU doing so (a week's
        # three deliveries, two workers each: 2.3 s, 5 % of the workers' time), on cores
        # the delivering process was using to read the first batch
        ctx.set_forkserver_preload(_PRELOAD)
    return ctx


def _init(loaded: "LoadedCampaign", build_mime: bool, wire=None) -> None:
    from relance.delivery import links
    from relance.delivery.rendering import Renderer
    links._warned = True      # a missing signing key was said once, by the delivery
    renderer = Renderer(loaded)
    # the campaign's templates do not change during a delivery: compiled once per worker,
    # their files not looked at again (the in-process Renderer stats each template's
    # file at every render, to pick up an edit between runs)
    renderer.env.auto_reload = False
    _worker.update(loaded=loaded, renderer=renderer, build_mime=build_mime, wire=wire)


def _ready() -> None:
    pass


def _render(rows: bytes | list[dict], date: datetime
            ) -> tuple[list[OutgoingMessage], list[SendResult]]:
    from relance.delivery.deliver import render_rows
    if isinstance(rows, bytes):
        rows = python_rows(pa.ipc.open_stream(rows).read_all())
    batch, unsent = render_rows(_worker["loaded"], _worker["renderer"], rows, date)
    if _worker["build_mime"]:
        batch = [with_mime(m) for m in batch]
    if _worker["wire"] is not None:
        batch = [_worker["wire"](m) for m in batch]
    return batch, unsent


def python_rows(table: pa.Table) -> list[dict]:
    """The rows of `table` as dicts, equal to `table.to_pylist()` (the same values, of the
    same types), column by column. to_pylist made a Python object for every value, and a
    batch's calendar lists repeat the same few activities and contributions, each with a
    timestamp (a time zone looked up for each): a third of a worker's time on the weekly
    recap, more than rendering on onboarding's short messages. Here each column is
    converted at once and each distinct timestamp or date once (the same immutable object
    shared by the rows that hold it)."""
    names = table.column_names
    columns = [_values(table.column(i).combine_chunks()) for i in range(table.num_columns)]
    return [dict(zip(names, values)) for values in zip(*columns)] if names else []


def _values(array: pa.Array) -> list:
    """An Arrow array's values as Python's, as Array.to_pylist gives them."""
    kind = array.type
    if pa.types.is_struct(kind):
        names = [f.name for f in kind]
        # flatten(): the fields as of the slice, the struct's own nulls carried into them
        fields = [_values(child) for child in array.flatten()]
        rows = [dict(zip(names, values)) for values in zip(*fields)] if names else (
            [{} for _ in range(len(array))])
        return _with_nulls(array, rows)
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        offsets = array.offsets.to_pylist()
        first, last = offsets[0], offsets[-1]
        items = _values(array.values.slice(first, last - first))
        rows = [items[start - first:end - first] for start, end in zip(offsets, offsets[1:])]
        return _with_nulls(array, rows)
    if (pa.types.is_timestamp(kind) or pa.types.is_date(kind) or pa.types.is_time(kind)
            or pa.types.is_decimal(kind)) and len(array):
        # few distinct values, each costly to make: made once each
        encoded = array.dictionary_encode()
        distinct = encoded.dictionary.to_pylist()
        return [None if i is None else distinct[i] for i in encoded.indices.to_pylist()]
    return array.to_pylist()


def _with_nulls(array: pa.Array, rows: list) -> list:
    if not array.null_count:
        return rows
    return [row if valid else None
            for row, valid in zip(rows, array.is_valid().to_pylist())]


def with_mime(msg: OutgoingMessage) -> OutgoingMessage:
    """The message with its RFC 5322 bytes (`mime`) built, as the outbox and SMTP send
    them; as it was if they cannot be built (the channel then fails it, saying why)."""
    from relance.channels.base import with_fields
    from relance.channels.email import HeaderError, message_bytes
    if msg.date is None:
        return msg
    try:
        return with_fields(msg, mime=message_bytes(msg, date=msg.date))
    except (HeaderError, ValueError):
        return msg


def _ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


class RenderPool:
    """Worker processes rendering one campaign's messages for one delivery."""

    def __init__(self, loaded: "LoadedCampaign", workers: int, build_mime: bool, wire=None):
        """`wire`: what to run on each rendered message, for a channel that builds its
        part of a request there (its `worker_side`: SendGrid's personalizations)."""
        from relance.delivery import links
        links._key()              # says, here, once, if links are signed with no key
        self.workers = workers
        self._pool = ProcessPoolExecutor(workers, mp_context=_context(), initializer=_init,
                                         initargs=(loaded, build_mime, wire))
        # started now, while the delivery judges its ledger again (they start on demand),
        # from a thread of their own: a process's first pool waits for the forkserver to
        # import what the workers run (_PRELOAD, 0.5 s), and the delivery need not
        self._starting = threading.Thread(target=self._start, name=f"{_NAME}-start",
                                          daemon=True)
        self._starting.start()

    def _start(self) -> None:
        try:
            for _ in range(self.workers):
                self._pool.submit(_ready)
        except Exception:       # a pool that cannot start: said by the delivery's first submit
            pass

    def submit(self, table: pa.Table, date: datetime) -> list[Future]:
        """Render the rows of `table` (context.sql's columns), in pieces; one future per
        piece, each giving (messages, render failures), in the table's order."""
        try:
            return [self._pool.submit(_render, _ipc(table.slice(start, PIECE)), date)
                    for start in range(0, table.num_rows, PIECE)]
        except BrokenProcessPool as exc:
            raise _lost() from exc

    @staticmethod
    def result(future: Future):
        """A piece's (messages, render failures); RenderWorkerLost if its worker died."""
        try:
            return future.result()
        except BrokenProcessPool as exc:
            raise _lost() from exc

    def submit_rows(self, rows: list[dict], date: datetime) -> list[Future]:
        """Render rows already read as dicts (managers' digests: a few a batch)."""
        try:
            return [self._pool.submit(_render, rows, date)] if rows else []
        except BrokenProcessPool as exc:
            raise _lost() from exc

    def close(self) -> None:
        self._starting.join()
        self._pool.shutdown(wait=True, cancel_futures=True)
