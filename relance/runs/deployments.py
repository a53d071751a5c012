"""The campaigns' Prefect deployments, written from `campaigns/` into `prefect.yaml`.

Each campaign file gets a `run-<id>` deployment whose schedule comes from the campaign
itself: its `schedule` if it has one, else the day and time of its first weekly (`every`)
message in the week, else monday 08:00; always in the campaign's timezone. The generated
deployments sit between two marker lines of `prefect.yaml`; everything else in the file
(the pool, the sync and delivery deployments, the pull step) is written by hand.
`relance deployments --check` fails with a diff when the file and the campaigns disagree,
so a new campaign cannot be left unscheduled.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from pathlib import Path

from relance.campaign.model import Campaign
from relance.campaign.types import WEEKDAYS, RunAt
from relance.campaign.loader import load_all

BEGIN = "  # >>> campaign deployments, written by `relance deployments`: edit the campaign files"
END = "  # <<< campaign deployments"
DEFAULT_RUN = RunAt(days="monday", at="08:00")
# The sync runs daily at 07:00 Paris; a run refuses sources older than this (a day and
# some slack), so a failed sync stops the relances instead of nudging on old data.
MAX_SOURCE_AGE_HOURS = 26


class DeploymentsError(RuntimeError):
    pass


@dataclass(frozen=True)
class CampaignDeployment:
    campaign_id: str
    run_at: RunAt
    timezone: str
    why: str            # where the schedule comes from, for the reader of prefect.yaml

    @property
    def name(self) -> str:
        return f"run-{self.campaign_id}"

    def yaml(self) -> str:
        return "\n".join([
            f"  - name: {self.name}",
            f"    description: {json.dumps(f'Campaign {self.campaign_id}, {self.run_at} {self.timezone} ({self.why}).', ensure_ascii=False)}",
            "    entrypoint: flows/run_campaign.py:run_campaign",
            "    parameters:",
            f"      campaign_id: {self.campaign_id}",
            f"      max_source_age_hours: {MAX_SOURCE_AGE_HOURS}",
            "    work_pool: *relance_pool",
            "    concurrency_limit: *one_run_at_a_time",
            f"    tags: [campaign, {self.campaign_id}]",
            "    schedules:",
            f"      - cron: \"{self.run_at.cron()}\"",
            f"        timezone: {self.timezone}",
        ])


def schedule_of(campaign: Campaign) -> tuple[RunAt, str]:
    """When a campaign runs, and why then."""
    if campaign.schedule is not None:
        return campaign.schedule, "its `schedule`"
    weekly = [(WEEKDAYS.index(m.every.day), m.every.at, key)
              for key, m in campaign.messages.items() if m.every is not None]
    if weekly:
        day, at, key = min(weekly)
        return RunAt(days=WEEKDAYS[day], at=at), f"its weekly message {key}"
    return DEFAULT_RUN, "the default"


def campaign_deployments(campaigns_dir: str | Path) -> list[CampaignDeployment]:
    found = []
    for loaded in load_all(campaigns_dir, check_templates=False):
        run_at, why = schedule_of(loaded.campaign)
        found.append(CampaignDeployment(loaded.id, run_at, loaded.campaign.timezone, why))
    return sorted(found, key=lambda d: d.campaign_id)


def generated_block(campaigns_dir: str | Path) -> str:
    body = "\n\n".join(d.yaml() for d in campaign_deployments(campaigns_dir))
    return f"{BEGIN}\n{body}\n{END}" if body else f"{BEGIN}\n{END}"


def _split(text: str, path: Path) -> tuple[str, str, str]:
    lines = text.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.rstrip("\n") == BEGIN]
    ends = [i for i, line in enumerate(lines) if line.rstrip("\n") == END]
    if len(starts) != 1 or len(ends) != 1 or ends[0] < starts[0]:
        raise DeploymentsError(
            f"{path}: expected one line\n{BEGIN}\nand, after it, one line\n{END}\nunder "
            "`deployments:` to mark where the campaign deployments go; add them (with nothing "
            "between) and run `relance deployments` again")
    a, b = starts[0], ends[0]
    return "".join(lines[:a]), "".join(lines[a:b + 1]), "".join(lines[b + 1:])


def render(prefect_yaml: str | Path, campaigns_dir: str | Path) -> tuple[str, str]:
    """(current text, text with the campaign deployments as the campaigns say)."""
    path = Path(prefect_yaml)
    current = path.read_text(encoding="utf-8")
    before, _, after = _split(current, path)
    return current, before + generated_block(campaigns_dir) + "\n" + after


def drift(prefect_yaml: str | Path, campaigns_dir: str | Path) -> str:
    """A unified diff from the file to what it should be; empty when they agree."""
    current, wanted = render(prefect_yaml, campaigns_dir)
    name = str(prefect_yaml)
    return "".join(difflib.unified_diff(current.splitlines(keepends=True),
                                        wanted.splitlines(keepends=True),
                                        fromfile=f"{name} (as it is)",
                                        tofile=f"{name} (as campaigns/ says)"))


def write(prefect_yaml: str | Path, campaigns_dir: str | Path) -> bool:
    """Rewrite the campaign deployments; return whether anything changed."""
    current, wanted = render(prefect_yaml, campaigns_dir)
    if current == wanted:
        return False
    Path(prefect_yaml).write_text(wanted, encoding="utf-8")
    return True
