from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class OutgoingMessage:
    message_id: str
    campaign_id: str
    to_email: str
    to_name: str
    from_email: str
    from_name: str
    reply_to: str | None
    subject: str
    text: str
    html: str | None
    unsubscribe_url: str
    unsubscribe_mailto: str
    headers: dict[str, str] = field(default_factory=dict)
    # when the message was due (the run's logical clock); a transport that stamps the real
    # sending time ignores it, the outbox uses it so a replayed week reads as that week
    date: datetime | None = None


@dataclass(frozen=True)
class SendResult:
    message_id: str
    status: str                      # 'sent' or 'failed'
    sent_at: datetime | None = None
    provider_message_id: str | None = None
    error: str | None = None


class Channel(Protocol):
    name: str

    def send(self, batch: list[OutgoingMessage]) -> list[SendResult]:
        """Hand a batch to the transport; one result per message, in any order."""
        ...
