"""Connectors as a training team meets them, after the review of rows set aside by a
file's read (store_rejects): a quote left open far down an export, Windows line ends."""

from __future__ import annotations

import textwrap

import pytest

from connectors import SourceError, sync
from connectors.csv_export import CsvConnector


def export(tmp_path, files: dict[str, str], mapping: str, newline: str = "\n"):
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8", newline=newline)
    path = tmp_path / "mapping.yaml"
    path.write_text(textwrap.dedent(mapping), encoding="utf-8")
    return CsvConnector.from_file(path)


LEARNERS = """
    name: review
    delimiter: ","
    entities:
      learners: {file: learners.csv, columns: {learner_id: id, email: mail}}
"""


def rows(wh, sql, params=None):
    return wh.execute(sql, params or []).fetchall()


def test_a_quote_left_open_far_down_a_file_stops_the_sync_naming_its_row(wh, tmp_path):
    # a value opening a quote it never closes makes the read take every row after it, to
    # the end of the file, as that one value: quarantined as one row, the rows after it
    # would be lost (and the file's cursor would count them as read). The sync stops
    # instead, naming the row, and loads nothing.
    lines = [f"A{i},a{i}@example.org" for i in range(1, 6001)]
    lines[2_999] = 'A3000,"a3000@example.org'                        # row 3,000
    source = export(tmp_path, {"learners.csv": "id,mail\n" + "\n".join(lines) + "\n"}, LEARNERS)
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
    source = export(tmp_path, {"learners.csv": "id,mail\n" + "\n".join(lines) + "\n"}, LEARNERS)
    report = sync(wh, source)
    assert (report.rows, report.quarantined) == ({"learners": 6000}, {"learners": 1})
    assert rows(wh, "select row_number, raw->>'line' from quarantine") == [
        (6000, 'A6000,"a6000@example.org')]


def test_a_rejected_row_of_a_windows_export_is_quarantined_as_written(wh, tmp_path):
    # Excel writes CSV with CRLF line ends: the row's line is quarantined without the line
    # break before it
    source = export(tmp_path, {"learners.csv": "id,mail\nA1,a@example.org\nA2\nA3,c@example.org,x\n"
                                               "A4,d@example.org\n"}, LEARNERS, newline="\r\n")
    report = sync(wh, source)
    assert report.quarantined == {"learners": 2}
    assert rows(wh, "select row_number, raw->>'line' from quarantine order by 1") == [
        (2, "A2"), (3, "A3,c@example.org,x")]
    assert rows(wh, "select learner_id from learners order by 1") == [("A1",), ("A4",)]


def test_a_quote_left_open_in_an_oulad_file_stops_the_sync_naming_its_row(wh, tmp_path):
    from tests.test_connectors_oulad import corrupted, oulad
    d = corrupted(tmp_path)
    lines = ["id_assessment,id_student,date_submitted,is_banked"]
    lines += [f'"1752","{100_000 + i}","18","0"' for i in range(6_000)]
    lines[3_000] = '"1752","103000","18","0'       # row 3,000: its last quote not closed
    (d / "studentAssessment.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(SourceError) as raised:
        sync(wh, oulad(d))
    assert str(raised.value).startswith(
        f"source oulad: {d / 'studentAssessment.csv'}: row 3000: a quoted value does not end where its row does")
    assert rows(wh, "select count(*) from progress_events") == [(0,)]
