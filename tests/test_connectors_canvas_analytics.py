"""Canvas course analytics (student summaries) against the local Canvas stand-in: one
paged list per course, its counts as activity signals, and an instance without analytics
skipped with a warning instead of failing the sync."""

from __future__ import annotations

from datetime import timedelta

import pytest

import warehouse
from connectors import sync
from flows.sync_progress import load_source, summary_markdown
from relance.cli import main, sources
from tests.lms_fixtures import C0, canvas_source, iso
from tests.prefect_runs import settled_task_runs
from tests.test_connectors_canvas import canvas, rows, site  # noqa: F401  (fixtures)

pytestmark = pytest.mark.filterwarnings("ignore:Canvas may respond unexpectedly")


def summary_calls(canvas) -> list[tuple[str, str]]:
    return [(c["path"].split("/")[4], c.get("page", "1")) for c in canvas.calls("student_summaries")]


def test_summaries_are_read_per_course_and_their_growth_is_activity(wh, tmp_path, canvas, site):
    first = sync(wh, canvas_source(tmp_path, canvas.url))
    # one list per course, followed through its Link headers (two by two: 4 students in
    # 4021), never one call per student
    assert summary_calls(canvas) == [("4021", "1"), ("4021", "2"), ("4022", "1")]
    assert first.warnings == []
    # a first read says nothing of when the counts were made: no event from it
    assert rows(wh, "select count(*) from progress_events where event_id like 'canvas:summary:%'") == [(0,)]

    canvas.set(site)
    again = sync(wh, canvas_source(tmp_path, canvas.url))
    assert again.loaded["progress_events"] == 0
    # nobody but paul (quarantined) is asked about their modules
    assert [c["student_id"] for c in canvas.calls("modules") if c.get("student_id")] == ["504"]

    # marc reads on the mobile app: analytics count his views, his last activity stays
    # empty; zoe comes back on the web: both move
    later = C0 + timedelta(weeks=3)
    site["summaries"]["4021"][1].update(page_views=6, participations=1)
    site["summaries"]["4021"][0]["page_views"] = 44
    site["enrollments"]["4021"][0]["last_activity_at"] = iso(later)
    site["completed"]["4021:502"] = [9003]
    canvas.set(site)
    week = sync(wh, canvas_source(tmp_path, canvas.url))
    # marc counted as active: asked about his modules and views, and an `accessed` event
    # at this sync (Canvas does not say when); zoe's last activity already says when
    asked = sorted(c["student_id"] for c in canvas.calls("modules") if c.get("student_id"))
    assert asked == ["501", "502", "504"]
    marc = rows(wh, "select event_id, verb, activity_id, occurred_at from progress_events "
                    "where learner_id = 'marc' order by 1")
    assert [r[:3] for r in marc] == [("canvas:completed:4021:9003:502", "completed", "9003"),
                                      ("canvas:summary:4021:502:6:1", "accessed", None)]
    loads = rows(wh, f"select started_at, finished_at from loads where load_id = '{week.load_id}'")
    assert loads[0][0] - timedelta(seconds=1) <= marc[1][3] <= loads[0][1]
    assert wh.execute("select event_id from progress_events where learner_id = 'zoe' "
                      "and course_id = 'ANG-B2' and occurred_at = ?", [later]).fetchall() == [
        (f"canvas:activity:4021:501:{iso(later)}",)]
    assert rows(wh, "select count(*) from progress_events where event_id like 'canvas:summary:%'") == [(1,)]

    # the same counts again: nothing new
    canvas.set(site)
    assert sync(wh, canvas_source(tmp_path, canvas.url)).loaded["progress_events"] == 0


