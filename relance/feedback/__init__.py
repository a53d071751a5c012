"""What comes back after sending: provider events (delivered, bounced, opened...), one-click
unsubscribes, and the small HTTP receiver that takes both (`relance serve`).

Writes `message_events` and `suppressions`. May import: `campaign`, `delivery`'s links,
`warehouse`; the engine and delivery read its tables, never its modules.
"""
