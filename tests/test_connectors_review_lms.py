"""The network connectors as a training team meets them: an LRS whose `more` link repeats,
a Moodle site in maintenance mode, a Moodle forum with a pinned discussion (Moodle lists
pinned discussions first, whatever the sort order), a token Moodle refuses for a reason it
does not say, a teacher graded after the learner's last visit, names in brackets in the
CLI, students' replies in Canvas discussions (the entries list holds top-level entries
only)."""

from __future__ import annotations

import json
import textwrap
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from connectors import SourceError, sync
from connectors.http import SourceUnavailable
from tests.lms_fixtures import (C0, CANVAS_TOKEN, M0, MOODLE_TOKEN, RALPH_PASSWORD, RALPH_USER,
                                canvas_site, canvas_source, first_batch, iso, lrs_source,
                                moodle_source, start_fake, start_ralph, unix)
from tests.test_connectors_moodle import moodle, site  # noqa: F401  (fixtures)


def rows(wh, sql):
    return wh.execute(sql).fetchall()


# -- xAPI ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ralph(tmp_path_factory):
    server = start_ralph(tmp_path_factory.mktemp("ralph-review"), first_batch())
    yield server
    server.stop()


def lrs_through(transport, tmp_path, url: str, monkeypatch):
    """The LRS source, its requests going through `transport`."""
    monkeypatch.setenv("LRS_USER", RALPH_USER)
    monkeypatch.setenv("LRS_PASSWORD", RALPH_PASSWORD)
    connector = lrs_source(tmp_path, url, "retry: {attempts: 2, base_delay: 0.01, max_delay: 0.05}\n")
    connector.transport = transport
    return connector


class MoreRewritten(httpx.HTTPTransport):
    """The real LRS's pages, with their `more` link as `more(link)` writes it."""

    def more(self, link: str) -> str:
        raise NotImplementedError

    def handle_request(self, request):
        response = super().handle_request(request)
        response.read()
        data = json.loads(response.content)
        if data.get("more"):
            data["more"] = self.more(data["more"])
        return httpx.Response(response.status_code, headers={"Content-Type": "application/json"},
                              json=data, request=request)


class MoreRepeats(MoreRewritten):
    """An LRS whose `more` link, from the second page on, sends back to the second page
    (seen with LRSs whose continuation token does not advance). Past `cap` requests the
    cable is pulled, so that a client that never notices still ends."""

    def __init__(self, cap: int = 30):
        super().__init__()
        self.cap, self.seen, self.first_more = cap, 0, None

    def more(self, link: str) -> str:
        self.first_more = self.first_more or link
        return self.first_more

    def handle_request(self, request):
        self.seen += 1
        if self.seen > self.cap:
            raise httpx.ConnectError("connection refused")
        return super().handle_request(request)


def test_an_lrs_more_link_that_repeats_stops_the_sync_with_what_was_read_kept(
        wh, tmp_path, ralph, monkeypatch):
    connector = lrs_through(transport := MoreRepeats(), tmp_path, ralph.url, monkeypatch)
    with pytest.raises(SourceError) as exc:
        sync(wh, connector)
    # told what the LRS did, not a timeout after reading one page thirty times
    assert "already followed" in str(exc.value) and "/xAPI/statements" in str(exc.value)
    assert not isinstance(exc.value, SourceUnavailable)
    assert transport.seen == 2          # page 1, then page 2, whose link leads to itself
    # the two pages read (8 statements) are loaded once each
    assert rows(wh, "select status from loads") == [("failed",)]
    assert rows(wh, "select count(*) from stg_xapi__statements") == [(8,)]
    assert rows(wh, "select count(*) > 0, count(*) = count(distinct event_id) from progress_events") == [
        (True, True)]
    assert rows(wh, "select error like '%already followed%' from loads") == [(True,)]


# -- Moodle (the fake and its site: test_connectors_moodle's fixtures) ---------------------

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


# -- Canvas -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def canvas():
    server = start_fake("tests.fakes.canvas_server")
    yield server
    server.stop()


@pytest.mark.filterwarnings("ignore:Canvas may respond unexpectedly")
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


def test_a_moodle_token_read_with_its_trailing_newline_works(wh, tmp_path, moodle, site,
                                                             monkeypatch):
    # an env file or a mounted secret ends with a newline: Moodle said "invalidtoken"
    monkeypatch.setenv("MOODLE_TOKEN", MOODLE_TOKEN + "\n")
    report = sync(wh, moodle_source(tmp_path, moodle.url))
    assert report.n_loaded > 0
    assert rows(wh, "select status from loads") == [("succeeded",)]


def test_a_suspended_or_expired_moodle_enrolment_is_withdrawn(wh, tmp_path, moodle, site):
    sync(wh, moodle_source(tmp_path, moodle.url))
    # ines's enrolment on ANG-B2 is suspended (or reached its end date): she can no longer
    # open the course, and Moodle still lists her unless asked for active enrolments only
    moodle.set({**site, "inactive": {"12": [33]}})
    sync(wh, moodle_source(tmp_path, moodle.url))
    assert rows(wh, "select learner_id, status from enrolments where course_id = 'ANG-B2' "
                    "order by 1") == [("ines", "withdrawn"), ("marc", "enrolled"),
                                      ("zoe", "enrolled")]


@pytest.mark.filterwarnings("ignore:Canvas may respond unexpectedly")
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


@pytest.mark.filterwarnings("ignore:Canvas may respond unexpectedly")
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


