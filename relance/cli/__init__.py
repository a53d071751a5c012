"""The `relance` command: a thin layer over the library (relance/, connectors/, flows/).

`main` holds the Typer app, the options and helpers every command shares, and the core
commands; each other module holds one group of commands and registers it on that app.
Nothing else in relance imports it.

Every command exits non-zero on any error, and says what was wrong, where, and how to fix it.
"""

from relance.cli import delivery, digests, main, roi, team, workbench
from relance.cli.main import app

# in the order `relance --help` lists them (workbench's register as it is imported)
for group in (roi, delivery, digests, team):
    group.register(main)

__all__ = ["app", "workbench"]
