"""The network sources' shared client: what is retried, how long it waits, what stops a
sync at once, and which failures the flow's task tries again later (after the other sources)."""

from __future__ import annotations

import textwrap

import httpx
import pytest
from prefect.states import Failed

from connectors.base import SourceError
from connectors.http import Retrier, Retry, SourceHttp, SourceUnavailable, Transient, offset_pages
from flows.sync_progress import _source_unavailable, load_source
from tests.test_connectors_moodle import moodle, site  # noqa: F401  (fixtures)


def client(handler, sleeps: list, **retry) -> SourceHttp:
    http = SourceHttp("lms", "https://lms.example.org", auth_fix="set LMS_TOKEN to a valid token",
                      retry=Retry(**{"attempts": 4, "base_delay": 1, "max_delay": 8, **retry}),
                      sleep=sleeps.append)
    http.client = httpx.Client(base_url="https://lms.example.org/",
                               transport=httpx.MockTransport(handler))
    return http


def replies(*responses):
    queue = list(responses)

    def handler(request):
        item = queue.pop(0)
        if isinstance(item, Exception):
            raise item
        return item
    return handler


def test_retry_after_is_waited_and_backoff_doubles_with_jitter():
    sleeps: list[float] = []
    http = client(replies(httpx.Response(429, headers={"Retry-After": "7"}),
                          httpx.ConnectError("refused"),
                          httpx.ReadTimeout("slow"),
                          httpx.Response(200, json={"ok": 1})), sleeps)
    assert http.get_json("x") == {"ok": 1}
    assert sleeps[0] == 7                         # what the server asked for
    assert 1.0 <= sleeps[1] <= 2.0                # 2nd attempt: base x 2, jittered down to half
    assert 2.0 <= sleeps[2] <= 4.0


def test_giving_up_names_the_source_the_request_and_what_happens_next():
    sleeps: list[float] = []
    http = client(replies(*[httpx.Response(503)] * 4), sleeps)
    with pytest.raises(SourceUnavailable) as exc:
        http.get_json("api/items", params={"token": "s3cret"})
    message = str(exc.value)
    assert message.startswith("source lms: GET https://lms.example.org/api/items: still failing "
                              "after 4 attempt(s)")
    assert "503 Service Unavailable" in message and "resumes from the last committed cursor" in message
    assert "s3cret" not in message                # query strings are never shown
    assert len(sleeps) == 3


def test_a_retry_after_beyond_the_waiting_budget_fails_now_instead_of_waiting():
    sleeps: list[float] = []
    http = client(replies(httpx.Response(429, headers={"Retry-After": "3600"})), sleeps,
                  total_seconds=60)
    with pytest.raises(SourceUnavailable, match="429 Too Many Requests"):
        http.get_json("x")
    assert sleeps == []


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_stop_at_once_with_the_fix(status):
    sleeps: list[float] = []
    http = client(replies(httpx.Response(status)), sleeps)
    with pytest.raises(SourceError) as exc:
        http.get_json("x")
    assert not isinstance(exc.value, SourceUnavailable)
    assert str(exc.value).startswith(f"source lms: the credentials were refused (GET "
                                     f"https://lms.example.org/x: {status} ")
    assert str(exc.value).endswith("set LMS_TOKEN to a valid token")
    assert sleeps == []


def test_other_client_errors_say_what_the_server_said():
    http = client(replies(httpx.Response(400, text="unknown parameter: foo")), [])
    with pytest.raises(SourceError, match="400 Bad Request: unknown parameter: foo"):
        http.get_json("x")


def test_a_connector_can_declare_its_own_transient_failures():
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise Transient("403 Forbidden (Rate Limit Exceeded)")
        return "done"
    sleeps: list[float] = []
    assert Retrier("canvas", Retry(base_delay=0.5), sleeps.append).run(flaky, "GET x") == "done"
    assert len(sleeps) == 2


def test_offset_pages_move_by_the_count_asked_until_a_page_is_empty():
    data = list(range(7))
    asked = []

    def fetch(start, n):
        asked.append(start)
        # 1 is left out of its page, as Moodle leaves out users the token may not see
        return [x for x in data[start:start + n] if x != 1]
    assert [p for p in offset_pages(fetch, 3)] == [[0, 2], [3, 4, 5], [6]]
    assert asked == [0, 3, 6, 9]


def test_the_flow_retries_a_load_only_when_its_source_was_unavailable():
    assert load_source.retries == 2
    assert _source_unavailable(None, None, Failed(data=SourceUnavailable("source lms: ...")))
    assert not _source_unavailable(None, None, Failed(data=SourceError("bad token")))
    assert not _source_unavailable(None, None, Failed(data=ValueError("bug")))


def test_the_example_sources_file_opens_each_network_source():
    from connectors import open_source
    from tests.conftest import REPO
    example = REPO / "connectors" / "sources.example.yaml"
    kinds = {name: type(open_source(name, example)).__name__
             for name in ("lrs", "moodle-prod", "canvas")}
    assert kinds == {"lrs": "XapiConnector", "moodle-prod": "MoodleConnector",
                     "canvas": "CanvasConnector"}


def test_a_call_named_with_braces_runs_as_its_task_in_a_flow():
    # Prefect formats a task run's name with its parameters: a URL template's braces
    # (`/courses/{id}`) must not break the call
    from prefect import flow

    from connectors.fetch import fetched

    @flow
    def calls():
        return fetched("lms: GET https://lms.example/api/{id}", lambda: "page")
    assert calls() == "page"


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
