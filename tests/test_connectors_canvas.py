"""The Canvas connector (canvasapi) against a local server answering as Canvas's REST API
does (tests/fakes/canvas_server.py): Link-header pages, incremental reruns, a resumed
sync, 401, 403, rate limiting, quarantine; students' replies in discussions, requirements a
teacher grades later, concluded enrollments, a token read with its trailing newline."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

import warehouse
from connectors import SourceError, sync
from connectors.http import SourceUnavailable
from tests.lms_fixtures import (C0, CANVAS_TOKEN, canvas_enrollment, canvas_site, canvas_source,
                                canvas_user, iso, start_fake)

# canvasapi warns about plain-HTTP URLs: the local server is one
pytestmark = pytest.mark.filterwarnings("ignore:Canvas may respond unexpectedly")


@pytest.fixture(scope="module")
def canvas():
    server = start_fake("tests.fakes.canvas_server")
    yield server
    server.stop()


@pytest.fixture
def site(canvas, monkeypatch):
    monkeypatch.setenv("CANVAS_TOKEN", CANVAS_TOKEN)
    state = canvas_site()
    state["max_per_page"] = 2           # every list comes two by two, through Link headers
    canvas.set(state)
    return state


def rows(wh, sql):
    return wh.execute(sql).fetchall()


def test_a_full_sync_brings_the_courses_into_the_warehouse(wh, tmp_path, canvas, site):
    report = sync(wh, canvas_source(tmp_path, canvas.url))
    w = timedelta(weeks=1)

    assert rows(wh, "select course_id, title, url, starts_on, ends_on from courses order by 1") == [
        ("ANG-B2", "Anglais B2", f"{canvas.url}/courses/4021", C0.date(), (C0 + 20 * w).date()),
        ("CLIM", "Climat : les bases", f"{canvas.url}/courses/4022", (C0 + w).date(), None)]
    assert rows(wh, "select learner_id, email, first_name, last_name, locale from learners order by 1") == [
        ("ines", "ines@example.edu", "Inès", "Benali", "fr"),
        ("marc", "marc@example.edu", "Marc", "Durand", "fr"),
        ("zoe", "zoe@example.edu", "Zoé", "Lefèvre", "fr")]
    # a concluded enrollment is a completed one
    assert rows(wh, "select learner_id, course_id, status, enrolled_at from enrolments order by 2, 1") == [
        ("ines", "ANG-B2", "completed", C0 - timedelta(days=3)),
        ("marc", "ANG-B2", "enrolled", C0 - timedelta(days=3)),
        ("zoe", "ANG-B2", "enrolled", C0 - timedelta(days=3)),
        ("zoe", "CLIM", "enrolled", C0 - timedelta(days=3))]
    # the calendar: module items but sub-headers, dates from their content details
    assert rows(wh, "select activity_id, title, kind, week, opens_at, due_at, is_required "
                    "from activities where course_id = 'ANG-B2' order by 1") == [
        ("9002", "Présentez-vous", "assignment", 1, C0, C0 + w, True),
        ("9003", "Lecture", "page", 1, None, None, True),
        ("9004", "Quiz 2", "quiz", 2, None, C0 + 2 * w, True)]
    # completed requirements, at the student's last activity; page views on the course
    assert rows(wh, "select learner_id, course_id, activity_id, occurred_at from progress_events "
                    "where verb = 'completed' order by 2, 1, 3") == [
        ("ines", "ANG-B2", "9002", C0 + w), ("ines", "ANG-B2", "9003", C0 + w),
        ("ines", "ANG-B2", "9004", C0 + w),
        ("zoe", "ANG-B2", "9002", C0 + 2 * w), ("zoe", "ANG-B2", "9003", C0 + 2 * w),
        ("zoe", "CLIM", "9101", C0 + w + timedelta(days=1))]
    assert rows(wh, "select learner_id, course_id, count(*) from progress_events "
                    "where verb = 'accessed' group by all order by 2, 1") == [
        ("ines", "ANG-B2", 2), ("zoe", "ANG-B2", 3), ("zoe", "CLIM", 2)]
    # the student's entry; the teacher's is not a learner's contribution
    assert rows(wh, "select contribution_id, learner_id, title, url, n_replies from contributions") == [
        ("canvas:entry:701", "zoe", "Présentations",
         "https://canvas.example.edu/courses/4021/discussion_topics/61#entry-701", 1)]
    assert rows(wh, "select entity, reason from quarantine order by 1, 2") == [
        ("enrolments", "unknown learner: paul"),
        ("learners", "malformed email: paul@@example"),
        ("progress_events", "unknown enrolment: learner paul on course ANG-B2"),
        ("progress_events", "unknown enrolment: learner paul on course ANG-B2")]
    assert report.n_quarantined == 4
    # lists were followed through their Link headers: 4 enrollments, two pages
    assert [c.get("page", "1") for c in canvas.calls("enrollments")
            if c["path"].endswith("/4021/enrollments")] == ["1", "2"]


def test_a_rerun_loads_nothing_and_the_next_sync_only_what_changed(wh, tmp_path, canvas, site):
    sync(wh, canvas_source(tmp_path, canvas.url))
    events = rows(wh, "select count(*) from progress_events")[0][0]

    canvas.set(site)                      # resets the call log
    again = sync(wh, canvas_source(tmp_path, canvas.url))
    assert again.loaded["progress_events"] == 0
    assert rows(wh, "select count(*) from progress_events")[0][0] == events
    # paul (quarantined) is asked again until fixed in Canvas; the others are not
    asked = {c["path"] for c in canvas.calls("modules") if c.get("student_id")}
    assert asked == {"/api/v1/courses/4021/modules"} and \
        [c["student_id"] for c in canvas.calls("modules") if c.get("student_id")] == ["504"]

    # marc starts: views the reading; and posts
    later = C0 + timedelta(weeks=3)
    site["enrollments"]["4021"][1]["last_activity_at"] = iso(later)
    site["completed"]["4021:502"] = [9003]
    site["page_views"]["502"] = [{**site["page_views"]["503"][0], "id": "marc-view-1",
                                  "created_at": iso(later), "links": {
                                      "user": 502, "context": 4021}}]
    site["enrollments"]["4022"] = []           # zoe's enrollment in 4022 was deleted
    # léa joins 4021, having looked at it before the last sync's cursor
    lea = canvas_user(505, "lea", "Léa", "Roux")
    site["users"]["4021"].append(lea)
    site["enrollments"]["4021"].append(canvas_enrollment(6, 4021, lea, last=later))
    site["page_views"]["505"] = [{**site["page_views"]["503"][0], "id": "lea-view-1",
                                  "created_at": iso(C0), "links": {"user": 505, "context": 4021}}]
    site["topics"]["4021"][0]["last_reply_at"] = iso(later)
    site["entries"]["4021:61"].append({**site["entries"]["4021:61"][1], "id": 703,
                                       "user_id": 502, "created_at": iso(later),
                                       "recent_replies": []})
    canvas.set(site)
    week = sync(wh, canvas_source(tmp_path, canvas.url))
    # the enrollment's last activity, the page view, the completed requirement
    assert rows(wh, "select event_id, verb, activity_id, occurred_at from progress_events "
                    "where learner_id = 'marc' order by 1") == [
        (f"canvas:activity:4021:502:{iso(later)}", "accessed", None, later),
        ("canvas:completed:4021:9003:502", "completed", "9003", later),
        ("canvas:page_view:marc-view-1", "accessed", None, later)]
    assert week.loaded["progress_events"] == 3 + 2     # and léa's last activity and view
    assert rows(wh, "select learner_id from contributions order by posted_at") == [
        ("zoe",), ("marc",)]
    assert rows(wh, "select learner_id, course_id, status from enrolments order by 2, 1") == [
        ("ines", "ANG-B2", "completed"), ("lea", "ANG-B2", "enrolled"),
        ("marc", "ANG-B2", "enrolled"), ("zoe", "ANG-B2", "enrolled"),
        ("zoe", "CLIM", "withdrawn")]
    # a newcomer's page views are read from the start, not from the course's cursor
    assert rows(wh, "select occurred_at from progress_events where event_id = "
                    "'canvas:page_view:lea-view-1'") == [(C0,)]


def test_a_sync_that_fails_half_way_keeps_what_it_read_and_the_next_one_resumes(
        wh, tmp_path, canvas, site):
    # course 4022's modules keep failing after course 4021 was read in full
    site["failures"] = [{"match": {"path": "/api/v1/courses/4022/modules"}, "times": 99,
                         "status": 502, "body": {"errors": [{"message": "Bad Gateway"}]}}]
    canvas.set(site)
    with pytest.raises(SourceUnavailable, match=r"^source canvas: GET http://127\.0\.0\.1:\d+/api/v1/"
                                                r"courses/4022/modules: still failing after 3 attempt"):
        sync(wh, canvas_source(tmp_path, canvas.url))
    assert rows(wh, "select course_id, count(*) from enrolments group by 1") == [("ANG-B2", 3)]
    assert rows(wh, "select stream from source_cursors order by 1") == [
        ("course:4021:activity",), ("course:4021:refreshed",), ("course:4021:summaries",),
        ("topic:61",)]

    site["failures"] = []
    canvas.set(site)
    sync(wh, canvas_source(tmp_path, canvas.url))
    # only paul (still quarantined) of course 4021 is asked again; course 4022 in full
    assert [(c["path"], c["student_id"]) for c in canvas.calls("modules") if c.get("student_id")] == [
        ("/api/v1/courses/4021/modules", "504"), ("/api/v1/courses/4022/modules", "501")]
    # the same warehouse as one sync that never failed: nothing missing, nothing twice
    assert rows(wh, "select count(*), count(distinct event_id) from progress_events") == [(13, 13)]
    assert rows(wh, "select count(*) from enrolments") == [(4,)]


def test_rate_limiting_and_server_errors_are_retried(wh, tmp_path, canvas, site):
    site["failures"] = [
        # Canvas's rate limit: a 403 that is not about permissions
        {"match": {"route": "enrollments"}, "times": 2, "status": 403,
         "headers": {"X-Rate-Limit-Remaining": "0.0"}, "body": "403 Forbidden (Rate Limit Exceeded)"},
        {"match": {"route": "users"}, "times": 1, "status": 429, "headers": {"Retry-After": "0"}},
        {"match": {"route": "topics"}, "times": 1, "status": 500},
        {"match": {"route": "page_views"}, "times": 1, "sleep": 1.5},
    ]
    canvas.set(site)
    connector = canvas_source(tmp_path, canvas.url)
    sync(wh, connector)
    assert len(connector.retrier.waits) == 5
    assert rows(wh, "select count(*) from progress_events") == [(13,)]


def test_a_bad_token_stops_the_sync_and_says_what_to_fix(wh, tmp_path, canvas, site, monkeypatch):
    monkeypatch.setenv("CANVAS_TOKEN", "expired-token")
    with pytest.raises(SourceError) as exc:
        sync(wh, canvas_source(tmp_path, canvas.url))
    assert str(exc.value).startswith(
        "source canvas: the credentials were refused (GET ")
    assert "401 Unauthorized); set the environment variable CANVAS_TOKEN to a valid Canvas " \
           "access token" in str(exc.value)
    assert "expired-token" not in str(exc.value)
    assert not isinstance(exc.value, SourceUnavailable)


@pytest.mark.parametrize("status, told", [
    (401, "the credentials were refused (GET "),
    (200, "answered HTTP 200 with text/html, not Canvas's JSON: is `url` the Canvas instance's own address"),
])
def test_a_sign_on_page_in_front_of_canvas_is_named_not_a_json_error(wh, tmp_path, canvas, site,
                                                                     status, told):
    """A single sign-on proxy in front of Canvas answers with its own HTML page (a 401, or a
    200 login form): the sync says that something other than Canvas's API answered."""
    site["failures"] = [{"match": {"route": "course"}, "times": 1, "status": status,
                         "html": "<html><body>Sign in with your campus account</body></html>"}]
    canvas.set(site)
    with pytest.raises(SourceError) as exc:
        sync(wh, canvas_source(tmp_path, canvas.url))
    message = str(exc.value)
    assert message.startswith("source canvas: ") and told in message
    assert "text/html" in message and "JSONDecodeError" not in message
    assert not isinstance(exc.value, SourceUnavailable)


