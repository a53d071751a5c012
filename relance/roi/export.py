"""Exports of the KPI views for BI tools: one Parquet or CSV file per view (DuckDB COPY)."""

from __future__ import annotations

from pathlib import Path

import duckdb

FORMATS = {"parquet": "(format parquet)", "csv": "(format csv, header true)"}


def kpi_views(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [r[0] for r in con.execute(
        "select view_name from duckdb_views() where not internal and view_name like 'kpi\\_%' "
        "escape '\\' order by view_name").fetchall()]


def export(con: duckdb.DuckDBPyConnection, folder: str | Path, fmt: str = "parquet",
           views: list[str] | None = None) -> list[tuple[str, Path, int]]:
    """Write each KPI view to `<folder>/<view>.<fmt>`; return (view, file, rows)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    known = kpi_views(con)
    chosen = views or known
    unknown = [v for v in chosen if v not in known]
    if unknown:
        raise ValueError(f"not a KPI view: {', '.join(unknown)}; the KPI views are: {', '.join(known)}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for view in chosen:
        path = folder / f"{view}.{fmt}"
        # view names come from the catalogue above, never from the user as such
        con.execute(f"copy (from {view}) to '{str(path).replace(chr(39), chr(39) * 2)}' {FORMATS[fmt]}")
        rows = con.execute(f"select count(*) from {view}").fetchall()[0][0]
        out.append((view, path, rows))
    return out
