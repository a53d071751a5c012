"""The one way network sources talk to their peers: bounded retries, clear auth errors.

    http = SourceHttp("moodle-prod", "https://moodle.example.org", retry=Retry(),
                      auth_fix="check MOODLE_TOKEN ...")
    data = http.get_json("webservice/rest/server.php", params={...})

What is retried, with exponential backoff and jitter, within a bounded total time:
timeouts, refused or reset connections, 429 (waiting what its Retry-After says), 5xx, and
whatever a connector declares transient (`Transient`: Canvas's 403 when its rate limit is
spent). What stops the sync at once: 401/403 (and what a connector reads as refused
credentials, e.g. Moodle's `invalidtoken`, through `auth_error`), as a `SourceError` that
names the source and the fix; other 4xx, as a `SourceError` with the URL and what the
server said. When the retries run out the error
is a `SourceUnavailable` (a `SourceError`), the one the flow's task retries later.

Secrets never appear in errors or logs: URLs are shown without their query string, and
the client sends credentials only in headers or request bodies.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, Field

from connectors.base import SourceError
from connectors.fetch import fetched

log = logging.getLogger("relance.connectors")
T = TypeVar("T")


class SourceUnavailable(SourceError):
    """The source kept failing in a way that may pass (timeouts, 5xx, rate limits): worth
    another try later; the next sync resumes from the last committed cursor."""


class Transient(Exception):
    """A failure worth retrying; `retry_after` in seconds when the server said so."""

    def __init__(self, what: str, retry_after: float | None = None):
        super().__init__(what)
        self.retry_after = retry_after


class Retry(BaseModel):
    """How hard a source is tried before the sync gives up (`retry:` in the sources file)."""

    model_config = ConfigDict(extra="forbid")
    attempts: int = Field(6, ge=1)            # tries per request, the first included
    base_delay: float = Field(1.0, ge=0)      # first wait; doubles each time, with jitter
    max_delay: float = Field(60.0, ge=0)      # longest single wait we choose ourselves
    total_seconds: float = Field(300.0, ge=0)  # all waits of one request together
    timeout: float = Field(30.0, gt=0)        # per request (connect, read)


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds: a number, or an HTTP date."""
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(moment.timestamp() - time.time(), 0.0)


@dataclass
class Retrier:
    """Runs a call until it succeeds, fails for good, or its waiting budget is spent."""

    source: str
    policy: Retry = field(default_factory=Retry)
    sleep: Callable[[float], None] = time.sleep
    waits: list[float] = field(default_factory=list)  # every wait, for the run log

    def run(self, call: Callable[[], T], what: str) -> T:
        """`call()`, retried; in a Prefect flow, as a task run named after `what`, source
        first (connectors/fetch.py)."""
        return fetched(f"{self.source}: {what}", lambda: self._attempts(call, what))

    def _attempts(self, call: Callable[[], T], what: str) -> T:
        waited = 0.0
        for attempt in range(1, self.policy.attempts + 1):
            try:
                return call()
            except Transient as exc:
                if exc.retry_after is not None:
                    delay = exc.retry_after
                else:  # jitter (half to all of the backoff) keeps clients from retrying in step
                    delay = random.uniform(0.5, 1.0) * min(
                        self.policy.max_delay, self.policy.base_delay * 2 ** (attempt - 1))
                if attempt == self.policy.attempts or waited + delay > self.policy.total_seconds:
                    raise SourceUnavailable(
                        f"source {self.source}: {what}: still failing after {attempt} "
                        f"attempt(s) and {waited:.0f} s of waiting ({exc}); nothing of this "
                        f"sync was lost: the next sync resumes from the last committed "
                        f"cursor (raise `retry:` in the sources file if the server needs "
                        f"longer)") from None
                log.warning("source %s: %s: %s; retrying in %.1f s (attempt %d of %d)",
                            self.source, what, exc, delay, attempt + 1, self.policy.attempts)
                self.waits.append(delay)
                self.sleep(delay)
                waited += delay
        raise AssertionError("unreachable")


