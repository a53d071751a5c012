"""The sources file: where a deployment's learners' progress comes from.

    # sources.yaml
    sources:
      lms-export:                       # the source's name, in the warehouse's `source` columns
        kind: csv
        mapping: exports/mapping.yaml   # relative to this file
      moodle-prod:
        kind: moodle
        url: https://moodle.example.org
        token: {env: MOODLE_TOKEN}      # credentials by reference only (secrets.py)

Each kind is one module of this package exposing
`from_config(name, options, base_dir) -> Connector`; options are checked by that module,
whose errors name the source and the setting.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import yaml

from connectors.base import Connector, SourceError

# kind -> module; a module is imported only when a source of its kind is opened.
KINDS = {
    "csv": "connectors.csv_export",
    "excel": "connectors.csv_export",
    "oulad": "connectors.oulad",
    "xapi": "connectors.xapi",
    "moodle": "connectors.moodle",
    "canvas": "connectors.canvas",
}

DEFAULT_FILE = Path("sources.yaml")
ENV = "RELANCE_SOURCES"


def where_from(path: str | Path) -> str:
    """Which setting named the sources file `path`, in words: an operator whose worker
    cannot find it must know what to change (the worker's working directory, its
    environment, or a flow parameter)."""
    if os.environ.get(ENV) and Path(os.environ[ENV]) == Path(path):
        return f"named by {ENV}"
    if Path(path) == DEFAULT_FILE:
        return (f"the default, {DEFAULT_FILE} in the working directory {Path.cwd()}, as "
                f"{ENV} is not set")
    return "named by --sources or the flow's sources_file parameter"


def read_sources(path: str | Path = DEFAULT_FILE) -> dict[str, dict]:
    """The sources declared in `path`, by name, each with its `kind` and options."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        shown = path if path.is_absolute() else f"{path} ({path.absolute()})"
        raise SourceError(f"{shown}: sources file not found ({where_from(path)}); create it "
                          f"(start from connectors/sources.example.yaml; `relance demo` "
                          f"writes one for its export) or set {ENV} to yours") from None
    except yaml.YAMLError as exc:
        raise SourceError(f"{path}: not valid YAML: {exc}") from None
    sources = data.get("sources") if isinstance(data, dict) else None
    if not isinstance(sources, dict) or not sources:
        raise SourceError(f"{path}: expected a `sources:` mapping of source names to their "
                          f"settings, e.g. sources: {{lms-export: {{kind: csv, mapping: "
                          f"exports/mapping.yaml}}}}")
    for name, options in sources.items():
        if not isinstance(options, dict) or "kind" not in options:
            raise SourceError(f"{path}: sources.{name}: missing `kind` (one of "
                              f"{', '.join(KINDS)})")
        if options["kind"] not in KINDS:
            raise SourceError(f"{path}: sources.{name}.kind: unknown kind "
                              f"{options['kind']!r}; expected one of {', '.join(KINDS)}")
    return sources


def open_named(name: str, path: str | Path = DEFAULT_FILE) -> Connector:
    sources = read_sources(path)
    if name not in sources:
        raise SourceError(f"{path}: no source named {name!r}; the sources are: "
                          f"{', '.join(sources)}")
    return open_config(name, sources[name], Path(path).parent)


def open_config(name: str, options: dict, base_dir: Path) -> Connector:
    options = dict(options)
    kind = options.pop("kind")
    module = importlib.import_module(KINDS[kind])
    return module.from_config(name, {"kind": kind, **options}, base_dir)
