"""Every export format the issue lists, on one small French-style export written each way:
`,` and `;`, UTF-8 with and without BOM, Latin-1, UTF-16; ISO 8601 and `dd/mm/yyyy HH:MM`
dates; decimal commas. Whatever the writing, the warehouse holds the same thing.
Rows a read cannot split (too many or too few values, a quote left open, Windows line ends)
are quarantined as written, or stop the sync naming the row when they would swallow the rest."""

from __future__ import annotations

import textwrap
from datetime import datetime, timezone

import pytest

from connectors import SourceError, sync
from connectors.csv_export import CsvConnector
from tests.test_connectors_csv import export, tiny_export

ROWS = {
    # (an address with an accent before the @ is no address relance can send to: the accents
    # read back are the names')
    "apprenants": [["id", "courriel", "prénom"], ["A1", "zoe@example.org", "Zoé"],
                   ["A2", "eric@example.org", "Éric"]],
    "cours": [["code", "titre", "début"], ["C1", "Anglais « B2 »", "07/09/2026"]],
    "inscriptions": [["id", "cours", "date"], ["A1", "C1", "2026-09-01T08:30:00Z"],
                     ["A2", "C1", "01/09/2026 10:30"]],
    "calendrier": [["cours", "activité", "échéance", "poids"],
                   ["C1", "quiz-1", "14/09/2026 23:59", "1,5"], ["C1", "devoir-1", "2026-09-21", "2,25"]],
    "traces": [["id", "cours", "verbe", "quand", "avancement"],
               ["A1", "C1", "progressed", "15/09/2026 18:45", "42,5 %"],
               ["A1", "C1", "completed", "2026-09-16T18:45:00+02:00", "0,5"],
               ["A2", "C1", "progressed", "2026-09-17 09:00", "12,5"],
               ["A2", "C1", "progressed", "32/09/2026 09:00", ""]],
}

MAPPING = """
    name: lms-fr
    delimiter: "{delimiter}"
    encoding: {encoding}
    entities:
      learners: {{file: apprenants.csv, columns: {{learner_id: id, email: courriel, first_name: prénom}}}}
      courses: {{file: cours.csv, columns: {{course_id: code, title: titre, starts_on: début}}}}
      enrolments: {{file: inscriptions.csv, columns: {{learner_id: id, course_id: cours, enrolled_at: date}}}}
      activities: {{file: calendrier.csv, columns: {{course_id: cours, activity_id: activité, due_at: échéance, weight: poids}}}}
      progress_events: {{file: traces.csv, columns: {{learner_id: id, course_id: cours, verb: verbe, occurred_at: quand, progress: avancement}}}}
"""


def write_export(directory, delimiter: str, encoding: str):
    for name, rows in ROWS.items():
        text = "".join(delimiter.join(
            f'"{v}"' if delimiter in v or "," in v else v for v in row) + "\r\n" for row in rows)
        (directory / f"{name}.csv").write_bytes(text.encode(encoding))
    declared = {"utf-8-sig": "utf-8"}.get(encoding, encoding)
    path = directory / "mapping.yaml"
    path.write_text(textwrap.dedent(MAPPING.format(delimiter=delimiter, encoding=declared)),
                    encoding="utf-8")
    return CsvConnector.from_file(path)


def utc(*args):
    return datetime(*args, tzinfo=timezone.utc)


def rows(wh, sql, params=None):
    return wh.execute(sql, params or []).fetchall()


@pytest.mark.parametrize("delimiter", [",", ";"])
@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "latin-1", "utf-16"])
def test_the_same_export_written_every_way_loads_the_same(wh, tmp_path, delimiter, encoding):
    report = sync(wh, write_export(tmp_path, delimiter, encoding))
    q = lambda sql: wh.execute(sql).fetchall()  # noqa: E731
    assert q("select learner_id, email, first_name from learners order by 1") == [
        ("A1", "zoe@example.org", "Zoé"), ("A2", "eric@example.org", "Éric")]
    assert q("select title, starts_on::varchar from courses") == [("Anglais « B2 »", "2026-09-07")]
    # ISO 8601 with Z, and a day-first local time in the source's timezone (Paris, UTC+2)
    assert q("select learner_id, enrolled_at from enrolments order by 1") == [
        ("A1", utc(2026, 9, 1, 8, 30)), ("A2", utc(2026, 9, 1, 8, 30))]
    assert q("select activity_id, due_at, weight from activities order by 1") == [
        ("devoir-1", utc(2026, 9, 20, 22), 2.25), ("quiz-1", utc(2026, 9, 14, 21, 59), 1.5)]
    assert q("select learner_id, verb, occurred_at, progress from progress_events order by occurred_at") == [
        ("A1", "progressed", utc(2026, 9, 15, 16, 45), 0.425),
        ("A1", "completed", utc(2026, 9, 16, 16, 45), 0.5),
        ("A2", "progressed", utc(2026, 9, 17, 7), 0.125)]
    # the 32nd of September is not a date: quarantined, with the text as written
    assert q("select entity, row_number, reason from quarantine") == [
        ("progress_events", 4, "unreadable or missing occurred_at: 32/09/2026 09:00")]
    assert report.n_quarantined == 1


