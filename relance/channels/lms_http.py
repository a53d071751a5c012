"""What the LMS message channels (Moodle, Canvas) share: the source they write through (its
url and token, read from the sources file by the connectors' own code: never copied into a
campaign), and one HTTP request's fate, as the ledger needs it.

A request goes through `wire.py`'s opener, so the ledger records it in flight only once its
connection is up, just before its first byte leaves (`Attempts.sending`). Then:
- an answer (any HTTP status) is handed back to the channel, which reads it as its API
  documents it;
- a certificate not trusted, a server that does not speak TLS: the messages fail at once
  (nothing was sent; retrying would meet the same server);
- 429, a 5xx, or an error before the request was written (no connection, a refused or cut
  connect): the request is recorded as ended ('refused') before the wait, and tried again
  as a new attempt after Retry-After or an exponential backoff with jitter, within
  `max_retry_seconds`; then its messages fail (retried by a later delivery);
- no answer once the request was written (a read timeout, a connection dropped): the LMS
  may have created the messages, and neither API has an idempotency key, so they are
  'uncertain' (reported, never resent blindly).

The token goes into the request (Moodle's form, Canvas's Authorization header) and nowhere
else: never logged, never stored, never in an error text (`redacted`).

`LmsMessagesChannel` is the send loop both channels run, written once: a learner with no
LMS user id fails alone, a channel stopped by a whole-site refusal fails the rest, each
request's fate is read as above; a channel says only what differs (its requests' shape,
how it reads an answer).
"""

from __future__ import annotations

import http.client
import logging
import random
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Callable, ClassVar

from relance.channels import wire
from relance.channels.base import (UNRECORDED, Attempts, ChannelConfigError, OutgoingMessage,
                                   SendResult)

log = logging.getLogger("relance")


@dataclass(frozen=True)
class LmsSource:
    """A source of the sources file, as a channel uses it."""
    name: str
    kind: str
    url: str
    token: str


def lms_source(name: str, kind: str, sources_file=None) -> LmsSource:
    """Source `name` of the sources file (RELANCE_SOURCES), which must be of `kind`, with its
    token resolved as the connector resolves it (connectors/secrets.py). Errors say what to
    fix, never the token."""
    from connectors.base import SourceError
    from connectors.secrets import resolve_secret
    from connectors.sources import read_sources
    from relance.settings import Settings
    path = sources_file or Settings().sources
    try:
        sources = read_sources(path)
    except SourceError as exc:
        raise ChannelConfigError(f"the {kind} channel reads its site from the sources file: "
                                 f"{exc}. Nothing was sent.") from None
    if name not in sources:
        raise ChannelConfigError(
            f"{kind}.source: no source named {name!r} in {path}; the sources are: "
            f"{', '.join(sources)}. Name the {kind} source the campaign writes through. "
            "Nothing was sent.")
    options = sources[name]
    if options.get("kind") != kind:
        raise ChannelConfigError(
            f"{kind}.source: the source {name!r} in {path} is of kind {options.get('kind')!r}, "
            f"not {kind}. Nothing was sent.")
    try:
        token = resolve_secret(options.get("token"), f"source {name}: token")
    except SourceError as exc:
        raise ChannelConfigError(f"the {kind} channel cannot read its token: {exc}. Nothing "
                                 "was sent.") from None
    if not token or any(not (32 < ord(c) < 127) for c in token):
        raise ChannelConfigError(
            f"source {name}: token: it holds a space or a character that is not printable "
            "ASCII, which cannot go into a request; fix the secret. Nothing was sent.")
    return LmsSource(name, kind, str(options.get("url", "")).rstrip("/"), token)


@dataclass(frozen=True)
class Answered:
    """An HTTP answer: its status, headers and body (whatever the status)."""
    status: int
    headers: dict[str, str]
    body: bytes


class NoAnswer(Exception):
    """The request was written and no answer came: the LMS may have acted on it."""


