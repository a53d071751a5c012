"""The default channel: each message becomes an `.eml` file in `outbox/<campaign>/`.

Files are named after the message id and written atomically (temp file, then rename), so
a crash never leaves half a message, and a message already in the outbox (a crash after
the write, before the ledger heard of it) is recognised as sent rather than written twice.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from relance import clock
from relance.channels.base import OutgoingMessage, SendResult
from relance.channels.email import HeaderError, message_bytes


class OutboxChannel:
    name = "outbox"
    recognises_resends = True   # a message already written is found, not written again
    # a delivery's render workers build each message's bytes (OutgoingMessage.mime)
    sends_mime = True

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)

    def sent_to(self, campaign_id: str) -> str:
        return f"in {self.directory / campaign_id}/"

    def path_for(self, msg: OutgoingMessage) -> Path:
        return self.directory / msg.campaign_id / f"{msg.message_id}.eml"

    def chunks(self, batch: list[OutgoingMessage]) -> list[list[OutgoingMessage]]:
        return [batch]

    def send(self, batch: list[OutgoingMessage]) -> list[SendResult]:
        results = []
        for msg in batch:
            path = self.path_for(msg)
            now = clock.now()
            if path.exists():
                results.append(SendResult(msg.message_id, "sent", now, str(path)))
                continue
            try:
                data = (msg.mime if msg.mime is not None
                        else message_bytes(msg, date=msg.date or now))
            except (HeaderError, ValueError) as exc:
                results.append(SendResult(msg.message_id, "failed", error=f"invalid message: {exc}"))
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            # not *.eml: a half-written file left by a crash must never look like mail
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".part")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                os.replace(tmp, path)
            except OSError as exc:
                Path(tmp).unlink(missing_ok=True)
                results.append(SendResult(msg.message_id, "failed", error=f"outbox write failed: {exc}"))
                continue
            results.append(SendResult(msg.message_id, "sent", now, str(path)))
        return results
