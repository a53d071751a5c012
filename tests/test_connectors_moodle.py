"""The Moodle connector against a local server answering as Moodle's REST web services do
(tests/fakes/moodle_server.py): a full sync, incremental reruns, a resumed sync, every
error path, quarantine; a site in maintenance, a pinned discussion, users hidden or suspended,
completions a teacher grades or ticks after the learner's last visit, the flow's task runs."""

from __future__ import annotations

import copy
import re
from datetime import datetime, timedelta, timezone

import pytest

from connectors import SourceError, sync
from connectors.http import SourceUnavailable
from tests.lms_fixtures import (M0, MOODLE_TOKEN, moodle_site, moodle_source, moodle_user,
                                start_fake, unix)
from tests.prefect_runs import settled_task_runs


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
                                 "courses": 0, "activities": 0, "contributions": 0,
                                 "lms_accounts": 0}
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


# what Moodle's web service server answers while the site is in maintenance mode
# (webservice/lib.php: "this is usually temporary, client want to implement code logic")
MAINTENANCE = {"exception": "moodle_exception", "errorcode": "sitemaintenance",
               "message": "Site is undergoing maintenance and is currently not available"}


def test_a_moodle_site_in_maintenance_is_retried_like_an_unavailable_server(
        wh, tmp_path, moodle, site):
    # the maintenance ends after two answers: the sync waits it out and loads everything
    site["failures"] = [{"match": {"wsfunction": "core_course_get_courses"}, "times": 2,
                         "status": 200, "body": MAINTENANCE}]
    moodle.set(site)
    report = sync(wh, moodle_source(tmp_path, moodle.url))
    assert report.loaded["courses"] == 2
    assert rows(wh, "select status from loads") == [("succeeded",)]

    # a longer one: a SourceUnavailable, which the sync-progress flow's task tries again later
    site["failures"] = [{"match": {"wsfunction": "core_course_get_courses"}, "times": 99,
                         "status": 200, "body": MAINTENANCE}]
    moodle.set(site)
    with pytest.raises(SourceUnavailable, match="sitemaintenance"):
        sync(wh, moodle_source(tmp_path, moodle.url))


def test_a_pinned_discussion_does_not_hide_the_new_ones_behind_it(wh, tmp_path, moodle, site):
    forum = site["discussions"]["7"]
    forum[0]["pinned"] = True           # the teacher's welcome, pinned at the top for good
    moodle.set(site)
    sync(wh, moodle_source(tmp_path, moodle.url))
    assert rows(wh, "select title from contributions") == [("Je me présente",)]

    # a busy week: three learners' discussions, more than a page (page_size: 2)
    later = M0 + timedelta(weeks=3)
    for i, (user, subject) in enumerate([(31, "Vocabulaire"), (32, "Grammaire"), (33, "Oral")]):
        forum.append({**forum[1], "discussion": 80 + i, "id": 800 + i, "userid": user,
                      "name": subject, "subject": subject, "numreplies": 0,
                      "created": unix(later) + i, "timemodified": unix(later) + i})
    moodle.set(site)
    sync(wh, moodle_source(tmp_path, moodle.url))
    assert rows(wh, "select title from contributions order by posted_at") == [
        ("Je me présente",), ("Vocabulaire",), ("Grammaire",), ("Oral",)]


def test_an_expired_moodle_token_is_named_as_a_possible_cause_of_an_access_exception(
        wh, tmp_path, moodle, site):
    # an expired token (or one used from another IP address) is refused with the same
    # accessexception as a function missing from the service; Moodle sends which check
    # failed ("Invalid token - token expired ...") only in debuginfo, in debug mode
    site["failures"] = [{"match": {"wsfunction": "core_course_get_courses"}, "times": 1,
                         "status": 200, "body": {"exception": "webservice_access_exception",
                                                 "errorcode": "accessexception",
                                                 "message": "Access control exception"}}]
    moodle.set(site)
    with pytest.raises(SourceError) as exc:
        sync(wh, moodle_source(tmp_path, moodle.url))
    assert str(exc.value).startswith("source moodle-prod: core_course_get_courses: accessexception")
    assert "token may have expired" in str(exc.value)
    assert "set the environment variable MOODLE_TOKEN to a valid web service token" in str(exc.value)
    assert not isinstance(exc.value, SourceUnavailable)

    debuginfo = "Invalid token - token expired - check validuntil time for the token"
    site["failures"][0].update(times=1, body={**site["failures"][0]["body"], "debuginfo": debuginfo})
    moodle.set(site)
    with pytest.raises(SourceError, match=f"Access control exception \\({debuginfo}\\)"):
        sync(wh, moodle_source(tmp_path, moodle.url))


