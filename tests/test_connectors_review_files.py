"""File sources as a training team uses them: what a review of the CSV and Excel
connectors found wrong, each as the user meets it (warehouse content, quarantine rows,
what `relance sync` prints)."""

from __future__ import annotations

import textwrap

import pytest
import typer

from connectors import SourceError, sync
from connectors.csv_export import CsvConnector
from flows.sync_progress import load_source
from relance.cli import main


def export(tmp_path, files: dict[str, str], mapping: str):
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    path = tmp_path / "mapping.yaml"
    path.write_text(textwrap.dedent(mapping), encoding="utf-8")
    return path


ROSTER = """
    name: review
    delimiter: ","
    entities:
      learners:        {file: learners.csv, columns: {learner_id: id, email: mail}}
      courses:         {file: courses.csv, columns: {course_id: code, title: title}}
      enrolments:      {file: enrolments.csv, columns: {learner_id: id, course_id: course, enrolled_at: date}}
      progress_events: {file: events.csv, columns: {learner_id: id, course_id: course, verb: verb, occurred_at: at}}
"""


def test_cli_prints_a_quarantine_reason_holding_brackets_as_written(tmp_path):
    # a value of the export is printed in the reason: rich must not read it as markup
    # (a closing tag crashed the CLI after the load had committed; `[bold]` vanished)
    mapping = export(tmp_path, {"learners.csv": "id,mail\nA1,[/b]@example\nA2,[bold]x\n"}, """
        name: review
        entities:
          learners: {file: learners.csv, columns: {learner_id: id, email: mail}}
    """)
    result = load_source.fn(str(mapping), str(tmp_path / "sources.yaml"),
                            str(tmp_path / "w.duckdb"), None)
    with main.console.capture() as captured:
        main._print_sync(result)
    text = captured.get()
    assert "quarantined learners: malformed email: [/b]@example (1)" in text
    assert "quarantined learners: malformed email: [bold]x (1)" in text


def test_cli_error_naming_a_column_with_brackets_is_printed_as_written(tmp_path):
    mapping = export(tmp_path, {"learners.csv": "id,Note [/i]\nA1,x\n"}, """
        name: review
        entities:
          learners: {file: learners.csv, columns: {learner_id: ident}}
    """)

    def body():
        CsvConnector.from_file(mapping).stage(__import__("warehouse").connect(":memory:"))

    with main.err.capture() as captured, pytest.raises(typer.Exit):
        main._main(body)
    text = captured.get()
    assert "column 'ident' (mapped to learners.learner_id) is not in the file" in text
    assert "its columns are: id, Note [/i]" in text


def _table(con, sql):
    return sorted(con.execute(sql).fetchall())


def test_rows_waiting_for_a_fixed_learner_load_at_the_next_sync(wh, tmp_path):
    # A2's e-mail is malformed: A2 is set aside, and so are A2's enrolment and event,
    # for want of A2. The team fixes the learners file only and syncs again.
    mapping = export(tmp_path, {
        "learners.csv": "id,mail\nA1,a1@example.org\nA2,a2@@example\n",
        "courses.csv": "code,title\nC1,Anglais\n",
        "enrolments.csv": "id,course,date\nA1,C1,01/09/2026\nA2,C1,01/09/2026\n",
        "events.csv": "id,course,verb,at\nA1,C1,accessed,02/09/2026 10:00\nA2,C1,accessed,02/09/2026 11:00\n",
    }, ROSTER)
    source = CsvConnector.from_file(mapping)
    first = sync(wh, source)
    assert first.quarantined == {"learners": 1, "courses": 0, "enrolments": 1, "progress_events": 1}
    (tmp_path / "learners.csv").write_text("id,mail\nA1,a1@example.org\nA2,a2@example.org\n",
                                           encoding="utf-8")
    second = sync(wh, source)
    assert second.n_quarantined == 0
    assert _table(wh, "select learner_id, course_id from enrolments") == [("A1", "C1"), ("A2", "C1")]
    assert _table(wh, "select learner_id from progress_events") == [("A1",), ("A2",)]
    # nothing waits any more: nothing is read again
    assert sync(wh, source).rows == {}
    assert _table(wh, "select learner_id from progress_events") == [("A1",), ("A2",)]


