"""Fixtures of the LMS message channels' tests: a sources file naming the fake Moodle and
Canvas (tests/fakes/), campaigns written to them, a warehouse whose learners have LMS
accounts, and the child process the kill tests run (and kill): one delivery."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.conftest import MONDAY
from tests.lms_fixtures import CANVAS_TOKEN, MOODLE_TOKEN

SOURCES = """\
sources:
  moodle-prod:
    kind: moodle
    url: {moodle}
    token: {{env: MOODLE_TOKEN}}
  canvas:
    kind: canvas
    url: {canvas}
    token: {{env: CANVAS_TOKEN}}
    courses: [4021]
"""


def sources_env(tmp_path: Path, moodle_url: str, canvas_url: str) -> dict[str, str]:
    """The environment a delivery needs: the sources file and the tokens it names."""
    path = tmp_path / "sources.yaml"
    path.write_text(SOURCES.format(moodle=moodle_url, canvas=canvas_url), encoding="utf-8")
    return {"RELANCE_SOURCES": str(path), "MOODLE_TOKEN": MOODLE_TOKEN,
            "CANVAS_TOKEN": CANVAS_TOKEN}


def lms_campaign(campaigns, channel: str, options: str = "", extra: str = "") -> None:
    """The test campaign on `channel` (moodle, canvas), its source named."""
    source = "moodle-prod" if channel == "moodle" else "canvas"
    campaigns.write(campaigns.base().replace(
        "control_group: 0%\n",
        f"control_group: 0%\nchannel: {channel}\n{channel}: {{source: {source}{options}}}\n"
        + extra))


def learners_with_accounts(cohort, accounts: list[str | None], source: str) -> list[str]:
    """One silent learner (their `relance` is due) per entry of `accounts`: the LMS user id
    the source knows them by (None: the source never listed them)."""
    ids = []
    for account in accounts:
        lid = cohort.learner(inactive_days=8)
        if account is not None:
            cohort.con.execute("insert into lms_accounts values (?, ?, ?, ?)",
                               [lid, source, account, MONDAY]).fetchall()
        ids.append(lid)
    return ids


def _child(warehouse_path: str, campaigns_dir: str) -> None:
    """One delivery of campaign 'test' through its channel, as `relance deliver` does."""
    import warehouse
    from relance.campaign import loader
    from relance.channels import for_campaign
    from relance.delivery import deliver_due
    loaded = loader.load(Path(campaigns_dir) / "test.yaml", campaigns_dir=Path(campaigns_dir))
    con = warehouse.connect(warehouse_path)
    report = deliver_due(con, loaded, for_campaign(loaded), now=MONDAY)
    con.close()
    print(json.dumps({"sent": report.sent, "failed": report.failed,
                      "uncertain": report.uncertain}), flush=True)


if __name__ == "__main__":
    _child(*sys.argv[1:])
