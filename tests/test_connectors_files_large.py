"""What the events loader does for speed must not change what it loads: local times
placed in their timezone once per hour (daylight saving changes included), rows numbered
by their place in a large file read on every core, repeats and bad rows set aside with
their raw row."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import duckdb
import pytest

from connectors import base, sync
from tests.test_connectors_csv import _table, tiny_export


def q(con, sql):
    return con.execute(sql).fetchall()


@pytest.mark.parametrize("tz, days", [
    # spring forward and fall back, in the mapping's timezone and in others whose changes
    # fall at other hours or move the clock by half an hour
    ("Europe/Paris", ["2026-03-28", "2026-10-24"]),
    ("America/New_York", ["2026-03-07", "2026-10-31"]),
    ("Australia/Lord_Howe", ["2026-04-04", "2026-10-03"]),
    # decades before the load and after it (a file's load looks up the shift of each
    # hour of twenty years before its year to two after: other times are placed one by
    # one), with that zone's changes of those years
    ("Europe/Paris", ["1995-03-25", "1995-09-23", "2047-03-30"]),
])
def test_local_times_land_where_icu_puts_them_one_by_one(wh, tmp_path, tz, days):
    times = []
    for day in days:
        start = datetime.fromisoformat(day)
        # every 7 minutes over three days around the change, in both written forms
        times += [start + timedelta(minutes=7 * i) for i in range(3 * 24 * 60 // 7)]
    events = "".join(f"A1,C1,progressed,{t:%Y-%m-%d %H:%M},\n" if i % 2 else
                     f"A1,C1,progressed,{t:%d/%m/%Y %H:%M},\n" for i, t in enumerate(times))
    sync(wh, tiny_export(tmp_path, enrolled_at="2026-01-01", events=events,
                         options=f"\n        timezone: {tz}"))
    loaded = q(wh, "select occurred_at from progress_events order by occurred_at")
    wh.execute("create table written (local_time timestamp)")
    wh.executemany("insert into written values (?)", [[t] for t in times])
    # the reference: ICU's reading of each wall-clock time, row by row
    expected = q(wh, f"select timezone('{tz}', local_time) from written order by 1")
    assert len(loaded) == len(times) and loaded == expected


def test_a_large_export_keeps_each_row_number_and_raw_row(wh, tmp_path):
    n = 300_000
    bad = {7: "A1,C1,progressed,someday,", 150_001: "A1,C1,jumped,2026-09-02 10:00,",
           n - 1: "A1,C9,progressed,2026-09-02 10:00,"}
    lines = []
    for row in range(1, n + 1):
        if row in bad:
            lines.append(bad[row])
        elif row == 250_000:               # row 5 said again
            lines.append(lines[4])
        else:
            lines.append(f"A1,C1,progressed,{datetime(2026, 9, 2) + timedelta(seconds=row):%Y-%m-%d %H:%M:%S},")
    report = sync(wh, tiny_export(tmp_path, enrolled_at="2026-01-01",
                                  events="\n".join(lines) + "\n"))
    assert report.rows["progress_events"] == n
    assert report.loaded["progress_events"] == n - 4 and report.quarantined["progress_events"] == 4
    quarantined = q(wh, "select row_number, reason, raw->>'_row', raw->>'verb', raw->>'occurred_at', "
                        "raw->>'_file' like '%t.csv' from quarantine order by row_number")
    assert [r[:2] for r in quarantined] == [
        (7, "unreadable or missing occurred_at: someday"),
        (150_001, "unknown verb: jumped (expected accessed, progressed, completed, submitted, "
                  "passed, failed or commented)"),
        (250_000, "duplicate event in this load: row 5 says the same (learner, course, "
                  "activity, verb, time and progress)"),
        (n - 1, "unknown enrolment: learner A1 on course C9")]
    assert [r[2:] for r in quarantined] == [
        ("7", "progressed", "someday", True), ("150001", "jumped", "2026-09-02 10:00", True),
        ("250000", "progressed", "2026-09-02 00:00:05", True),
        (str(n - 1), "progressed", "2026-09-02 10:00", True)]
    # the raw row is the staged row as it was read, its number last
    assert list(q(wh, "select json_keys(raw) from quarantine where row_number = 7")[0][0]) == [
        "event_id", "learner_id", "course_id", "activity_id", "verb", "occurred_at", "progress",
        "_file", "_row"]



@pytest.fixture(params=["loader", "reference loader"])
def events_loader(request, monkeypatch):
    """A file's events through the loader its warehouse uses, and through the reference
    loader (load_progress_events.sql, which the shared warehouse uses) on the warehouse
    file too: both must load and set aside the same rows, for the same reasons."""
    if request.param == "reference loader":
        staged_rows = base._staged_rows

        def reference(*args, **kwargs):
            fragments, params = staged_rows(*args, **kwargs)
            params.pop("first_event", None)         # what picks the direct loader
            return fragments, params
        monkeypatch.setattr(base, "_staged_rows", reference)
    return request.param


def test_past_a_million_rows_each_row_set_aside_keeps_its_number(wh, tmp_path, events_loader):
    """A file of a million rows is read on every core: rows set aside far apart (a bad
    verb, an unknown enrolment, repeats) are reported under the number they have in the
    file, with their own raw row, and of a repeat the first in the file is the one kept.
    (The loaders number a file's rows by their place in what its one pass writes; a
    lookup in that pass, a join, let DuckDB write them out of order from about a million
    rows on: rows 2, 500,001 and 1,000,000 came back as 2, 179,035 and 518,910.)"""
    n = 1_000_000
    source = tiny_export(tmp_path, enrolled_at="2026-01-01", events="")
    # row r: one second after 2026-09-02 00:00 per row, some rows said otherwise
    special = {2: "'A1,C1,jumped,2026-09-02 10:00:00,'",
               500_001: "'A1,C1,jumped,2026-09-02 11:00:00,'",
               750_000: "'A1,C9,progressed,2026-09-02 12:00:00,'",
               n: "'A1,C1,jumped,2026-09-02 13:00:00,'",
               # repeats of rows 10 and 400,000, far after them
               900_000: "'A1,C1,progressed,' || strftime(timestamp '2026-09-02' + interval 10 second, "
                        "'%Y-%m-%d %H:%M:%S') || ',0.5'",
               990_000: "'A1,C1,progressed,' || strftime(timestamp '2026-09-02' + interval 400000 "
                        "second, '%Y-%m-%d %H:%M:%S') || ',0.5'"}
    cases = " ".join(f"when {r} then {line}" for r, line in special.items())
    duckdb.connect().execute(f"""
        copy (select 'id,c,verb,at,p' as line
              union all
              select * from (select case r {cases}
                                    else 'A1,C1,progressed,' || strftime(timestamp '2026-09-02'
                                         + to_seconds(r), '%Y-%m-%d %H:%M:%S') || ',0.5' end
                             from range(1, {n + 1}) t(r) order by r))
        to '{tmp_path / "t.csv"}' (header false, quote '', delimiter '\t')""")
    report = sync(wh, source)
    assert report.rows["progress_events"] == n and report.quarantined["progress_events"] == 6
    verb = ("unknown verb: jumped (expected accessed, progressed, completed, submitted, passed, "
            "failed or commented)")
    again = "duplicate event in this load: row {} says the same (learner, course, activity, verb, time and progress)"
    assert q(wh, "select row_number, raw->>'_row', raw->>'occurred_at', reason from quarantine "
                 "order by row_number") == [
        (2, "2", "2026-09-02 10:00:00", verb),
        (500_001, "500001", "2026-09-02 11:00:00", verb),
        (750_000, "750000", "2026-09-02 12:00:00", "unknown enrolment: learner A1 on course C9"),
        (900_000, "900000", "2026-09-02 00:00:10", again.format(10)),
        (990_000, "990000", "2026-09-06 15:06:40", again.format(400_000)),
        (n, str(n), "2026-09-02 13:00:00", verb)]
    # the first of each repeat is kept (its twin is set aside), and every other row is
    assert q(wh, "select count(*) from progress_events") == [(n - 6,)]


def test_one_instant_written_with_and_without_its_offset_is_one_event(wh, tmp_path, events_loader):
    """An event is what it says, its time the instant it names: written once with a UTC
    offset and once as a local time of the source's timezone (Europe/Paris, +02:00 in
    September), the second is a repeat of the first, whichever loader reads the file."""
    source = tiny_export(tmp_path, enrolled_at="2026-09-01", events=(
        "A1,C1,progressed,2026-09-16T10:00:00+02:00,50%\n"
        "A1,C1,progressed,2026-09-16 08:00:00Z,0.5\n"            # the same instant, in UTC
        "A1,C1,progressed,16/09/2026 10:00,0.5\n"                 # the same, local time
        "A1,C1,progressed,2026-09-16 11:00,0.5\n"))               # an hour later: another
    report = sync(wh, source)
    assert report.loaded["progress_events"] == 2 and report.quarantined["progress_events"] == 2
    assert q(wh, "select occurred_at from progress_events order by occurred_at") == [
        (datetime(2026, 9, 16, 8, tzinfo=timezone.utc),), (datetime(2026, 9, 16, 9, tzinfo=timezone.utc),)]
    assert q(wh, "select row_number, reason from quarantine order by row_number") == [
        (2, "duplicate event in this load: row 1 says the same (learner, course, activity, "
            "verb, time and progress)"),
        (3, "duplicate event in this load: row 1 says the same (learner, course, activity, "
            "verb, time and progress)")]

def test_an_event_without_an_id_is_what_it_says(wh, tmp_path):
    """An export's event without an id is identified by its learner, course, activity,
    verb, instant and progress, however they are written: said twice in a load, the
    second is set aside; already in the warehouse, it is skipped. It is stored without an
    id (a derived one cost a third of the load's writing)."""
    source = tiny_export(tmp_path, enrolled_at="2026-09-01", events=(
        "A1,C1,progressed,2026-09-16 10:00,\"0,5\"\n"
        " A1 ,C1, Completed ,2026-09-17 10:00 ,42%\n"
        "A1 , C1,completed, 17/09/2026 10:00,\"42,0 %\" \n"      # the second, written otherwise
        "A1,C1,progressed,2026-09-16 10:00,50%\n"))                # the first, written otherwise
    report = sync(wh, source)
    assert report.loaded["progress_events"] == 2 and report.quarantined["progress_events"] == 2
    assert q(wh, "select event_id, verb, progress from progress_events order by occurred_at") == [
        (None, "progressed", 0.5), (None, "completed", 0.42)]
    assert q(wh, "select row_number, reason from quarantine order by row_number") == [
        (3, "duplicate event in this load: row 2 says the same (learner, course, activity, "
            "verb, time and progress)"),
        (4, "duplicate event in this load: row 1 says the same (learner, course, activity, "
            "verb, time and progress)")]

    # an export rewritten (not appended to) is read again: what it said before is skipped
    (tmp_path / "t.csv").write_text(
        "id,c,verb,at,p\nA1,C1,completed,17/09/2026 10:00,42%\n"
        "A1,C1,progressed,2026-09-18 10:00,60%\n", encoding="utf-8")
    again = sync(wh, source)
    assert again.rows["progress_events"] == 2 and again.loaded["progress_events"] == 1
    assert again.quarantined["progress_events"] == 0


def test_events_stored_with_a_derived_id_by_an_earlier_version_are_not_loaded_again(wh, tmp_path):
    """Before migration 0013 an event without an id was stored with the MD5 of its text
    as its id: such rows are matched by what they say, so reading the file again adds
    nothing."""
    source = tiny_export(tmp_path, enrolled_at="2026-09-01",
                         events="A1,C1,progressed,2026-09-16 10:00,\"0,5\"\n")
    sync(wh, source)
    wh.execute("update progress_events set event_id = md5('A1|C1|progressed|2026-09-16 10:00|0,5')")
    with (tmp_path / "t.csv").open("a", encoding="utf-8") as f:
        f.write("A1,C1,progressed,2026-09-17 10:00,60%\n")
    wh.execute("delete from source_cursors")             # as if the file were new to it
    report = sync(wh, source)
    assert report.rows["progress_events"] == 2 and report.loaded["progress_events"] == 1
    assert q(wh, "select count(*), count(event_id) from progress_events") == [(2, 1)]


@pytest.mark.parametrize("clean_rows_before", [0, 10_000])
def test_spaces_around_learner_course_or_verb_are_trimmed(wh, tmp_path, clean_rows_before):
    """With spaces in a load's first rows, every row's learner, course and verb are
    trimmed as they are read; without, only rows their checks set aside are looked at
    again, trimmed. Either way a row with spaces alone loads, and one still wrong once
    trimmed is set aside with the reason its trimmed values give."""
    clean = "".join(f"A1,C1,accessed,{datetime(2026, 9, 2) + timedelta(seconds=i):%Y-%m-%d %H:%M:%S},\n"
                    for i in range(clean_rows_before))
    source = tiny_export(tmp_path, enrolled_at="2026-09-01", events=clean + (
        " A1 , C1 , Progressed ,2026-09-16 10:00,10%\n"       # spaces only: loads
        " A1 , C9 ,progressed,2026-09-16 11:00,\n"            # trimmed, still unknown
        "A1,C1, jumped ,2026-09-16 12:00,\n"))
    report = sync(wh, source)
    assert report.loaded["progress_events"] == clean_rows_before + 1
    assert q(wh, "select learner_id, course_id, verb, progress from progress_events "
                 "where verb <> 'accessed'") == [("A1", "C1", "progressed", 0.1)]
    assert q(wh, "select row_number, reason from quarantine order by row_number") == [
        (clean_rows_before + 2, "unknown enrolment: learner A1 on course C9"),
        (clean_rows_before + 3, "unknown verb: jumped (expected accessed, progressed, "
                                "completed, submitted, passed, failed or commented)")]


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


def test_a_small_file_against_many_enrolments_keeps_each_set_aside_rows_number(wh, tmp_path):
    """Rows set aside keep the row number they have in the file whatever the sizes: a
    three-line export loaded into a warehouse holding 300,000 enrolments (where the
    planner would rather look the file's rows up in the enrolments than the other way)."""
    wh.execute("insert into enrolments (learner_id, course_id, enrolled_at, status, source) "
               "select 'X' || i, 'CX', now(), 'enrolled', 'other' from range(300000) t(i)").fetchall()
    source = tiny_export(tmp_path, enrolled_at="2026-09-01", events=(
        " A1 , C1 , Progressed ,2026-09-16 10:00,10%\n"       # loads
        " A1 , C9 ,progressed,2026-09-16 11:00,\n"            # no such enrolment
        "A1,C1, jumped ,2026-09-16 12:00,\n"))                # no such verb
    sync(wh, source)
    assert q(wh, "select row_number, reason, raw->>'verb' from quarantine order by row_number") == [
        (2, "unknown enrolment: learner A1 on course C9", "progressed"),
        (3, "unknown verb: jumped (expected accessed, progressed, completed, submitted, passed, "
            "failed or commented)", " jumped ")]
