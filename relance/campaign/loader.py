"""Reading campaign files: YAML -> `Campaign`, with every problem located by file and line.

A campaign is only handed to the engine once it has no problem at all: the model, the
cross-field checks and its templates. Nothing is sent from a campaign that fails here.
"""

from __future__ import annotations

import difflib
import hashlib
from pathlib import Path

from pydantic import ValidationError

from relance.campaign.loaded import LoadedCampaign
from relance.campaign.model import Audience, Campaign
from relance.campaign.problems import (CampaignError, Locator, Problem, display, dotted, line_for,
                                       read_yaml, validation_problems)

DEFAULTS_FILE = "_defaults.yaml"


def _merge(defaults: dict, own: dict) -> dict:
    merged = dict(defaults)
    for key, value in own.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and key not in (
                "stages", "messages", "follow_up"):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


# -- loading -------------------------------------------------------------------------------------

def campaign_paths(campaigns_dir: Path) -> list[Path]:
    return sorted(p for p in Path(campaigns_dir).glob("*.yaml") if not p.name.startswith("_"))


def find(campaigns_dir: Path, ref: str) -> Path:
    """A campaign file from an id or a path."""
    candidate = Path(ref)
    if candidate.suffix in (".yaml", ".yml") and candidate.exists():
        return candidate
    path = Path(campaigns_dir) / f"{ref}.yaml"
    if path.exists():
        return path
    known = [p.stem for p in campaign_paths(campaigns_dir)]
    close = difflib.get_close_matches(ref, known, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise CampaignError([Problem(str(path), None, "", f"no such campaign.{hint} "
                                 f"Campaigns in {campaigns_dir}: {', '.join(known) or 'none'}")])


def load(path: str | Path, *, campaigns_dir: str | Path | None = None,
         check_templates: bool = True) -> LoadedCampaign:
    """Load and fully check one campaign file; raise CampaignError listing every problem."""
    path = Path(path)
    campaigns_dir = Path(campaigns_dir) if campaigns_dir else path.parent
    shown = display(path)
    problems: list[Problem] = []

    defaults: dict = {}
    defaults_lines: dict[tuple, int] = {}
    defaults_columns: dict[tuple, tuple[int, int]] = {}
    defaults_path = campaigns_dir / DEFAULTS_FILE
    if defaults_path.exists():
        defaults, defaults_lines, found = read_yaml(defaults_path, display(defaults_path),
                                                     defaults_columns)
        problems += found
        defaults = defaults or {}

    columns: dict[tuple, tuple[int, int]] = {}
    data, lines, found = read_yaml(path, shown, columns)
    problems += found
    if problems:
        raise CampaignError(problems)
    if not isinstance(data, dict):
        raise CampaignError([Problem(shown, 1, "", "expected a mapping of campaign fields "
                                     "(id, description, audience, stages, messages ...)")])
    merged = _merge(defaults if isinstance(defaults, dict) else {}, data)
    sources = [(shown, lines)]
    if defaults_lines:
        sources.append((display(defaults_path), defaults_lines))
    locate = Locator(sources, {shown: columns, display(defaults_path): defaults_columns})

    try:
        campaign = Campaign.model_validate(merged)
    except ValidationError as exc:
        raise CampaignError(validation_problems(exc, locate)) from None

    if campaign.id != path.stem:
        problems.append(Problem(shown, line_for(lines, ("id",)), "id",
                                f"{campaign.id!r} must equal the file name ({path.stem!r}): "
                                f"rename the file or the id, e.g. `id: {path.stem}`",
                                locate.where(("id",))[2]))
    for loc, text in campaign.problems():
        where, line, column = locate.where(loc)
        problems.append(Problem(where, line, dotted(loc), text, column))
    excluded = {}
    for i, other in enumerate(campaign.audience.exclude or []):
        loc = ("audience", "exclude", i)
        try:
            excluded[other] = _audience_of(campaigns_dir, other, defaults)
        except ValueError as exc:
            where, line, column = locate.where(loc)
            problems.append(Problem(where, line, dotted(loc), str(exc), column))
    loaded = LoadedCampaign(campaign, path, campaigns_dir, _sha(path, campaigns_dir, campaign),
                            lines, columns, excluded)
    if check_templates and not problems:
        # a check that passed on these very files is not run again (campaign/checked.py)
        from relance.campaign import checked
        key = checked.fingerprint(path, campaigns_dir)
        if not checked.passed(key):
            # (Jinja2 and Babel are only imported when a check runs)
            from relance.campaign import contexts
            from relance.campaign.replies import template_problems
            found = contexts.check_templates(loaded) + template_problems(loaded)
            if not found:
                checked.remember(key)
            problems += found
    if problems:
        raise CampaignError(problems)
    return loaded


def _audience_of(campaigns_dir: Path, cid: str, defaults: dict) -> Audience:
    """The audience another campaign's file declares (for `audience.exclude`): read, not
    fully checked — that file's own problems are reported when it is loaded."""
    path = campaigns_dir / f"{cid}.yaml"
    known = [p.stem for p in campaign_paths(campaigns_dir)]
    if not path.exists():
        close = difflib.get_close_matches(cid, known, n=1)
        raise ValueError(f"no campaign {cid!r} in {display(campaigns_dir)}/"
                         + (f"; did you mean {close[0]!r}?" if close else "")
                         + f" The campaigns are: {', '.join(known) or 'none'}")
    data, _, found = read_yaml(path, display(path), {})
    audience = _merge(defaults if isinstance(defaults, dict) else {},
                      data if isinstance(data, dict) else {}).get("audience")
    try:
        if found or not isinstance(audience, dict):
            raise ValueError
        return Audience.model_validate(audience)
    except (ValueError, ValidationError):
        raise ValueError(f"the audience of {cid!r} cannot be read: fix {display(path)} "
                         "first (`relance validate " + cid + "`)") from None


def load_all(campaigns_dir: str | Path, *, check_templates: bool = True) -> list[LoadedCampaign]:
    """Every campaign in the folder; all problems of all files in one CampaignError."""
    loaded, problems = [], []
    for path in campaign_paths(Path(campaigns_dir)):
        try:
            loaded.append(load(path, campaigns_dir=campaigns_dir, check_templates=check_templates))
        except CampaignError as exc:
            problems += exc.problems
    if problems:
        raise CampaignError(problems)
    return loaded


def _sha(path: Path, campaigns_dir: Path, campaign: Campaign) -> str:
    digest = hashlib.sha256(path.read_bytes())
    defaults = campaigns_dir / DEFAULTS_FILE
    if defaults.exists():
        digest.update(defaults.read_bytes())
    template_root = campaigns_dir / campaign.id
    if template_root.is_dir():
        for f in sorted(template_root.rglob("*")):
            if f.is_file():
                digest.update(str(f.relative_to(template_root)).encode())
                digest.update(f.read_bytes())
    return digest.hexdigest()[:12]