class MoreElsewhere(MoreRewritten):
    """An LRS behind a proxy that writes its `more` links with its own internal origin
    (xAPI: `more` is a path and query, "excluding scheme, host, and port"). Records the
    origin of every request."""

    def __init__(self):
        super().__init__()
        self.origins: list[str] = []

    def more(self, link: str) -> str:
        return "http://lrs-internal.example:8100" + link

    def handle_request(self, request):
        self.origins.append(f"{request.url.scheme}://{request.url.netloc.decode()}")
        if request.url.host != "127.0.0.1":
            raise httpx.ConnectError(f"[Errno -2] Name or service not known: {request.url.host}")
        return super().handle_request(request)


def test_an_absolute_more_link_is_followed_on_the_lrs_and_never_takes_the_credentials_elsewhere(
        wh, tmp_path, ralph, monkeypatch):
    connector = lrs_through(transport := MoreElsewhere(), tmp_path, ralph.url, monkeypatch)
    report = sync(wh, connector)
    assert set(transport.origins) == {ralph.url}     # basic auth went to the LRS only
    assert len(transport.origins) == 4               # 15 statements, 4 a page
    assert rows(wh, "select count(*) from stg_xapi__statements") == [(15,)]
    assert report.loaded["progress_events"] > 0


@pytest.mark.filterwarnings("ignore:Canvas may respond unexpectedly")
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


def test_a_source_still_unavailable_is_tried_again_after_the_others_not_before_them(
        tmp_path, moodle, site, monkeypatch):
    # the Moodle site, listed first, answers 503 to every try of the first load's first
    # call: the flow loads the roster after it, and only then tries Moodle again (its
    # retry delays no longer hold up the sources after it)
    import flows.sync_progress as flow_module
    import warehouse
    monkeypatch.setattr(flow_module, "RETRY_DELAYS", [0.2, 0])
    moodle.set({**site, "failures": [{"match": {"wsfunction": "core_course_get_courses"},
                                      "times": 3, "status": 503}]})
    (tmp_path / "learners.csv").write_text("id,mail\nA1,a1@example.org\n", encoding="utf-8")
    sources = tmp_path / "sources.yaml"
    sources.write_text(textwrap.dedent(f"""\
        sources:
          moodle-prod:
            kind: moodle
            url: '{moodle.url}'
            token: {{env: MOODLE_TOKEN}}
            retry: {{attempts: 3, base_delay: 0.01, max_delay: 0.05, timeout: 1}}
          roster:
            kind: csv
            entities:
              learners: {{file: learners.csv, columns: {{learner_id: id, email: mail}}}}
        """), encoding="utf-8")
    path = tmp_path / "w.duckdb"
    result = flow_module.sync_progress(sources_file=str(sources), warehouse_path=str(path))
    assert [r["source"] for r in result["loads"]] == ["roster", "moodle-prod"]
    con = warehouse.connect(str(path))
    try:
        assert con.execute("select source, status from loads order by started_at").fetchall() == [
            ("moodle-prod", "failed"), ("roster", "succeeded"), ("moodle-prod", "succeeded")]
        assert con.execute("select count(*) from courses").fetchall() == [(2,)]
    finally:
        con.close()


def test_in_a_flow_each_call_is_a_task_and_per_learner_calls_one_per_course(
        tmp_path, moodle, site):
    # the flow run shows every page fetched as a task run, with its retries inside; the
    # completion statuses, one call per learner, are one task run per course
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    import flows.sync_progress as flow_module
    site["failures"] = [{"match": {"wsfunction": "core_course_get_contents"}, "times": 1,
                         "status": 503}]
    moodle.set(site)
    moodle_source(tmp_path, moodle.url)            # writes sources.yaml
    state = flow_module.sync_progress(sources_file=str(tmp_path / "sources.yaml"),
                                      warehouse_path=str(tmp_path / "w.duckdb"),
                                      return_state=True)
    assert state.is_completed()
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(
            id=FlowRunFilterId(any_=[state.state_details.flow_run_id])))
    names = sorted(r.name for r in runs)
    assert all(r.state.is_completed() for r in runs), [(r.name, r.state.name) for r in runs]
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


def test_relance_sync_of_every_source_loads_the_others_when_one_fails(tmp_path, moodle, site,
                                                                        monkeypatch):
    # the LRS, listed first, cannot be read (its password's variable is not set here): a
    # failure the flow does not retry, so that the test does not wait for Prefect's retries
    from typer.testing import CliRunner

    import warehouse
    from relance.cli.main import app
    monkeypatch.setenv("LRS_USER", RALPH_USER)
    monkeypatch.delenv("LRS_PASSWORD", raising=False)
    sources = tmp_path / "sources.yaml"
    sources.write_text(textwrap.dedent(f"""\
        sources:
          lrs:
            kind: xapi
            url: http://127.0.0.1:9
            username: {{env: LRS_USER}}
            password: {{env: LRS_PASSWORD}}
          moodle-prod: {{kind: moodle, url: '{moodle.url}', token: {{env: MOODLE_TOKEN}}}}
        """), encoding="utf-8")
    path = tmp_path / "w.duckdb"
    result = CliRunner().invoke(app, ["sync", "--sources", str(sources), "--warehouse", str(path)],
                                env={"COLUMNS": "400"})
    assert result.exit_code == 1
    assert "error source lrs: password: the environment variable LRS_PASSWORD is not set" in result.output
    # the Moodle site was still loaded, and the error says so
    assert "moodle-prod was loaded" in result.output
    con = warehouse.connect(str(path))
    try:
        assert con.execute("select source, status from loads order by 1").fetchall() == [
            ("lrs", "failed"), ("moodle-prod", "succeeded")]
        assert con.execute("select count(*) from courses").fetchall() == [(2,)]
    finally:
        con.close()