@pytest.mark.parametrize("analytics, status", [("disabled", 404), ("unauthorized", 401)])
def test_an_instance_without_analytics_is_skipped_with_a_warning(tmp_path, canvas, site,
                                                                 analytics, status):
    site["analytics"] = analytics
    canvas.set(site)
    path = tmp_path / "relance.duckdb"
    canvas_source(tmp_path, canvas.url)                # writes sources.yaml
    result = load_source.fn("canvas", str(tmp_path / "sources.yaml"), str(path), None)

    expected = [f"course {course}: course analytics (student summaries) skipped: Canvas answered "
                f"{status} (" for course in (4021, 4022)]
    assert [w[:len(e)] for w, e in zip(result["warnings"], expected)] == expected
    assert len(result["warnings"]) == 2
    assert "set analytics: false" in result["warnings"][0]
    if status == 401:
        assert "user not authorized to perform that action" in result["warnings"][0]
    # everything else was loaded, as by a sync with analytics
    con = warehouse.connect(path)
    try:
        assert rows(con, "select status, warnings from loads") == [("succeeded", result["warnings"])]
        assert rows(con, "select count(*) from progress_events") == [(13,)]
        assert rows(con, "select count(*) from enrolments") == [(4,)]
        # no summaries cursor: the next sync that can read them starts afresh
        assert rows(con, "select count(*) from source_cursors where stream like '%summaries'") == [(0,)]
    finally:
        con.close()
    # said in the flow's artifact and in the CLI's report
    assert "**Skipped by canvas** (the rest was loaded):" in summary_markdown([result])
    assert "- course 4021: course analytics (student summaries) skipped" in summary_markdown([result])
    with main.console.capture() as captured:
        sources._print_sync(result)
    assert "skipped course 4022: course analytics (student summaries) skipped: Canvas answered" \
        in " ".join(captured.get().split())


def test_analytics_can_be_turned_off(wh, tmp_path, canvas, site):
    site["analytics"] = "disabled"
    canvas.set(site)
    report = sync(wh, canvas_source(tmp_path, canvas.url, "analytics: false\n"))
    assert report.warnings == [] and summary_calls(canvas) == []


def test_a_refusal_skips_that_course_only_and_a_rate_limit_is_still_retried(wh, tmp_path, canvas, site):
    site["forbidden"] = ["/api/v1/courses/4021/analytics/"]
    site["failures"] = [{"match": {"route": "student_summaries"}, "times": 1, "status": 403,
                         "headers": {"X-Rate-Limit-Remaining": "0.0"},
                         "body": "403 Forbidden (Rate Limit Exceeded)"}]
    canvas.set(site)
    connector = canvas_source(tmp_path, canvas.url)
    report = sync(wh, connector)
    assert [w.split(": ")[0] for w in report.warnings] == ["course 4021"]
    assert "Canvas answered 403 (user not authorized to perform that action)" in report.warnings[0]
    # 4021's first try hit the rate limit and was tried again (then refused); 4022 was read
    assert len(connector.retrier.waits) == 1
    assert rows(wh, "select stream from source_cursors where stream like '%summaries'") == [
        ("course:4022:summaries",)]


def test_in_a_flow_refused_analytics_leave_every_task_run_completed(tmp_path, canvas, site):
    # Canvas refusing its analytics is an answer (a warning in the report), not a failure:
    # a user reading the flow run sees no failed task for a sync that worked
    import flows.sync_progress as flow_module
    site["analytics"] = "disabled"
    canvas.set(site)
    canvas_source(tmp_path, canvas.url)                # writes sources.yaml
    state = flow_module.sync_progress(sources_file=str(tmp_path / "sources.yaml"),
                                      warehouse_path=str(tmp_path / "relance.duckdb"),
                                      return_state=True)
    assert len(state.result()["loads"][0]["warnings"]) == 2
    runs = settled_task_runs(state.state_details.flow_run_id)
    assert [(r.name, r.state and r.state.name) for r in runs
            if not (r.state and r.state.is_completed())] == []
    assert sorted(r.name for r in runs if "analytics" in r.name) == [
        "canvas: course analytics (student summaries), course 4021",
        "canvas: course analytics (student summaries), course 4022"]