def test_a_teachers_token_is_told_which_role_the_sync_needs(wh, tmp_path, moodle, site):
    # a teacher's token: core_course_get_courses requires moodle/course:view, which only
    # the manager role has by default
    moodle.set({**site, "course_view": False})
    with pytest.raises(SourceError) as exc:
        sync(wh, moodle_source(tmp_path, moodle.url))
    message = str(exc.value)
    assert message.startswith("source moodle-prod: core_course_get_courses (): nopermissions: "
                              "Sorry, but you do not currently have permissions to do that "
                              "(View courses without participation).")
    assert "give the token's user a role with this capability" in message
    assert "manager" in message


def test_a_moodle_token_read_with_its_trailing_newline_works(wh, tmp_path, moodle, site,
                                                             monkeypatch):
    # an env file or a mounted secret ends with a newline: Moodle said "invalidtoken"
    monkeypatch.setenv("MOODLE_TOKEN", MOODLE_TOKEN + "\n")
    report = sync(wh, moodle_source(tmp_path, moodle.url))
    assert report.n_loaded > 0
    assert rows(wh, "select status from loads") == [("succeeded",)]


def test_a_moodle_page_short_of_a_hidden_user_does_not_end_the_list(wh, tmp_path, moodle, site):
    # Moodle pages enrolled users in its query, then leaves out those the token's user may
    # not see: with pages of two, zoe hidden, the first page holds the teacher alone
    moodle.set({**site, "hidden": {"12": [31]}})
    sync(wh, moodle_source(tmp_path, moodle.url))
    assert rows(wh, "select learner_id from enrolments where course_id = 'ANG-B2' "
                    "order by 1") == [("ines",), ("marc",)]


def test_a_moodle_visit_in_the_same_second_as_the_cursor_is_read(wh, tmp_path, moodle, site):
    # zoe's visit is the last the first sync reads; marc opens the course in that same
    # second, just after the read (Moodle's times are to the second)
    sync(wh, moodle_source(tmp_path, moodle.url))
    moodle.set(site)                      # resets the call log
    sync(wh, moodle_source(tmp_path, moodle.url))
    # zoe, in the cursor's second, is not asked again (paul, quarantined, is until fixed)
    assert [c["userid"] for c in moodle.calls("core_completion_get_activities_completion_status")] == ["34"]
    zoe = next(u for u in site["users"]["12"] if u["username"] == "zoe")
    users = [dict(u, lastcourseaccess=zoe["lastcourseaccess"]) if u["username"] == "marc" else u
             for u in site["users"]["12"]]
    moodle.set({**site, "users": {**site["users"], "12": users}})
    sync(wh, moodle_source(tmp_path, moodle.url))
    assert rows(wh, "select learner_id, occurred_at from progress_events where verb = 'accessed' "
                    "and course_id = 'ANG-B2' and learner_id = 'marc'") == [
        ("marc", M0 + timedelta(weeks=2))]
    # and the sync after asks neither again
    moodle.set({**site, "users": {**site["users"], "12": users}})
    sync(wh, moodle_source(tmp_path, moodle.url))
    assert [c["userid"] for c in moodle.calls("core_completion_get_activities_completion_status")] == ["34"]


def test_a_completion_a_teacher_grades_after_the_learners_last_visit_is_read(
        wh, tmp_path, moodle, site):
    # ines submitted "Présentez-vous" (101), whose completion needs a passing grade: not
    # complete until her teacher grades it
    site["completion"]["12:33"] = [{**site["completion"]["12:33"][0], "state": 0,
                                    "timecompleted": 0}]
    moodle.set(site)
    sync(wh, moodle_source(tmp_path, moodle.url))
    assert rows(wh, "select count(*) from progress_events where learner_id = 'ines' "
                    "and activity_id = '101'") == [(0,)]

    # days later the teacher grades it: Moodle marks it passed then; ines does not come back
    graded = M0 + timedelta(weeks=3)
    site["completion"]["12:33"][0].update(state=2, timecompleted=unix(graded))
    ines = next(g for g in site["grades"]["12"] if g["userid"] == 33)
    ines["gradeitems"][0].update(graderaw=16.0, gradedategraded=unix(graded))
    moodle.set(site)
    sync(wh, moodle_source(tmp_path, moodle.url))
    assert rows(wh, "select verb, occurred_at from progress_events where learner_id = 'ines' "
                    "and activity_id = '101'") == [("passed", graded)]
    # only she was asked again: the others have no news
    assert [c["userid"] for c in moodle.calls("core_completion_get_activities_completion_status")
            if c["courseid"] == "12"] == ["33"]


