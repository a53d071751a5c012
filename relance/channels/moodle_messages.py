"""The moodle channel: each message to the learner's Moodle inbox, through the REST web
service function `core_message_send_instant_messages` (POST webservice/rest/server.php,
`wstoken` in the form, never in the URL), sent as the token's user.

    channel: moodle
    moodle: {source: moodle-prod}     # a `kind: moodle` source of the sources file

Up to `moodle.batch` messages a request: `messages[i][touserid]` (the learner's Moodle user
id, from the last sync: lms_accounts), `[text]`, `[textformat]` and `[clientmsgid]` (the
message's ledger id, which Moodle echoes in its answer). The subject heads the text (Moodle's
messages have none). `format: text` sends body.txt in Moodle's auto-format (0: line breaks
kept, links clickable); `format: html` the inside of body.html's <body> (1).

What Moodle answers, as message/externallib.php says it:
- a list, one result per message: `msgid` (the created message's id) or `msgid: -1` with
  `errormessage` (no such user, a message longer than 4,096 bytes, a learner who blocks
  messages from the token's user or whose preferences refuse them): that message alone
  fails, with Moodle's words; the others are sent;
- HTTP 200 with an exception, for the whole request, before anything is sent: a bad token
  (`invalidtoken`), the function missing from the token's service (`accessexception`),
  messaging disabled on the site (`disabled`), the token's user without
  moodle/site:sendmessage (`nopermissions`): every message fails, with the fix, and the
  channel stops (the next requests would get the same answer); a bad parameter
  (`invalidparameter`): the request's messages fail; the site in maintenance
  (`sitemaintenance`): tried again, as are 429 and 5xx (lms_http.py).
- no answer once the request was written: its messages are 'uncertain' (Moodle has no
  idempotency key; `relance uncertain` resolves them).
"""

from __future__ import annotations

import html
import json
import re
from datetime import datetime, timezone

from relance.channels.base import OutgoingMessage, SendResult
from relance.channels.lms_http import Answered, LmsMessagesChannel, LmsSource, throttled

ENDPOINT = "webservice/rest/server.php"
FUNCTION = "core_message_send_instant_messages"
FORMAT_MOODLE, FORMAT_HTML = 0, 1          # lib/weblib.php
_ALPHANUMEXT = re.compile(r"[^A-Za-z0-9_-]")   # PARAM_ALPHANUMEXT, what clientmsgid may hold
_BODY = re.compile(r"<body[^>]*>(.*)</body\s*>", re.I | re.S)

# Moodle's whole-request errors: the fix for each, and whether the rest would fail the same
_STOPPING = {
    "invalidtoken": "set the source's token to a valid web service token (Site administration "
                    "> Server > Web services > Manage tokens)",
    "accessexception": f"add {FUNCTION} to the token's external service (Site administration > "
                       "Server > Web services > External services > Functions), or check the "
                       "token's 'Valid until' and IP restriction",
    "disabled": "messaging is disabled on the site: enable it (Site administration > General > "
                "Messaging > Enable messaging system)",
    "nopermissions": "give the token's user the capability moodle/site:sendmessage (Send "
                     "messages to any user) in the system context",
}


def body(msg: OutgoingMessage, fmt: str) -> tuple[str, int]:
    """The message's text as Moodle gets it, and its textformat."""
    if fmt == "html" and msg.html:
        found = _BODY.search(msg.html)
        inner = (found.group(1) if found else msg.html).strip()
        return f"<p><strong>{html.escape(msg.subject)}</strong></p>\n{inner}", FORMAT_HTML
    return f"{msg.subject}\n\n{msg.text}", FORMAT_MOODLE


def client_id(message_id: str) -> str:
    """The ledger id as Moodle's clientmsgid (letters, digits, - and _ only)."""
    return _ALPHANUMEXT.sub("_", message_id)[:100]


