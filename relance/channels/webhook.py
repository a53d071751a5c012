"""Slack and Teams incoming webhooks: one post to a team's channel (a cohort's week in
numbers, the community manager's follow-up list), not mail to learners.

The webhook URL is a secret (whoever has it can post): it is read from the environment
variable the campaign names, never from the file, and never logged. 429 waits what the
service asks (Retry-After), 5xx and errors before the post was written (no connection, a
write cut short) back off exponentially with jitter, all within `max_retry_seconds`; any
other status is final. A post written whose answer never came (a read timeout, the
connection closed) may have been posted: it is not posted again (a second copy in the
team's channel), it is reported as such.
"""

from __future__ import annotations

import logging
import random
import time
from typing import Callable

from relance.channels.base import DeliveryError

log = logging.getLogger("relance")
# httpx logs each request's URL at INFO: the URL is the secret here
logging.getLogger("httpx").setLevel(logging.WARNING)


class WebhookError(DeliveryError):
    pass


def _slack_plain(text: str) -> str:
    # plain text in Slack's mrkdwn: `<` would open a link or a mention (<!channel>)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def payload(kind: str, title: str, lines: list[str], *, markup: bool = False) -> dict:
    """The post's JSON body. `markup`: title and lines are already in the channel's markup (a
    designer's template, its values escaped as it was rendered); else they are plain text,
    escaped here. Teams' JSON is escaped by the encoder; its Markdown is left as it is."""
    if kind == "slack":
        if not markup:
            title, lines = _slack_plain(title), [_slack_plain(line) for line in lines]
        return {"text": "\n".join([f"*{title}*", *lines])}
    # Teams (Workflows incoming webhook): an Adaptive Card; a TextBlock may not be empty, so
    # a blank line becomes space above the next block
    blocks: list[dict] = [{"type": "TextBlock", "text": title, "weight": "Bolder", "wrap": True}]
    gap = False
    for line in lines:
        if not line.strip():
            gap = True
            continue
        blocks.append({"type": "TextBlock", "text": line, "wrap": True,
                       **({"spacing": "Medium"} if gap else {})})
        gap = False
    return {"type": "message", "attachments": [{
        "contentType": "application/vnd.microsoft.card.adaptive",
        "content": {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard", "version": "1.4", "body": blocks}}]}


class WebhookPoster:
    def __init__(self, url: str, kind: str = "slack", *, timeout: float = 10.0,
                 max_retry_seconds: float = 60.0, sleep: Callable[[float], None] = time.sleep):
        self._url, self.kind = url, kind
        self.timeout, self.max_retry_seconds, self.sleep = timeout, max_retry_seconds, sleep

    def __repr__(self) -> str:
        return f"WebhookPoster({self.kind})"

    def post(self, title: str, lines: list[str], *, markup: bool = False) -> None:
        body = payload(self.kind, title, lines, markup=markup)
        spent, attempt = 0.0, 0
        import httpx        # when a post is made: a run without a team channel never loads it
        with httpx.Client(timeout=self.timeout) as client:
            while True:
                started = time.monotonic()
                try:
                    response = client.post(self._url, json=body)
                    status = response.status_code
                    if status < 300:
                        return
                    if status == 429:
                        wait = float(response.headers.get("Retry-After", "1") or 1)
                    elif status < 500:
                        raise WebhookError(f"{self.kind} webhook refused the post "
                                           f"(status_code={status}): {response.text[:300]}")
                    else:
                        wait = self._backoff(attempt)
                    why = f"{self.kind} webhook answered {status}"
                except (httpx.ReadTimeout, httpx.ReadError, httpx.RemoteProtocolError) as exc:
                    # the post was written, its answer never came: the service may have it
                    raise WebhookError(
                        f"{self.kind} webhook: no answer once the post was sent "
                        f"({type(exc).__name__}); it may have been posted, so it was not "
                        "posted again: check the channel") from None
                except httpx.TransportError as exc:
                    # before the post was written (connecting, writing): nothing was posted
                    wait = self._backoff(attempt)
                    why = f"{self.kind} webhook unreachable ({type(exc).__name__})"
                spent += time.monotonic() - started
                if spent + wait > self.max_retry_seconds:
                    raise WebhookError(f"{why}; gave up after retrying for "
                                       f"{self.max_retry_seconds:g} s")
                log.warning("%s; retrying in %.1f s", why, wait)
                self.sleep(wait)
                spent += wait
                attempt += 1

    @staticmethod
    def _backoff(attempt: int) -> float:
        cap = min(30.0, 2.0 ** attempt)
        return cap / 2 + random.uniform(0, cap / 2)
