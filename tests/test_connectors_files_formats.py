"""Every export format the issue lists, on one small French-style export written each way:
`,` and `;`, UTF-8 with and without BOM, Latin-1, UTF-16; ISO 8601 and `dd/mm/yyyy HH:MM`
dates; decimal commas. Whatever the writing, the warehouse holds the same thing."""

from __future__ import annotations

import textwrap
from datetime import datetime, timezone

import pytest

from connectors import sync
from connectors.csv_export import CsvConnector

ROWS = {
    "apprenants": [["id", "courriel", "prénom"], ["A1", "zoé@example.org", "Zoé"],
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


@pytest.mark.parametrize("delimiter", [",", ";"])
@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "latin-1", "utf-16"])
def test_the_same_export_written_every_way_loads_the_same(wh, tmp_path, delimiter, encoding):
    report = sync(wh, write_export(tmp_path, delimiter, encoding))
    q = lambda sql: wh.execute(sql).fetchall()  # noqa: E731
    assert q("select learner_id, email, first_name from learners order by 1") == [
        ("A1", "zoé@example.org", "Zoé"), ("A2", "eric@example.org", "Éric")]
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
    from tests.test_connectors_csv import tiny_export
    sync(wh, tiny_export(tmp_path, enrolled_at="2026-09-01", events=f'A1,C1,progressed,"{written}",\n'))
    assert wh.execute("select occurred_at from progress_events").fetchall() == [(expected,)]


def test_a_row_far_down_that_is_not_utf8_is_quarantined_saying_how_to_fix_it(wh, tmp_path):
    """A file said to be UTF-8 with a Latin-1 line far down it (a hand-edited export): that
    row is quarantined with its line and the setting that reads it; the rest loads."""
    from tests.test_connectors_csv import tiny_export
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
    from tests.test_connectors_csv import tiny_export
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
    from tests.test_connectors_csv import tiny_export
    rows = "".join(f"A1,C1,progressed,2026-09-16 10:{i % 60:02d}:{i // 60 % 60:02d},\n"
                   for i in range(50_000))
    source = tiny_export(tmp_path, enrolled_at="2026-09-01",
                         events=rows + 'A1,C1,completed,2026-09-17 10:00,"0,5"\n')
    report = sync(wh, source)
    assert report.rows["progress_events"] == 50_001
    assert wh.execute("select verb, progress from progress_events where progress is not null"
                      ).fetchall() == [("completed", 0.5)]
