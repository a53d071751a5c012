"""Ready models a designer starts a campaign from: `relance new <id> --from <model>`.

Each model is a folder of `scaffolds/`: `campaign.yaml` (with `__ID__` and `__COURSE__` to
fill in, and a `tests:` block) and its templates in French and English. A new campaign is
a copy, checked by the loader before it is written: a model that would not validate or
pass its own tests is a bug, caught by the test suite.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml

from relance.campaign.types import SLUG

SCAFFOLDS = Path(__file__).parent / "scaffolds"
LAYOUTS = "_layouts"

MODELS = {
    "weekly-relance": "A Monday recap for everyone still on the course, congratulations at "
                      "25/50/75 %, a relance after a week of silence, a remobilisation after three.",
    "re-engagement": "Bring back the silent: a nudge after ten days, a last chance after a month "
                     "and a call from the community manager.",
    "milestones": "Congratulations at a quarter, half and three quarters of the course, and at "
                  "completion. Nothing else.",
    "onboarding": "Welcome on enrolment, a reminder after three days, a last call after two "
                  "weeks (and an access check). Stops when they start.",
    "alumni": "After the course: thank those who completed it, then, once it has ended, tell "
              "them what comes next.",
}


class ScaffoldError(Exception):
    pass


@dataclass
class Created:
    campaign_file: Path
    files: list[Path]


def create(campaigns_dir: Path, campaign_id: str, model: str, *, course: str | None = None) -> Created:
    """Write `<campaigns_dir>/<campaign_id>.yaml` and its templates from `model`; never
    overwrite anything."""
    if model not in MODELS:
        import difflib
        close = difflib.get_close_matches(model, MODELS, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ScaffoldError(f"no model {model!r}; {hint}the models are: {', '.join(MODELS)} "
                            "(`relance new --list` describes them)")
    if not re.match(SLUG, campaign_id):
        raise ScaffoldError(f"{campaign_id!r} cannot be a campaign id: use lower-case letters, "
                            "digits and '-', for example 'anglais-b2-relance'")
    course = course or campaign_id
    campaigns_dir = Path(campaigns_dir)
    target_file = campaigns_dir / f"{campaign_id}.yaml"
    target_dir = campaigns_dir / campaign_id
    existing = [p for p in (target_file, target_dir) if p.exists()]
    if existing:
        raise ScaffoldError(f"{existing[0]} already exists: nothing was written. Choose another "
                            "id, or remove it first")
    source = SCAFFOLDS / model
    text = (source / "campaign.yaml").read_text(encoding="utf-8")
    text = (text.replace("__ID__", campaign_id)
            .replace("course: __COURSE__", f"course: {yaml_scalar(course)}")
            .replace("__COURSE__", course))
    written: list[Path] = []
    campaigns_dir.mkdir(parents=True, exist_ok=True)
    target_file.write_text(text, encoding="utf-8")
    written.append(target_file)
    for path in sorted(source.rglob("*")):
        if path.is_file() and path.name != "campaign.yaml":
            dest = target_dir / path.relative_to(source)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest)
            written.append(dest)
    # The templates extend the shared layouts: provide them if the folder has none yet.
    for path in sorted((SCAFFOLDS / LAYOUTS).iterdir()):
        dest = campaigns_dir / LAYOUTS / path.name
        if not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest)
            written.append(dest)
    return Created(target_file, written)


def yaml_scalar(value: str) -> str:
    """`value` as it must be written in YAML to stay a string (a cohort like 2026-09 or a
    course id like 123 would otherwise be read as a date or a number)."""
    dumped = yaml.safe_dump(value, default_style=None).strip()
    return dumped[:-4].strip() if dumped.endswith("\n...") else dumped.splitlines()[0]
