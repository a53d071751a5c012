"""The canvas channel: each message a conversation in the learner's Canvas Inbox, through
the Conversations API (POST /api/v1/conversations, `Authorization: Bearer <token>`), sent
as the token's user.

    channel: canvas
    canvas: {source: canvas}          # a `kind: canvas` source of the sources file

One request per message (Canvas creates one conversation per request): `recipients[]` (the
learner's Canvas user id, from the last sync: lms_accounts), `subject` (at most 255
characters), `body` (plain text: Canvas shows a conversation's body as text, so body.txt),
`force_new` (the campaign's `canvas.force_new`), `group_conversation=false`, `mode=sync`.

What Canvas answers (app/controllers/conversations_controller.rb, the API's docs):
- 201 with the list of conversations made: sent (the conversation's id is kept);
- 400 with `[{"attribute", "message"}]`: `recipients` `invalid` (no such user, or one the
  token's user may not message), `body` `blank`...: that message fails, with Canvas's words;
- 401 (a bad or expired token), 403 without a rate limit (the token's user may not send
  messages), 404 (the url is not Canvas's API): the message fails with the fix, and the
  channel stops (every other request would get the same);
- 429, or 403 with `X-Rate-Limit-Remaining: 0` (Canvas's throttling), and 5xx: tried
  again after Retry-After or a backoff (lms_http.py);
- no answer once the request was written: 'uncertain' (no idempotency key).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

from relance.channels.base import OutgoingMessage, SendResult
from relance.channels.lms_http import Answered, LmsMessagesChannel, LmsSource, throttled

ENDPOINT = "api/v1/conversations"
MAX_SUBJECT = 255


def _rate_limited(answer: Answered) -> bool:
    if answer.status == 429:
        return True
    if answer.status != 403:
        return False
    remaining = answer.headers.get("x-rate-limit-remaining")
    try:
        if remaining is not None and float(remaining) <= 0:
            return True
    except ValueError:
        pass
    return b"Rate Limit Exceeded" in answer.body[:300]


def canvas_said(body: bytes) -> str:
    """Canvas's error words: `[{"attribute", "message"}]` (conversations), or
    `{"errors": [{"message"}]}` / `{"errors": {field: [...]}}` (the rest of the API)."""
    try:
        data = json.loads(body)
    except ValueError:
        return body[:200].decode("utf-8", "replace")
    if isinstance(data, dict):
        data = data.get("errors", data)
    if isinstance(data, dict):
        return "; ".join(f"{k}: {v}" for k, v in data.items())[:500]
    if isinstance(data, list):
        return "; ".join(
            (f"{e.get('attribute')} {e.get('message')}".strip() if e.get("attribute")
             else str(e.get("message"))) if isinstance(e, dict) else str(e) for e in data)[:500]
    return str(data)[:500]


class CanvasMessagesChannel(LmsMessagesChannel):
    """Canvas's part of the send loop (lms_http.py): one request per message, the token in
    its Authorization header; the answer's conversation, or Canvas's error words."""
    name, label, inboxes, endpoint = "canvas", "Canvas", "Canvas Inboxes", ENDPOINT

    def __init__(self, source: LmsSource, *, force_new: bool = True, timeout: float = 30.0,
                 max_retry_seconds: float = 300.0, sleep=None):
        super().__init__(source, timeout=timeout, max_retry_seconds=max_retry_seconds,
                         sleep=sleep)
        self.force_new = force_new

    @classmethod
    def from_options(cls, options, **kwargs) -> "CanvasMessagesChannel":
        from relance.channels.lms_http import lms_source
        return cls(lms_source(options.source, "canvas"), force_new=options.force_new,
                   timeout=options.timeout, **kwargs)

    def chunks(self, batch: list[OutgoingMessage]):
        return [[m] for m in batch]

    def requests(self, chunk: list[OutgoingMessage]) -> list[list[OutgoingMessage]]:
        return [[m] for m in chunk]     # Canvas makes one conversation per request

    def form(self, messages: list[OutgoingMessage]) -> dict[str, str]:
        msg, = messages
        return {"recipients[]": msg.lms_user_id or "",
                "subject": msg.subject[:MAX_SUBJECT],
                "body": msg.text,
                "force_new": "true" if self.force_new else "false",
                "group_conversation": "false", "mode": "sync"}

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.source.token}", **super().headers()}

    def retryable(self, answer: Answered) -> float | None:
        if _rate_limited(answer) or answer.status >= 500:
            return throttled(answer)
        return None

    def read(self, messages: list[OutgoingMessage], answer: Answered) -> list[SendResult]:
        msg, = messages
        said = self.http.redacted(canvas_said(answer.body)) if answer.body else ""
        if answer.status in (200, 201, 202):
            try:
                made = json.loads(answer.body or b"[]")
            except ValueError:
                made = []
            first = made[0] if isinstance(made, list) and made and isinstance(made[0], dict) else {}
            return [SendResult(msg.message_id, "sent", datetime.now(timezone.utc),
                               str(first["id"]) if first.get("id") is not None else None)]
        if answer.status == 400:
            return self.fail(messages, (
                f"Canvas refused the message (400: {said}); 'recipients invalid' means no "
                "such user, or one the token's user may not message (no shared course)"))
        fixes = {401: "the token was refused: set the source's token to a valid Canvas access "
                      "token (Account > Settings > New access token)",
                 403: "the token's user may not send messages here: give them a role that "
                      "may (a teacher of the learners' courses)",
                 404: "no Conversations API at this address: is the source's url the Canvas "
                      "instance's own?"}
        return self.fail(messages, f"Canvas answered {answer.status} ({said}); "
                                   f"{fixes.get(answer.status, 'see its answer')}",
                         stop=answer.status in fixes)
