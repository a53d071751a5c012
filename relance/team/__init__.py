"""What the team hears after a run: the designer's announcement and the run's numbers posted
to the campaign's Slack or Teams webhook (`notify`).

May import: `campaign`, `channels`, `delivery`'s rendering, `warehouse`.
"""
