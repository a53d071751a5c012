"""Unsubscribes: recorded on the suppression list when a learner follows their message's
signed link (delivery/links.py makes and checks it) or when an operator imports a file.
"""

from __future__ import annotations

from datetime import datetime

from relance import clock
from warehouse import transaction


# -- recording unsubscribes -------------------------------------------------------------------

class UnsubscribeError(ValueError):
    pass


def record(con, learner_id: str, campaign_id: str | None, *, source: str,
           at: datetime | None = None) -> str:
    """Put the learner's address on the suppression list, for one campaign or (None) all.
    Returns the address. Planned messages are cancelled by the next delivery (cancel.sql)
    and the engine's policies skip the address from the next plan on."""
    if learner_id.startswith("manager:"):
        # a manager's digest: the signed id carries the address itself (managers have no
        # learner row)
        rows = [(learner_id.removeprefix("manager:"),)]
    else:
        rows = con.execute("select email from learners where learner_id = ?",
                           [learner_id]).fetchall()
    if not rows or not rows[0][0]:
        raise UnsubscribeError(f"unknown learner {learner_id!r}")
    email = rows[0][0].lower()
    _suppress(con, email, campaign_id, source, at)
    return email


def _suppress(con, email: str, campaign_id: str | None, source: str, at: datetime | None) -> None:
    """The address on the suppression list (once per campaign, or all), dated when the
    learner asked (`at`: the link's arrival, on relance's clock)."""
    con.execute(
        "insert into suppressions (email, campaign_id, reason, source, created_at) "
        "select ?, ?, 'unsubscribe', ?, ? where not exists (select 1 from suppressions "
        "where email = ? and campaign_id is not distinct from ?)",
        [email, campaign_id, source, clock.or_now(at), email, campaign_id]).fetchall()


def import_file(con, path) -> tuple[int, list[str]]:
    """Unsubscribes from a CSV file with a header: `email` or `learner_id`, and optionally
    `campaign_id` (empty: every campaign). Returns (addresses recorded, problems); a row with
    a problem is reported with its line and skipped, the others are recorded."""
    import csv
    from pathlib import Path
    path = Path(path)
    problems: list[str] = []
    rows = []
    with path.open(encoding="utf-8-sig", newline="") as fh:
        sample = fh.read(4096)
        fh.seek(0)
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t") if sample.strip() else csv.excel
        reader = csv.DictReader(fh, dialect=dialect)
        fields = {f.strip().lower() for f in reader.fieldnames or []}
        if not fields & {"email", "learner_id"}:
            raise UnsubscribeError(f"{path}:1: expected a header with an `email` or `learner_id` "
                                   f"column (and optionally `campaign_id`), got "
                                   f"{', '.join(reader.fieldnames or []) or 'nothing'}")
        for n, raw in enumerate(reader, 2):
            row = {k.strip().lower(): (v or "").strip() for k, v in raw.items() if k}
            rows.append((n, row))
    n_done = 0
    with transaction(con):
        for n, row in rows:
            campaign = row.get("campaign_id") or None
            if row.get("learner_id"):
                try:
                    record(con, row["learner_id"], campaign, source=f"import {path.name}")
                    n_done += 1
                except UnsubscribeError as exc:
                    problems.append(f"{path}:{n}: learner_id: {exc}")
            elif "@" in row.get("email", ""):
                _suppress(con, row["email"].lower(), campaign, f"import {path.name}", None)
                n_done += 1
            else:
                problems.append(f"{path}:{n}: email: expected an e-mail address or a learner_id, "
                                f"got {row.get('email')!r}")
    return n_done, problems
