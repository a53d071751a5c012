"""Incremental loads of file exports: unchanged files skipped, an append-only export read
from where the last load stopped, a rewritten one reloaded without duplicates, and a load
interrupted half-way that leaves nothing behind and completes on the next sync."""

from __future__ import annotations

import pytest

import connectors.base
from connectors import sync
from connectors.state import SourceState
from tests.test_connectors_csv import tiny_export

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
    from connectors.csv_export import CsvConnector
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