def test_a_permission_refused_is_not_retried_and_names_the_fix(wh, tmp_path, canvas, site):
    site["forbidden"] = ["/api/v1/users/"]
    canvas.set(site)
    with pytest.raises(SourceError) as exc:
        sync(wh, canvas_source(tmp_path, canvas.url))
    assert "page_views: 403 Forbidden" in str(exc.value)
    assert "set page_views: false" in str(exc.value)
    assert len(canvas.calls("page_views")) == 1          # no retry of a real refusal

    sync(wh, canvas_source(tmp_path, canvas.url, "page_views: false\n"))
    assert rows(wh, "select count(*) from progress_events where event_id like 'canvas:page_view:%'") == [(0,)]
    assert rows(wh, "select count(*) from progress_events where verb = 'completed'") == [(6,)]


def test_students_replies_in_a_canvas_discussion_are_contributions(wh, tmp_path, canvas,
                                                                   monkeypatch):
    monkeypatch.setenv("CANVAS_TOKEN", CANVAS_TOKEN)
    site = canvas_site()
    canvas.set(site)
    sync(wh, canvas_source(tmp_path, canvas.url, courses="[4021]"))
    assert rows(wh, "select learner_id from contributions") == [("zoe",)]

    # a week later: marc answers zoe's entry (701); under the teacher's entry (702), ines
    # answers among eleven replies: only the ten most recent come with the entry
    later = C0 + timedelta(weeks=3)

    def reply(rid, entry, user, at):
        return {"id": rid, "user_id": user, "parent_id": entry, "created_at": iso(at),
                "updated_at": iso(at), "message": "<p>Re</p>", "read_state": "read",
                "forced_read_state": False, "editor_id": None, "user_name": ""}
    site["replies"] = {
        "4021:61:701": [reply(7010, 701, 9, C0 + timedelta(days=2)),      # the teacher's, read before
                        reply(7011, 701, 502, later)],
        "4021:61:702": [reply(7020, 702, 503, later - timedelta(hours=1)),
                        *(reply(7021 + i, 702, 9, later + timedelta(minutes=i)) for i in range(10))]}
    site["topics"]["4021"][0]["last_reply_at"] = iso(later + timedelta(minutes=9))
    canvas.set(site)
    sync(wh, canvas_source(tmp_path, canvas.url, courses="[4021]"))
    assert rows(wh, "select contribution_id, learner_id, posted_at from contributions "
                    "order by posted_at") == [
        ("canvas:entry:701", "zoe", C0 + timedelta(days=1)),
        ("canvas:entry:7020", "ines", later - timedelta(hours=1)),
        ("canvas:entry:7011", "marc", later)]


