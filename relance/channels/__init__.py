"""Transports. Each channel takes a batch of rendered messages and says, for each, whether
the transport accepted it. Channels never touch the warehouse: the ledger is delivery's."""

from __future__ import annotations

from pathlib import Path

from relance.channels.base import Channel, OutgoingMessage, SendResult


def get_channel(name: str, *, outbox_dir: str | Path = "outbox") -> Channel:
    if name == "outbox":
        from relance.channels.outbox import OutboxChannel
        return OutboxChannel(outbox_dir)
    raise ValueError(f"unknown channel {name!r}; available: outbox")


__all__ = ["Channel", "OutgoingMessage", "SendResult", "get_channel"]
