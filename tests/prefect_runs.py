"""Reading a finished flow run's task runs back from the Prefect API, as a user would in
the UI."""

from __future__ import annotations

import time


def settled_task_runs(flow_run_id, timeout: float = 30.0) -> list:
    """The flow run's task runs, once each has a final state. A task run's states reach the
    API as events: on a busy machine a run may be listed before its last state is (its state
    None, or still Running) for a moment after the flow has returned."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            runs = client.read_task_runs(flow_run_filter=FlowRunFilter(
                id=FlowRunFilterId(any_=[flow_run_id])))
            if all(r.state is not None and r.state.is_final() for r in runs) \
                    or time.monotonic() > deadline:
                return runs
            time.sleep(0.2)
