"""The sendgrid channel: v3 mail/send through the official SDK, up to 1,000 messages a request.

One request carries up to 1,000 messages of one campaign and message key, whatever their
locale: the content is a placeholder that each personalization fills with its own rendered
text and HTML (legacy `substitutions`), and the subject, the List-Unsubscribe headers and the
`custom_args` (message id, campaign) are per personalization too, so one request is 1,000
different e-mails. A message whose rendered text would not fit SendGrid's 10,000-byte
substitution limit goes alone, with its content inline. Messages whose key names a dynamic
template (`sendgrid.templates`) go out with `template_id` and their context as
`dynamic_template_data`.

Errors, as SendGrid documents them:
- 429: wait what `Retry-After` (or `X-RateLimit-Reset`) says, then try again;
- 5xx, a refused connection, a timeout before the request was sent: exponential backoff
  with jitter; all retries of a request stay within `max_retry_seconds`, after which its
  messages fail (retryable: not accepted, so the next delivery tries again). Before each
  wait the refused request is recorded as ended (`Attempts.refused`), and each request is
  in flight only from its connection up, just before its first byte leaves
  (`Attempts.sending`): a sender killed during a wait, a TCP connect or a TLS handshake
  leaves nothing uncertain;
- a certificate the client does not trust, a server that does not speak TLS: nothing was
  sent, and trying again would meet the same server: the messages fail at once, saying
  what to check (the next delivery tries again);
- 400: the personalizations SendGrid names in its errors (in `field`, or at the end of the
  `message` of its newer validation errors) fail with its text and the rest of the
  request is sent again, once; an error naming no personalization fails them all;
- 401, 403, 413: every message of the request fails with SendGrid's text; after a 401 or
  403 the channel stops (every further request would get the same answer);
- no answer after the request was sent (a read timeout, a connection dropped): SendGrid
  may have accepted it, and v3 mail/send has no idempotency key, so the messages are
  'uncertain' (reported, never resent blindly).

The API key comes from SENDGRID_API_KEY or a Prefect Secret block; it is handed to the SDK
and nowhere else: never logged, never stored, never part of an error.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import random
import ssl
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Callable, Iterator

import orjson
from json.encoder import encode_basestring_ascii as _ascii_json
from python_http_client import exceptions as http_errors
from python_http_client.client import Response
from sendgrid import SendGridAPIClient

from relance.campaign.values import email_refusal
from relance.channels import wire
from relance.channels.base import (UNRECORDED, Attempts, ChannelConfigError, OutgoingMessage,
                                   SendResult, with_fields)
from relance.channels.sendgrid_answers import Answer, check_key, error_text, retry_wait
from relance.channels.email import clean_text

log = logging.getLogger("relance")
# The SDK's HTTP client logs every request's headers, the API key among them, at DEBUG:
# never let them through, whatever level the application sets.
logging.getLogger("python_http_client.client").setLevel(logging.INFO)

MAX_PERSONALIZATIONS = 1000             # SendGrid's limit per request
MAX_SUBSTITUTIONS_BYTES = 10_000        # SendGrid's limit per personalization
MAX_REQUEST_BYTES = 20 * 1024 * 1024    # SendGrid refuses 30 MB; stay well below
TEXT_KEY, HTML_KEY = "-relance-text-", "-relance-html-"
# The Reply-To of a request whose messages each have their own (a learner's reply address,
# docs/replies.md): SendGrid's reply_to is one per request, but substitutions "apply to the
# text and html content of the body of your email, in addition to the subject and reply-to
# parameters", so the request's reply_to is `-relance-reply-@<domain>` and each
# personalization substitutes its own local part.
REPLY_KEY = "-relance-reply-"
DEFAULT_HOST = "https://api.sendgrid.com"


def api_key(secret_block: str | None = None) -> str:
    """The API key: SENDGRID_API_KEY, else the named Prefect Secret block."""
    key = os.environ.get("SENDGRID_API_KEY")
    if key:
        return key
    if secret_block:
        from prefect.blocks.system import Secret
        try:
            return Secret.load(secret_block).get()
        except ValueError as exc:
            raise ChannelConfigError(
                f"the Prefect Secret block {secret_block!r} (sendgrid.api_key_secret) could not "
                f"be loaded: {exc}; create it with `prefect block create secret` or set "
                "SENDGRID_API_KEY") from None
    raise ChannelConfigError(
        "SENDGRID_API_KEY is not set: the sendgrid channel is disabled; set it (or name a "
        "Prefect Secret block in the campaign's sendgrid.api_key_secret), or choose "
        "`channel: outbox`. Nothing was sent.")


@dataclass(frozen=True)
class Prepared:
    """A request body built ahead (`SendGridChannel.prepare`)."""
    body: bytes
    on_the_wire: threading.Event = field(default_factory=threading.Event)


_dumps = orjson.dumps
_PERSONALIZATION = (
    b'{"to":[{"email":%b%b}],"subject":%b,'
    b'"headers":{"List-Unsubscribe":%b,"List-Unsubscribe-Post":"List-Unsubscribe=One-Click"},'
    b'"custom_args":{"relance_message_id":%b}%b}')
_SUBSTITUTIONS = b',"substitutions":{"' + TEXT_KEY.encode() + b'":%b%b%b}'
_HTML_SUBSTITUTION = b',"' + HTML_KEY.encode() + b'":%b'
_REPLY_SUBSTITUTION = b',"' + REPLY_KEY.encode() + b'":%b'


class TLSRefused(Exception):
    """No TLS session with the API host (raised before any byte of the request is sent;
    deliberately not an OSError, which would mean the request may have left)."""


def _tls_refused(reason: object) -> bool:
    """A certificate the client does not trust, or a server that does not speak TLS at
    all: the same answer every time. (Other handshake failures, a connection cut or an
    alert from a busy server, are retried as connection errors.)"""
    return (isinstance(reason, ssl.SSLCertVerificationError)
            or (isinstance(reason, ssl.SSLError) and reason.reason == "WRONG_VERSION_NUMBER"))


def _json_default(value):
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return str(value)


def personalization(msg: OutgoingMessage, templates: dict, inline: bool = False,
                    reply: bool = False) -> bytes:
    """One personalization as JSON bytes (SendGridChannel._personalization)."""
    name = clean_text(msg.to_name)
    if msg.message_key in templates:
        # JSON as SendGrid reads it: dates and times as ISO 8601 text
        content = b',"dynamic_template_data":' + orjson.dumps(
            {**(msg.template_data or {}), "subject": clean_text(msg.subject),
             "text": msg.text, "html": msg.html},
            default=_json_default, option=orjson.OPT_NON_STR_KEYS)
    elif inline:        # too long for substitutions: the request's content is its own
        content = b""
    else:
        content = _SUBSTITUTIONS % (
            _dumps(msg.text), _HTML_SUBSTITUTION % _dumps(msg.html) if msg.html else b"",
            _REPLY_SUBSTITUTION % _dumps((msg.reply_to or "").partition("@")[0])
            if reply else b"")
    return _PERSONALIZATION % (
        _dumps(msg.to_email), b',"name":' + _dumps(name) if name else b"",
        _dumps(clean_text(msg.subject)),
        _dumps(f"<{msg.unsubscribe_url}>, <{msg.unsubscribe_mailto}>"),
        _dumps(msg.message_id), content)


def _size(msg: OutgoingMessage) -> int:
    """What a message's content weighs in a request (its substitutions)."""
    if msg.wire is not None:
        return len(msg.wire)
    return len(msg.text.encode()) + len((msg.html or "").encode()) + 2 * len(TEXT_KEY)


