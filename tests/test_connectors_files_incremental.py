"""Incremental loads of file exports: unchanged files skipped, an append-only export read
from where the last load stopped, a rewritten one reloaded without duplicates, and a load
interrupted half-way that leaves nothing behind and completes on the next sync. Rows waiting
for their learner load once it is there (from the same source or another), and a row appended
while a file is read is read at the next sync."""

from __future__ import annotations

import pytest

import connectors.base
from connectors import sync
from connectors.csv_export import CsvConnector
from connectors.state import SourceState
from tests.test_connectors_csv import _table, export, tiny_export

EVENTS = "".join(f"A1,C1,progressed,2026-09-{day:02d} 10:00,{day}%\n" for day in range(2, 12))


def q(con, sql):
    return con.execute(sql).fetchall()


def test_unchanged_files_are_not_read_again(wh, tmp_path):
    source = tiny_export(tmp_path, enrolled_at="2026-09-01", events=EVENTS)
    first = sync(wh, source)
    assert first.rows == {"learners": 1, "courses": 1, "enrolments": 1, "progress_events": 10}
    cursors = dict(q(wh, "select stream, cursor from source_cursors"))
    assert set(cursors) == {"learners:l.csv", "courses:c.csv", "enrolments:e.csv", "progress_events:t.csv"}
    assert cursors["progress_events:t.csv"].startswith(f"size={(tmp_path / 't.csv').stat().st_size};sha256=")
    again = sync(wh, source)
    assert again.rows == {} and again.n_loaded == 0
    assert q(wh, "select n_rows, n_loaded from loads order by started_at") == [(13, 13), (0, 0)]


def test_an_append_only_export_loads_only_its_new_rows(wh, tmp_path):
    source = tiny_export(tmp_path, enrolled_at="2026-09-01", events=EVENTS)
    sync(wh, source)
    with (tmp_path / "t.csv").open("a", encoding="utf-8") as f:
        f.write("A1,C1,progressed,2026-09-12 10:00,12%\nA1,C1,progressed,someday,13%\n")
    grown = sync(wh, source)
    # only the two appended rows were staged; the other files were not read
    assert grown.rows == {"progress_events": 2}
    assert grown.loaded == {"progress_events": 1} and grown.quarantined == {"progress_events": 1}
    # rows keep their place in the whole file
    assert q(wh, "select row_number, reason from quarantine") == [
        (12, "unreadable or missing occurred_at: someday")]
    assert q(wh, "select count(*), count(distinct (learner_id, course_id, activity_id, verb, occurred_at, progress)), max(progress) from progress_events") == [(11, 11, 0.12)]
    assert SourceState.read(wh, "lms").get("progress_events:t.csv").split(";")[2] == "rows=12"


