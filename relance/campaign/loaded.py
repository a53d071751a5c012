"""A campaign as the loader hands it on: its model, where its file and templates are, the
fingerprint of both (`sha`, stored with each run), where each field is written (for
errors that point at the designer's line) and the audiences it leaves out."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from relance.campaign.model import Audience, Campaign
from relance.campaign.problems import line_for


@dataclass
class LoadedCampaign:
    campaign: Campaign
    path: Path
    campaigns_dir: Path
    sha: str
    lines: dict[tuple, int] = field(default_factory=dict)
    columns: dict[tuple, tuple[int, int]] = field(default_factory=dict)
    # the audiences of the campaigns named in `audience.exclude`, by id, as their files say
    excluded: dict[str, Audience] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.campaign.id

    def line_of(self, loc: tuple) -> int | None:
        return line_for(self.lines, loc)