class MoodleMessagesChannel(LmsMessagesChannel):
    """Moodle's part of the send loop (lms_http.py): up to `batch` messages a request, in a
    form; the answer's list of results, or its exception."""
    name, label, inboxes, endpoint = "moodle", "Moodle", "Moodle inboxes", ENDPOINT

    def __init__(self, source: LmsSource, *, fmt: str = "text", batch: int = 50,
                 timeout: float = 30.0, max_retry_seconds: float = 300.0, sleep=None):
        super().__init__(source, timeout=timeout, max_retry_seconds=max_retry_seconds,
                         sleep=sleep)
        self.fmt, self.batch = fmt, batch

    @classmethod
    def from_options(cls, options, **kwargs) -> "MoodleMessagesChannel":
        from relance.channels.lms_http import lms_source
        return cls(lms_source(options.source, "moodle"), fmt=options.format,
                   batch=options.batch, timeout=options.timeout, **kwargs)

    def chunks(self, batch: list[OutgoingMessage]):
        return [batch[i:i + self.batch] for i in range(0, len(batch), self.batch)]

    def requests(self, chunk: list[OutgoingMessage]) -> list[list[OutgoingMessage]]:
        return [chunk]                  # a chunk's messages in one request

    def form(self, chunk: list[OutgoingMessage]) -> dict[str, str]:
        form = {"wstoken": self.source.token, "wsfunction": FUNCTION,
                "moodlewsrestformat": "json"}
        for i, msg in enumerate(chunk):
            text, textformat = body(msg, self.fmt)
            form |= {f"messages[{i}][touserid]": msg.lms_user_id or "",
                     f"messages[{i}][text]": text,
                     f"messages[{i}][textformat]": str(textformat),
                     f"messages[{i}][clientmsgid]": client_id(msg.message_id)}
        return form

    def read(self, chunk: list[OutgoingMessage], answer: Answered) -> list[SendResult]:
        if answer.status != 200:
            return self.fail(chunk, f"Moodle answered HTTP {answer.status} at "
                                    f"{self.source.url}/{ENDPOINT}: is the source's url "
                                    "the site's own address?", stop=answer.status in (401, 403, 404))
        try:
            data = json.loads(answer.body)
        except ValueError:
            return self.fail(chunk, f"Moodle's answer is not JSON (a sign-on page or a "
                                    f"proxy in front of {self.source.url}?)", stop=True)
        if isinstance(data, dict) and "exception" in data:
            code = str(data.get("errorcode"))
            said = f"Moodle refused the request ({code}: {data.get('message')})"
            if code in _STOPPING:
                return self.fail(chunk, f"{said}; {_STOPPING[code]}", stop=True)
            detail = f" ({data['debuginfo']})" if data.get("debuginfo") else ""
            return self.fail(chunk, said + detail)
        if not isinstance(data, list):
            return self.fail(chunk, f"Moodle's answer is not a list of results: {str(data)[:200]}")
        now = datetime.now(timezone.utc)
        by_client = {str(r.get("clientmsgid")): r for r in data
                     if isinstance(r, dict) and r.get("clientmsgid") is not None}
        results = []
        for i, msg in enumerate(chunk):
            r = by_client.get(client_id(msg.message_id))
            if r is None and i < len(data) and isinstance(data[i], dict) \
                    and data[i].get("clientmsgid") is None:
                r = data[i]                 # in order, as Moodle answers
            if r is None:
                results.append(SendResult(msg.message_id, "failed",
                                          error="moodle: no result for this message in the answer"))
            elif int(r.get("msgid") or -1) > 0:
                results.append(SendResult(msg.message_id, "sent", now, str(r["msgid"])))
            else:
                results.append(SendResult(msg.message_id, "failed", error=(
                    f"Moodle did not send it: {r.get('errormessage') or 'no reason given'}")))
        return results

    def retryable(self, answer: Answered) -> float | None:
        """The wait before trying again (-1: the backoff's), or None: the answer is final."""
        if answer.status == 429 or answer.status >= 500:
            return throttled(answer)
        if answer.status == 200 and b"sitemaintenance" in answer.body[:500]:
            try:
                if json.loads(answer.body).get("errorcode") == "sitemaintenance":
                    return -1.0
            except (ValueError, AttributeError):
                pass
        return None
