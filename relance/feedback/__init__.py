"""What comes back after sending: provider events (delivered, bounced, opened...), one-click
unsubscribes, and the small HTTP receiver that takes both (`relance serve`).
"""
