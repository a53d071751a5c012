"""Delivery: planned messages that are due leave the ledger in batches, are rendered and
handed to the channel, and the channel's verdict goes back into the ledger.

    ledger (planned, due) -> context (SQL, per batch) -> render -> channel -> ledger

`deliver` runs it (batches, the send pipeline, cancelling what no longer makes sense);
`messages` and `digests` build what goes out, `rendering` renders it, `links` signs its
unsubscribe link, `attempts` records each request in the ledger, `lock` keeps one delivery
per campaign, `uncertain` resolves what a crash left unknown.

May import: `campaign`, `engine` (its limits), `channels`, `warehouse`. Never `feedback`:
the run step applies what came back before it delivers.
"""

import importlib

# Loaded when first asked for: `from relance.delivery import links` (a preview, the
# feedback server) need not load the send pipeline (its worker pool, asyncio, Arrow).
_NAMES = {"BATCH_SIZE": "deliver", "DeliveryReport": "deliver", "deliver_due": "deliver",
          "send_chunks": "deliver", "context_rows": "messages", "outgoing": "messages",
          "RenderError": "rendering"}

__all__ = sorted(_NAMES)


def __getattr__(name: str):
    if name not in _NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"relance.delivery.{_NAMES[name]}"), name)
