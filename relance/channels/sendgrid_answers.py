"""What SendGrid answers, read as the channel needs it, and what it would refuse before any
request: the errors of a refused request by the personalization they name, the wait a 429
asks for, what became of a request (`Answer`), and an API key fit for a header."""

from __future__ import annotations

import json
from dataclasses import dataclass

from python_http_client import exceptions as http_errors

from relance.channels.base import ChannelConfigError


def check_key(key: str) -> None:
    """Refuse, when the channel opens and before any attempt is recorded, a key that cannot
    go into an Authorization header: http.client would raise at the first request, with the
    key in its message. Says what is wrong, never the key."""
    if not key or key != key.strip() or any(not (32 < ord(c) < 127) for c in key):
        where = ("a line break or a space at its end (an env file saved on Windows?)"
                 if key and key != key.rstrip() else
                 "a space or a character that is not printable ASCII" if key else "nothing")
        raise ChannelConfigError(
            f"the SendGrid API key holds {where}: it cannot be sent in a request header. Fix "
            "SENDGRID_API_KEY (or the Prefect Secret block) and deliver again; nothing was "
            "sent or recorded.")


@dataclass(frozen=True)
class Answer:
    """What became of one request: 'sent', 'failed' or 'uncertain'."""
    status: str
    provider_message_id: str | None = None
    error: str | None = None
    # 400: SendGrid's errors by the index of the personalization they name
    failed_at: dict[int, str] | None = None


def error_text(exc: http_errors.HTTPError) -> tuple[str, list[tuple[int | None, str]]]:
    """SendGrid's error text, and (personalization index or None, message) per error."""
    try:
        errors = json.loads(exc.body or b"{}").get("errors") or []
    except (ValueError, AttributeError):
        body = exc.body.decode("utf-8", "replace") if isinstance(exc.body, bytes) else str(exc.body)
        return body[:500] or str(exc.reason), []
    located = []
    for e in errors:
        field = str(e.get("field") or "")
        index = None
        if field.startswith("personalizations."):
            part = field.split(".")[1]
            index = int(part) if part.isdigit() else None
        located.append((index, f"{e.get('message', '')}" + (f" ({field})" if field else "")))
    return "; ".join(m for _, m in located)[:1000] or str(exc.reason), located


def retry_wait(exc: http_errors.HTTPError, now: float) -> float:
    headers = exc.headers or {}
    after = headers.get("Retry-After")
    if after is not None:
        try:
            return max(0.0, float(after))
        except ValueError:
            pass
    reset = headers.get("X-RateLimit-Reset")
    if reset is not None:
        try:
            return max(0.0, float(reset) - now)
        except ValueError:
            pass
    return 1.0
