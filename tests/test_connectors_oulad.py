"""The OULAD connector on the real 2013 files (read in place from ../shared), and on small
corrupted copies written to tmp_path."""

from __future__ import annotations

import csv
from datetime import datetime, timezone

import pytest

import warehouse
from connectors import SourceError, open_source, sync
from connectors.oulad import from_config
from tests.conftest import OULAD

pytestmark = pytest.mark.skipif(not OULAD.is_dir(), reason=f"OULAD data not at {OULAD}")


def oulad(directory=OULAD, **options):
    return from_config("oulad", {"kind": "oulad", "directory": str(directory), **options}, OULAD)


def rows(con, sql, *params):
    return con.execute(sql, list(params)).fetchall()


def utc(*args):
    return datetime(*args, tzinfo=timezone.utc)


def csv_rows(name):
    with (OULAD / name).open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def full():
    """The whole dataset, loaded once."""
    con = warehouse.connect(":memory:")
    report = sync(con, oulad())
    yield con, report
    con.close()


def test_every_registration_submission_and_assessment_is_loaded(full):
    con, report = full
    info = csv_rows("studentInfo.csv")
    assert len(info) == 13529
    assert rows(con, "select count(*) from enrolments") == [(13529,)]
    assert rows(con, "select count(*) from learners") == [(len({r["id_student"] for r in info}),)]
    assert rows(con, "select count(*) from courses") == [(9,)]
    assert rows(con, "select count(*) from activities") == [(len(csv_rows("assessments.csv")),)]
    assert rows(con, "select count(*) from progress_events") == [(len(csv_rows("studentAssessment.csv")),)]
    results = {}
    for r in info:
        results[r["final_result"]] = results.get(r["final_result"], 0) + 1
    assert dict(rows(con, "select final_result, count(*) from outcomes group by all")) == results
    assert dict(rows(con, "select status, count(*) from enrolments group by all")) == {
        "completed": results["Pass"] + results["Distinction"],
        "withdrawn": results["Withdrawn"],
        "enrolled": results["Fail"]}
    assert report.n_quarantined == 0 and rows(con, "select count(*) from quarantine") == [(0,)]
    assert rows(con, "select status, n_rows, n_loaded, n_quarantined from loads") == [
        ("succeeded", report.n_rows, report.n_rows, 0)]


def test_no_demographics_reach_the_warehouse(full):
    con, _ = full
    assert rows(con, "select email, locale, timezone, first_name from learners where learner_id = '11391'") == [
        ("student-11391@oulad.example", "en", "Europe/London", None)]
    text = str(rows(con, "select * from learners")) + str(rows(con, "select * from enrolments limit 100"))
    for word in ("East Anglian Region", "HE Qualification", "55<=", "90-100%"):
        assert word not in text


def test_a_passing_student_dates_progress_and_calendar(full):
    con, _ = full
    # AAA 2013J starts on the first Monday of October 2013; 11391 registered on day -159
    # and passed; days are London wall-clock (BST until 27 October 2013)
    assert rows(con, "select starts_on::varchar, ends_on::varchar from courses where course_id = 'AAA-2013J'") == [
        ("2013-10-07", "2014-07-02")]
    assert rows(con, "select enrolled_at, status, completed_at, withdrawn_at from enrolments "
                     "where learner_id = '11391' and course_id = 'AAA-2013J'") == [
        (utc(2013, 4, 30, 23), "completed", utc(2014, 7, 2, 22, 59, 59), None)]
    # five TMAs of 10, 20, 20, 20 and 30 out of 200 (the exam weighs 100, and the dataset
    # records no AAA exam submission)
    assert rows(con, "select activity_id, verb, occurred_at, progress from progress_events "
                     "where learner_id = '11391' order by occurred_at") == [
        ("1752", "submitted", utc(2013, 10, 24, 23), 0.05),
        ("1753", "submitted", utc(2013, 11, 29), 0.15),
        ("1754", "submitted", utc(2014, 1, 30), 0.25),
        ("1755", "submitted", utc(2014, 3, 20), 0.35),
        ("1756", "submitted", utc(2014, 5, 6, 23), 0.5)]
    assert rows(con, "select title, kind, week, due_at, weight from activities "
                     "where course_id = 'AAA-2013J' order by due_at") == [
        ("TMA 1", "TMA", 3, utc(2013, 10, 26, 22, 59, 59), 10.0),
        ("TMA 2", "TMA", 8, utc(2013, 11, 30, 23, 59, 59), 20.0),
        ("TMA 3", "TMA", 17, utc(2014, 2, 1, 23, 59, 59), 20.0),
        ("TMA 4", "TMA", 24, utc(2014, 3, 22, 23, 59, 59), 20.0),
        ("TMA 5", "TMA", 31, utc(2014, 5, 10, 22, 59, 59), 30.0),
        # no date in the dataset: the end of the presentation
        ("Exam", "Exam", 39, utc(2014, 7, 2, 22, 59, 59), 100.0)]


