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
    if str(ref).endswith((".yaml", ".yml")):
        if Path(ref).is_file():
            from connectors.csv_export import CsvConnector
            return CsvConnector.from_file(ref)
        # a path that is not there is that path's problem, not the sources file's (unless
        # the sources file really names a source so)
        if not (Path(sources_file).is_file() and ref in read_sources(sources_file)):
            raise SourceError(f"{ref} ({Path(ref).absolute()}): CSV mapping file not found; "
                              "give the path of an export's mapping.yaml, or the name of a "
                              f"source of the sources file ({sources_file})")
    return open_named(ref, sources_file)
