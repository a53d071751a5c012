from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterable, NamedTuple, Protocol


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
    # which template it was rendered from: providers group requests by it
    message_key: str = ""
    locale: str = ""
    # the template context, for providers that render themselves (SendGrid dynamic templates)
    template_data: dict | None = None
    # the learner's user id in the LMS a moodle or canvas channel writes to (lms_accounts)
    lms_user_id: str | None = None
    # the message as RFC 5322 bytes, when built where it was rendered (a delivery's render
    # workers: relance/delivery/render_pool.py), for channels that send them (`sends_mime`)
    mime: bytes | None = None
    # the message's part of a provider's request, when built where it was rendered (a
    # SendGrid personalization: sendgrid.WorkerSide); its text and html are then only the
    # placeholders the request's content holds
    wire: bytes | None = None



def with_fields(msg: OutgoingMessage, **changes) -> OutgoingMessage:
    """`dataclasses.replace(msg, **changes)` for fields that need no checking (a render
    worker adding what it built): the same message, without __init__'s one frozen setattr
    per field (11 us a message, a fifth of a SendGrid render worker's own work)."""
    copy = object.__new__(OutgoingMessage)
    fields = copy.__dict__
    fields.update(msg.__dict__)
    fields.update(changes)
    return copy

class SendResult(NamedTuple):
    # a named tuple, not a frozen dataclass: a channel makes one per message, and a frozen
    # dataclass takes five times as long to build (0.7 ms per 1,000-message request)
    message_id: str
    # 'sent' (the transport accepted it), 'failed' (it did not: tried again by a later
    # delivery), 'uncertain' (handed over, no answer: it may have been accepted)
    status: str
    sent_at: datetime | None = None
    provider_message_id: str | None = None
    error: str | None = None


class DeliveryError(RuntimeError):
    """Something that stops a delivery before anything is sent; the message says how to fix it."""


class ChannelConfigError(DeliveryError):
    """A channel lacks its settings (an API key, a server): nothing can be sent through it."""


class Attempts(Protocol):
    """The ledger's record of the requests one chunk takes, as delivery keeps it (channels
    never touch the warehouse). A request is 'in flight' only while it may have reached the
    provider: it is recorded 'connecting' before its connection is made, and the channel
    says `sending()` once the connection is up, just before the request's first byte is
    written (a process killed before then leaves its messages to be sent again, not
    'uncertain'). A channel that waits before trying again says `refused(why)` before the
    wait (that request ended and nothing of it was accepted), then `again(messages)` for
    the next request, which is 'connecting' in turn until its `sending()`. Each is called on
    the thread that sends, and writes to the ledger before it returns."""

    def sending(self) -> None: ...

    def refused(self, why: str) -> None: ...

    def again(self, messages: list[OutgoingMessage]) -> None: ...


class Unrecorded:
    """Attempts nobody records: a channel used on its own (tests, benchmarks)."""

    def sending(self) -> None:
        pass

    def refused(self, why: str) -> None:
        pass

    def again(self, messages: list[OutgoingMessage]) -> None:
        pass


UNRECORDED = Unrecorded()


class Channel(Protocol):
    name: str
    # Whether the channel recognises a message it already delivered (the outbox sees its
    # file). If not, a message in flight when the sender died is marked 'uncertain'
    # instead of being sent again.
    recognises_resends: bool
    # Whether `send(chunk, ..., attempts=)` tells `attempts` when the chunk's first byte is
    # about to leave, and of each request refused before a retry (see Attempts): its chunk
    # is then 'connecting' until that moment. Optional: without it, a chunk is in flight
    # from before its send until its verdict.
    reports_attempts: bool

    def sent_to(self, campaign_id: str) -> str:
        """Where a campaign's sent messages went, as a run reports it after their count:
        "in outbox/<campaign>/", "accepted by SendGrid"."""
        ...

    def chunks(self, batch: list[OutgoingMessage]) -> Iterable[list[OutgoingMessage]]:
        """The batch cut into the units the transport takes at once (one API request):
        each is recorded as in flight before it is sent."""
        ...

    def send(self, batch: list[OutgoingMessage]) -> list[SendResult]:
        """Hand one chunk to the transport; one result per message, in any order."""
        ...
