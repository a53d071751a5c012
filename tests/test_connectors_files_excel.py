"""Excel workbooks as exports: typed cells read as an export's text, sheets by name, kind
`excel` in the sources file, incremental like CSV files; a roster sheet with a row per
enrolment."""

from __future__ import annotations

import textwrap
from datetime import datetime, timezone

import openpyxl
import pytest

from connectors import SourceError, open_source, sync
from connectors.csv_export import CsvConnector
from tests.test_connectors_csv import _table, export


def workbook(path, sheets: dict[str, list[list]]):
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for title, rows in sheets.items():
        ws = wb.create_sheet(title)
        for row in rows:
            ws.append(row)
    wb.save(path)


def sources(tmp_path, text):
    path = tmp_path / "sources.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


SOURCES = """
    sources:
      lms-xlsx:
        kind: excel
        timezone: Europe/Paris
        entities:
          learners: {file: suivi.xlsx, sheet: Apprenants, columns: {learner_id: N°, email: Courriel}}
          courses: {file: suivi.xlsx, sheet: Cours, columns: {course_id: Code, title: Titre, starts_on: Début}}
          enrolments: {file: suivi.xlsx, sheet: Apprenants, columns: {learner_id: N°, course_id: Cours, enrolled_at: Inscrit le}}
          progress_events: {file: suivi.xlsx, sheet: Traces, columns: {learner_id: N°, course_id: Cours, verb: Action, occurred_at: Quand, progress: Avancement}}
"""


def suivi(tmp_path, extra_traces=()):
    workbook(tmp_path / "suivi.xlsx", {
        "Apprenants": [["N°", "Courriel", "Cours", "Inscrit le"],
                       [1001, "zoe@example.org", "C1", datetime(2026, 9, 1, 8, 30)],
                       [1002, "eric@example.org", "C1", "01/09/2026 10:30"],
                       [None, None, None, None], [None, None, None, None]],   # formatting, not data
        "Cours": [["Code", "Titre", "Début"], ["C1", "Anglais", datetime(2026, 9, 7).date()]],
        "Traces": [["N°", "Cours", "Action", "Quand", "Avancement"],
                   [1001, "C1", "progressed", datetime(2026, 9, 15, 18, 45), 0.425],
                   [1001, "C1", "completed", datetime(2026, 9, 16, 18, 45), 1],
                   [None, None, None, None, None],
                   [1002, "C1", "progressed", "le 17", 0.1],
                   *extra_traces],
    })
    return open_source("lms-xlsx", sources(tmp_path, SOURCES))


def utc(*args):
    return datetime(*args, tzinfo=timezone.utc)


def test_a_workbook_loads_its_sheets_with_cells_read_as_text(wh, tmp_path):
    source = suivi(tmp_path)
    assert source.kind == "excel"
    report = sync(wh, source)
    q = lambda sql: wh.execute(sql).fetchall()  # noqa: E731
    # whole numbers stay whole (1001, not 1001.0); empty rows are not learners
    assert q("select learner_id, email from learners order by 1") == [
        ("1001", "zoe@example.org"), ("1002", "eric@example.org")]
    assert q("select starts_on::varchar from courses") == [("2026-09-07",)]
    # a date cell and a day-first text cell, both in Paris time
    assert q("select learner_id, enrolled_at from enrolments order by 1") == [
        ("1001", utc(2026, 9, 1, 6, 30)), ("1002", utc(2026, 9, 1, 8, 30))]
    assert q("select occurred_at, progress from progress_events order by 1") == [
        (utc(2026, 9, 15, 16, 45), 0.425), (utc(2026, 9, 16, 16, 45), 1.0)]
    # the row keeps its place in the sheet (4th under the header) though one is empty
    assert q("select entity, regexp_extract(source_file, '[^/]+$'), row_number, reason from quarantine") == [
        ("progress_events", "suivi.xlsx", 4, "unreadable or missing occurred_at: le 17")]
    assert report.rows == {"learners": 2, "courses": 1, "enrolments": 2, "progress_events": 3}


