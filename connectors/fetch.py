"""Network calls as Prefect tasks, when a Prefect flow runs the sync (`sync-progress`).

Each call a network source makes is a task run of `fetch`, named after what it asks: a
page of an LRS's statements, a Moodle web service function (a page of enrolled users, a
course's contents), a page of a Canvas list. A flow run thus shows what was fetched, how
long each call took, and which one failed. Calls a connector makes per learner (Moodle's
completion statuses, Canvas's per-student modules and page views) are batched into one
task run per course (`fetched` around the loop), never one per learner.

A fetch's retries are the connector's `Retrier` (connectors/http.py), inside the task:
backoff with jitter, the server's Retry-After, a waiting budget, which Prefect's own
retries cannot honour. When they run out, the source's load is retried by the flow
(`flows/sync_progress.py`). Outside a flow (tests, `connectors.sync` called directly) the
calls run as they are, with the same retries.
"""

from __future__ import annotations

import contextvars
import sys
from typing import Callable, TypeVar

T = TypeVar("T")

# set while a fetch task runs: the calls it makes are part of it, not tasks of their own
_inside = contextvars.ContextVar("relance_fetch", default=False)
_task = None


def _in_a_run() -> bool:
    """Whether a Prefect flow or task is running here (without importing Prefect for a
    process that never did: a sync outside a flow)."""
    if "prefect.context" not in sys.modules:
        return False
    from prefect.context import FlowRunContext, TaskRunContext
    return FlowRunContext.get() is not None or TaskRunContext.get() is not None


def _fetch_task():
    global _task
    if _task is None:
        from prefect import task
        from prefect.cache_policies import NO_CACHE

        @task(name="fetch", cache_policy=NO_CACHE, persist_result=False)
        def fetch(call: Callable[[], T], what: str) -> T:
            token = _inside.set(True)
            try:
                return call()
            finally:
                _inside.reset(token)
        _task = fetch
    return _task


class _Raised:
    """An exception the caller expects (`expected`), carried out of its task run: the run
    completes, and the exception is raised again outside it."""

    def __init__(self, exc: BaseException):
        self.exc = exc


def fetched(what: str, call: Callable[[], T],
            expected: tuple[type[BaseException], ...] = ()) -> T:
    """`call()`, as a task run named `what` when a Prefect run is going on and no fetch
    task is already running (its calls are part of it); `call()` itself otherwise.
    `expected`: exceptions the caller handles as an answer, not a failure (Canvas refusing
    its analytics): they leave the task run completed rather than failed."""
    if _inside.get() or not _in_a_run():
        return call()

    def answered():
        try:
            return call()
        except expected as exc:
            return _Raised(exc)
    # Prefect formats a task run's name with its parameters: braces are written twice
    name = what[:200].replace("{", "{{").replace("}", "}}")
    result = _fetch_task().with_options(task_run_name=name)(answered, what)
    if isinstance(result, _Raised):
        raise result.exc
    return result