def test_rows_waiting_for_a_learner_another_source_brings_load_once_it_has(wh, tmp_path):
    # the LMS exports events; the HR system, another source, exports the roster. The
    # LMS's file is synced first, before the roster has A2: A2's event waits; once the HR
    # source loads A2, the LMS's next sync reads its file again, unchanged as it is.
    hr_dir, lms_dir = tmp_path / "hr", tmp_path / "lms"
    hr_dir.mkdir(), lms_dir.mkdir()
    hr = export(hr_dir, {
        "learners.csv": "id,mail,dept\nA1,a1@example.org,Ventes\n",
        "courses.csv": "code,title\nC1,Anglais\n",
        "enrolments.csv": "id,course,date,group\nA1,C1,01/09/2026,G1\n",
    }, "\n".join(line for line in ROSTER.replace("name: review", "name: hr").splitlines()
                 if "progress_events" not in line))
    lms = export(lms_dir, {
        "events.csv": "id,course,verb,at\nA1,C1,accessed,02/09/2026 10:00\nA2,C1,accessed,02/09/2026 11:00\n",
    }, """
        name: lms
        delimiter: ","
        entities:
          progress_events: {file: events.csv, columns: {learner_id: id, course_id: course, verb: verb, occurred_at: at}}
    """)
    sync(wh, CsvConnector.from_file(hr))
    assert sync(wh, CsvConnector.from_file(lms)).quarantined == {"progress_events": 1}
    # nothing new anywhere: the waiting row is not read again for nothing
    assert sync(wh, CsvConnector.from_file(lms)).rows == {}
    # the roster is exported again with nothing new about its learners and enrolments (only
    # columns relance does not read changed): the events file is not read again either
    (hr_dir / "learners.csv").write_text("id,mail,dept\nA1,a1@example.org,Achats\n")
    (hr_dir / "enrolments.csv").write_text("id,course,date,group\nA1,C1,01/09/2026,G2\n")
    assert sync(wh, CsvConnector.from_file(hr)).rows == {"learners": 1, "enrolments": 1}
    assert sync(wh, CsvConnector.from_file(lms)).rows == {}
    (hr_dir / "learners.csv").write_text("id,mail,dept\nA1,a1@example.org,Achats\nA2,a2@example.org,Ventes\n")
    (hr_dir / "enrolments.csv").write_text("id,course,date\nA1,C1,01/09/2026\nA2,C1,01/09/2026\n")
    sync(wh, CsvConnector.from_file(hr))
    again = sync(wh, CsvConnector.from_file(lms))
    assert (again.rows, again.quarantined) == ({"progress_events": 2}, {"progress_events": 0})
    assert _table(wh, "select learner_id from progress_events") == [("A1",), ("A2",)]
    # nothing waits any more
    assert sync(wh, CsvConnector.from_file(lms)).rows == {}