def test_a_completion_a_teacher_ticks_by_hand_is_read_at_the_weekly_refresh(
        wh, tmp_path, moodle, site):
    # ines's "Présentez-vous" (101) is not complete; her teacher ticks it complete by hand
    # (manual override): no visit, no grade, nothing else Moodle lists says so
    site["completion"]["12:33"] = [{**site["completion"]["12:33"][0], "state": 0,
                                    "timecompleted": 0}]
    moodle.set(site)
    sync(wh, moodle_source(tmp_path, moodle.url))
    ticked = M0 + timedelta(weeks=3)
    site["completion"]["12:33"][0].update(state=1, timecompleted=unix(ticked), overrideby=2)
    moodle.set(site)
    sync(wh, moodle_source(tmp_path, moodle.url))
    assert rows(wh, "select count(*) from progress_events where learner_id = 'ines' "
                    "and activity_id = '101'") == [(0,)]
    # a week after the last refresh, every learner is asked again
    wh.execute("update source_cursors set cursor = ? where stream = 'course:12:refreshed'",
               [(datetime.now(timezone.utc) - timedelta(days=7, minutes=1)).isoformat()])
    moodle.set(site)
    sync(wh, moodle_source(tmp_path, moodle.url))
    assert rows(wh, "select verb, occurred_at from progress_events where learner_id = 'ines' "
                    "and activity_id = '101'") == [("completed", ticked)]
    assert sorted(c["userid"] for c in moodle.calls("core_completion_get_activities_completion_status")
                  if c["courseid"] == "12") == ["31", "32", "33"]
    # and the sync after asks none of them again
    moodle.set(site)
    sync(wh, moodle_source(tmp_path, moodle.url))
    assert [c for c in moodle.calls("core_completion_get_activities_completion_status")
            if c["courseid"] == "12"] == []


def test_a_suspended_or_expired_moodle_enrolment_is_withdrawn(wh, tmp_path, moodle, site):
    sync(wh, moodle_source(tmp_path, moodle.url))
    # ines's enrolment on ANG-B2 is suspended (or reached its end date): she can no longer
    # open the course, and Moodle still lists her unless asked for active enrolments only
    moodle.set({**site, "inactive": {"12": [33]}})
    sync(wh, moodle_source(tmp_path, moodle.url))
    assert rows(wh, "select learner_id, status from enrolments where course_id = 'ANG-B2' "
                    "order by 1") == [("ines", "withdrawn"), ("marc", "enrolled"),
                                      ("zoe", "enrolled")]


def test_in_a_flow_each_call_is_a_task_and_per_learner_calls_one_per_course(
        tmp_path, moodle, site):
    # the flow run shows every page fetched as a task run, with its retries inside; the
    # completion statuses, one call per learner, are one task run per course
    import flows.sync_progress as flow_module
    site["failures"] = [{"match": {"wsfunction": "core_course_get_contents"}, "times": 1,
                         "status": 503}]
    moodle.set(site)
    moodle_source(tmp_path, moodle.url)            # writes sources.yaml
    state = flow_module.sync_progress(sources_file=str(tmp_path / "sources.yaml"),
                                      warehouse_path=str(tmp_path / "w.duckdb"),
                                      return_state=True)
    assert state.is_completed()
    runs = settled_task_runs(state.state_details.flow_run_id)
    names = sorted(r.name for r in runs)
    assert all(r.state and r.state.is_completed() for r in runs), \
        [(r.name, r.state and r.state.name) for r in runs]
    fetches = [n for n in names if n.startswith("moodle-prod: ")]
    # enrolled users in pages of two: course 12's four (pages at 0, 2, and an empty one
    # at 4), course 15's two (0, and an empty one at 2)
    assert sum("core_enrol_get_enrolled_users (courseid=12)" in n for n in fetches) == 3
    assert sum("core_enrol_get_enrolled_users (courseid=15)" in n for n in fetches) == 2
    # the 503 was retried inside its task: one task run for the course's contents
    assert sum("core_course_get_contents (courseid=12)" in n for n in fetches) == 1
    assert sorted(n for n in fetches if "completion" in n) == [
        "moodle-prod: completion statuses of 2 learner(s), course 15",
        "moodle-prod: completion statuses of 3 learner(s), course 12"]
    assert len(names) == len(fetches) + 1           # and the load itself


def test_relance_sync_prints_names_in_brackets_as_they_are(tmp_path, moodle, site):
    # course short names like "[en] CLIM" (a language, a session) are common; the CLI
    # prints quarantine reasons and errors through rich, which reads [lowercase ...] as
    # markup: swallowed, or a MarkupError for what looks like a closing tag
    from typer.testing import CliRunner

    from relance.cli.main import app
    site["courses"][2]["shortname"] = "[en] CLIM"
    moodle.set(site)
    sources = tmp_path / "sources.yaml"
    sources.write_text(f"sources:\n  moodle-prod: {{kind: moodle, url: '{moodle.url}', "
                       f"token: {{env: MOODLE_TOKEN}}}}\n", encoding="utf-8")
    warehouse_file = str(tmp_path / "w.duckdb")
    result = CliRunner().invoke(app, ["sync", "moodle-prod", "--sources", str(sources),
                                      "--warehouse", warehouse_file], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "on course [en] CLIM (1)" in result.output, result.output

    missing = tmp_path / "[prod]" / "sources.yaml"
    result = CliRunner().invoke(app, ["sync", "--sources", str(missing), "--warehouse",
                                      warehouse_file], env={"COLUMNS": "400"})
    assert result.exit_code == 1
    assert f"error {missing}: sources file not found" in result.output
