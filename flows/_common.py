from __future__ import annotations

from relance.settings import parse_moment as parse_as_of  # noqa: F401  (flows' name for it)
from relance.settings import resolve as settings  # noqa: F401


def current_flow_run_id() -> str | None:
    from prefect.runtime import flow_run
    run_id = flow_run.id
    return str(run_id) if run_id else None