def test_events_exported_before_their_learner_load_once_the_roster_has_them(wh, tmp_path):
    # An append-only events file and a roster re-exported each day: L3's first event
    # comes a day before L3 is in the roster.
    mapping = export(tmp_path, {
        "learners.csv": "id,mail\nL1,l1@example.org\n",
        "courses.csv": "code,title\nC1,Anglais\n",
        "enrolments.csv": "id,course,date\nL1,C1,01/09/2026\n",
        "events.csv": "id,course,verb,at\nL1,C1,accessed,02/09/2026 10:00\nL3,C1,accessed,02/09/2026 11:00\n",
    }, ROSTER)
    source = CsvConnector.from_file(mapping)
    assert sync(wh, source).quarantined["progress_events"] == 1
    (tmp_path / "learners.csv").write_text("id,mail\nL1,l1@example.org\nL3,l3@example.org\n",
                                           encoding="utf-8")
    (tmp_path / "enrolments.csv").write_text("id,course,date\nL1,C1,01/09/2026\nL3,C1,01/09/2026\n",
                                             encoding="utf-8")
    with (tmp_path / "events.csv").open("a", encoding="utf-8") as f:
        f.write("L3,C1,completed,03/09/2026 09:00\nL1,C1,accessed,03/09/2026 10:00\n")
    second = sync(wh, source)
    assert second.n_quarantined == 0
    assert _table(wh, "select learner_id, verb, occurred_at::varchar from progress_events") == [
        ("L1", "accessed", "2026-09-02 08:00:00+00"), ("L1", "accessed", "2026-09-03 08:00:00+00"),
        ("L3", "accessed", "2026-09-02 09:00:00+00"), ("L3", "completed", "2026-09-03 07:00:00+00")]
    # the next append is read alone again, its rows numbered as in the file
    with (tmp_path / "events.csv").open("a", encoding="utf-8") as f:
        f.write("L3,C1,bogus,04/09/2026 09:00\n")
    third = sync(wh, source)
    assert third.rows == {"progress_events": 1}
    assert wh.execute("select row_number from quarantine where load_id = ?",
                      [third.load_id]).fetchall() == [(5,)]


def test_latin1_files_of_the_same_name_in_two_folders_each_load_their_own_rows(wh, tmp_path):
    # an LMS that exports every report as export.csv, one folder per report: the
    # UTF-8 copies of the two files must not be one file
    for folder, text in (("apprenants", "id;mail\nA1;zoé@example.org\n"),
                         ("cours", "code;titre\nC1;Anglais débutant\n")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "export.csv").write_bytes(text.encode("latin-1"))
    mapping = export(tmp_path, {}, """
        name: review
        delimiter: ";"
        encoding: latin-1
        entities:
          learners: {file: apprenants/export.csv, columns: {learner_id: id, email: mail}}
          courses: {file: cours/export.csv, columns: {course_id: code, title: titre}}
    """)
    report = sync(wh, CsvConnector.from_file(mapping))
    assert report.n_quarantined == 0
    assert wh.execute("select learner_id, email from learners").fetchall() == [("A1", "zoé@example.org")]
    assert wh.execute("select course_id, title from courses").fetchall() == [("C1", "Anglais débutant")]


def test_a_roster_sheet_with_a_row_per_enrolment_loads_each_learner_once(wh, tmp_path):
    # the layout of docs/connectors-files.md's workbook: learners and enrolments both read
    # from "Apprenants", one row per enrolment, so a learner on two courses is on two rows
    from datetime import datetime

    import openpyxl
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


@pytest.mark.parametrize("header, named", [
    ("id,mail,mail", "mail"),          # read as mail, mail_1: the first was taken silently
    ("id,Mail,mail", "Mail, mail"),    # read as Mail, mail_1: "mail is not in the file"
])
def test_a_mapped_column_named_twice_in_a_csv_header_is_an_error_naming_it(wh, tmp_path, header, named):
    mapping = export(tmp_path, {"learners.csv": f"{header}\nA1,old@example.org,new@example.org\n"}, """
        name: review
        entities:
          learners: {file: learners.csv, columns: {learner_id: id, email: mail}}
    """)
    with pytest.raises(SourceError) as caught:
        sync(wh, CsvConnector.from_file(mapping))
    assert str(caught.value) == (f"source review: learners.csv: the header names {named} more "
                                 f"than once (names are compared regardless of case); rename them")
    assert wh.execute("select count(*) from learners").fetchall() == [(0,)]


