"""Prefect flows: one per job. Each is a thin layer over library calls in relance/ and
connectors/, so the same steps run in-process, on a worker, or directly from tests."""
from __future__ import annotations

import threading
from contextlib import ExitStack, contextmanager
from contextvars import ContextVar
from functools import lru_cache

import warehouse as wh
from relance.settings import parse_moment as parse_as_of  # noqa: F401  (flows' name for it)
from relance.settings import resolve as settings  # noqa: F401

# DuckDB lets one process at a time open the warehouse file for writing. Runs on several
# workers (or machines sharing the file) take turns through this Prefect global
# concurrency limit, created with one slot the first time a flow needs it.
WAREHOUSE_LIMIT = "relance-warehouse"


class IncompleteDelivery(Exception):
    """Messages a flow delivered failed or are uncertain (or a campaign could not be
    delivered at all): the flow run ends Failed, once its work is done and published, so
    that the alerts an operator keeps on failed runs fire; `result` is what it returns
    otherwise. Raised by a plain call of the flow; `result_of` reads it from a state."""

    def __init__(self, message: str, result):
        super().__init__(message, result)

    @property
    def result(self):
        return self.args[1]

    def __str__(self) -> str:
        return self.args[0]


def outcome(result, deliveries: list[dict]):
    """What a delivering flow returns: `result` when every message due went (or waits for
    its moment), else a Failed state holding it, whose message says what went wrong and
    what to do. Prefect has no "completed with problems": a Completed run with unsent or
    uncertain mail would look like a good week on the dashboard and raise no alert."""
    from prefect.states import Failed
    failed = sum(d.get("failed", 0) for d in deliveries)
    uncertain = sum(d.get("uncertain", 0) for d in deliveries)
    errors = [d["error"] for d in deliveries if d.get("error")]
    problems = []
    if uncertain:
        problems.append(f"{uncertain} message{'s' if uncertain > 1 else ''} uncertain (no "
                        "answer from the provider; check its activity log, then `relance "
                        "uncertain confirm` or `relance uncertain resend`)")
    if failed:
        problems.append(f"{failed} message{'s' if failed > 1 else ''} failed (tried again by "
                        "the next delivery)")
    problems += errors
    if not problems:
        return result
    message = "; ".join(problems)
    return Failed(message=message, data=IncompleteDelivery(message, result))


def result_of(state):
    """What a flow called with `return_state=True` returned, also when it ended Failed only
    because of its messages (IncompleteDelivery); any other failure is raised."""
    value = state.result(raise_on_failure=False)
    if isinstance(value, IncompleteDelivery):
        return value.result
    if isinstance(value, BaseException):
        raise value
    return value


def current_flow_run_id() -> str | None:
    from prefect.runtime import flow_run
    run_id = flow_run.id
    return str(run_id) if run_id else None


def shared_server() -> str | None:
    """The Prefect server this process reports to, when it is a configured one (a worker's
    flow run, an operator's shell): only then can another process hold the warehouse, and
    only then do the commands run a flow (without one, Prefect would start a temporary
    server in the process, 10 to 20 seconds, for a flow run nobody can look at after).

    Configured means PREFECT_API_URL in the environment, or in the active Prefect profile
    (`prefect config set PREFECT_API_URL=...`, `prefect profile use ...`). Read here
    without importing Prefect (about two seconds), the way Prefect finds its profiles file:
    PREFECT_PROFILES_PATH, else PREFECT_HOME's (default ~/.prefect) profiles.toml; the
    profile named by PREFECT_PROFILE, else the file's `active` one."""
    import os
    if "PREFECT_API_URL" in os.environ:
        return os.environ["PREFECT_API_URL"] or None
    return _profile_api_url()


def _profile_api_url() -> str | None:
    import os
    import tomllib
    from pathlib import Path
    path = Path(os.environ.get("PREFECT_PROFILES_PATH")
                or Path(os.environ.get("PREFECT_HOME") or Path.home() / ".prefect")
                / "profiles.toml").expanduser()
    try:
        profiles = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return None         # no profiles file (Prefect's defaults: no server), or Prefect's to report
    name = os.environ.get("PREFECT_PROFILE") or profiles.get("active")
    profile = profiles.get("profiles", {}).get(name) or {}
    return str(profile.get("PREFECT_API_URL") or "") or None


@lru_cache(maxsize=8)
def _ensure_warehouse_limit(api_url: str) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(WAREHOUSE_LIMIT)
        except ObjectNotFound:
            try:
                client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(name=WAREHOUSE_LIMIT, limit=1))
            except ObjectAlreadyExists:     # another worker created it first
                pass


