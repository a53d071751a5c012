"""Template checks remembered by what they checked: a campaign whose files, templates and
checking code are byte for byte those of a check that found no problem is not checked
again (the check renders every template of every message in every locale with a sample
context: a quarter of a second per campaign, in every `validate`, `plan`, `preview`,
`test`, `run` and `deliver`).

The fingerprint covers the campaign file and `_defaults.yaml`, every other file under the
campaigns folder but the other campaigns' YAML (a template may extend or include any of
them: `_layouts/`, another campaign's), the code of `relance/campaign/` that checks and
renders, Python's version and Jinja2's and Babel's installed files. A check that passed leaves an empty file
named by it in `$RELANCE_CACHE_DIR` (default: `$XDG_CACHE_HOME/relance/template-checks`,
`~/.cache/...`); problems are never remembered, so a broken template is reported at every
load. Nothing here is trusted for sending: delivery renders every message in the same
sandbox, under the same budgets.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import sys
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

    path, root = Path(path), str(campaigns_dir)
    add("campaign", path.read_bytes())
    # (os.walk and names, not Path.rglob and resolve: a load reads a hundred files here)
    own = path.name if os.path.samefile(path.parent, root) else None
    for folder, subfolders, files in os.walk(root):
        subfolders.sort()
        for name in sorted(files):
            if folder == root and name.endswith(".yaml") and not name.startswith("_") \
                    and name != own:
                continue                    # another campaign's file: not this one's check
            full = os.path.join(folder, name)
            with open(full, "rb") as f:
                add(os.path.relpath(full, root), f.read())
    digest.update(_code())
    return digest.hexdigest()


@functools.lru_cache(maxsize=1)
def _code() -> bytes:
    """The checking code and what it runs on, once per process: relance/campaign/'s
    sources, Python's version, and Jinja2's and Babel's installed files (their size and
    time: an upgrade rewrites them; found without importing either)."""
    digest = hashlib.sha256(sys.version.encode())
    for f in sorted(CODE.glob("*.py")):
        digest.update(f.name.encode() + b"\0" + f.read_bytes())
    for package in ("jinja2", "babel"):
        origin = importlib.util.find_spec(package).origin
        stat = os.stat(origin)
        digest.update(f"{package}\0{origin}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
    return digest.digest()


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