def test_a_column_named_twice_that_the_mapping_does_not_read_is_no_error(wh, tmp_path):
    mapping = export(tmp_path, {"learners.csv": "id,mail,note,Note\nA1,a@example.org,x,y\n"}, """
        name: review
        entities:
          learners: {file: learners.csv, columns: {learner_id: id, email: mail}}
    """)
    sync(wh, CsvConnector.from_file(mapping))
    assert wh.execute("select learner_id, email from learners").fetchall() == [("A1", "a@example.org")]


def test_an_empty_csv_file_is_an_error_saying_so(wh, tmp_path):
    mapping = export(tmp_path, {"learners.csv": ""}, """
        name: review
        entities:
          learners: {file: learners.csv, columns: {learner_id: id, email: mail}}
    """)
    with pytest.raises(SourceError, match=r"learners.csv: the file is empty: expected a header "
                                          r"row naming its columns \(id, mail\)"):
        sync(wh, CsvConnector.from_file(mapping))


def test_ragged_rows_among_the_first_ones_are_quarantined_with_or_without_a_delimiter(wh, tmp_path):
    # with `delimiter: auto`, rows with more or fewer values than the header among the
    # first rows hid the delimiter from DuckDB's sniffing (the file was read as one column
    # and the sync stopped); the read now sets them aside, and the loader quarantines them
    mapping = export(tmp_path, {"learners.csv": "id,mail\nA1,a@example.org,extra\nA2\nA3,c@example.org\n"}, """
        name: review
        entities:
          learners: {file: learners.csv, columns: {learner_id: id, email: mail}}
    """)
    report = sync(wh, CsvConnector.from_file(mapping))
    assert (report.rows, report.quarantined) == ({"learners": 3}, {"learners": 2})
    assert wh.execute("select learner_id from learners").fetchall() == [("A3",)]
    assert wh.execute("select row_number, raw->>'line', split_part(reason, ' (', 1) "
                      "from quarantine order by row_number").fetchall() == [
        (1, "A1,a@example.org,extra", "more values than the header has columns"),
        (2, "A2", "fewer values than the header has columns")]
    wh.execute("delete from quarantine; delete from learners; delete from source_cursors")
    # with the delimiter set, a ragged row far down is quarantined as written, and the
    # rest loads
    (tmp_path / "mapping.yaml").write_text(
        (tmp_path / "mapping.yaml").read_text().replace("name: review", "name: review\ndelimiter: \",\""))
    (tmp_path / "learners.csv").write_text("id,mail\n" + "A0,a@example.org\n" * 3000
                                           + "A1,a@example.org,extra\n")
    report = sync(wh, CsvConnector.from_file(tmp_path / "mapping.yaml"))
    assert report.quarantined["learners"] == 1
    assert wh.execute("select learner_id from learners").fetchall() == [("A0",)]
    assert wh.execute("select row_number, raw->>'line', reason from quarantine").fetchall() == [
        (3001, "A1,a@example.org,extra", "more values than the header has columns (Expected "
         "Number of Columns: 2 Found: 3): a value holding the delimiter must be quoted with \"")]


class _RecordsSource:
    """Stages events as the LMS connectors do: a table whose `_row` is the record of the
    LMS's answer an event came from (Moodle's grades, Canvas's module progress: one
    record, several events; a record read twice, as a user listed on two pages)."""
    kind, name, timezone, progress_scale = "records", "lms", "Europe/Paris", "auto"
    datetime_formats = ["%d/%m/%Y %H:%M"]
    date_formats = ["%d/%m/%Y"]

    def stage(self, con, state):
        con.execute("""
            create or replace table stg_records__progress_events as
            select * from (values
                ('grade:1', 'A1', 'C1', 'q1', 'submitted', '2026-09-02 10:00', null, 'grades', 7),
                ('grade:2', 'A1', 'C1', 'q2', 'submitted', '2026-09-03 10:00', null, 'grades', 7),
                ('grade:1', 'A1', 'C1', 'q1', 'submitted', '2026-09-02 10:00', null, 'grades', 9),
                ('grade:3', 'A1', 'C1', 'q3', 'submitted', '2026-09-04 10:00', null, 'grades', 9))
            t(event_id, learner_id, course_id, activity_id, verb, occurred_at, progress, _file, _row)
        """).fetchall()
        return {"progress_events": 4}


