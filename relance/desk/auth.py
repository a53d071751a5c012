"""Who is at the desk: signed, expiring tokens (HMAC-SHA256 with a secret from the
environment), never an open page.

A person signs in with a magic link (`relance desk link <email>`, or the link in their
daily list): `/login?t=<token>` exchanges it for a session cookie, itself a token of the
same kind with a shorter life. Forms carry a CSRF token derived from the session. Every
token says what it is for, who, and until when (the logical clock, relance.clock), so
replaying a day judges them as on that day. Nothing is stored: the secret is the state.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass
from datetime import datetime, timedelta

from relance import clock

SECRET_ENV = "RELANCE_DESK_SECRET"
MIN_SECRET = 32
LINK_HOURS = 72             # a daily list's link works for three days
SESSION_HOURS = 12          # a working day


class AuthError(Exception):
    """A token refused: `reason` says why, in words a person can act on."""


def secret_from_env() -> bytes:
    value = os.environ.get(SECRET_ENV, "")
    if len(value) < MIN_SECRET:
        raise AuthError(f"{SECRET_ENV} is {'too short' if value else 'not set'}: the desk is "
                        f"never open, so it needs a secret of at least {MIN_SECRET} characters "
                        "to sign its links (for example the output of `python -c \"import "
                        "secrets; print(secrets.token_urlsafe(48))\"`)")
    return value.encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: bytes, payload: str) -> str:
    return _b64(hmac.new(secret, payload.encode(), hashlib.sha256).digest())


def issue(secret: bytes, purpose: str, email: str, hours: float,
          now: datetime | None = None) -> str:
    expires = int((clock.or_now(now) + timedelta(hours=hours)).timestamp())
    payload = f"{purpose}|{email.lower()}|{expires}"
    return f"{_b64(payload.encode())}.{_sign(secret, payload)}"


@dataclass(frozen=True)
class Holder:
    email: str
    expires: datetime


def verify(secret: bytes, token: str | None, purpose: str) -> Holder:
    """The holder of a valid token for `purpose`; AuthError otherwise."""
    if not token:
        raise AuthError("no_token")
    head, _, sig = token.partition(".")
    try:
        payload = _unb64(head).decode()
    except (ValueError, UnicodeDecodeError):
        raise AuthError("forged") from None
    if not sig or not hmac.compare_digest(sig, _sign(secret, payload)):
        raise AuthError("forged")
    kind, email, expires = (payload.split("|") + ["", "", ""])[:3]
    if kind != purpose or not expires.isdigit():
        raise AuthError("forged")
    moment = datetime.fromtimestamp(int(expires), clock.now().tzinfo)
    if clock.now() >= moment:
        raise AuthError("expired")
    return Holder(email, moment)


def csrf(secret: bytes, session_token: str) -> str:
    return _sign(secret, "csrf|" + session_token)


def check_csrf(secret: bytes, session_token: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(given, csrf(secret, session_token))
