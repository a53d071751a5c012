"""Where things are. Each setting has an environment variable (RELANCE_<NAME>) and a CLI
option; secrets are not settings: they are read where they are used, from the
environment or a Prefect Secret block, and never stored."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RELANCE_", extra="ignore")

    warehouse: Path = Path("relance.duckdb")
    campaigns: Path = Path("campaigns")
    outbox: Path = Path("outbox")
    # The sources file (connectors/sources.py): where learners' progress comes from.
    sources: Path = Path("sources.yaml")
    # Temporary files: the generated demo export, previews.
    workdir: Path = Path(".relance")
    # DuckDB's memory ceiling: a campaign run leaves room for the rest of the machine.
    memory_limit: str = "2GB"
    # The SendGrid API (https://api.eu.sendgrid.com for EU subusers; a local server in tests).
    sendgrid_host: str = "https://api.sendgrid.com"
    # `relance serve` faces the internet: what it reads before trusting anything is bounded.
    # The largest body read: SendGrid posts event batches of up to 768 KB ("within about 30
    # seconds or when the batch size reaches 768 kilobytes"); an unsubscribe form is a few
    # bytes. Bigger gets 413 before a byte of it is read.
    serve_max_events_bytes: int = 1_048_576
    serve_max_form_bytes: int = 4096
    # A learner's reply posted by SendGrid's Inbound Parse (text, HTML, attachments: SendGrid
    # takes mails up to 30 MB). Bigger gets 413 before it is read; attachments below it
    # are counted and dropped, never stored.
    serve_max_inbound_bytes: int = 10_485_760
    # How long a client has to send its whole request (headers and body) once a worker takes
    # it; then 408, and the worker is free.
    serve_timeout_seconds: float = 10.0
    # Requests handled at once, and connections held at once (handled or waiting for a
    # worker); beyond those, 503 with Retry-After at once.
    serve_workers: int = 8
    serve_max_connections: int = 64
    # A signed event batch is accepted this long before or after the moment SendGrid signed
    # it (X-Twilio-Email-Event-Webhook-Timestamp): a captured request cannot be replayed later.
    serve_signature_window_seconds: float = 300.0
    # How long a command or flow step waits for the warehouse while another process holds
    # it, and a delivery for another delivery of the same campaign; then it stops, naming
    # the process in the way. 0: at once.
    lock_wait_seconds: float = 0.0
    # The IMAP mailbox learners' replies arrive in (`relance replies fetch`). The password is
    # a secret: RELANCE_IMAP_PASSWORD, or the Prefect Secret block named in
    # RELANCE_IMAP_PASSWORD_SECRET; never a setting.
    imap_host: str | None = None
    imap_port: int | None = None            # default: 993 with tls, 143 otherwise
    imap_security: str = "tls"              # tls (implicit), starttls, or none (loopback only)
    imap_user: str | None = None
    imap_mailbox: str = "INBOX"
    imap_ca_file: Path | None = None        # a private CA to trust (default: the system's)
    imap_timeout_seconds: float = 30.0
    # "Was this helpful?": a message's comments are shown in reports only once it has this
    # many answers (SRES's privacy rule: among fewer, a comment may say who wrote it).
    helpful_min_answers: int = 5
    # Processes rendering a delivery's messages (relance/delivery/render_pool.py): unset,
    # one per core for a delivery of 1,000 messages or more; 0, the delivering process.
    render_workers: int | None = None


def resolve(warehouse=None, campaigns=None, outbox=None) -> Settings:
    """Settings from the environment, with any value given here (a CLI option, a flow
    parameter) taking precedence."""
    overrides = {"warehouse": warehouse, "campaigns": campaigns, "outbox": outbox}
    return Settings().model_copy(update={k: Path(v) for k, v in overrides.items() if v})


def parse_moment(value: str | datetime | None) -> datetime:
    """An ISO 8601 moment (naive means UTC) as an aware UTC datetime; None means the clock's
    now (relance/clock.py)."""
    if value is None or value == "":
        from relance import clock
        return clock.now()
    if isinstance(value, datetime):
        dt = value
    else:
        try:
            dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"expected an ISO 8601 date or time such as 2026-11-23T09:00+01:00, "
                             f"got {value!r}") from None
    return (dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