def test_an_event_sharing_its_record_with_a_repeat_is_loaded(wh):
    wh.execute("insert into learners (learner_id, source, loaded_at) values ('A1', 't', now())").fetchall()
    wh.execute("insert into courses (course_id, title, source, loaded_at) "
               "values ('C1', 'Anglais', 't', now())").fetchall()
    wh.execute("insert into enrolments (learner_id, course_id, enrolled_at, status, source, loaded_at) "
               "values ('A1', 'C1', now(), 'enrolled', 't', now())").fetchall()
    report = sync(wh, _RecordsSource())
    assert _table(wh, "select event_id from progress_events") == [("grade:1",), ("grade:2",), ("grade:3",)]
    # the repeat alone is set aside, once, with its own raw row
    assert wh.execute("select row_number, raw->>'event_id', reason from quarantine").fetchall() == [
        (9, "grade:1", "duplicate event in this load: grade:1")]
    assert report.loaded == {"progress_events": 3} and report.quarantined == {"progress_events": 1}


def test_a_csv_utf8_export_under_a_latin1_mapping_is_read_as_utf8(wh, tmp_path):
    # Excel's "CSV UTF-8" (with its BOM) one day, the mapping written for Latin-1 exports
    (tmp_path / "apprenants.csv").write_bytes("\ufeffid;mail;prénom\r\nA1;zoe@example.org;Zoé\r\n"
                                              .encode("utf-8"))
    mapping = export(tmp_path, {}, """
        name: review
        delimiter: ";"
        encoding: latin-1
        entities:
          learners: {file: apprenants.csv, columns: {learner_id: id, email: mail, first_name: prénom}}
    """)
    sync(wh, CsvConnector.from_file(mapping))
    assert wh.execute("select learner_id, first_name from learners").fetchall() == [("A1", "Zoé")]


def test_an_event_appended_while_a_first_sync_reads_the_file_is_read_at_the_next(wh, tmp_path, monkeypatch):
    # An export still being written: a row lands after the load has read the file, while
    # the file (read for the first time) is still being fingerprinted beside the load.
    # The fingerprint must not cover that row, or the next sync finds the file unchanged.
    import threading

    from connectors import base, csv_export
    mapping = export(tmp_path, {
        "learners.csv": "id,mail\nA1,a1@example.org\n",
        "courses.csv": "code,title\nC1,Anglais\n",
        "enrolments.csv": "id,course,date\nA1,C1,01/09/2026\n",
        "events.csv": "id,course,verb,at\nA1,C1,accessed,02/09/2026 10:00\n",
    }, ROSTER)
    appended = threading.Event()
    fingerprint, drop = csv_export.file_fingerprint, base._drop_staging

    def fingerprint_after_the_append(path, prefix=None, **limit):
        if prefix is None and path.name == "events.csv":
            appended.wait(30)
        return fingerprint(path, prefix, **limit)

    def drop_then_append(con, name):
        drop(con, name)
        if name == "stg_csv__progress_events" and not appended.is_set():
            with (tmp_path / "events.csv").open("a", encoding="utf-8") as f:
                f.write("A1,C1,completed,03/09/2026 10:00\n")
            appended.set()

    monkeypatch.setattr(csv_export, "file_fingerprint", fingerprint_after_the_append)
    monkeypatch.setattr(base, "_drop_staging", drop_then_append)
    source = CsvConnector.from_file(mapping)
    assert sync(wh, source).rows["progress_events"] == 1
    monkeypatch.undo()
    assert sync(wh, source).rows == {"progress_events": 1}
    assert _table(wh, "select verb from progress_events") == [("accessed",), ("completed",)]
