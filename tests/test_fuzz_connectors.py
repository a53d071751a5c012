"""Property-based fuzzing of the file connectors (issue 17, "widen the net"): whatever a CSV
export or an Excel workbook holds (any header, any cells, any bytes, any encoding, any
delimiter), a sync loads it with its bad rows in quarantine or stops with a SourceError
naming the file, in bounded time, never a crash; and a sync that stops writes nothing
(the `loads` row says it failed; no learner, event, quarantined row or cursor changes).

Deterministic (`derandomize`, no example database) so CI does not flake; seeded with the
cases that fuzzing found.
"""

from __future__ import annotations

import itertools
import re
import tempfile
import textwrap
import time
from datetime import date, datetime
from pathlib import Path

import openpyxl
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import warehouse
from connectors import SourceError, sync
from connectors.csv_export import CsvConnector
from tests.conftest import MONDAY

FUZZ = settings(derandomize=True, database=None, deadline=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow,
                                       HealthCheck.function_scoped_fixture])
BUDGET_SECONDS = 10            # one sync of a few small files
DATA = ("learners", "courses", "enrolments", "activities", "progress_events", "contributions",
        "outcomes", "quarantine", "source_cursors", "voids")
_names = itertools.count()


@pytest.fixture(scope="module")
def wh():
    con = warehouse.connect(":memory:")
    yield con
    con.close()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz-exports")


def snapshot(con) -> dict:
    return {t: con.execute(f"select count(*), coalesce(sum(hash(t::varchar)), 0) from {t} t"
                           ).fetchall()[0] for t in DATA}


def syncs_or_says_why(con, mapping_text: str, folder: Path):
    """Sync the export of `folder` (its mapping.yaml): a report, or a SourceError naming a
    file and writing nothing; in bounded time."""
    path = folder / "mapping.yaml"
    path.write_text(textwrap.dedent(mapping_text), encoding="utf-8")
    name = re.search(r"name: (\S+)", mapping_text).group(1)
    before = snapshot(con)
    started = time.monotonic()
    try:
        report = sync(con, CsvConnector.from_file(path), now=MONDAY)
    except SourceError as exc:
        assert str(exc)
        assert snapshot(con) == before                           # never a write
        status = con.execute("select status from loads where source = ?", [name]).fetchall()
        assert status in ([], [("failed",)])               # a mapping refused: no load
        report = None
    assert time.monotonic() - started < BUDGET_SECONDS
    return report


# -- CSV exports --------------------------------------------------------------------------------

CELL = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", " ", "A1", "A2", "C1", "zoe@example.org", "bad@@", "42,5 %", "0,5",
                     "150%", "progressed", "completed", "enrolled", "Inscrit",
                     "2026-09-15T18:45:00+02:00", "15/09/2026 18:45", "31/02/2026", "hier",
                     "\"", "\"\"", "a;b", "a,b", "x\ny", "\r", "é", "\u2028", "=1+1",
                     "9" * 40, "-1", "1e400", "NaN", "null", "NULL"]))
HEADERS = ["id", "mail", "course", "title", "at", "verb", "p", "start"]


@st.composite
def csv_file(draw, columns: list[str], declared: str, delimiter: str):
    """A file that is meant to hold `columns` in the `declared` encoding and `delimiter`:
    mostly as it should be, its rows any; now and then its header, its delimiter, its
    encoding or its bytes not."""
    header = list(columns)
    change = draw(st.sampled_from(["none"] * 40 + ["drop", "double", "case", "extra", "any"]))
    if change == "drop" and header:
        header.pop(draw(st.integers(0, len(header) - 1)))
    elif change == "double" and header:
        header.append(draw(st.sampled_from(header)).upper())
    elif change == "case":
        header = [h.upper() for h in header]
    elif change == "extra":
        header.append(draw(st.text(max_size=6)))
    elif change == "any":
        header = draw(st.lists(st.text(max_size=6), max_size=4))
    delimiter = draw(st.sampled_from([delimiter] * 30 + [",", ";", "\t", "|"]))
    rows = draw(st.lists(st.lists(CELL, min_size=0, max_size=len(header) + 1), max_size=6))
    quote = draw(st.booleans())

    def line(cells):
        return delimiter.join(f'"{c}"' if quote else c for c in cells)
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    text = newline.join(line(r) for r in [header, *rows]) + draw(st.sampled_from(["", newline]))
    encoding = draw(st.sampled_from([declared] * 30 + ["utf-8", "utf-8-sig", "latin-1", "utf-16",
                                                       "cp1252"]))
    data = text.encode(encoding, "replace")
    if draw(st.integers(0, 39)) == 23:                # now and then, bytes that are no text
        data = draw(st.binary(max_size=200))
    return data


MAPPED = {"learners": ("l.csv", {"learner_id": "id", "email": "mail"}),
          "courses": ("c.csv", {"course_id": "course", "title": "title", "starts_on": "start"}),
          "enrolments": ("e.csv", {"learner_id": "id", "course_id": "course", "enrolled_at": "at"}),
          "progress_events": ("t.csv", {"learner_id": "id", "course_id": "course", "verb": "verb",
                                        "occurred_at": "at", "progress": "p"})}