def shown(url: httpx.URL | str) -> str:
    """A URL fit for errors and logs: without its query string (tokens live there)."""
    url = httpx.URL(str(url))
    return str(url.copy_with(query=None, fragment=None))


class SourceHttp:
    """An httpx client for one source: base URL, credentials, retries and error wording."""

    def __init__(self, source: str, base_url: str, *, auth_fix: str, retry: Retry | None = None,
                 headers: dict[str, str] | None = None, auth: httpx.Auth | tuple | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 transport: httpx.BaseTransport | None = None):
        self.source = source
        self.auth_fix = auth_fix
        self.policy = retry or Retry()
        self.retrier = Retrier(source, self.policy, sleep)
        self.client = httpx.Client(base_url=base_url.rstrip("/") + "/", headers=headers,
                                   auth=auth, timeout=self.policy.timeout,
                                   follow_redirects=True, transport=transport)

    def close(self) -> None:
        self.client.close()

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        what = f"{method} {shown(self.client.build_request(method, url).url)}"
        return self.retrier.run(lambda: self._once(method, url, what, **kwargs), what)

    def get_json(self, url: str, **kwargs: Any) -> Any:
        return self._json(self.request("GET", url, **kwargs))

    def post_json(self, url: str, **kwargs: Any) -> Any:
        return self._json(self.request("POST", url, **kwargs))

    def _json(self, response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            raise SourceError(f"source {self.source}: {shown(response.url)} answered with "
                              f"something that is not JSON ({response.text[:200]!r}); is "
                              f"the source's url right?") from None

    def _once(self, method: str, url: str, what: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.client.request(method, url, **kwargs)
        except httpx.TimeoutException as exc:
            raise Transient(f"timed out ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            raise Transient(f"connection failed ({type(exc).__name__}: {exc})") from None
        status = response.status_code
        if status == 429:
            raise Transient("429 Too Many Requests",
                            retry_after_seconds(response.headers.get("Retry-After")))
        if status >= 500:
            raise Transient(f"{status} {response.reason_phrase}",
                            retry_after_seconds(response.headers.get("Retry-After")))
        if status in (401, 403):
            raise self.auth_error(f"{what}: {status} {response.reason_phrase}")
        if status >= 400:
            raise SourceError(f"source {self.source}: {what}: {status} "
                              f"{response.reason_phrase}: {response.text[:300]}")
        return response

    def auth_error(self, detail: str) -> SourceError:
        return SourceError(f"source {self.source}: the credentials were refused ({detail}); "
                           f"{self.auth_fix}")

    def follow(self, url: str, next_of: Callable[[httpx.Response, Any], str | None],
               **kwargs: Any) -> Iterator[tuple[str, Any]]:
        """Pages from `url` on, each as (its URL, its JSON), while `next_of` names a next
        one (an xAPI `more` link; `response.links["next"]` for Link-header APIs)."""
        next_url: str | None = url
        followed: set[str] = set()
        while next_url:
            response = self.request("GET", next_url, **kwargs)
            data = self._json(response)
            yield shown(response.url), data
            followed.add(str(response.url))
            next_url = next_of(response, data)
            kwargs.pop("params", None)  # a next link carries its own query
            # a link back to a page already read (a continuation token that does not
            # advance) would be followed forever
            if next_url and str(self.client.build_request("GET", next_url).url) in followed:
                raise SourceError(f"source {self.source}: {shown(response.url)}: its next "
                                  f"page link leads back to a page already followed "
                                  f"({shown(next_url)}); the server's paging is broken: "
                                  f"what was read is kept, report it to the server's "
                                  f"administrators")


def offset_pages(fetch: Callable[[int, int], list], page_size: int) -> Iterator[list]:
    """Pages of an API that takes an offset and a count (Moodle's limitfrom/limitnumber),
    until one comes back empty. Moodle applies them in its query, then leaves out the
    users the token's user may not see (core_enrol_get_enrolled_users): a page can come
    back short before the end, so the offset moves by the count asked, and only an empty
    page ends the read (one more call per list)."""
    offset = 0
    while True:
        page = fetch(offset, page_size)
        if not page:
            return
        yield page
        offset += page_size