def test_a_canvas_requirement_a_teacher_grades_is_read_at_the_weekly_refresh(
        wh, tmp_path, canvas, monkeypatch):
    # zoe's quiz 9004 needs a minimum score: it is complete once her teacher grades it,
    # which changes no date of hers (nor her summary's counts)
    monkeypatch.setenv("CANVAS_TOKEN", CANVAS_TOKEN)
    site = canvas_site()
    canvas.set(site)
    sync(wh, canvas_source(tmp_path, canvas.url, courses="[4021]"))
    site["completed"]["4021:501"] = [9002, 9003, 9004]
    canvas.set(site)
    sync(wh, canvas_source(tmp_path, canvas.url, courses="[4021]"))
    graded = "select count(*) from progress_events where event_id = 'canvas:completed:4021:9004:501'"
    assert rows(wh, graded) == [(0,)]
    # a week after the last refresh, every student's module progress is asked again
    wh.execute("update source_cursors set cursor = ? where stream = 'course:4021:refreshed'",
               [(datetime.now(timezone.utc) - timedelta(days=7, minutes=1)).isoformat()])
    canvas.set(site)
    sync(wh, canvas_source(tmp_path, canvas.url, courses="[4021]"))
    assert rows(wh, graded) == [(1,)]
    assert sorted(c["student_id"] for c in canvas.calls("modules") if c.get("student_id")) == [
        "501", "502", "503", "504"]


