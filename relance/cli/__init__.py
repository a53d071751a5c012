"""The `relance` command: a thin layer over the library (relance/, connectors/, flows/).

`main` holds the Typer app and the options and helpers every command shares; each other
module holds one group of commands: `campaigns` (validate, plan, preview, schema), `runs`
(run, deliver, demo, deployments), `sources` (sync), `workbench` (test, new, docs), `roi`
(report, export, backtest, risk), `delivery` (serve, events, unsubscribes, uncertain),
`digests` and `team` (previews), `replies` (fetch, list), `desk` (the team file's commands and the desk). Importing this package builds the whole command; nothing
else in relance imports it. It imports little beyond Typer, Rich and the settings (for
`serve`'s defaults): each command imports what it uses when it runs (the campaign format,
DuckDB, Prefect, pandas...), so `relance --help` and the quick commands do not pay for
what they never use; `relance run` and `relance deliver` load Prefect only when a Prefect
server is configured.

Every command exits non-zero on any error, and says what was wrong, where, and how to fix it.
"""

from relance.cli import (campaigns, delivery, desk, digests, main, replies, roi, runs, sources,
                         team,
                         workbench)
from relance.cli.main import app

# the groups whose commands are functions of the shared helpers register here
for group in (roi, delivery, digests, team, replies, desk):
    group.register(main)

__all__ = ["app", "campaigns", "runs", "sources", "workbench"]