def test_a_withdrawn_student_and_the_outcome_the_backtest_reads(full):
    con, _ = full
    # 129955: registered on day -197, unregistered on day 135, three TMAs before that
    assert rows(con, "select enrolled_at, status, completed_at, withdrawn_at from enrolments "
                     "where learner_id = '129955'") == [
        (utc(2013, 3, 24), "withdrawn", None, utc(2014, 2, 19))]
    assert rows(con, "select final_result, decided_at from outcomes where learner_id = '129955'") == [
        ("Withdrawn", utc(2014, 2, 19))]
    assert rows(con, "select activity_id, occurred_at, progress from progress_events "
                     "where learner_id = '129955' order by occurred_at") == [
        ("1752", utc(2013, 10, 24, 23), 0.05), ("1753", utc(2013, 11, 30), 0.15),
        ("1754", utc(2014, 2, 11), 0.25)]
    # Fail keeps the enrolment open: the course ended without a pass or a withdrawal
    assert rows(con, "select e.status, e.completed_at, o.decided_at from enrolments e join outcomes o "
                     "using (learner_id, course_id) where o.final_result = 'Fail' and e.withdrawn_at is null "
                     "and e.course_id = 'AAA-2013J' limit 1") == [("enrolled", None, utc(2014, 7, 2, 22, 59, 59))]


def test_banked_assessments_complete_the_activity_before_day_0(full):
    con, _ = full
    assert rows(con, "select verb, occurred_at from progress_events "
                     "where learner_id = '1797614' and activity_id = '14984'") == [
        ("completed", utc(2013, 2, 3))]      # day -1 of BBB 2013B (4 February 2013)
    assert rows(con, "select count(*) from progress_events where verb = 'completed'") == [
        (sum(1 for r in csv_rows("studentAssessment.csv") if r["is_banked"] == "1"),)]


def test_missing_registration_dates_count_from_day_0(full):
    con, _ = full
    # 630346 (BBB 2013B) has neither date: enrolled on day 0; 57369 (BBB 2013J) left on
    # day -1 without a registration date: enrolled and withdrawn on day -1
    assert rows(con, "select learner_id, enrolled_at, withdrawn_at from enrolments "
                     "where learner_id in ('630346', '57369') order by 1") == [
        ("57369", utc(2013, 10, 5, 23), utc(2013, 10, 5, 23)),
        ("630346", utc(2013, 2, 4), None)]


def test_a_rerun_loads_nothing(full):
    con, _ = full
    n_events = rows(con, "select count(*) from progress_events")
    again = sync(con, oulad())
    assert again.rows == {} and again.n_loaded == 0
    assert rows(con, "select count(*) from progress_events") == n_events
    assert rows(con, "select n_rows from loads where load_id = ?", again.load_id) == [(0,)]


def test_one_module_with_its_own_start_date(wh):
    report = sync(wh, oulad(modules=["AAA"], presentations=["2013J"],
                            start_dates={"2013J": "2013-10-01"}))
    assert report.rows["enrolments"] == 383 and report.rows["courses"] == 1
    assert rows(wh, "select course_id, starts_on::varchar from courses") == [("AAA-2013J", "2013-10-01")]
    assert rows(wh, "select count(*) from progress_events") == [(1633,)]
    assert rows(wh, "select occurred_at from progress_events where event_id = 'oulad-1752-11391'") == [
        (utc(2013, 10, 18, 23),)]                 # day 18 from 1 October