def test_a_canvas_student_whose_enrollment_is_concluded_is_still_a_learner(wh, tmp_path, canvas,
                                                                         monkeypatch):
    # ines's enrollment on 4021 is completed (concluded) before relance first reads the
    # course: Canvas's users list leaves her out unless asked for that state
    monkeypatch.setenv("CANVAS_TOKEN", CANVAS_TOKEN)
    canvas.set(canvas_site())
    sync(wh, canvas_source(tmp_path, canvas.url, courses="[4021]"))
    assert rows(wh, "select learner_id, status from enrolments join learners using (learner_id) "
                    "where learner_id = 'ines'") == [("ines", "completed")]
    assert rows(wh, "select count(*) from quarantine where reason like '%ines%'") == [(0,)]


def test_a_token_read_with_its_trailing_newline_works_and_never_reaches_the_warehouse(
        wh, tmp_path, canvas, monkeypatch):
    # a token kept in a file or a mounted secret often ends with a newline
    # (export CANVAS_TOKEN="$(cat token.txt)" strips it; an env file or a Kubernetes
    # secret may not); requests refuses such a header and quotes it in its error
    monkeypatch.setenv("CANVAS_TOKEN", CANVAS_TOKEN + "\n")
    canvas.set(canvas_site())
    try:
        sync(wh, canvas_source(tmp_path, canvas.url, courses="[4021]"))
    finally:
        stored = rows(wh, "select coalesce(error, '') from loads")
        assert not any(CANVAS_TOKEN in error for (error,) in stored), stored
    assert rows(wh, "select status from loads") == [("succeeded",)]