def _too_long(msg: OutgoingMessage) -> bool:
    """Whether a message's content is too long for substitutions (it then goes alone, its
    content inline). SendGrid's 10,000 bytes are counted on the JSON it reads, escapes
    included; here as the most they can be there: with ASCII escapes (`\\u00e9` for an é,
    `\\"` for a quote), as the stand-in server counts (tests/fakes/sendgrid_validation.py).
    Counting the UTF-8 text alone let a French message of 9,800 bytes be refused (400)."""
    if msg.wire is not None:                # a personalization built small enough
        return False
    raw = len(msg.text.encode()) + len((msg.html or "").encode())
    if 6 * raw + 200 <= MAX_SUBSTITUTIONS_BYTES:   # no escape makes a byte more than six
        return False
    # json.dumps's own escaping of a text (the C function it calls), without its encoder
    escaped = len(_ascii_json(msg.text)) + len(_ascii_json(msg.html or ""))
    return escaped + 2 * len(TEXT_KEY) + 200 > MAX_SUBSTITUTIONS_BYTES


@dataclass(frozen=True)
class WorkerSide:
    """A message's personalization, built by the render worker that rendered it (picklable:
    the channel's dynamic templates, not its key). A message the request builds otherwise
    (a dynamic template's, one too long for substitutions) is left as it is."""
    templates: dict

    def __call__(self, msg: OutgoingMessage) -> OutgoingMessage:
        if msg.message_key in self.templates or _too_long(msg):
            return msg
        return with_fields(msg, wire=personalization(msg, self.templates), text=TEXT_KEY,
                           html=HTML_KEY if msg.html else msg.html)


