"""The xAPI connector against a real Ralph LRS (file-system backend, basic auth).

Ralph's fs store takes one write, so the LRS "after a week" is a second Ralph whose store
holds the first batch and the second (lms_fixtures.py); the source is pointed at it the
way a deployment's LRS would simply have grown. An LRS whose `more` link repeats, or names
another origin, is followed no further than it should be.
"""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
import pytest

from connectors import SourceError, sync
from connectors.http import SourceUnavailable
from tests.lms_fixtures import (COURSE_IRI, RALPH_PASSWORD, RALPH_USER, T0, first_batch,
                                lrs_source, second_batch, two_ralphs)


@pytest.fixture(scope="module")
def ralphs(tmp_path_factory):
    yield from two_ralphs(tmp_path_factory.mktemp("ralph"), first_batch(), second_batch())


@pytest.fixture
def ralph(ralphs):
    """The LRS as of the first week, alone."""
    return ralphs[0]


@pytest.fixture
def lrs_env(monkeypatch):
    monkeypatch.setenv("LRS_USER", RALPH_USER)
    monkeypatch.setenv("LRS_PASSWORD", RALPH_PASSWORD)


def rows(wh, sql):
    return wh.execute(sql).fetchall()


def test_statements_become_learners_enrolments_events_and_contributions(wh, tmp_path, ralphs, lrs_env):
    first, _ = ralphs
    report = sync(wh, lrs_source(tmp_path, first.url))

    assert rows(wh, "select learner_id, email, first_name, last_name from learners order by 1") == [
        ("ines@example.org", "ines@example.org", "Zoé", "Lefèvre"),
        ("marc@example.org", "marc@example.org", "Zoé", "Lefèvre"),
        ("zoe@example.org", "zoe@example.org", "Zoé", "Lefèvre")]
    assert rows(wh, "select course_id, title, url from courses") == [
        ("anglais-b2", "Anglais B2 (entreprise)", COURSE_IRI)]
    # enrolled when they registered; nobody has completed the course yet
    assert rows(wh, "select learner_id, enrolled_at, status from enrolments order by enrolled_at") == [
        ("zoe@example.org", T0, "enrolled"),
        ("marc@example.org", T0 + timedelta(hours=1), "enrolled"),
        ("ines@example.org", T0 + timedelta(hours=2), "enrolled")]
    # four pages were read (limit 4, then each `more` link)
    assert rows(wh, "select count(distinct _file) from stg_xapi__statements") == [(4,)]
    # every statement was read: 3 learners x (experienced, completed, progressed) + the comment
    assert rows(wh, "select verb, count(*) from progress_events group by 1 order by 1") == [
        ("accessed", 3), ("commented", 1), ("completed", 3), ("progressed", 3)]
    # the cmi5 progress extension on the course is the course's progress
    assert rows(wh, "select learner_id, progress from progress_events where verb = 'progressed' "
                    "order by 2") == [("zoe@example.org", 0.25), ("marc@example.org", 0.5),
                                      ("ines@example.org", 0.75)]
    assert rows(wh, "select learner_id, kind, title, url from contributions") == [
        ("zoe@example.org", "comment", "Activity 1", f"{COURSE_IRI}/forum/1")]
    assert rows(wh, "select activity_id, kind from activities order by 1")[0] == (
        f"{COURSE_IRI}/activity/1", "lesson")
    # the statement id is the event id
    assert rows(wh, "select count(*) from progress_events where event_id = "
                    "'00000000-0000-0000-0000-000000000003'") == [(1,)]

    quarantined = rows(wh, "select entity, reason, raw->>'$.event_id' from quarantine order by 2")
    assert quarantined == [
        ("progress_events", "missing course_id", "00000000-0000-0000-0000-00000000002b"),
        ("progress_events", "unknown verb: http://adlnet.gov/expapi/verbs/interacted (expected "
         "accessed, progressed, completed, submitted, passed, failed or commented)",
         "00000000-0000-0000-0000-00000000002a")]
    # the whole statement is kept with the quarantined row
    raw = rows(wh, "select raw->>'$._statement' from quarantine where reason = 'missing course_id'")
    assert "https://elsewhere.example.org/video/9" in raw[0][0]
    assert report.quarantined["progress_events"] == 2


