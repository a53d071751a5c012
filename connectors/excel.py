"""Excel workbooks (.xlsx) as exports: a sheet's rows as text, read as a stream.

openpyxl's read-only mode reads the sheet row by row; rows go to DuckDB in Arrow batches,
so memory stays flat however long the sheet is. Cells become the text a CSV export would
hold: dates and times in ISO 8601 (read in the source's timezone, like any timestamp
without an offset), numbers without a spurious `.0`, booleans as true/false, empty cells
as nothing. Wholly empty rows (Excel's trailing formatting) are not data and are skipped;
`_row` keeps each row's place (the first row under the header is 1, as in CSV files).
"""

from __future__ import annotations

import zipfile
from datetime import date, datetime, time
from pathlib import Path

import duckdb
import pyarrow as pa

from connectors.base import SourceError

SUFFIXES = (".xlsx", ".xlsm")
BATCH = 10_000


def is_workbook(name: str | Path) -> bool:
    return str(name).lower().endswith(SUFFIXES)


def cell_text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, (date, time)):
        return value.isoformat()
    text = str(value)
    return text if text.strip() else None


def read_sheet(con: duckdb.DuckDBPyConnection, path: Path, sheet: str | None, *,
               where: str) -> duckdb.DuckDBPyRelation:
    """The sheet (default: the first) as a temp table `xlsx_input` of text columns named
    by its header row, plus `_row`; `where` prefixes errors ('source lms')."""
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException
    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, OSError, KeyError, ValueError) as exc:
        raise SourceError(f"{where}: {path} cannot be read as an Excel workbook (.xlsx): "
                          f"{exc}; save it again as .xlsx, or export it as CSV") from None
    try:
        if sheet is None:
            worksheet = workbook.worksheets[0]
        elif sheet in workbook.sheetnames:
            worksheet = workbook[sheet]
        else:
            raise SourceError(f"{where}: {path.name} has no sheet {sheet!r}; its sheets are: "
                              f"{', '.join(workbook.sheetnames)}")
        rows = worksheet.iter_rows(values_only=True)
        header = next(rows, None)
        if header is None:
            raise SourceError(f"{where}: {path.name} (sheet {worksheet.title}) is empty: "
                              f"expected a header row")
        names = [cell_text(v) or f"column_{i + 1}" for i, v in enumerate(header)]
        names = [n.strip() for n in names]
        doubled = sorted({n for n in names if names.count(n) > 1})
        if doubled:
            raise SourceError(f"{where}: {path.name} (sheet {worksheet.title}): the header "
                              f"names {', '.join(doubled)} more than once; rename them")
        schema = pa.schema([(n, pa.string()) for n in names] + [("_row", pa.int64())])

        def batches():
            columns = [[] for _ in range(len(names) + 1)]
            for number, row in enumerate(rows, start=1):
                texts = [cell_text(v) for v in row[:len(names)]]
                if all(t is None for t in texts):
                    continue
                texts += [None] * (len(names) - len(texts))
                for column, text in zip(columns, texts):
                    column.append(text)
                columns[-1].append(number)
                if len(columns[-1]) >= BATCH:
                    yield pa.record_batch(columns, schema=schema)
                    columns = [[] for _ in range(len(names) + 1)]
            if columns[-1]:
                yield pa.record_batch(columns, schema=schema)

        reader = pa.RecordBatchReader.from_batches(schema, batches())
        con.register("xlsx_stream", reader)
        try:
            con.execute("create or replace temp table xlsx_input as select * from xlsx_stream")
        finally:
            con.unregister("xlsx_stream")
    finally:
        workbook.close()
    return con.table("xlsx_input")