@pytest.mark.parametrize("written, expected", [
    ("2026-09-15T18:45:00Z", utc(2026, 9, 15, 18, 45)),
    ("2026-09-15T18:45:00+02:00", utc(2026, 9, 15, 16, 45)),
    ("2026-09-15T18:45:00+0200", utc(2026, 9, 15, 16, 45)),
    ("2026-09-15 18:45:00+02", utc(2026, 9, 15, 16, 45)),
    ("2026-09-15T12:45:00-05:00", utc(2026, 9, 15, 17, 45)),
    ("2026-09-15T18:45:00.250", utc(2026, 9, 15, 16, 45, 0, 250000)),   # no offset: Paris
    ("2026-09-15 18:45", utc(2026, 9, 15, 16, 45)),
    ("2026-09-15", utc(2026, 9, 14, 22)),
    ("15/09/2026 18:45", utc(2026, 9, 15, 16, 45)),
    ("  15/09/2026 18:45:30 ", utc(2026, 9, 15, 16, 45, 30)),
    ("15/09/2026", utc(2026, 9, 14, 22)),
])
def test_timestamps_with_and_without_an_offset(wh, tmp_path, written, expected):
    sync(wh, tiny_export(tmp_path, enrolled_at="2026-09-01", events=f'A1,C1,progressed,"{written}",\n'))
    assert wh.execute("select occurred_at from progress_events").fetchall() == [(expected,)]


def test_a_row_far_down_that_is_not_utf8_is_quarantined_saying_how_to_fix_it(wh, tmp_path):
    """A file said to be UTF-8 with a Latin-1 line far down it (a hand-edited export): that
    row is quarantined with its line and the setting that reads it; the rest loads."""
    good = "".join(f"A1,C1,progressed,2026-09-16 {i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d},\n"
                   for i in range(50_000))
    source = tiny_export(tmp_path, enrolled_at="2026-09-01", events=good)
    with (tmp_path / "t.csv").open("ab") as f:
        f.write("A1,C1,progressed,2026-09-17 10:00,fini à 42 %\n".encode("latin-1"))
    report = sync(wh, source)
    assert report.rows["progress_events"] == 50_001
    assert report.quarantined["progress_events"] == 1
    assert wh.execute("select count(*) from progress_events").fetchall() == [(50_000,)]
    row, raw, reason = wh.execute(
        "select row_number, raw->>'line', reason from quarantine").fetchall()[0]
    assert row == 50_001
    assert raw.startswith("A1,C1,progressed,2026-09-17 10:00,fini")
    assert reason == ("not valid UTF-8: if the export is in another encoding, set `encoding:` "
                      "in its mapping (latin-1, utf-16)")