class _Kept:
    """The warehouse a flow run keeps from its first task to its last: its slot of the
    server's warehouse limit and its connection. Taking the slot again for each task cost
    about 2 s a task: the server refuses a slot released a moment before to a new request
    while an earlier refusal is counted against the limit (Prefect's `denied_slots`, which
    decays over the limit's average occupancy), and the client then waits the Retry-After
    it is given (profiled with a server: 5 back-to-back tasks, 1.9 s of acquisition for 3
    of them; the weekly flow bench at 30,000 learners ran 10 such tasks). Reconnecting also
    threw away DuckDB's cache of the tables the previous task read.

    The slot is taken by the flow itself (Prefect gives back, at a task's end, every lease
    taken inside that task), the connection by its first task that opens the warehouse."""

    def __init__(self, path: str):
        self.path = path
        self.lock = threading.RLock()
        self.con = None
        self.given_back = False
        self._slot = ExitStack()

    def take_slot(self) -> None:
        api_url = shared_server()
        if api_url is not None:
            from prefect.concurrency.sync import concurrency
            _ensure_warehouse_limit(api_url)
            self._slot.enter_context(
                concurrency(WAREHOUSE_LIMIT, occupy=1, strict=True, lease_duration=60))

    def connection(self, memory_limit: str | None):
        if self.con is None:
            self.con = wh.connect(self.path, memory_limit=memory_limit,
                                  wait_seconds=settings().lock_wait_seconds)
        elif memory_limit:
            self.con.execute("set memory_limit = ?", [memory_limit])
        return self.con

    def close_connection(self) -> None:
        con, self.con = self.con, None
        if con is not None:
            con.close()

    def release(self) -> None:
        self.given_back = True
        try:
            self.close_connection()
        finally:
            self._slot.close()


_kept: ContextVar[_Kept | None] = ContextVar("relance_kept_warehouse", default=None)


@contextmanager
def keeping_warehouse(path: str):
    """Around the part of a flow's body that runs its tasks: the warehouse at `path` is
    taken once (the server's slot, now; the connection, by the first task that opens it)
    and kept for every task, then given back when the block ends, or before a task waits
    to be retried (`release_warehouse`), so that no other worker waits for it meanwhile;
    from then on each task takes it in its turn. A subflow keeps its parent's."""
    if _kept.get() is not None:
        yield
        return
    kept = _Kept(str(path))
    kept.take_slot()
    token = _kept.set(kept)
    try:
        yield
    finally:
        _kept.reset(token)
        kept.release()


def release_warehouse() -> None:
    """Give back the warehouse the flow run keeps (before a retry's wait: minutes)."""
    kept = _kept.get()
    if kept is not None and not kept.given_back:
        with kept.lock:
            kept.release()


@contextmanager
def open_warehouse(path: str, memory_limit: str | None = None):
    """The warehouse, for one task at a time across every worker of the Prefect server:
    the one the flow run keeps (keeping_warehouse), else taken for this task alone."""
    kept = _kept.get()
    if kept is None or kept.given_back or kept.path != str(path):
        with _opened(path, memory_limit) as con:
            yield con
        return
    with kept.lock:
        con = kept.connection(memory_limit)
        try:
            yield con
        except BaseException:
            # a task that failed may leave its connection mid-transaction: the next one
            # opens it afresh
            kept.close_connection()
            raise


@contextmanager
def _opened(path: str, memory_limit: str | None = None):
    """The warehouse, for one holder at a time (a task, or a flow run that keeps it)
    across every worker of the Prefect server.

    Flows with no server configured (`relance demo`, the tests' temporary Prefect) are
    one process: their tasks already run one after the other, so they open the file
    directly rather than take a slot from a server that no other process shares."""
    # another process (an operator's command, an analyst's read-only session) may hold the
    # file all the same: wait for it as long as the settings say, then say who has it
    wait = settings().lock_wait_seconds
    api_url = shared_server()
    # A shared warehouse (PostgreSQL) takes many writers: no slot to wait for; a campaign's
    # run and delivery hold their own locks in it (relance/delivery/lock.py)
    if api_url is None or wh.shared.is_shared(path):
        con = wh.connect(path, memory_limit=memory_limit, wait_seconds=wait)
        try:
            yield con
        finally:
            con.close()
        return
    from prefect.concurrency.sync import concurrency
    _ensure_warehouse_limit(api_url)
    # The slot's lease is renewed while its holder lives; if its worker dies, the slot comes
    # back after a minute (the shortest lease the server grants), not five.
    with concurrency(WAREHOUSE_LIMIT, occupy=1, strict=True, lease_duration=60):
        con = wh.connect(path, memory_limit=memory_limit, wait_seconds=wait)
        try:
            yield con
        finally:
            con.close()
