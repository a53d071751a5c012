"""Connectors: where learners' progress comes from. One module per kind of source, each
staging its rows the same way (see base.py); one shared loader takes them into the
warehouse."""

from connectors.base import ENTITIES, Connector, LoadReport, SourceError, sync

__all__ = ["ENTITIES", "Connector", "LoadReport", "SourceError", "sync", "open_source"]


def open_source(path: str) -> Connector:
    """A connector from a source file (a CSV mapping, for now)."""
    from connectors.csv_export import CsvConnector
    return CsvConnector.from_file(path)