class GaveUp(Exception):
    """Refused (429, 5xx, no connection) until the retry budget ran out: nothing was
    accepted."""


def _tls_refused(reason: object) -> bool:
    """A certificate the client does not trust, or a server that does not speak TLS."""
    return (isinstance(reason, ssl.SSLCertVerificationError)
            or (isinstance(reason, ssl.SSLError) and reason.reason == "WRONG_VERSION_NUMBER"))


def retry_after(headers: dict[str, str]) -> float | None:
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def throttled(answer: "Answered") -> float:
    """The wait an answer that asks to slow down gives (Retry-After), else -1: the backoff's."""
    wait = retry_after(answer.headers)
    return -1.0 if wait is None else wait


class LmsHttp:
    """One channel's requests to its LMS, retried and reported as the module says."""

    def __init__(self, what: str, secret: str, *, timeout: float, max_retry_seconds: float,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic):
        self.what, self._secret = what, secret
        self.timeout, self.max_retry_seconds = timeout, max_retry_seconds
        self.sleep, self.clock = sleep, clock
        self._opener = wire.opener()

    def redacted(self, text: str) -> str:
        return text.replace(self._secret, "<the token>") if self._secret else text

    def once(self, request: urllib.request.Request, attempts: Attempts) -> Answered:
        """One request: its answer, or URLError (not written), or NoAnswer (written)."""
        written = threading.Event()
        with wire.watching(written, attempts.sending):
            try:
                with self._opener.open(request, timeout=self.timeout) as response:
                    return Answered(response.status, {k.lower(): v for k, v in response.headers.items()},
                                    response.read())
            except urllib.error.HTTPError as exc:
                with exc:
                    return Answered(exc.code, {k.lower(): v for k, v in (exc.headers or {}).items()},
                                    exc.read() or b"")
            except urllib.error.URLError:
                raise               # before (or while) the request was written: not accepted
            except (TimeoutError, ConnectionError, http.client.HTTPException, OSError) as exc:
                if not written.is_set():
                    raise urllib.error.URLError(exc) from None
                raise NoAnswer(f"no answer from {self.what} after the request was sent "
                               f"({type(exc).__name__}: {exc}); it may have been accepted") from None

    def send(self, make: Callable[[], urllib.request.Request], messages: list,
             retryable: Callable[[Answered], float | None],
             attempts: Attempts = UNRECORDED) -> Answered:
        """The request `make()` builds, tried again while `retryable(answer)` gives a wait in
        seconds (-1: the backoff's), or the connection fails before the request is written,
        within the budget; each refusal
        is recorded before the wait and the retry is a new attempt of `messages`."""
        spent, n = 0.0, 0
        while True:
            started = self.clock()
            try:
                answer = self.once(make(), attempts)
                wait = retryable(answer)
                if wait is None:
                    return answer
                why = f"{self.what} answered {answer.status}"
            except urllib.error.URLError as exc:
                if _tls_refused(exc.reason):
                    # the same answer every time: retrying for minutes would meet it again
                    raise GaveUp(self.redacted(
                        f"no TLS session with {self.what}: {exc.reason}; nothing was sent. "
                        "Check the source's url, or trust its certificate (SSL_CERT_FILE)")) from None
                wait = None
                why = f"{self.what} could not be reached ({exc.reason})"
            if wait is None or wait < 0:
                wait = self.backoff(n)
            spent += self.clock() - started
            if spent + wait > self.max_retry_seconds:
                raise GaveUp(self.redacted(f"{why} (gave up after retrying for "
                                           f"{self.max_retry_seconds:g} s)"))
            # recorded before the wait: nothing of this request was accepted, so a sender
            # killed while it waits leaves these messages due, not uncertain
            attempts.refused(self.redacted(why))
            log.warning("%s; retrying in %.1f s", self.redacted(why), wait)
            self.sleep(wait)
            spent += wait
            n += 1
            attempts.again(list(messages))

    @staticmethod
    def backoff(n: int) -> float:
        cap = min(60.0, 2.0 ** n)
        return cap / 2 + random.uniform(0, cap / 2)


