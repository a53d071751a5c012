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


def test_an_export_that_is_not_what_its_mapping_says_fails_naming_the_file(wh, tmp_path):
    """A file said to be UTF-8 with Latin-1 bytes far down it (a hand-edited export) is
    only found out when the load reads that far: the sync fails naming the file and the
    fix, and nothing of the load is kept."""
    from connectors import SourceError
    from tests.test_connectors_csv import tiny_export
    good = "".join(f"A1,C1,progressed,2026-09-16 10:{i % 60:02d},\n" for i in range(50_000))
    source = tiny_export(tmp_path, enrolled_at="2026-09-01", events=good)
    with (tmp_path / "t.csv").open("ab") as f:
        f.write("A1,C1,progressed,2026-09-17 10:00,fini à 42 %\n".encode("latin-1"))
    with pytest.raises(SourceError) as raised:
        sync(wh, source)
    message = str(raised.value)
    assert message.startswith(f"source lms: {tmp_path / 't.csv'}: cannot be read as CSV (utf-8")
    assert "not utf-8 encoded" in message
    for table in ("learners", "progress_events", "source_cursors"):
        assert wh.execute(f"select count(*) from {table}").fetchall() == [(0,)], table
    assert wh.execute("select status from loads").fetchall() == [("failed",)]


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
