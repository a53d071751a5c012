"""What SendGrid answers, read as the channel needs it, and what it would refuse before any
request: the errors of a refused request by the personalization they name, the wait a 429
asks for, what became of a request (`Answer`), and an API key fit for a header."""

from __future__ import annotations

import json
import re
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


# SendGrid names what it refused in two ways: `field` ("personalizations.1.to.0.email",
# its documented errors) or, in its newer validation errors, only at the end of `message`
# ("Validation error(s): ... for field personalizations.1", `field` null)
_FOR_FIELD = re.compile(r"\bfor field ([A-Za-z_][\w.]*\w)")
_PERSONALIZATION = re.compile(r"personalizations\.(\d+)(?:\..*)?")


def _fields(error: dict) -> list[str]:
    """The request fields one of SendGrid's errors names, in either form."""
    field = error.get("field")
    if field:
        return [str(field)]
    return _FOR_FIELD.findall(str(error.get("message") or ""))


def error_text(exc: http_errors.HTTPError) -> tuple[str, list[tuple[int | None, str]]]:
    """SendGrid's error text, and (personalization index or None, message) per error: an
    error that names no personalization, or names something else too, has None (it is the
    whole request's)."""
    try:
        errors = json.loads(exc.body or b"{}").get("errors") or []
        errors = errors if isinstance(errors, list) else [errors]
    except (ValueError, AttributeError):
        body = exc.body.decode("utf-8", "replace") if isinstance(exc.body, bytes) else str(exc.body)
        return body[:500] or str(exc.reason), []
    located: list[tuple[int | None, str]] = []
    for e in errors:
        if not isinstance(e, dict):
            located.append((None, str(e)))
            continue
        field = e.get("field")
        text = f"{e.get('message', '')}" + (f" ({field})" if field else "")
        matches = [_PERSONALIZATION.fullmatch(f) for f in _fields(e)]
        if not matches or not all(matches):
            located.append((None, text))
            continue
        for index in dict.fromkeys(int(m.group(1)) for m in matches):
            located.append((index, text))
    return "; ".join(dict.fromkeys(m for _, m in located))[:1000] or str(exc.reason), located


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