class LmsMessagesChannel:
    """A channel writing to learners' LMS inboxes through `source`: the send loop. A channel
    names itself (`name`, `label`, `inboxes`, `endpoint`) and says what differs: `requests`
    (how a chunk's messages are grouped into requests), `form` (a request's body), `headers`,
    `retryable` (which answers to try again) and `read` (a request's results)."""
    name: ClassVar[str]              # the channel's name in a campaign ("moodle")
    label: ClassVar[str]             # the LMS, as the errors name it ("Moodle")
    inboxes: ClassVar[str]           # where the messages land, for `sent_to`
    endpoint: ClassVar[str]          # the path the requests go to, below the source's url
    recognises_resends = False
    reports_attempts = True
    concurrency = 1

    def __init__(self, source: LmsSource, *, timeout: float, max_retry_seconds: float,
                 sleep: Callable[[float], None] | None = None):
        self.source = source
        self.lms_source = source.name          # delivery looks learners' ids up in it
        self.http = LmsHttp(f"{self.label} at {source.url}", source.token, timeout=timeout,
                            max_retry_seconds=max_retry_seconds,
                            **({"sleep": sleep} if sleep else {}))
        # set by an answer every other request would get as well (a refused token...)
        self.stopped: str | None = None

    def __repr__(self) -> str:      # never shows the token
        return f"{type(self).__name__}({self.source.url}, source={self.source.name!r})"

    def sent_to(self, campaign_id: str) -> str:
        return f"delivered to the learners' {self.inboxes} at {self.source.url}"

    # what a channel says
    def requests(self, chunk: list[OutgoingMessage]) -> list[list[OutgoingMessage]]:
        raise NotImplementedError

    def form(self, messages: list[OutgoingMessage]) -> dict[str, str]:
        raise NotImplementedError

    def headers(self) -> dict[str, str]:
        return {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}

    def retryable(self, answer: Answered) -> float | None:
        raise NotImplementedError

    def read(self, messages: list[OutgoingMessage], answer: Answered) -> list[SendResult]:
        raise NotImplementedError

    # the loop
    def send(self, chunk: list[OutgoingMessage],
             attempts: Attempts = UNRECORDED) -> list[SendResult]:
        results: list[SendResult] = []
        for messages in self.requests(chunk):
            results += self._request(messages, attempts)
        return results

    def _request(self, messages: list[OutgoingMessage], attempts: Attempts) -> list[SendResult]:
        if self.stopped:
            return [SendResult(m.message_id, "failed", error=self.stopped) for m in messages]
        results = [SendResult(m.message_id, "failed", error=(
            f"{self.name}: no {self.label} user id is known for this learner in source "
            f"{self.source.name!r}: sync the source (relance sync), then deliver again"))
            for m in messages if not (m.lms_user_id or "").isdigit()]
        valid = [m for m in messages if (m.lms_user_id or "").isdigit()]
        if not valid:
            return results
        data = urllib.parse.urlencode(self.form(valid)).encode()
        url = f"{self.source.url}/{self.endpoint}"
        headers = self.headers()

        def make():     # a new request for each try (a request object is used once)
            return urllib.request.Request(url, data=data, method="POST", headers=headers)
        try:
            answer = self.http.send(make, valid, self.retryable, attempts)
        except GaveUp as exc:
            return results + [SendResult(m.message_id, "failed", error=str(exc)) for m in valid]
        except NoAnswer as exc:
            return results + [SendResult(m.message_id, "uncertain",
                                         error=self.http.redacted(str(exc))) for m in valid]
        return results + self.read(valid, answer)

    def fail(self, messages: list[OutgoingMessage], error: str,
             stop: bool = False) -> list[SendResult]:
        """Every message of a request failed with `error`; `stop`: so will every other."""
        error = self.http.redacted(error)
        if stop:
            self.stopped = error
        return [SendResult(m.message_id, "failed", error=error) for m in messages]
