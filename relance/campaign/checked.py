"""Template checks remembered by what they checked: a campaign whose files, templates and
checking code are byte for byte those of a check that found no problem is not checked
again (the check renders every template of every message in every locale with a sample
context: a quarter of a second per campaign, in every `validate`, `plan`, `preview`,
`test`, `run` and `deliver`).

The fingerprint covers the campaign file and `_defaults.yaml`, every other file under the
campaigns folder but the other campaigns' YAML (a template may extend or include any of
them: `_layouts/`, another campaign's), the code of `relance/campaign/` that checks and
renders, and the versions of Python, Jinja2 and Babel. A check that passed leaves an empty file
named by it in `$RELANCE_CACHE_DIR` (default: `$XDG_CACHE_HOME/relance/template-checks`,
`~/.cache/...`); problems are never remembered, so a broken template is reported at every
load. Nothing here is trusted for sending: delivery renders every message in the same
sandbox, under the same budgets.
"""

from __future__ import annotations

import hashlib
import os
import sys
from importlib import metadata
from pathlib import Path

CODE = Path(__file__).parent


def folder() -> Path:
    explicit = os.environ.get("RELANCE_CACHE_DIR")
    if explicit:
        return Path(explicit) / "template-checks"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "relance" / "template-checks"


def fingerprint(path: Path, campaigns_dir: Path) -> str:
    digest = hashlib.sha256()

    def add(name: str, data: bytes) -> None:
        digest.update(f"{name}\0{len(data)}\0".encode())
        digest.update(data)

    add("campaign", path.read_bytes())
    others = {p.resolve() for p in campaigns_dir.glob("*.yaml")
              if not p.name.startswith("_")} - {path.resolve()}
    for f in sorted(campaigns_dir.rglob("*")):
        if f.is_file() and f.resolve() not in others:
            add(str(f.relative_to(campaigns_dir)), f.read_bytes())
    for f in sorted(CODE.glob("*.py")):
        add(f"code/{f.name}", f.read_bytes())
    for package in ("jinja2", "babel"):
        add(package, metadata.version(package).encode())
    add("python", sys.version.encode())
    return digest.hexdigest()


def passed(key: str) -> bool:
    return (folder() / key).exists()


def remember(key: str) -> None:
    """Best effort: a cache that cannot be written only means checking again next time."""
    try:
        target = folder()
        target.mkdir(parents=True, exist_ok=True)
        (target / key).touch()
    except OSError:
        pass
