"""Connectors: where learners' progress comes from. One module per kind of source, each
staging its rows the same way (see base.py); one shared loader takes them into the
warehouse. The sources file (sources.py) names a deployment's sources."""

from pathlib import Path

from connectors.base import ENTITIES, Connector, LoadReport, SourceError, sync
from connectors.sources import DEFAULT_FILE, open_named, read_sources

__all__ = ["ENTITIES", "Connector", "LoadReport", "SourceError", "sync", "open_source",
           "read_sources"]


def open_source(ref: str, sources_file: str | Path = DEFAULT_FILE) -> Connector:
    """A connector by its name in the sources file, or from a CSV mapping file's path."""
    if str(ref).endswith((".yaml", ".yml")) and Path(ref).is_file():
        from connectors.csv_export import CsvConnector
        return CsvConnector.from_file(ref)
    return open_named(ref, sources_file)