def test_a_grown_submissions_file_loads_only_the_new_submissions(wh, tmp_path):
    data = tmp_path / "oulad"
    data.mkdir()
    for f in OULAD.glob("*.csv"):
        if f.name != "studentAssessment.csv":
            (data / f.name).symlink_to(f)
    lines = (OULAD / "studentAssessment.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    (data / "studentAssessment.csv").write_text("".join(lines[:801]), encoding="utf-8")
    source = oulad(data, modules=["AAA"])
    first = sync(wh, source)
    assert first.rows["progress_events"] == 800          # the file's first rows are all AAA's
    with (data / "studentAssessment.csv").open("a", encoding="utf-8") as f:
        f.writelines(lines[801:])
    second = sync(wh, source)
    # only what depends on the changed file is staged; known submissions are not loaded again
    assert set(second.rows) == {"progress_events"}
    assert second.rows["progress_events"] == 1633 and second.loaded["progress_events"] == 833
    assert rows(wh, "select count(*), count(distinct event_id) from progress_events") == [(1633, 1633)]
    assert sync(wh, source).rows == {}


def write_csv(path, header, *data):
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, quoting=csv.QUOTE_ALL)
        w.writerow(header.split(","))
        w.writerows(data)


INFO = "code_module,code_presentation,id_student,gender,region,highest_education,imd_band,age_band,num_of_prev_attempts,studied_credits,disability,final_result"


def corrupted(tmp_path):
    d = tmp_path / "corrupted"
    d.mkdir()
    write_csv(d / "courses.csv", "code_module,code_presentation,module_presentation_length",
              ["AAA", "2013J", "268"], ["ZZZ", "2013J", "abc"], ["YYY", "2014X", "200"])
    write_csv(d / "assessments.csv", "code_module,code_presentation,id_assessment,assessment_type,date,weight",
              ["AAA", "2013J", "1752", "TMA", "19", "10"], ["AAA", "2013J", "1753", "TMA", "soon", "20"],
              ["AAA", "2013J", "1757", "Exam", "", "100"], ["AAA", "2013J", "1758", "TMA", "100", "heavy"])
    person = ["M", "Scotland", "HE Qualification", "20-30%", "35-55", "0", "60", "N"]
    write_csv(d / "studentInfo.csv", INFO, ["AAA", "2013J", "11391", *person, "Pass"],
              ["AAA", "2013J", "", *person, "Pass"], ["AAA", "2013J", "28400", *person, "Maybe"],
              ["AAA", "2013J", "30268", *person, "Withdrawn"])
    write_csv(d / "studentRegistration.csv",
              "code_module,code_presentation,id_student,date_registration,date_unregistration",
              ["AAA", "2013J", "11391", "-159", ""], ["AAA", "2013J", "28400", "-53", ""],
              ["AAA", "2013J", "30268", "yesterday", "12"])
    write_csv(d / "studentAssessment.csv", "id_assessment,id_student,date_submitted,is_banked",
              ["1752", "11391", "18", "0"], ["1752", "11391", "18", "0"], ["1752", "99999", "20", "0"],
              ["9999", "11391", "20", "0"], ["1757", "28400", "x", "0"], ["1757", "28400", "200", "2"])
    write_csv(d / "vle.csv", "id_site,code_module,code_presentation,activity_type,week_from,week_to")
    return d


def test_bad_rows_of_a_corrupted_copy_are_quarantined_with_file_row_and_reason(wh, tmp_path):
    report = sync(wh, oulad(corrupted(tmp_path)))
    got = rows(wh, "select entity, regexp_extract(source_file, '[^/]+$'), row_number, reason from quarantine "
                   "order by entity, source_file, row_number")
    assert got == [
        ("activities", "assessments.csv", 2, "date is not a whole number of days: soon"),
        ("activities", "assessments.csv", 4, "weight must be a number >= 0: heavy"),
        ("courses", "courses.csv", 2, "module_presentation_length is not a whole number of days: abc"),
        ("courses", "courses.csv", 3, "no start date for presentation 2014X: give one in the source's "
                                      "start_dates (e.g. start_dates: {2014X: 2014-02-03})"),
        ("enrolments", "studentRegistration.csv", 3, "date_registration is not a whole number of days: yesterday"),
        ("learners", "studentInfo.csv", 2, "missing id_student"),
        ("outcomes", "studentInfo.csv", 3, "unknown final_result: Maybe (expected Pass, Distinction, Fail or Withdrawn)"),
        ("outcomes", "studentInfo.csv", 4, "unknown enrolment: learner 30268 on course AAA-2013J"),
        ("progress_events", "studentAssessment.csv", 2, "duplicate event in this load: oulad-1752-11391"),
        ("progress_events", "studentAssessment.csv", 3, "unknown enrolment: learner 99999 on course AAA-2013J"),
        ("progress_events", "studentAssessment.csv", 4, "unknown assessment: 9999 (not in assessments.csv)"),
        ("progress_events", "studentAssessment.csv", 5, "date_submitted is not a whole number of days: x"),
        ("progress_events", "studentAssessment.csv", 6, "is_banked must be 0 or 1: 2"),
        ("study_history", "studentInfo.csv", 4, "unknown enrolment: learner 30268 on course AAA-2013J"),
    ]
    # the study history's row is kept without the demographic columns (never read)
    assert rows(wh, "select raw->>'credits', contains(raw::varchar, 'Scotland'), "
                    "contains(raw::varchar, '35-55') from quarantine "
                    "where entity = 'study_history'") == [("60", False, False)]
    assert rows(wh, "select learner_id, previous_attempts, credits from study_history "
                    "order by 1") == [("11391", 0, 60), ("28400", 0, 60)]
    # the source's own row is kept, as published
    assert rows(wh, "select raw->>'date_submitted', raw->>'id_student' from quarantine "
                    "where reason like 'date_submitted%'") == [("x", "28400")]
    assert report.n_quarantined == 14
    assert rows(wh, "select n_quarantined from loads") == [(14,)]
    # the good rows landed; an unknown final_result leaves the enrolment open
    assert rows(wh, "select learner_id, status from enrolments order by 1") == [
        ("11391", "completed"), ("28400", "enrolled")]
    assert rows(wh, "select event_id, progress from progress_events") == [("oulad-1752-11391", 0.076923)]


