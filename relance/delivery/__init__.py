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

from relance.delivery.deliver import BATCH_SIZE, DeliveryReport, deliver_due, send_chunks
from relance.delivery.messages import context_rows, outgoing
from relance.delivery.rendering import RenderError

__all__ = ["BATCH_SIZE", "DeliveryReport", "RenderError", "context_rows", "deliver_due",
           "outgoing", "send_chunks"]