def test_rows_with_too_many_or_too_few_values_are_quarantined_and_the_rest_loads(wh, tmp_path):
    """A row the file's read cannot split into the header's columns no longer stops the
    sync: it is quarantined with its line as written, row numbers further down stay those
    of the file, and the file's cursor counts it (a later append is numbered on from it)."""
    rows = [f"A1,C1,progressed,2026-09-16 {i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d},\n"
            for i in range(6_000)]
    rows[2_999] = "A1,C1,progressed,2026-09-16 10:00,0,5\n"         # row 3,000: 6 values
    rows[4_499] = "A1,C1,progressed\n"                               # row 4,500: 3 values
    rows[5_000] = rows[0]                                            # row 5,001 repeats row 1
    rows[5_499] = "A1,C1,jumped,2026-09-16 10:00,\n"                 # row 5,500: unknown verb
    source = tiny_export(tmp_path, enrolled_at="2026-09-01", events="".join(rows))
    report = sync(wh, source)
    assert report.rows["progress_events"] == 6_000
    assert report.quarantined["progress_events"] == 4
    assert wh.execute("select count(*) from progress_events").fetchall() == [(5_996,)]
    quarantined = wh.execute("select row_number, raw->>'_row', reason from quarantine "
                             "order by row_number").fetchall()
    assert [(r[0], int(r[1])) for r in quarantined] == [(3_000, 3_000), (4_500, 4_500),
                                                        (5_001, 5_001), (5_500, 5_500)]
    assert quarantined[0][2] == ('more values than the header has columns (Expected Number of '
                                 'Columns: 5 Found: 6): a value holding the delimiter must be '
                                 'quoted with "')
    assert quarantined[1][2] == ('fewer values than the header has columns (Expected Number of '
                                 'Columns: 5 Found: 3): a value left out, or a delimiter missing')
    assert quarantined[2][2].startswith("duplicate event in this load: row 1 says the same")
    assert quarantined[3][2].startswith("unknown verb: jumped")
    assert wh.execute("select raw->>'line' from quarantine where row_number = 3000"
                      ).fetchall() == [("A1,C1,progressed,2026-09-16 10:00,0,5",)]
    # appended rows are read alone, numbered after every row before them, the bad ones too
    with (tmp_path / "t.csv").open("a", encoding="utf-8") as f:
        f.write("A1,C1,progressed,2026-09-18 10:00,\nA1,C1\nA1,C1,jumped,2026-09-18 11:00,\n")
    report = sync(wh, source)
    assert report.rows["progress_events"] == 3
    assert wh.execute("select row_number, reason from quarantine where load_id = ? "
                      "order by row_number", [report.load_id]).fetchall() == [
        (6_002, "fewer values than the header has columns (Expected Number of Columns: 5 "
                "Found: 2): a value left out, or a delimiter missing"),
        (6_003, "unknown verb: jumped (expected accessed, progressed, completed, submitted, "
                "passed, failed or commented)")]
    assert wh.execute("select count(*) from progress_events").fetchall() == [(5_997,)]
    # and a sync with nothing new finds nothing, the bad rows included
    assert sync(wh, source).n_rows == 0


def test_a_quoted_value_far_down_an_export_is_read(wh, tmp_path):
    """The dialect is sniffed from the first rows: an export whose first 50,000 rows have
    no quoted value still reads `"0,5"` further down as one value (a sniffed "no quotes"
    read it as two, and the load failed)."""
    rows = "".join(f"A1,C1,progressed,2026-09-16 10:{i % 60:02d}:{i // 60 % 60:02d},\n"
                   for i in range(50_000))
    source = tiny_export(tmp_path, enrolled_at="2026-09-01",
                         events=rows + 'A1,C1,completed,2026-09-17 10:00,"0,5"\n')
    report = sync(wh, source)
    assert report.rows["progress_events"] == 50_001
    assert wh.execute("select verb, progress from progress_events where progress is not null"
                      ).fetchall() == [("completed", 0.5)]


LEARNERS = """
    name: review
    delimiter: ","
    entities:
      learners: {file: learners.csv, columns: {learner_id: id, email: mail}}
"""


def test_a_quote_left_open_far_down_a_file_stops_the_sync_naming_its_row(wh, tmp_path):
    # a value opening a quote it never closes makes the read take every row after it, to
    # the end of the file, as that one value: quarantined as one row, the rows after it
    # would be lost (and the file's cursor would count them as read). The sync stops
    # instead, naming the row, and loads nothing.
    lines = [f"A{i},a{i}@example.org" for i in range(1, 6001)]
    lines[2_999] = 'A3000,"a3000@example.org'                        # row 3,000
    mapping = export(tmp_path, {"learners.csv": "id,mail\n" + "\n".join(lines) + "\n"}, LEARNERS)
    source = CsvConnector.from_file(mapping)
    with pytest.raises(SourceError) as raised:
        sync(wh, source)
    message = str(raised.value)
    assert message.startswith(f"source review: {tmp_path / 'learners.csv'}: row 3000: ")
    assert "quote" in message and "never closed" in message
    assert rows(wh, "select count(*) from learners") == [(0,)]
    assert rows(wh, "select count(*) from source_cursors") == [(0,)]
    # once closed, every row loads
    lines[2_999] = 'A3000,"a3000@example.org"'
    (tmp_path / "learners.csv").write_text("id,mail\n" + "\n".join(lines) + "\n", encoding="utf-8")
    report = sync(wh, CsvConnector.from_file(tmp_path / "mapping.yaml"))
    assert (report.rows, report.quarantined) == ({"learners": 6000}, {"learners": 0})


