"""`python -m relance.cli ...` is the `relance` command."""

from relance.cli import app

app()