def test_the_same_sync_keeps_and_sets_aside_the_same_rows_on_a_warehouse_file(
        wh, tmp_path, canvas, site):
    # what a sync keeps and sets aside (with its reason, where it was read and the raw
    # row) does not depend on the warehouse: `wh` (a PostgreSQL database under
    # --warehouse=shared) and a DuckDB file, given the same Canvas at the same moment
    now = C0 + timedelta(weeks=3)
    file = warehouse.connect(tmp_path / "file.duckdb")
    try:
        seen = []
        for con in (wh, file):
            canvas.set(site)
            sync(con, canvas_source(tmp_path, canvas.url), now=now)
            seen.append({
                "quarantine": rows(con, "select entity, source_file, row_number, reason, "
                                        "raw::varchar from quarantine order by all"),
                "events": rows(con, "select event_id, learner_id, course_id, activity_id, verb, "
                                    "occurred_at from progress_events order by all"),
                "enrolments": rows(con, "select learner_id, course_id, status, enrolled_at "
                                        "from enrolments order by all"),
                "cursors": rows(con, "select stream, cursor from source_cursors order by all")})
    finally:
        file.close()
    shared, on_file = seen
    assert [(row[0], row[3]) for row in shared["quarantine"]] == [
        ("enrolments", "unknown learner: paul"),
        ("learners", "malformed email: paul@@example"),
        ("progress_events", "unknown enrolment: learner paul on course ANG-B2"),
        ("progress_events", "unknown enrolment: learner paul on course ANG-B2")]
    for what in shared:
        assert shared[what] == on_file[what], what