def test_an_unchanged_workbook_is_skipped_and_a_changed_one_reloaded_without_duplicates(wh, tmp_path):
    sync(wh, suivi(tmp_path))
    source = open_source("lms-xlsx", tmp_path / "sources.yaml")
    assert sync(wh, source).rows == {}                      # untouched since
    # saved again with the same cells (a workbook's bytes change at each save): read
    # again, nothing loaded twice
    assert sync(wh, suivi(tmp_path)).loaded.get("progress_events", 0) == 0
    source = suivi(tmp_path, extra_traces=[[1002, "C1", "progressed", datetime(2026, 9, 18, 9), 0.2]])
    again = sync(wh, source)
    assert again.loaded["progress_events"] == 1
    assert wh.execute("select count(*), count(distinct (learner_id, course_id, activity_id, verb, occurred_at, progress)) from progress_events").fetchall() == [(3, 3)]


@pytest.mark.parametrize("entity, message", [
    ("{file: suivi.xlsx, sheet: Learners, columns: {learner_id: N°}}",
     "suivi.xlsx has no sheet 'Learners'; its sheets are: Apprenants, Cours, Traces"),
    ("{file: suivi.xlsx, sheet: Cours, columns: {learner_id: N°}}",
     "suivi.xlsx (sheet Cours): column 'N°' (mapped to learners.learner_id) is not in the file; "
     "its columns are: Code, Titre, Début"),
    ("{file: broken.xlsx, columns: {learner_id: id}}",
     "broken.xlsx cannot be read as an Excel workbook (.xlsx)"),
    ("{file: old.xls, columns: {learner_id: id}}",
     "old.xls: an Excel 97-2003 workbook (.xls) cannot be read; save it as .xlsx, or export it as CSV"),
])
def test_workbook_mistakes_say_what_and_where(wh, tmp_path, entity, message):
    suivi(tmp_path)
    (tmp_path / "broken.xlsx").write_text("id\nA1\n")
    (tmp_path / "old.xls").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1")
    path = sources(tmp_path, f"sources:\n  x:\n    kind: excel\n    entities:\n      learners: {entity}\n")
    with pytest.raises(SourceError) as exc:
        sync(wh, open_source("x", path))
    assert message in str(exc.value) and str(exc.value).startswith("source x")


def test_a_sheet_is_for_workbooks_only(tmp_path):
    path = sources(tmp_path, "sources:\n  x:\n    kind: excel\n    entities:\n      learners: "
                             "{file: apprenants.csv, sheet: Apprenants, columns: {learner_id: id}}\n")
    with pytest.raises(SourceError) as exc:
        open_source("x", path)
    assert str(exc.value) == ("source x: entities.learners: Value error, sheet: apprenants.csv is not an "
                              "Excel workbook (.xlsx); remove `sheet` or name the .xlsx file")


def test_the_example_sources_file_opens_its_file_sources():
    from pathlib import Path

    from connectors import read_sources
    from connectors.sources import open_config
    example = Path(__file__).resolve().parent.parent / "connectors" / "sources.example.yaml"
    sources = read_sources(example)
    opened = {name: open_config(name, options, example.parent)
              for name, options in sources.items() if options["kind"] in ("excel", "oulad")}
    assert {name: c.kind for name, c in opened.items()} == {
        "oulad": "oulad", "suivi-xlsx": "excel"}
    assert opened["oulad"].source.presentations == ["2013J"]
    assert opened["suivi-xlsx"].source.entities["progress_events"].sheet == "Traces"


def test_a_sheet_row_set_aside_after_typing_keeps_its_raw_row(wh, tmp_path):
    """A sheet is staged as a table: a row found wrong across rows (an id twice, an
    unknown learner) is read again by its place in that table for its raw row."""
    workbook(tmp_path / "suivi.xlsx", {
        "Apprenants": [["N°", "Courriel", "Cours", "Inscrit le"],
                       [1001, "zoe@example.org", "C1", datetime(2026, 9, 1, 8, 30)],
                       [1002, "eric@example.org", "C1", "01/09/2026 10:30"],
                       [1001, "zoe.b@example.org", "C1", "02/09/2026 10:30"]],
        "Cours": [["Code", "Titre", "Début"], ["C1", "Anglais", datetime(2026, 9, 7).date()]],
        "Traces": [["N°", "Cours", "Action", "Quand", "Avancement"],
                   [1002, "C1", "progressed", datetime(2026, 9, 15, 18, 45), 0.425]],
    })
    sync(wh, open_source("lms-xlsx", sources(tmp_path, SOURCES)))
    assert wh.execute(
        "select entity, row_number, reason, raw->>'learner_id', raw->>'email' from quarantine "
        "order by entity, row_number").fetchall() == [
        ("enrolments", 1, "unknown learner: 1001", "1001", None),
        ("enrolments", 3, "unknown learner: 1001", "1001", None),
        ("learners", 1, "learner_id appears more than once in this load", "1001", "zoe@example.org"),
        ("learners", 3, "learner_id appears more than once in this load", "1001", "zoe.b@example.org"),
    ]
    assert wh.execute("select learner_id from learners").fetchall() == [("1002",)]


