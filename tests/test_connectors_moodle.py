"""The Moodle connector against a local server answering as Moodle's REST web services do
(tests/fakes/moodle_server.py): a full sync, incremental reruns, a resumed sync, every
error path, quarantine."""

from __future__ import annotations

import copy
import re
from datetime import timedelta

import pytest

from connectors import SourceError, sync
from connectors.http import SourceUnavailable
from tests.lms_fixtures import (M0, MOODLE_TOKEN, moodle_site, moodle_source, moodle_user,
                                start_fake, unix)


@pytest.fixture(scope="module")
def moodle():
    server = start_fake("tests.fakes.moodle_server")
    yield server
    server.stop()


@pytest.fixture
def site(moodle, monkeypatch):
    monkeypatch.setenv("MOODLE_TOKEN", MOODLE_TOKEN)
    state = moodle_site()
    moodle.set(state)
    return state


def rows(wh, sql):
    return wh.execute(sql).fetchall()


def test_a_full_sync_brings_the_site_into_the_warehouse(wh, tmp_path, moodle, site):
    report = sync(wh, moodle_source(tmp_path, moodle.url))

    assert rows(wh, "select course_id, title, url, starts_on from courses order by 1") == [
        ("ANG-B2", "Anglais B2", f"{moodle.url}/course/view.php?id=12", M0.date()),
        ("CLIM", "Climat : les bases", f"{moodle.url}/course/view.php?id=15",
         (M0 + timedelta(weeks=1)).date())]
    # students only (not the teacher); Moodle's timezone 99 is "the site's": unknown here
    assert rows(wh, "select learner_id, email, first_name, locale, timezone from learners order by 1") == [
        ("ines", "ines@example.org", "Inès", "fr", None),
        ("marc", "marc@example.org", "Marc", "en", None),
        ("zoe", "zoe@example.org", "Zoé", "fr", "Europe/Paris")]
    assert rows(wh, "select learner_id, course_id, enrolled_at from enrolments order by 2, 1") == [
        ("ines", "ANG-B2", M0), ("marc", "ANG-B2", M0), ("zoe", "ANG-B2", M0),
        ("zoe", "CLIM", M0 + timedelta(weeks=1))]
    # the calendar: labels left out, due dates by Moodle's dataid, week = section
    assert rows(wh, "select activity_id, title, kind, week, opens_at, due_at, is_required "
                    "from activities where course_id = 'ANG-B2' order by 1") == [
        ("100", "Forum de la promo", "forum", None, None, None, False),
        ("101", "Présentez-vous", "assign", 1, M0, M0 + timedelta(weeks=1), True),
        ("102", "Quiz 1", "quiz", 1, None, M0 + timedelta(weeks=1), True),
        ("104", "Lecture", "page", 2, None, None, True)]
    assert rows(wh, "select learner_id, course_id, activity_id, verb, occurred_at from progress_events "
                    "where verb <> 'accessed' order by occurred_at, verb") == [
        ("zoe", "ANG-B2", "101", "submitted", M0 + timedelta(days=2)),
        ("zoe", "ANG-B2", "101", "completed", M0 + timedelta(days=3)),
        ("zoe", "ANG-B2", "102", "passed", M0 + timedelta(days=4)),
        ("zoe", "CLIM", "151", "completed", M0 + timedelta(weeks=1, days=1)),
        ("ines", "ANG-B2", "101", "completed", M0 + timedelta(weeks=1, days=2)),
        ("ines", "ANG-B2", "102", "failed", M0 + timedelta(weeks=1, days=2))]
    # a visit per learner who came (marc never did)
    assert rows(wh, "select learner_id, course_id, occurred_at from progress_events "
                    "where verb = 'accessed' order by 2, 1") == [
        ("ines", "ANG-B2", M0 + timedelta(weeks=1, days=2)), ("zoe", "ANG-B2", M0 + timedelta(weeks=2)),
        ("zoe", "CLIM", M0 + timedelta(weeks=1, days=1))]
    # the learner's discussion; the teacher's is not a learner's contribution
    assert rows(wh, "select contribution_id, learner_id, title, url, n_replies from contributions") == [
        ("moodle:discussion:71", "zoe", "Je me présente",
         f"{moodle.url}/mod/forum/discuss.php?d=71", 2)]

    # quarantined, with the reason: a bad e-mail (and what hangs on that learner), and a
    # post by someone the course does not list
    assert rows(wh, "select entity, reason from quarantine order by 1, 2") == [
        ("contributions", "missing learner_id"),
        ("enrolments", "unknown learner: paul"),
        ("learners", "malformed email: paul@@example"),
        ("progress_events", "unknown enrolment: learner paul on course CLIM")]
    assert report.n_quarantined == 4
    # the token went in request bodies, never in a URL, and is in no stored row
    assert rows(wh, f"select count(*) from quarantine where raw::varchar like '%{MOODLE_TOKEN}%'") == [(0,)]
    assert rows(wh, f"select count(*) from loads where coalesce(error, '') like '%{MOODLE_TOKEN}%'") == [(0,)]
    # enrolled users were read two at a time
    assert [c["options[0][value]"] for c in moodle.calls("core_enrol_get_enrolled_users")
            if c["courseid"] == "12"] == ["0", "2", "4"]