def test_a_rewritten_export_is_read_whole_and_nothing_is_loaded_twice(wh, tmp_path):
    source = tiny_export(tmp_path, enrolled_at="2026-09-01", events=EVENTS)
    sync(wh, source)
    lines = (tmp_path / "t.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    # the LMS re-exports, newest first, with one event more
    (tmp_path / "t.csv").write_text(lines[0] + "A1,C1,completed,2026-09-12 10:00,100%\n"
                                    + "".join(reversed(lines[1:])), encoding="utf-8")
    (tmp_path / "l.csv").write_text("id,mail\nA1,a1@example.org\n", encoding="utf-8")
    rewritten = sync(wh, source)
    assert rewritten.rows == {"learners": 1, "progress_events": 11}
    assert rewritten.loaded["progress_events"] == 1
    assert q(wh, "select count(*), count(distinct (learner_id, course_id, activity_id, verb, occurred_at, progress)) from progress_events") == [(11, 11)]


def test_a_changed_mapping_reads_its_files_again(wh, tmp_path):
    sync(wh, tiny_export(tmp_path, enrolled_at="2026-09-01", events=EVENTS))
    changed = tiny_export(tmp_path, enrolled_at="2026-09-01", events=EVENTS,
                          options="\n        timezone: UTC")
    assert set(sync(wh, changed).rows) == {"learners", "courses", "enrolments", "progress_events"}


def test_an_export_whose_last_line_was_unfinished_is_read_whole(wh, tmp_path):
    source = tiny_export(tmp_path, enrolled_at="2026-09-01", events=EVENTS.rstrip("\n"))
    sync(wh, source)
    with (tmp_path / "t.csv").open("a", encoding="utf-8") as f:
        f.write("\nA1,C1,progressed,2026-09-12 10:00,12%\n")
    assert sync(wh, source).rows == {"progress_events": 11}
    assert q(wh, "select count(*), count(distinct (learner_id, course_id, activity_id, verb, occurred_at, progress)) from progress_events") == [(11, 11)]


def test_a_latin1_export_that_grew_is_read_from_where_it_stopped(wh, tmp_path):
    (tmp_path / "l.csv").write_bytes("id;prénom\nA1;Zoé\n".encode("latin-1"))
    (tmp_path / "mapping.yaml").write_text(
        "name: lms\ndelimiter: ';'\nencoding: latin-1\nentities:\n"
        "  learners: {file: l.csv, columns: {learner_id: id, first_name: prénom}}\n", encoding="utf-8")
    source = CsvConnector.from_file(tmp_path / "mapping.yaml")
    sync(wh, source)
    with (tmp_path / "l.csv").open("ab") as f:
        f.write("A2;Gaëlle\n".encode("latin-1"))
    assert sync(wh, source).rows == {"learners": 1}
    assert q(wh, "select learner_id, first_name from learners order by 1") == [("A1", "Zoé"), ("A2", "Gaëlle")]


@pytest.fixture
def failing_events(monkeypatch):
    """Make the next loads fail while writing progress events, after the learners, courses
    and enrolments of the same load were written."""
    real = connectors.base.execute_script

    def execute_script(con, sql, params=None):
        if "insert into progress_events" in sql and failing_events.on:
            raise MemoryError("injected: the machine ran out of memory mid-load")
        return real(con, sql, params)

    failing_events.on = True
    monkeypatch.setattr(connectors.base, "execute_script", execute_script)
    return failing_events


def test_an_interrupted_load_leaves_nothing_and_the_next_sync_completes(wh, tmp_path, failing_events):
    source = tiny_export(tmp_path, enrolled_at="2026-09-01", events=EVENTS)
    with pytest.raises(MemoryError):
        sync(wh, source)
    # nothing half-loaded: the learners and enrolments written before the failure are gone too
    for table in ("learners", "courses", "enrolments", "progress_events", "quarantine", "source_cursors"):
        assert q(wh, f"select count(*) from {table}") == [(0,)], table
    assert q(wh, "select status, error from loads") == [
        ("failed", "MemoryError: injected: the machine ran out of memory mid-load")]

    failing_events.on = False
    resumed = sync(wh, source)
    assert resumed.loaded == {"learners": 1, "courses": 1, "enrolments": 1, "progress_events": 10}

    # interrupted again while loading rows appended since: the cursor stays where it was...
    with (tmp_path / "t.csv").open("a", encoding="utf-8") as f:
        f.write("A1,C1,progressed,2026-09-12 10:00,12%\nA1,C1,progressed,2026-09-13 10:00,13%\n")
    failing_events.on = True
    with pytest.raises(MemoryError):
        sync(wh, source)
    assert q(wh, "select count(*) from progress_events") == [(10,)]
    failing_events.on = False
    # ...so the next sync reads the same new rows, once: no gap, no duplicate
    after = sync(wh, source)
    assert after.rows == {"progress_events": 2} and after.loaded == {"progress_events": 2}
    assert q(wh, "select count(*), count(distinct (learner_id, course_id, activity_id, verb, occurred_at, progress)), max(progress) from progress_events") == [(12, 12, 0.13)]
    assert [r[0] for r in q(wh, "select status from loads order by started_at")] == [
        "failed", "succeeded", "failed", "succeeded"]


def test_a_re_exported_roster_updates_learners_and_enrolments_in_place(wh, tmp_path):
    """A full re-export of the roster: a learner's new address and an enrolment's new
    status replace the old ones, a new learner is added, and nothing is there twice."""
    from tests.test_connectors_csv import mapping

    def export(learners: str, enrolments: str):
        (tmp_path / "l.csv").write_text("id,mail\n" + learners, encoding="utf-8")
        (tmp_path / "c.csv").write_text("id,title\nC1,Course\n", encoding="utf-8")
        (tmp_path / "e.csv").write_text("id,c,at,status\n" + enrolments, encoding="utf-8")
        return mapping(tmp_path, """
            name: lms
            entities:
              learners: {file: l.csv, columns: {learner_id: id, email: mail}}
              courses: {file: c.csv, columns: {course_id: id, title: title}}
              enrolments: {file: e.csv, columns: {learner_id: id, course_id: c, enrolled_at: at, status: status}}
        """)

    sync(wh, export("A1,zoe@example.org\nA2,eric@example.org\n",
                    "A1,C1,2026-09-01,en cours\nA2,C1,2026-09-01,en cours\n"))
    report = sync(wh, export("A1,zoe.martin@example.org\nA2,eric@example.org\nA3,ines@example.org\n",
                             "A1,C1,2026-09-01,abandon\nA2,C1,2026-09-01,en cours\n"
                             "A3,C1,2026-09-08,inscrit\n"))
    assert report.loaded == {"learners": 3, "enrolments": 3}      # courses.csv unchanged
    assert q(wh, "select learner_id, email from learners order by 1") == [
        ("A1", "zoe.martin@example.org"), ("A2", "eric@example.org"), ("A3", "ines@example.org")]
    assert q(wh, "select learner_id, status from enrolments order by 1") == [
        ("A1", "withdrawn"), ("A2", "enrolled"), ("A3", "enrolled")]


ROSTER = """
    name: review
    delimiter: ","
    entities:
      learners:        {file: learners.csv, columns: {learner_id: id, email: mail}}
      courses:         {file: courses.csv, columns: {course_id: code, title: title}}
      enrolments:      {file: enrolments.csv, columns: {learner_id: id, course_id: course, enrolled_at: date}}
      progress_events: {file: events.csv, columns: {learner_id: id, course_id: course, verb: verb, occurred_at: at}}
"""


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

    def drop_then_append(con, name, *views):
        drop(con, name, *views)
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