def test_a_quote_left_open_on_the_last_row_quarantines_that_row_only(wh, tmp_path):
    # nothing after it to swallow: the row is set aside as any other that cannot be read
    lines = [f"A{i},a{i}@example.org" for i in range(1, 6001)]
    lines[-1] = 'A6000,"a6000@example.org'
    mapping = export(tmp_path, {"learners.csv": "id,mail\n" + "\n".join(lines) + "\n"}, LEARNERS)
    source = CsvConnector.from_file(mapping)
    report = sync(wh, source)
    assert (report.rows, report.quarantined) == ({"learners": 6000}, {"learners": 1})
    assert rows(wh, "select row_number, raw->>'line' from quarantine") == [
        (6000, 'A6000,"a6000@example.org')]


def test_a_rejected_row_of_a_windows_export_is_quarantined_as_written(wh, tmp_path):
    # Excel writes CSV with CRLF line ends: the row's line is quarantined without the line
    # break before it
    mapping = export(tmp_path, {"learners.csv": "id,mail\nA1,a@example.org\nA2\nA3,c@example.org,x\n"
                                                "A4,d@example.org\n"}, LEARNERS, newline="\r\n")
    source = CsvConnector.from_file(mapping)
    report = sync(wh, source)
    assert report.quarantined == {"learners": 2}
    assert rows(wh, "select row_number, raw->>'line' from quarantine order by 1") == [
        (2, "A2"), (3, "A3,c@example.org,x")]
    assert rows(wh, "select learner_id from learners order by 1") == [("A1",), ("A4",)]


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


def test_latin1_files_of_the_same_name_in_two_folders_each_load_their_own_rows(wh, tmp_path):
    # an LMS that exports every report as export.csv, one folder per report: the
    # UTF-8 copies of the two files must not be one file
    for folder, text in (("apprenants", "id;mail;prénom\nA1;zoe@example.org;Zoé\n"),
                         ("cours", "code;titre\nC1;Anglais débutant\n")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "export.csv").write_bytes(text.encode("latin-1"))
    mapping = export(tmp_path, {}, """
        name: review
        delimiter: ";"
        encoding: latin-1
        entities:
          learners: {file: apprenants/export.csv, columns: {learner_id: id, email: mail, first_name: prénom}}
          courses: {file: cours/export.csv, columns: {course_id: code, title: titre}}
    """)
    report = sync(wh, CsvConnector.from_file(mapping))
    assert report.n_quarantined == 0
    assert wh.execute("select learner_id, email, first_name from learners").fetchall() == [
        ("A1", "zoe@example.org", "Zoé")]
    assert wh.execute("select course_id, title from courses").fetchall() == [("C1", "Anglais débutant")]


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


@pytest.mark.parametrize("content", [
    "id,mail\nA1,zoe@example.org\n".encode("utf-8"),          # UTF-8 under a UTF-16 mapping
    "id,mail\nA1,zoe@example.org\n".encode("utf-16")[:-1],    # cut in the middle of a character
], ids=["utf-8", "cut short"])
def test_a_file_that_is_not_in_the_mappings_encoding_stops_the_sync_naming_it(wh, tmp_path,
                                                                                content):
    # found by tests/test_fuzz_connectors.py: it was a UnicodeError out of the sync
    (tmp_path / "apprenants.csv").write_bytes(content)
    mapping = export(tmp_path, {}, """
        name: review
        encoding: utf-16
        entities:
          learners: {file: apprenants.csv, columns: {learner_id: id, email: mail}}
    """)
    with pytest.raises(SourceError) as exc:
        sync(wh, CsvConnector.from_file(mapping))
    assert "apprenants.csv: cannot be read as utf-16 (" in str(exc.value)
    assert "set `encoding:` to the file's (utf-8, latin-1 or utf-16)" in str(exc.value)
    assert rows(wh, "select count(*) from learners") == [(0,)]