def test_a_rerun_loads_nothing_and_the_next_sync_only_what_changed(wh, tmp_path, moodle, site):
    sync(wh, moodle_source(tmp_path, moodle.url))
    events = rows(wh, "select count(*) from progress_events")[0][0]

    site["failures"] = []
    moodle.set(site)                      # resets the call log
    again = sync(wh, moodle_source(tmp_path, moodle.url))
    # paul (quarantined) is staged again each time until fixed in Moodle; nothing else is
    assert {e: n for e, n in again.rows.items() if n} == {
        "learners": 1, "enrolments": 1, "progress_events": 1}
    assert again.quarantined == {"learners": 1, "enrolments": 1, "progress_events": 1,
                                 "courses": 0, "activities": 0, "contributions": 0}
    assert rows(wh, "select count(*) from progress_events")[0][0] == events
    # only the learner who still needs loading was asked for completion statuses
    assert [c["userid"] for c in moodle.calls("core_completion_get_activities_completion_status")] == ["34"]

    # a week later: marc comes for the first time and completes the reading; a new post
    later = M0 + timedelta(weeks=3)
    users = site["users"]["12"]
    users[2] = moodle_user(32, "marc", first="Marc", lastname="Durand", lang="en", last=later)
    site["completion"]["12:32"] = [{**site["completion"]["12:31"][2], "state": 1,
                                    "timecompleted": unix(later)}]
    site["users"]["12"] = [u for u in users if u["username"] != "ines"]   # unenrolled
    site["discussions"]["7"].append({**site["discussions"]["7"][1], "discussion": 73,
                                     "id": 730, "userid": 32, "name": "Hello",
                                     "created": unix(later), "timemodified": unix(later)})
    moodle.set(site)
    week = sync(wh, moodle_source(tmp_path, moodle.url))
    assert rows(wh, "select learner_id, verb, activity_id from progress_events "
                    f"where occurred_at = '{later.isoformat()}' order by 2") == [
        ("marc", "accessed", None), ("marc", "completed", "104")]
    assert week.loaded["progress_events"] == 2
    assert [c["userid"] for c in moodle.calls("core_completion_get_activities_completion_status")] == ["32", "34"]
    assert rows(wh, "select learner_id, title from contributions order by posted_at") == [
        ("zoe", "Je me présente"), ("marc", "Hello")]
    # ines left the course in Moodle: her enrolment is withdrawn, the rest untouched
    assert rows(wh, "select learner_id, status, withdrawn_at is not null from enrolments "
                    "where course_id = 'ANG-B2' order by 1") == [
        ("ines", "withdrawn", True), ("marc", "enrolled", False), ("zoe", "enrolled", False)]
    # the forum was read down to its cursor only: one page
    assert len(moodle.calls("mod_forum_get_forum_discussions")) == 1


def test_a_sync_that_fails_half_way_keeps_what_it_read_and_the_next_one_resumes(
        wh, tmp_path, moodle, site):
    # course 15's contents keep failing after course 12 was read in full
    site["failures"] = [{"match": {"wsfunction": "core_course_get_contents", "courseid": 15},
                         "times": 99, "status": 503, "body": {"error": "Service Unavailable"}}]
    moodle.set(site)
    with pytest.raises(SourceUnavailable) as exc:
        sync(wh, moodle_source(tmp_path, moodle.url))
    assert str(exc.value).startswith("source moodle-prod: POST http://127.0.0.1:")
    assert "still failing after 3 attempt(s)" in str(exc.value) and "503" in str(exc.value)
    # course 12 is in, with its cursors; course 15 is not, and has none
    assert rows(wh, "select course_id, count(*) from enrolments group by 1") == [("ANG-B2", 3)]
    assert rows(wh, "select stream from source_cursors order by 1") == [
        ("course:12:access",), ("course:12:refreshed",), ("forum:7",)]
    assert rows(wh, "select status, n_loaded > 0, error like 'SourceUnavailable: %' from loads") == [
        ("failed", True, True)]

    site["failures"] = []
    moodle.set(site)
    resumed = sync(wh, moodle_source(tmp_path, moodle.url))
    # course 12's learners are not asked again (nothing new since); course 15's all are
    assert [(c["courseid"], c["userid"]) for c in
            moodle.calls("core_completion_get_activities_completion_status")] == [
        ("15", "31"), ("15", "34")]
    assert resumed.loaded["enrolments"] == 1
    # the same warehouse as one sync that never failed: nothing missing, nothing twice
    assert rows(wh, "select count(*), count(distinct event_id) from progress_events") == [(9, 9)]
    assert rows(wh, "select count(*) from enrolments") == [(4,)]
    assert rows(wh, "select count(*) from contributions") == [(1,)]


