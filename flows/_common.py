from __future__ import annotations

from datetime import datetime, timezone

from relance.settings import Settings


def parse_as_of(value: str | datetime | None) -> datetime:
    if value is None or value == "":
        return datetime.now(timezone.utc)
    if isinstance(value, datetime):
        dt = value
    else:
        dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc)


def settings(warehouse: str | None, campaigns_dir: str | None = None,
             outbox_dir: str | None = None) -> Settings:
    base = Settings()
    return base.model_copy(update={k: v for k, v in {
        "warehouse": warehouse, "campaigns": campaigns_dir, "outbox": outbox_dir}.items() if v})


def current_flow_run_id() -> str | None:
    from prefect.runtime import flow_run
    run_id = flow_run.id
    return str(run_id) if run_id else None