class SendGridChannel:
    name = "sendgrid"
    # A message in flight when the sender died may have been accepted: never resend it
    # blindly (see relance.delivery).
    recognises_resends = False
    # Delivery hands `send` the chunk's attempts: each request is in flight from its
    # connection up (not while connecting), and a refused one (429, 5xx) is recorded as
    # ended before the wait (see Attempts).
    reports_attempts = True
    # Requests in flight at once (campaign option sendgrid.concurrency): with more than
    # one, the next body is built while SendGrid reads the last.
    concurrency = 1
    # a request's messages at most: delivery fills requests up to it across its batches
    chunk_limit = MAX_PERSONALIZATIONS

    def __init__(self, key: str, *, host: str = DEFAULT_HOST, categories: list[str] = (),
                 sandbox: bool = False, templates: dict[str, str] | None = None,
                 concurrency: int = 1, timeout: float = 30.0, max_retry_seconds: float = 300.0,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic):
        check_key(key)
        self._key = key
        self._client = SendGridAPIClient(api_key=key, host=host)
        # one opener for every request (building one costs 0.4 ms); it keeps no state
        self._opener = wire.opener()
        self.categories = list(categories)
        self.sandbox = sandbox
        self.templates = templates or {}
        self.timeout = timeout
        self.concurrency = concurrency
        self.max_retry_seconds = max_retry_seconds
        self.sleep, self.clock = sleep, clock
        self.stopped: str | None = None   # set by a 401/403: the rest would fail the same way

    def __repr__(self) -> str:   # never shows the key
        return f"SendGridChannel(host={self._client.host!r}, sandbox={self.sandbox})"

    def sent_to(self, campaign_id: str) -> str:
        host = self._client.host
        where = "" if host == DEFAULT_HOST else f" at {host}"
        return f"accepted by SendGrid{where}" + (" (sandbox mode: validated, not delivered)"
                                                 if self.sandbox else "")

    # -- which messages share a request ---------------------------------------------------

    def _personalization(self, msg: OutgoingMessage, inline: bool = False,
                         reply: bool = False) -> orjson.Fragment:
        """One personalization, already JSON: SendGrid's fixed shape with every value escaped
        by orjson. Not a dict: a 1,000-message request built as dicts is 6,000 containers
        the garbage collector must walk, and with a warehouse and Prefect in the process its
        full collections took a third of a send's time (7 in 100 requests, 0.7 s in 2.8 s)."""
        if msg.wire is not None and not inline and not reply:
            return orjson.Fragment(msg.wire)        # built by a render worker
        return orjson.Fragment(personalization(msg, self.templates, inline, reply))

    def worker_side(self, loaded) -> "WorkerSide | None":
        """What a delivery's render workers run on each message they render: its
        personalization built there, beside its rendering, rather than by the delivering
        process (whose own work runs on the same cores: issue 19). None for a campaign
        whose messages have Reply-To addresses of their own: whether a request
        substitutes them depends on the request's other messages (`body`)."""
        return WorkerSide(self.templates) if loaded.campaign.replies is None else None

    def _group_key(self, msg: OutgoingMessage) -> tuple:
        template = self.templates.get(msg.message_key)
        if template:
            # dynamic templates take no substitutions: messages with a Reply-To of their own
            # (a reply address) share a request only with the same Reply-To
            return ("template", template, msg.locale, msg.reply_to)
        if _too_long(msg):
            return ("alone", msg.message_id)
        # the content is a placeholder each personalization fills: messages of every
        # locale share a request (the message key stays: it is a category); so is the
        # Reply-To's local part (REPLY_KEY), within one domain
        return ("inline", msg.message_key, bool(msg.html),
                (msg.reply_to or "").partition("@")[2])

    def chunks(self, batch: list[OutgoingMessage]) -> Iterator[list[OutgoingMessage]]:
        """The requests to make: messages grouped by message key (dynamic templates: and
        locale), at most 1,000 a request, each address once per request (SendGrid refuses a request that names an
        address twice), under the size limit."""
        groups: dict[tuple, list[tuple[OutgoingMessage, int]]] = {}
        for msg in batch:
            size = _size(msg)
            groups.setdefault(self._group_key(msg), []).append((msg, size))
        for key, items in groups.items():
            if key[0] == "alone":
                yield [items[0][0]]
                continue
            pending = items
            while pending:
                chunk, seen, total, rest = [], set(), 0, []
                for msg, size in pending:
                    email = msg.to_email.lower()
                    if (email in seen or len(chunk) >= MAX_PERSONALIZATIONS
                            or total + size + 1024 > MAX_REQUEST_BYTES):
                        rest.append((msg, size))
                        continue
                    chunk.append(msg)
                    seen.add(email)
                    total += size + 1024
                yield chunk
                pending = rest

    def body(self, chunk: list[OutgoingMessage]) -> dict:
        first = chunk[0]
        template = self.templates.get(first.message_key)
        # (the same measure as chunks(): a message just under the limit in its own
        # request once went there with substitutions, and was refused)
        alone = not template and len(chunk) == 1 and _too_long(first)
        domains = {(m.reply_to or "").partition("@")[2] for m in chunk}
        # messages with Reply-To addresses of their own, one domain (see REPLY_KEY)
        reply = (not template and not alone and len(domains) == 1 and "" not in domains
                 and len({m.reply_to for m in chunk}) > 1)
        mail: dict = {
            "personalizations": [self._personalization(m, alone, reply) for m in chunk],
            "from": {"email": first.from_email, "name": clean_text(first.from_name)},
            # unique, at most 10 (SendGrid refuses a request otherwise)
            "categories": list(dict.fromkeys(
                [first.campaign_id, *([first.message_key] if first.message_key else []),
                 *self.categories]))[:10],
            "custom_args": {"relance_campaign": first.campaign_id},
        }
        if reply:
            mail["reply_to"] = {"email": f"{REPLY_KEY}@{domains.pop()}"}
        elif first.reply_to:
            mail["reply_to"] = {"email": first.reply_to}
        if template:
            mail["template_id"] = template
        elif alone:
            mail["content"] = [{"type": "text/plain", "value": first.text}] + (
                [{"type": "text/html", "value": first.html}] if first.html else [])
        else:
            mail["content"] = [{"type": "text/plain", "value": TEXT_KEY}] + (
                [{"type": "text/html", "value": HTML_KEY}] if first.html else [])
        if self.sandbox:
            mail["mail_settings"] = {"sandbox_mode": {"enable": True}}
        return mail

    def _request(self, data: bytes) -> Response:
        """POST /v3/mail/send through the SDK's client: its URL, its headers (the key), its
        request and its errors (python_http_client exceptions with status, body, headers).
        Not through `client.mail.send.post()`, which formats the whole body into a DEBUG
        string and re-encodes it at every call (~17 ms a 1,000-message request, twice the
        rest of the sender's work), whether DEBUG is on or not; `_make_request` is the seam
        the SDK keeps for that (its docstring: separated so it can be replaced)."""
        client = self._client.client.mail.send
        request = urllib.request.Request(
            client._build_url(None), data=data, method="POST",
            headers={**client.request_headers, "Content-Type": "application/json"})
        try:
            return Response(client._make_request(self._opener, request, timeout=self.timeout))
        except urllib.error.URLError as exc:
            if _tls_refused(exc.reason):
                # retrying for minutes would meet the same server, request after request
                raise TLSRefused(
                    f"no TLS session with {self._client.host}: {exc.reason}; nothing was sent. "
                    "Check RELANCE_SENDGRID_HOST, or, behind a proxy that inspects TLS, trust "
                    "its certificate (SSL_CERT_FILE)") from None
            raise

    @staticmethod
    def encode(body: dict) -> bytes:
        """The request body on the wire. orjson: a 1,000-message body serializes in a
        tenth of json.dumps's time, which is most of the sender's own cost."""
        return orjson.dumps(body)

    # -- sending ---------------------------------------------------------------------------

    def prepare(self, chunk: list[OutgoingMessage]) -> Prepared:
        """The request for `send(chunk, prepared)`. Delivery calls it on its own thread
        while the previous request is on the wire, so building a body costs no wall time."""
        return Prepared(self.encode(self.body(chunk)))

    def send(self, chunk: list[OutgoingMessage], prepared: Prepared | None = None,
             attempts: Attempts = UNRECORDED) -> list[SendResult]:
        """Send one request (a chunk from `chunks()`, built by `prepare()` if given); one
        result per message. `prepared.on_the_wire` is set once the request is written (or
        given up): delivery waits for it before it takes the GIL back for its own work.
        `attempts` hears of each request as its connection is up (`sending`), before its
        first byte leaves, of each one refused before a retry, and of the retry."""
        written = prepared.on_the_wire if prepared else threading.Event()
        try:
            with wire.watching(written, attempts.sending):
                return self._send(chunk, prepared.body if prepared else None, attempts)
        except Exception as exc:
            if written.is_set():
                raise       # on the wire: the provider may have it (the delivery's recovery)
            # raised before the request was written: SendGrid got nothing, so the messages
            # failed (retried by the next delivery), and are not uncertain
            error = self._redacted(f"the request could not be sent ({type(exc).__name__}: {exc})")
            return [SendResult(m.message_id, "failed", error=error) for m in chunk]
        finally:
            if prepared:
                prepared.on_the_wire.set()

    def _redacted(self, text: str) -> str:
        """An error text as recorded: never the API key, whatever the library put in it."""
        return text.replace(self._key, "<the API key>") if self._key else text

    def _send(self, chunk: list[OutgoingMessage], prepared: bytes | None,
              attempts: Attempts) -> list[SendResult]:
        results: list[SendResult] = []
        if self.stopped:
            return [SendResult(m.message_id, "failed", error=self.stopped) for m in chunk]
        # an address no channel can send to fails alone, before the request (the engine
        # plans none for one: this is for one planned by a relance without the rule; 0.7 ms
        # a 1,000-message request); SendGrid's own refusals come as a 400 naming them (below)
        valid = []
        for m in chunk:
            refusal = email_refusal(m.to_email)
            if refusal:
                results.append(SendResult(m.message_id, "failed", error=f"invalid message: {refusal}"))
            else:
                valid.append(m)
        if len(valid) < len(chunk):
            prepared = None             # built with them: built again without
        # a 400 naming some personalizations: those fail, the others go again (a request
        # refused with a 400 was not sent at all); bounded, as each round removes one at least
        for _ in range(len(valid) + 1):
            if not valid:
                break
            answer = self._post(prepared if prepared is not None else self.encode(self.body(valid)),
                                attempts, valid)
            prepared = None
            if answer.failed_at and any(i < len(valid) for i in answer.failed_at):
                results += [SendResult(m.message_id, "failed",
                                       error=self._redacted(answer.failed_at[i]))
                            for i, m in enumerate(valid) if i in answer.failed_at]
                valid = [m for i, m in enumerate(valid) if i not in answer.failed_at]
                if valid:
                    # that request ended refused; the others leave in a new one, without
                    # the refused messages (which a kill now leaves to be tried again)
                    attempts.refused(self._redacted(answer.error or "refused (400)"))
                    attempts.again(valid)
                continue
            now = datetime.now(timezone.utc)
            error = self._redacted(answer.error) if answer.error else None
            results += [SendResult(m.message_id, answer.status,
                                   now if answer.status == "sent" else None,
                                   answer.provider_message_id, error) for m in valid]
            break
        return results

    def _post(self, data: bytes, attempts: Attempts = UNRECORDED,
              messages: list[OutgoingMessage] = ()) -> Answer:
        """One request's fate, retried (429, 5xx, no connection) within the budget; before
        each wait the refused request is recorded as ended, and `messages` as the next
        request's (in flight once its connection is up)."""
        spent, attempt = 0.0, 0       # seconds spent on this request, waits included
        while True:
            started = self.clock()
            try:
                response = self._request(data)
                return Answer("sent", provider_message_id=response.headers.get("X-Message-Id"))
            except http_errors.HTTPError as exc:
                status = exc.status_code
                text, located = error_text(exc)
                if status == 429:
                    wait = retry_wait(exc, time.time())
                    why = f"Recoverable SendGrid error (status_code=429): {text}"
                elif status >= 500:
                    wait = self._backoff(attempt)
                    why = f"Recoverable SendGrid error (status_code={status}): {text}"
                else:
                    error = f"SendGrid refused the request (status_code={status}): {text}"
                    if status == 400 and located and all(i is not None for i, _ in located):
                        by_index: dict[int, list[str]] = {}
                        for i, m in located:
                            by_index.setdefault(i, []).append(m)
                        return Answer("failed", error=error, failed_at={
                            i: f"SendGrid refused the request (status_code=400): {'; '.join(ms)}"
                            for i, ms in by_index.items()})
                    if status in (401, 403):
                        self.stopped = error
                    return Answer("failed", error=error)
            except urllib.error.URLError as exc:
                # raised before any answer was read: the request was not (fully) sent
                wait = self._backoff(attempt)
                why = f"Recoverable SendGrid error (connection): {exc.reason}"
            except (TimeoutError, ConnectionError, http.client.HTTPException, OSError) as exc:
                # the request went out and no answer came back: accepted or not, nobody knows
                return Answer("uncertain", error=(
                    f"no answer from SendGrid after the request was sent "
                    f"({type(exc).__name__}: {exc}); it may have been accepted"))
            spent += self.clock() - started
            if spent + wait > self.max_retry_seconds:
                return Answer("failed", error=f"{why} (gave up after retrying for "
                                              f"{self.max_retry_seconds:g} s)")
            # recorded before the wait: nothing of this request was accepted, so a sender
            # killed while it waits leaves these messages planned, not uncertain
            attempts.refused(self._redacted(why))
            log.warning("%s; retrying in %.1f s", why, wait)
            self.sleep(wait)
            spent += wait
            attempt += 1
            attempts.again(list(messages))

    def _backoff(self, attempt: int) -> float:
        # exponential with jitter, so senders that failed together do not retry together:
        # 0.5-1, 1-2, 2-4 ... 30-60 s
        cap = min(60.0, 2.0 ** attempt)
        return cap / 2 + random.uniform(0, cap / 2)