def test_transient_errors_are_retried(wh, tmp_path, moodle, site, caplog):
    site["failures"] = [
        {"match": {"wsfunction": "core_enrol_get_enrolled_users"}, "times": 2, "status": 503},
        {"match": {"wsfunction": "core_course_get_contents"}, "times": 1, "status": 429,
         "headers": {"Retry-After": "0"}},
        {"match": {"wsfunction": "gradereport_user_get_grade_items"}, "times": 1, "sleep": 1.5},
    ]
    moodle.set(site)
    connector = moodle_source(tmp_path, moodle.url)
    with caplog.at_level("DEBUG"):
        sync(wh, connector)
    assert len(connector.http.retrier.waits) == 4
    assert rows(wh, "select count(*) from progress_events") == [(9,)]
    # each retry is logged, with what failed and never the token (httpx's own logs too)
    retries = [r.getMessage() for r in caplog.records if r.name == "relance.connectors"]
    assert len(retries) == 4 and "503 Service Unavailable; retrying in" in retries[0]
    assert not [r for r in caplog.records if MOODLE_TOKEN in r.getMessage()]


@pytest.mark.parametrize("state_change, message", [
    ({"token": "another-token"},
     "source moodle-prod: the credentials were refused (core_course_get_courses: invalidtoken: "
     "Invalid token - token not found); set the environment variable MOODLE_TOKEN to a valid "
     "web service token"),
    ({"functions": ["core_course_get_courses", "core_enrol_get_enrolled_users"]},
     "source moodle-prod: core_course_get_contents: accessexception: Access control exception; "
     "add the function to the token's external service"),
])
def test_refused_credentials_stop_the_sync_with_the_fix(wh, tmp_path, moodle, site, state_change,
                                                       message):
    moodle.set({**copy.deepcopy(site), **state_change})
    with pytest.raises(SourceError) as exc:
        sync(wh, moodle_source(tmp_path, moodle.url))
    assert str(exc.value).startswith(message)
    assert MOODLE_TOKEN not in str(exc.value)
    # not worth retrying later: the flow's task retries only an unavailable source
    assert not isinstance(exc.value, SourceUnavailable)
    assert rows(wh, "select status from loads") == [("failed",)]


def test_an_unknown_course_is_named(wh, tmp_path, moodle, site):
    with pytest.raises(SourceError, match="source moodle-prod: courses: no course with id 99 "
                                          "is visible to this token"):
        sync(wh, moodle_source(tmp_path, moodle.url, "courses: [12, 99]\n"))


def test_relance_sync_loads_a_moodle_source_and_says_what_it_set_aside(tmp_path, moodle, site,
                                                                       monkeypatch):
    from typer.testing import CliRunner

    from relance.cli.main import app
    sources = tmp_path / "sources.yaml"
    sources.write_text(f"sources:\n  moodle-prod: {{kind: moodle, url: '{moodle.url}', "
                       f"token: {{env: MOODLE_TOKEN}}}}\n", encoding="utf-8")
    args = ["sync", "moodle-prod", "--sources", str(sources), "--warehouse",
            str(tmp_path / "w.duckdb")]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "150"})
    assert result.exit_code == 0, result.output
    assert re.search(r"learners\s+│\s+4\s+│\s+3\s+│\s+1\s+│", result.output)
    assert re.search(r"progress_events\s+│\s+10\s+│\s+9\s+│\s+1\s+│", result.output)
    assert "quarantined learners: malformed email: paul@@example (1)" in result.output

    monkeypatch.setenv("MOODLE_TOKEN", "revoked")
    result = CliRunner().invoke(app, args, env={"COLUMNS": "400"})
    assert result.exit_code == 1
    assert ("error source moodle-prod: the credentials were refused (core_course_get_courses: "
            "invalidtoken: Invalid token - token not found); set the environment variable "
            "MOODLE_TOKEN to a valid web service token") in result.output
    assert "revoked" not in result.output