def test_a_rerun_loads_nothing_and_a_grown_lrs_gives_only_what_is_new(wh, tmp_path, ralphs, lrs_env):
    first, both = ralphs
    sync(wh, lrs_source(tmp_path, first.url))
    events = rows(wh, "select count(*) from progress_events")[0][0]
    cursor = rows(wh, "select cursor from source_cursors where source = 'lrs'")
    assert cursor == [((T0 + timedelta(days=3, hours=2)).isoformat(),)]

    again = sync(wh, lrs_source(tmp_path, first.url))
    assert again.n_rows == 0 and again.n_quarantined == 0
    assert rows(wh, "select count(*) from progress_events")[0][0] == events

    week2 = sync(wh, lrs_source(tmp_path, both.url))     # the same LRS, a week later
    # only the three new statements were read: nothing of week 1 again, nothing quarantined
    assert week2.rows["progress_events"] == 2 and week2.n_quarantined == 0
    assert rows(wh, "select count(*) from progress_events")[0][0] == events + 2
    assert rows(wh, "select learner_id, email, first_name, status, enrolled_at from enrolments "
                    "join learners using (learner_id) where learner_id in ('zoe@example.org', 'L-0099') "
                    "order by 1") == [
        ("L-0099", None, "Paul", "enrolled", T0 + timedelta(days=8, hours=1)),
        ("zoe@example.org", "zoe@example.org", "Zoé", "completed", T0)]


class BreaksAfter(httpx.HTTPTransport):
    """The network, failing for good from the n-th request on (a cable pulled mid-sync)."""

    def __init__(self, n: int):
        super().__init__()
        self.n, self.seen = n, 0

    def handle_request(self, request):
        self.seen += 1
        if self.seen >= self.n:
            raise httpx.ConnectError("connection refused")
        return super().handle_request(request)


def test_a_sync_cut_off_mid_way_keeps_the_pages_read_and_the_next_one_resumes(
        wh, tmp_path, ralphs, lrs_env):
    first, _ = ralphs
    # one statement a page, so that the LRS answers in time order (Ralph's fs backend
    # orders statements within a page its own way: then nothing after a cut is trusted)
    connector = lrs_source(tmp_path, first.url, "retry: {attempts: 2, base_delay: 0.01}\n", page_size=1)
    connector.transport = BreaksAfter(4)            # three pages come, the fourth never does
    with pytest.raises(SourceUnavailable, match="^source lrs: GET http://127.0.0.1:.*/xAPI/statements"):
        sync(wh, connector)
    # zoe registered (T0), experienced (T0 + 1 day), completed (T0 + 2 days): kept; the
    # cursor stops before the last moment read, which the lost page may share
    assert rows(wh, "select learner_id, verb, occurred_at from progress_events order by 3") == [
        ("zoe@example.org", "accessed", T0 + timedelta(days=1)),
        ("zoe@example.org", "completed", T0 + timedelta(days=2))]
    assert rows(wh, "select cursor from source_cursors") == [((T0 + timedelta(days=1)).isoformat(),)]
    # zoe, the course, her enrolment, two activities, two events
    assert rows(wh, "select status, n_loaded from loads") == [("failed", 7)]

    sync(wh, lrs_source(tmp_path, first.url))
    # read from the cursor on: 11 statements, not 15
    assert rows(wh, "select count(*) from stg_xapi__statements") == [(11,)]
    # the same warehouse as one sync that never failed: nothing missing, nothing twice
    assert rows(wh, "select verb, count(*) from progress_events group by 1 order by 1") == [
        ("accessed", 3), ("commented", 1), ("completed", 3), ("progressed", 3)]
    assert rows(wh, "select count(distinct event_id) from progress_events") == [(10,)]
    assert rows(wh, "select count(*) from enrolments") == [(3,)]
    assert rows(wh, "select count(*) from quarantine") == [(2,)]


def test_a_verb_filter_is_applied_even_when_the_lrs_ignores_it(wh, tmp_path, ralphs, lrs_env):
    first, _ = ralphs
    sync(wh, lrs_source(tmp_path, first.url, """\
        filters: {verb: "http://adlnet.gov/expapi/verbs/completed"}
        """))
    assert rows(wh, "select distinct verb from progress_events") == [("completed",)]


def test_a_wrong_password_stops_the_sync_and_says_what_to_fix(wh, tmp_path, ralphs, monkeypatch):
    first, _ = ralphs
    monkeypatch.setenv("LRS_USER", RALPH_USER)
    monkeypatch.setenv("LRS_PASSWORD", "not-the-password")
    with pytest.raises(SourceError) as exc:
        sync(wh, lrs_source(tmp_path, first.url))
    message = str(exc.value)
    assert message.startswith("source lrs: the credentials were refused (GET ")
    assert "401" in message and "LRS_USER" in message and "LRS_PASSWORD" in message
    assert "not-the-password" not in message
    assert rows(wh, "select status from loads") == [("failed",)]
    assert rows(wh, "select count(*) from source_cursors") == [(0,)]


def test_an_agent_filter_is_sent_to_the_lrs(wh, tmp_path, ralphs, lrs_env):
    first, _ = ralphs
    sync(wh, lrs_source(tmp_path, first.url, """\
        filters: {agent: {mbox: "mailto:marc@example.org"}}
        """))
    assert rows(wh, "select learner_id from learners") == [("marc@example.org",)]
    assert rows(wh, "select count(*) from stg_xapi__statements") == [(5,)]


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