def test_a_row_with_the_wrong_number_of_values_is_quarantined_and_the_rows_after_it_keep_their_numbers(
        wh, tmp_path):
    d = corrupted(tmp_path)
    lines = (d / "studentAssessment.csv").read_text(encoding="utf-8").splitlines()
    lines.insert(2, '"1753","11391","25"')                 # row 2: three values of four
    (d / "studentAssessment.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = sync(wh, oulad(d))
    assert rows(wh, "select row_number, raw->>'line', reason from quarantine "
                    "where entity = 'progress_events' and row_number <= 3 order by row_number") == [
        (2, '"1753","11391","25"', "fewer values than the header has columns (Expected Number "
                                   "of Columns: 4 Found: 3): a value left out, or a delimiter missing"),
        (3, None, "duplicate event in this load: oulad-1752-11391")]
    assert rows(wh, "select row_number, coalesce(raw->>'id_student', raw->>'learner_id'), "
                    "split_part(reason, ':', 1) from quarantine "
                    "where entity = 'progress_events' and row_number > 3 order by row_number") == [
        (4, "99999", "unknown enrolment"), (5, "11391", "unknown assessment"),
        (6, "28400", "date_submitted is not a whole number of days"),
        (7, "28400", "is_banked must be 0 or 1")]
    assert report.rows["progress_events"] == 7
    assert report.quarantined["progress_events"] == 6
    assert rows(wh, "select event_id from progress_events") == [("oulad-1752-11391",)]


def test_a_quote_left_open_in_an_oulad_file_stops_the_sync_naming_its_row(wh, tmp_path):
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


def test_settings_and_directory_errors_name_the_source(tmp_path):
    with pytest.raises(SourceError, match=r"source oulad: colour: Extra inputs are not permitted"):
        oulad(colour="blue")
    with pytest.raises(SourceError, match=r"source oulad: start_dates.2013J: Input should be a valid date"):
        oulad(start_dates={"2013J": "October"})
    con = warehouse.connect(":memory:")
    with pytest.raises(SourceError) as exc:
        sync(con, oulad(tmp_path / "nowhere"))
    assert f"{tmp_path / 'nowhere' / 'assessments.csv'} not found: `directory` must be the folder of the OULAD files" in str(exc.value)


def test_named_in_a_sources_file_with_the_default_directory(tmp_path):
    # the default directory is ../shared/data/oulad-2013 from the sources file's folder
    (tmp_path / "shared" / "data").mkdir(parents=True)
    (tmp_path / "shared" / "data" / "oulad-2013").symlink_to(OULAD)
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy" / "sources.yaml").write_text(
        "sources:\n  ou: {kind: oulad, presentations: 2013B, modules: [FFF]}\n")
    connector = open_source("ou", tmp_path / "deploy" / "sources.yaml")
    assert connector.name == "ou" and connector.directory == OULAD.resolve()
    con = warehouse.connect(":memory:")
    report = sync(con, connector)
    assert report.rows["enrolments"] == 1614
    assert rows(con, "select distinct source from enrolments") == [("ou",)]
