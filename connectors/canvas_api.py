"""How relance talks to a Canvas instance: canvasapi's requester wrapped so that every
request goes through the shared retries (connectors/http.py), and Canvas's answers (401,
403, 404, rate limits, a page that is not Canvas's JSON) turned into errors that say what
to fix; `raw` gives back an object as Canvas sent it. The connector (canvas.py) stages
what it reads through it.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import requests
from canvasapi import Canvas
from canvasapi import exceptions as cx

from connectors.base import SourceError
from connectors.http import Retrier, Transient, retry_after_seconds, shown
from connectors.secrets import describe_secret, resolve_secret


def raw(obj: Any) -> dict:
    """A canvasapi object as Canvas sent it (canvasapi adds a datetime `<key>_date` beside
    every date, and private attributes)."""
    attrs = vars(obj)
    return {k: v for k, v in attrs.items()
            if not k.startswith("_") and not (k.endswith("_date") and k[:-5] in attrs)}


class Refused(SourceError):
    """Canvas said no to one request (401 without a bad token, 403, 404): the sync stops,
    unless what was asked is optional (course analytics)."""

    def __init__(self, message: str, status: int, detail: str):
        super().__init__(message)
        self.status = status
        self.detail = detail


class CanvasApi:
    """One source's Canvas: `open()` gives canvasapi's Canvas, each request of which is
    retried by `retrier` and has its errors said for the source."""

    def __init__(self, name: str, url: str, token: Any, timeout: float, retrier: Retrier):
        self.name = name
        self.url = url
        self.token = token          # a reference to the secret (connectors/secrets.py)
        self.timeout = timeout
        self.retrier = retrier

    def open(self) -> Canvas:
        token = resolve_secret(self.token, f"source {self.name}: token")
        canvas = Canvas(self.url, token)
        requester = canvas._Canvas__requester   # the one place every canvasapi call goes through
        session = requester._session
        session.request = functools.partial(session.request, timeout=self.timeout)
        send = requester.request

        def request(method, endpoint=None, *args, **kwargs):
            what = f"{method} {shown(kwargs.get('_url') or requester.base_url + (endpoint or ''))}"
            return self.retrier.run(lambda: self._once(send, requester, what, method, endpoint,
                                                       *args, **kwargs), what)
        requester.request = request
        self._fix = (f"set {describe_secret(self.token)} to a valid Canvas access token "
                     f"(Account > Settings > New access token)")
        return canvas

    def _once(self, send, requester, what: str, method, endpoint, *args, **kwargs):
        try:
            response = send(method, endpoint, *args, **kwargs)
            if response.content and "json" not in response.headers.get("Content-Type", ""):
                raise self._not_canvas(response, what)
            return response
        except (requests.Timeout, requests.ConnectionError) as exc:
            raise Transient(f"connection failed or timed out ({type(exc).__name__})") from None
        except cx.InvalidAccessToken:
            raise SourceError(f"source {self.name}: the credentials were refused ({what}: 401 "
                              f"Unauthorized); {self._fix}") from None
        except cx.Unauthorized as exc:     # a 401 for a good token: a right the user lacks
            raise Refused(f"source {self.name}: the credentials were refused ({what}: 401 "
                          f"Unauthorized); {self._fix}", 401, _message(exc)) from None
        except cx.RateLimitExceeded:  # a Forbidden to canvasapi: first
            response = requester._cache[0]
            raise Transient("429 Too Many Requests",
                            retry_after_seconds(response.headers.get("Retry-After"))) from None
        except cx.Forbidden as exc:
            response = requester._cache[0]
            remaining = response.headers.get("X-Rate-Limit-Remaining")
            if remaining is not None and _float(remaining) <= 0:
                raise Transient("403 Forbidden (Rate Limit Exceeded)",
                                retry_after_seconds(response.headers.get("Retry-After"))) from None
            raise Refused(f"source {self.name}: the credentials were refused ({what}: 403 "
                          f"Forbidden: {str(exc)[:200]}); give the token's user a role that "
                          f"may read this (a teacher or admin of the course; page views "
                          f"need usage reports: or set page_views: false)", 403,
                          _message(exc)) from None
        except cx.ResourceDoesNotExist:
            raise Refused(f"source {self.name}: {what}: 404 Not Found; is the course id "
                          f"right, and visible to the token's user?", 404, "Not Found") from None
        except requests.JSONDecodeError:
            # canvasapi reads a 401's body as Canvas's JSON
            raise self._not_canvas(requester._cache[0], what) from None
        except cx.CanvasException as exc:
            status = requester._cache[0].status_code if requester._cache else None
            if status is not None and status >= 500:
                raise Transient(f"{status} from Canvas") from None
            raise SourceError(f"source {self.name}: {what}: {exc}") from None

    def _not_canvas(self, response, what: str) -> Exception:
        """The error for an answer that is not Canvas's JSON: something in front of Canvas
        answered (a single sign-on page, a proxy), not its API."""
        kind = response.headers.get("Content-Type", "no content type").split(";")[0]
        if response.status_code >= 500:
            return Transient(f"{response.status_code} ({kind}) from Canvas")
        if response.status_code in (401, 403):
            return SourceError(
                f"source {self.name}: the credentials were refused ({what}: "
                f"{response.status_code}, answered with {kind}, not Canvas's JSON); "
                f"{self._fix}. If a sign-on page or a proxy answers there, `url` must be an "
                f"address where Canvas's API itself answers")
        return SourceError(
            f"source {self.name}: {what}: answered HTTP {response.status_code} with {kind}, "
            f"not Canvas's JSON: is `url` the Canvas instance's own address (not a sign-on "
            f"page or a proxy in front of it)?")


def _message(exc: Exception) -> str:
    """What Canvas said: its error body is {"errors": [{"message": ...}]}, which canvasapi
    keeps as the list, or as the response's text."""
    said = getattr(exc, "message", str(exc))
    if isinstance(said, str):
        try:
            said = json.loads(said)
        except ValueError:
            return said
    if isinstance(said, dict):
        said = said.get("errors") or said.get("message") or said
    if isinstance(said, list) and said:
        said = said[0].get("message", said[0]) if isinstance(said[0], dict) else said[0]
    return str(said)


def _float(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        return 1.0