@st.composite
def csv_export(draw):
    options = {"delimiter": draw(st.sampled_from([",", ";", "auto"])),
               "encoding": draw(st.sampled_from(["utf-8", "latin-1", "utf-16"]))}
    delimiter = options["delimiter"] if options["delimiter"] != "auto" else draw(
        st.sampled_from([",", ";"]))
    files = {file: draw(csv_file(list(columns.values()), options["encoding"], delimiter))
             for file, columns in MAPPED.values()}
    return files, options


def write_mapping(files: dict[str, bytes], options: dict) -> str:
    entities = "\n".join(
        f"  {entity}: {{file: {file}, columns: {{"
        + ", ".join(f"{k}: {v}" for k, v in columns.items()) + "}}"
        for entity, (file, columns) in MAPPED.items())
    return (f"name: fz{next(_names)}\ndelimiter: \"{options['delimiter']}\"\n"
            f"encoding: {options['encoding']}\nentities:\n{entities}\n")


GOOD = {"l.csv": b"id,mail\nA1,zoe@example.org\n", "c.csv": b"course,title,start\nC1,T,2026-09-07\n",
        "e.csv": b"id,course,at\nA1,C1,2026-09-01\n",
        "t.csv": b"id,course,verb,at,p\nA1,C1,progressed,2026-09-15 10:00,0.5\n"}


@settings(FUZZ, max_examples=40)
@given(export=csv_export())
@example(export=(GOOD, {"delimiter": "auto", "encoding": "utf-8"}))
@example(export=(GOOD | {"t.csv": b"\xff\xfe\x00"}, {"delimiter": "auto", "encoding": "utf-16"}))
@example(export=(GOOD | {"l.csv": b"id,mail\nA1,\xe9\n"}, {"delimiter": ",", "encoding": "utf-8"}))
@example(export=(GOOD | {"l.csv": b""}, {"delimiter": "auto", "encoding": "latin-1"}))
@example(export=(GOOD | {"e.csv": b'id,course,at\nA1,"C1,2026\n'}, {"delimiter": ",",
                                                                      "encoding": "utf-8"}))
def test_any_csv_export_loads_or_stops_naming_the_file(wh, workdir, export):
    files, options = export
    folder = Path(tempfile.mkdtemp(dir=workdir))
    for name, data in files.items():
        (folder / name).write_bytes(data)
    syncs_or_says_why(wh, write_mapping(files, options), folder)


# -- Excel workbooks ----------------------------------------------------------------------------

EXCEL_CELL = st.one_of(
    st.none(), st.booleans(), st.integers(-10**15, 10**15),
    st.floats(allow_nan=False, allow_infinity=False),
    st.datetimes(min_value=datetime(1900, 3, 1), max_value=datetime(2100, 1, 1)),
    st.dates(min_value=date(1900, 3, 1), max_value=date(2100, 1, 1)),
    st.times().map(lambda t: t.replace(tzinfo=None)),
    st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")), max_size=12),
    st.sampled_from(["A1", "C1", "progressed", "=1+1", "15/09/2026 18:45", "42,5 %"]))


@st.composite
def workbook_file(draw, path: Path):
    """A workbook whose sheet is meant to hold the learners: header changed or not, cells
    of every type; now and then, bytes that are no workbook."""
    if draw(st.integers(0, 7)) == 5:
        path.write_bytes(draw(st.binary(max_size=300)))
        return
    header = draw(st.one_of(st.just(["id", "mail", "course", "at"]),
                            st.lists(EXCEL_CELL, max_size=5)))
    rows = draw(st.lists(st.lists(EXCEL_CELL, max_size=5), max_size=6))
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = draw(st.sampled_from(["Apprenants", "Sheet", "x"]))
    for row in [header, *rows]:
        sheet.append(row)
    book.save(path)


@settings(FUZZ, max_examples=30)
@given(data=st.data(), sheet=st.sampled_from([None, "Apprenants", "Missing"]))
@example(data=None, sheet=None)
def test_any_workbook_loads_or_stops_naming_the_file(wh, workdir, data, sheet):
    folder = Path(tempfile.mkdtemp(dir=workdir))
    path = folder / "suivi.xlsx"
    if data is None:
        # a seed: a workbook as documented, after a CSV sync that stopped on the same
        # connection (its staging view was left for inspection: see test_connectors_files_excel)
        (folder / "l.csv").write_text("id,mail\nA1,a@example.org\n", encoding="utf-8")
        syncs_or_says_why(wh, f"""
            name: fz{next(_names)}
            entities:
              learners: {{file: l.csv, columns: {{learner_id: id, email: mail}}}}
              enrolments: {{file: l.csv, columns: {{learner_id: id, course_id: course, enrolled_at: at}}}}
        """, folder)
        book = openpyxl.Workbook()
        book.active.append(["id", "mail", "course", "at"])
        book.active.append([1001, "zoe@example.org", "C1", datetime(2026, 9, 1, 8, 30)])
        book.save(path)
    else:
        data.draw(workbook_file(path))
    sheet_line = f", sheet: {sheet}" if sheet else ""
    syncs_or_says_why(wh, f"""
        name: fz{next(_names)}
        timezone: Europe/Paris
        entities:
          learners: {{file: suivi.xlsx{sheet_line}, columns: {{learner_id: id, email: mail}}}}
          enrolments: {{file: suivi.xlsx{sheet_line}, columns: {{learner_id: id, course_id: course, enrolled_at: at}}}}
    """, folder)
