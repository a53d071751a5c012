"""A Canvas LMS instance, through its REST API and the `canvasapi` library, as a source:

    sources:
      canvas:
        kind: canvas
        url: https://canvas.example.edu
        token: {env: CANVAS_TOKEN}     # an access token (Account > Settings > New access token)
        courses: [4021, 4022]          # Canvas course ids (required)
        learner_id: id                 # or login_id, sis_user_id, email
        course_id: course_code         # or id, sis_course_id

Per course: the course, its student enrollments and users (with e-mail and locale), its
modules with their items (the calendar: due and unlock dates, completion requirements),
and the course analytics' student summaries (page views and participations counted per
student: one paged list for the whole course); then, for students whose
`last_activity_at` moved since the last sync, whose summary counts grew, or who are new,
the modules as that student sees them (each requirement `completed` or not) and their
page views on the course since the last sync; and the entries of each discussion topic
with replies since the last sync, and the replies to them. Every list is followed through
its Link-header pages by canvasapi; each request goes through the shared retries
(connectors/http.py), Canvas's rate limiting (403 with `X-Rate-Limit-Remaining: 0`)
included (canvas_api.py). Replies are staged as they came (`stg_canvas__records`) and
mapped to the model in SQL (`sql/canvas_stage.sql`).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterable, Literal

import duckdb

from canvasapi import Canvas
from canvasapi.user import User
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from connectors.base import SourceError, StageInterrupted, staged_counts, staging_table
from connectors.canvas_api import CanvasApi, Refused, raw
from connectors.fetch import fetched
from connectors.http import Retrier, Retry
from connectors.state import SourceState
from relance import clock
from warehouse import execute_script, sql_file

HERE = Path(__file__).parent
PAGE = 100   # canvasapi asks for 100 a page, Canvas's maximum; staged a page at a time


class CanvasSource(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["canvas"] = "canvas"
    url: str
    token: Any
    courses: list[int] = Field(min_length=1)
    learner_id: Literal["id", "login_id", "sis_user_id", "email"] = "id"
    course_id: Literal["course_code", "id", "sis_course_id"] = "course_code"
    page_views: bool = True      # needs the token's user to see usage reports
    # course analytics' student summaries (Canvas Analytics); skipped with a warning where
    # the instance has no analytics or the token's user may not see them
    analytics: bool = True
    # a requirement completed when a teacher grades (min_score, must_submit) changes no
    # date of the student's: every student's module progress is asked again this often
    # (0: never)
    refresh_days: int = Field(7, ge=0)
    retry: Retry = Field(default_factory=Retry)


class CanvasConnector:
    kind = "canvas"
    timezone = "UTC"     # ISO 8601 times with their offset: never ambiguous
    datetime_formats = ["%Y-%m-%dT%H:%M:%S"]
    date_formats = ["%Y-%m-%d"]
    progress_scale = "share"

    def __init__(self, name: str, source: CanvasSource):
        self.name = name
        self.source = source
        self.retrier = Retrier(name, source.retry)
        self.warnings: list[str] = []     # streams skipped without failing the sync

    def _open(self) -> Canvas:
        return CanvasApi(self.name, self.source.url, self.source.token,
                         self.source.retry.timeout, self.retrier).open()

    # -- staging ---------------------------------------------------------------------------
    def stage(self, con: duckdb.DuckDBPyConnection, state: SourceState) -> dict[str, int]:
        canvas = self._open()
        self._n = 0
        self.warnings = []
        con.execute(f"create or replace table {staging_table(self.kind, 'records')} "
                    f"(kind varchar, course bigint, userid bigint, record json, _file varchar, "
                    f"_row bigint)")
        # per course: the activity cursor, and when the student summaries were last read
        con.execute("create or replace temp table canvas_since (course bigint, since varchar, "
                    "summaries_at varchar)")
        con.execute("create or replace temp table canvas_summaries_before (course bigint, "
                    "canvas_user bigint, page_views bigint, participations bigint, "
                    "last_activity_at varchar)")
        execute_script(con, sql_file(HERE / "sql", "lms_users"))   # what Moodle's shares
        cursors: dict[str, str] = {}
        interrupted = None
        for course_id in self.source.courses:
            try:
                cursors.update(self._stage_course(con, canvas, course_id, state))
            except SourceError as exc:
                if course_id == self.source.courses[0]:
                    raise
                # keep the courses read in full; this one is read again next time
                con.execute("delete from stg_canvas__records where course = ?", [course_id])
                con.execute("delete from canvas_since where course = ?", [course_id])
                con.execute("delete from canvas_summaries_before where course = ?", [course_id])
                interrupted = exc
                break
        execute_script(con, sql_file(HERE / "sql", "canvas_users"), self._sql_params())
        execute_script(con, sql_file(HERE / "sql", "canvas_stage"), self._sql_params())
        execute_script(con, sql_file(HERE / "sql", "lms_stage", kind=self.kind),
                       {**self._sql_params(), "listing": "enrollments"})
        execute_script(con, sql_file(HERE / "sql", "lms_accounts", kind=self.kind,
                                     users="canvas_users", user="canvas_user", learner="true"),
                       {"source": self.name})
        for stream, cursor in cursors.items():
            if cursor != state.get(stream):
                state.advance(stream, cursor)
        counts = staged_counts(con, self.kind)
        if interrupted is not None:
            raise StageInterrupted(counts, interrupted)
        return counts

    def _stage_course(self, con: duckdb.DuckDBPyConnection, canvas: Canvas, course_id: int,
                      state: SourceState) -> dict[str, str]:
        """One course's lists into the raw staging table; its next cursors."""
        cursors: dict[str, str] = {}
        course = canvas.get_course(course_id)
        self._put(con, "course", course_id, None, [course], "courses")
        since = state.get(f"course:{course_id}:activity")
        before = _summaries(state.get(f"course:{course_id}:summaries"))
        refreshed = state.get(f"course:{course_id}:refreshed")
        now = clock.now()
        refresh = bool(self.source.refresh_days) and (
            refreshed is None
            or now - datetime.fromisoformat(refreshed) >= timedelta(days=self.source.refresh_days))
        if refresh:
            cursors[f"course:{course_id}:refreshed"] = now.isoformat()
        # a refresh asks every student, as if none had been read before (page views still
        # from the cursor on: the views before it were read)
        con.execute("insert into canvas_since values (?, ?, ?)",
                    [course_id, None if refresh else since, before["at"]])
        if before["students"]:
            con.executemany("insert into canvas_summaries_before values (?, ?, ?, ?, ?)",
                            [(course_id, int(user), *counts)
                             for user, counts in before["students"].items()])
        self._put(con, "enrollment", course_id, None, course.get_enrollments(
            type=["StudentEnrollment"], state=["active", "completed", "inactive"]), "enrollments")
        # the enrollments' states: Canvas lists only active and invited students' users
        # unless asked, and a concluded student's enrollment would name nobody
        self._put(con, "user", course_id, None, course.get_users(
            enrollment_type=["student"],
            enrollment_state=["active", "invited", "completed", "inactive"],
            include=["email", "locale"]), "users")
        self._put(con, "module", course_id, None, course.get_modules(
            include=["items", "content_details"]), "modules")
        if self.source.analytics:
            summaries = self._stage_summaries(con, course, course_id)
            if summaries is not None:
                cursors[f"course:{course_id}:summaries"] = summaries

        execute_script(con, sql_file(HERE / "sql", "canvas_users"), self._sql_params())
        active = con.execute(
            "select canvas_user, is_new from canvas_users where canvas_course = ? and active "
            "order by 1", [course_id]).fetchall()

        def per_student() -> None:
            for user, is_new in active:
                self._put(con, "student_module", course_id, user, course.get_modules(
                    include=["items"], student_id=user), "modules?student_id")
                if self.source.page_views:
                    # a student new to the warehouse: all their views; the others: since
                    # the cursor
                    student = User(course._requester, {"id": user})
                    views = (student.get_page_views(start_time=since) if since and not is_new
                             else student.get_page_views())
                    self._put(con, "page_view", course_id, user,
                              (v for v in views if _in_course(v, course_id)), "page_views")
        # calls per student (Canvas has no bulk form): in a flow, one task for them all
        if active:
            fetched(f"{self.name}: modules{' and page views' if self.source.page_views else ''} "
                    f"of {len(active)} student(s), course {course_id}", per_student)
        newest = con.execute(
            "select arg_max((record->>'$.last_activity_at'), "
            "try_cast((record->>'$.last_activity_at') as timestamptz)) from stg_canvas__records "
            "where kind = 'enrollment' and course = ?", [course_id]).fetchall()[0][0]
        if newest:
            cursors[f"course:{course_id}:activity"] = newest

        for topic in course.get_discussion_topics():
            stream = f"topic:{topic.id}"
            topic_since = state.get(stream)
            last = getattr(topic, "last_reply_at", None) or getattr(topic, "posted_at", None)
            if not last or (topic_since and not _later(last, topic_since)):
                continue
            entries = []
            for entry in topic.get_topic_entries():
                # the list holds top-level entries only: a student's reply to an older entry
                # is among its replies (the 10 most recent inline, the rest on request)
                replies = (list(entry.get_replies()) if getattr(entry, "has_more_replies", False)
                           else getattr(entry, "recent_replies", None) or [])
                for post in [raw(entry), *(r if isinstance(r, dict) else raw(r) for r in replies)]:
                    if post.get("created_at") and (not topic_since
                                                   or _later(post["created_at"], topic_since)):
                        entries.append({**post, "topic_title": topic.title,
                                        "topic_url": getattr(topic, "html_url", None)})
            self._put(con, "entry", course_id, None, entries, "discussion entries")
            cursors[stream] = last
        return cursors

    def _stage_summaries(self, con: duckdb.DuckDBPyConnection, course, course_id: int) -> str | None:
        """The course's student summaries (one paged list), and the next summaries cursor:
        each student's counts and last activity, to tell next time whose counts grew, and
        whether their last activity shows it. None when Canvas refused them
        (no analytics on the instance, or not for this user): skipped with a warning."""
        try:
            # its pages as one task run, completed when Canvas refuses (a warning, not a
            # failure: many instances have no analytics)
            fetched(f"{self.name}: course analytics (student summaries), course {course_id}",
                    lambda: self._put(con, "summary", course_id, None,
                                      course.get_course_level_student_summary_data(),
                                      "analytics/student_summaries"),
                    expected=(Refused,))
        except Refused as exc:
            con.execute("delete from stg_canvas__records where kind = 'summary' and course = ?",
                        [course_id])
            self.warnings.append(
                f"course {course_id}: course analytics (student summaries) skipped: Canvas "
                f"answered {exc.status} ({exc.detail[:120]}); enable Canvas Analytics for the "
                f"account and give the token's user 'View usage reports', or set "
                f"analytics: false")
            return None
        counts = con.execute(
            "select (s.record->>'$.id'), coalesce(try_cast((s.record->>'$.page_views') as bigint), 0), "
            "coalesce(try_cast((s.record->>'$.participations') as bigint), 0), "
            "max((e.record->>'$.last_activity_at')) "
            "from stg_canvas__records s left join stg_canvas__records e on e.kind = 'enrollment' "
            "and e.course = s.course and (e.record->>'$.user_id') = (s.record->>'$.id') "
            "where s.kind = 'summary' and s.course = ? group by all order by 1",
            [course_id]).fetchall()
        return json.dumps({"at": clock.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
                           "students": {user: rest for user, *rest in counts}},
                          separators=(",", ":"))

    def _put(self, con: duckdb.DuckDBPyConnection, kind: str, course: int, user: int | None,
             objects: Iterable, what: str) -> None:
        """A list's objects into the raw staging table, one statement per page of them."""
        page: list[dict] = []
        for obj in objects:
            page.append(obj if isinstance(obj, dict) else raw(obj))
            if len(page) == PAGE:
                self._insert(con, kind, course, user, page, what)
                page = []
        if page:
            self._insert(con, kind, course, user, page, what)

    def _insert(self, con, kind, course, user, records, what) -> None:
        con.execute(
            "insert into stg_canvas__records select ?, ?, ?, value, ?, ? + key::bigint + 1 "
            "from json_each(?::json)",
            [kind, course, user, f"{self.source.url.rstrip('/')}/api/v1 {what}", self._n,
             json.dumps(records, default=str)])
        self._n += len(records)

    def _sql_params(self) -> dict[str, Any]:
        return {"learner_key": self.source.learner_id, "course_key": self.source.course_id,
                "base_url": self.source.url.rstrip("/"),
                "source": self.name,
                "now": clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")}


def _summaries(cursor: str | None) -> dict:
    """The summaries cursor: when they were read, and each student's [page views,
    participations, last_activity_at] then."""
    if not cursor:
        return {"at": None, "students": {}}
    return json.loads(cursor)


def _in_course(view: Any, course_id: int) -> bool:
    links = getattr(view, "links", None) or {}
    return getattr(view, "context_type", None) == "Course" and str(links.get("context")) == str(course_id)


def _parse(moment: str) -> datetime:
    dt = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def _later(a: str, b: str) -> bool:
    return _parse(a) > _parse(b)


def from_config(name: str, options: dict, base_dir: Path) -> CanvasConnector:
    try:
        return CanvasConnector(name, CanvasSource.model_validate(options))
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise SourceError(f"source {name}: {loc}: {first['msg']}") from None