def test_a_roster_sheet_with_a_row_per_enrolment_loads_each_learner_once(wh, tmp_path):
    # the layout of docs/connectors-files.md's workbook: learners and enrolments both read
    # from "Apprenants", one row per enrolment, so a learner on two courses is on two rows
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "Apprenants"
    sheet.append(["N°", "Courriel", "Cours", "Inscrit le"])
    sheet.append([1001, "zoe@example.org", "C1", datetime(2026, 9, 1, 8, 30)])
    sheet.append([1001, "zoe@example.org", "C2", datetime(2026, 9, 2, 8, 30)])
    sheet.append([1002, "eric@example.org", "C1", datetime(2026, 9, 1, 8, 30)])
    sheet.append([1003, "a@example.org", "C1", datetime(2026, 9, 1, 8, 30)])
    sheet.append([1003, "b@example.org", "C2", datetime(2026, 9, 1, 8, 30)])   # which one?
    courses = workbook.create_sheet("Cours")
    courses.append(["Code", "Titre"])
    for row in (["C1", "Anglais"], ["C1", "Anglais"], ["C2", "Allemand"]):
        courses.append(row)
    workbook.save(tmp_path / "suivi.xlsx")
    mapping = export(tmp_path, {}, """
        name: review
        entities:
          learners:   {file: suivi.xlsx, sheet: Apprenants, columns: {learner_id: N°, email: Courriel}}
          courses:    {file: suivi.xlsx, sheet: Cours, columns: {course_id: Code, title: Titre}}
          enrolments: {file: suivi.xlsx, sheet: Apprenants, columns: {learner_id: N°, course_id: Cours, enrolled_at: Inscrit le}}
    """)
    sync(wh, CsvConnector.from_file(mapping))
    assert _table(wh, "select learner_id, email from learners") == [
        ("1001", "zoe@example.org"), ("1002", "eric@example.org")]
    assert _table(wh, "select course_id, title from courses") == [("C1", "Anglais"), ("C2", "Allemand")]
    assert _table(wh, "select learner_id, course_id from enrolments") == [
        ("1001", "C1"), ("1001", "C2"), ("1002", "C1")]
    # a learner on two rows that disagree is still set aside, both rows
    assert _table(wh, "select entity, row_number, reason from quarantine where entity = 'learners'") == [
        ("learners", 4, "learner_id appears more than once in this load"),
        ("learners", 5, "learner_id appears more than once in this load")]


def test_a_sheet_loads_after_a_csv_sync_that_stopped_on_the_same_connection(wh, tmp_path):
    """A sync that stops keeps what it staged (a view over a CSV file) until the next one;
    a workbook staged for the same entity then replaces it (found by
    tests/test_fuzz_connectors.py: it was a DuckDB catalog error out of the sync)."""
    (tmp_path / "l.csv").write_text("id,mail\nA1,a@example.org\n", encoding="utf-8")
    (tmp_path / "e.csv").write_text("id,nocourse\nA1,x\n", encoding="utf-8")
    stopped = export(tmp_path, {}, """
        name: lms-csv
        entities:
          learners: {file: l.csv, columns: {learner_id: id, email: mail}}
          enrolments: {file: e.csv, columns: {learner_id: id, course_id: course, enrolled_at: at}}
    """)
    with pytest.raises(SourceError, match="column 'course'"):
        sync(wh, CsvConnector.from_file(stopped))
    workbook(tmp_path / "suivi.xlsx", {"Apprenants": [["N°", "Courriel"], [1001, "zoe@example.org"]]})
    (tmp_path / "xlsx").mkdir()
    sheet = export(tmp_path / "xlsx", {}, """
        name: lms-xlsx
        directory: ..
        entities:
          learners: {file: suivi.xlsx, columns: {learner_id: N°, email: Courriel}}
    """)
    assert sync(wh, CsvConnector.from_file(sheet)).loaded == {"learners": 1}
    assert _table(wh, "select learner_id, email from learners") == [("1001", "zoe@example.org")]
