"""A Moodle site, through its REST web services, as a source:

    sources:
      moodle-prod:
        kind: moodle
        url: https://moodle.example.org
        token: {env: MOODLE_TOKEN}     # a web service token (Site administration > Server >
                                       # Web services > Manage tokens), by reference
        courses: [12, 15]              # Moodle course ids; omitted: every course the token sees
        learner_id: username           # or id, email, idnumber: the warehouse's learner id
        roles: [student]               # who is a learner
        refresh_days: 7                # every learner's completion asked again this often
                                       # (0: never)

Per course: `core_enrol_get_enrolled_users` (paged), `core_course_get_contents` (the
calendar: modules, their dates and completion settings), `gradereport_user_get_grade_items`
(one call for the course), then, only for learners who came back since the last sync
(`lastcourseaccess` past the course's cursor), were graded since, or are new,
`core_completion_get_activities_completion_status` (one call per such learner: Moodle has
no bulk form of it; every learner's once every `refresh_days`, since a teacher may tick an
activity complete by hand without leaving any other sign), and
`mod_forum_get_forum_discussions` per forum, newest first, down to the forum's cursor.
The token travels in the POST body, never in a URL. Replies are staged as they came
(`stg_moodle__records`) and mapped to the model in SQL (`sql/moodle_*.sql`).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import duckdb

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from connectors.base import SourceError, StageInterrupted, staged_counts, staging_table
from connectors.fetch import fetched
from connectors.http import Retry, SourceHttp, Transient, offset_pages, shown
from connectors.secrets import describe_secret, resolve_secret
from connectors.state import SourceState
from relance import clock
from warehouse import execute_script, sql_file

HERE = Path(__file__).parent
ENDPOINT = "webservice/rest/server.php"
FUNCTIONS = ("core_course_get_courses", "core_enrol_get_enrolled_users",
             "core_course_get_contents", "core_completion_get_activities_completion_status",
             "gradereport_user_get_grade_items", "mod_forum_get_forum_discussions")
SORT_LASTPOST_DESC = 1   # mod_forum: discussions by their last post, newest first


class MoodleSource(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["moodle"] = "moodle"
    url: str
    token: Any
    courses: list[int] = Field(default_factory=list)
    learner_id: Literal["username", "id", "email", "idnumber"] = "username"
    course_id: Literal["shortname", "id", "idnumber"] = "shortname"
    roles: list[str] = Field(default_factory=lambda: ["student"])
    page_size: int = Field(200, ge=1)
    # a teacher ticking an activity complete by hand changes nothing else Moodle lists:
    # every learner's completion statuses are asked again this often (0: never)
    refresh_days: int = Field(7, ge=0)
    retry: Retry = Field(default_factory=Retry)


class MoodleConnector:
    kind = "moodle"
    timezone = "UTC"     # Unix times: never ambiguous
    datetime_formats = ["%Y-%m-%dT%H:%M:%S"]
    date_formats = ["%Y-%m-%d"]
    progress_scale = "share"

    def __init__(self, name: str, source: MoodleSource):
        self.name = name
        self.source = source

    # -- calls -----------------------------------------------------------------------------
    def _open(self) -> None:
        self._token = resolve_secret(self.source.token, f"source {self.name}: token")
        self.http = SourceHttp(
            self.name, self.source.url, retry=self.source.retry,
            auth_fix=f"set {describe_secret(self.source.token)} to a valid web service token "
                     f"(Site administration > Server > Web services > Manage tokens)")

    def call(self, function: str, **params: Any) -> Any:
        """One web service function; Moodle's errors (HTTP 200 with an `exception`) raised
        as SourceErrors that say what to fix."""
        form = {"wstoken": self._token, "wsfunction": function, "moodlewsrestformat": "json",
                **_php_params(params)}

        def once() -> Any:
            data = self.http.post_json(ENDPOINT, data=form)
            # a site in maintenance mode answers every call so, for as long as it lasts
            # (Moodle's webservice/lib.php: "usually temporary"): retried like a 503
            if isinstance(data, dict) and data.get("errorcode") == "sitemaintenance":
                raise Transient(f"sitemaintenance: {data.get('message')}")
            return data
        data = self.http.retrier.run(once, f"POST {shown(self.http.client.base_url)}{ENDPOINT} "
                                           f"{function} {_shown(params)}")
        if isinstance(data, dict) and "exception" in data:
            code, message = data.get("errorcode"), data.get("message")
            if code == "invalidtoken":
                raise self.http.auth_error(f"{function}: {code}: {message}")
            if code == "accessexception":
                # Moodle says which access check failed only in debuginfo, sent in debug
                # mode: a function missing from the service and an expired token look alike
                detail = f" ({data['debuginfo']})" if data.get("debuginfo") else ""
                raise SourceError(
                    f"source {self.name}: {function}: {code}: {message}{detail}; add the "
                    f"function to the token's external service (Site administration > "
                    f"Server > Web services > External services > Functions); relance "
                    f"needs: {', '.join(FUNCTIONS)}; if the service has them all, the "
                    f"token may have expired (its 'Valid until'), be restricted to other IP "
                    f"addresses, or its service be disabled: "
                    f"{self.http.auth_fix}")
            fix = ""
            if code == "nopermissions":   # a capability the token's user lacks, named in `message`
                fix = ("; give the token's user a role with this capability in the courses "
                       "(core_course_get_courses needs 'View courses without participation', "
                       "moodle/course:view: by default a manager's, not a teacher's)")
            raise SourceError(f"source {self.name}: {function} {_shown(params)}: {code}: "
                              f"{message} {data.get('debuginfo') or ''}".rstrip() + fix)
        return data

    # -- staging ---------------------------------------------------------------------------
    def stage(self, con: duckdb.DuckDBPyConnection, state: SourceState) -> dict[str, int]:
        self._open()
        self._n = 0
        con.execute(f"create or replace table {staging_table(self.kind, 'records')} "
                    f"(kind varchar, course bigint, userid bigint, record json, _file varchar, "
                    f"_row bigint)")
        con.execute("create or replace temp table moodle_since "
                    "(course bigint, since bigint, seen bigint[])")
        execute_script(con, sql_file(HERE / "sql", "lms_users"))   # what Canvas's shares
        try:
            courses = self.call("core_course_get_courses",
                                options={"ids": self.source.courses} if self.source.courses else {})
            # the site's front page is course 1 of every Moodle: not a course
            courses = [c for c in courses if self.source.courses or c.get("format") != "site"]
            self._put(con, "course", None, None, courses, "core_course_get_courses")
            found = {c["id"] for c in courses}
            missing = [c for c in self.source.courses if c not in found]
            if missing:
                raise SourceError(f"source {self.name}: courses: no course with id "
                                  f"{', '.join(map(str, missing))} is visible to this token")
            cursors: dict[int, dict[str, str | None]] = {}
            interrupted = None
            for course in courses:
                try:
                    cursors[course["id"]] = self._stage_course(con, course["id"], state)
                except SourceError as exc:
                    if not cursors:
                        raise
                    # keep the courses read in full; this one is read again next time
                    con.execute("delete from stg_moodle__records where course = ?", [course["id"]])
                    con.execute("delete from moodle_since where course = ?", [course["id"]])
                    interrupted = exc
                    break
        finally:
            self.http.close()
        execute_script(con, sql_file(HERE / "sql", "moodle_users"), self._sql_params())
        execute_script(con, sql_file(HERE / "sql", "moodle_stage"), self._sql_params())
        execute_script(con, sql_file(HERE / "sql", "lms_stage", kind=self.kind),
                       {**self._sql_params(), "listing": "core_enrol_get_enrolled_users"})
        execute_script(con, sql_file(HERE / "sql", "lms_accounts", kind=self.kind,
                                     users="moodle_users", user="moodle_user",
                                     learner="u.is_learner"), {"source": self.name})
        for stream, cursor in cursors_items(cursors):
            if cursor is not None and cursor != state.get(stream):
                state.advance(stream, cursor)
        counts = staged_counts(con, self.kind)
        if interrupted is not None:
            raise StageInterrupted(counts, interrupted)
        return counts

    def _stage_course(self, con: duckdb.DuckDBPyConnection, course: int,
                      state: SourceState) -> dict[str, str | None]:
        # the last visit read, and who made it in that second: another learner's visit in
        # the same second, after the read, is new (Moodle's times are to the second)
        since_text, _, seen_text = (state.get(f"course:{course}:access") or "-1").partition(";users=")
        since = int(since_text)
        seen = [int(u) for u in seen_text.split(",") if u] if seen_text else None
        refreshed = state.get(f"course:{course}:refreshed")
        now = clock.now()
        refresh = bool(self.source.refresh_days) and (
            refreshed is None
            or now - datetime.fromisoformat(refreshed) >= timedelta(days=self.source.refresh_days))
        # active enrolments only: one suspended or past its end date no longer opens the
        # course, and leaving the list withdraws it (lms_stage.sql)
        for page in offset_pages(lambda start, n: self.call(
                "core_enrol_get_enrolled_users", courseid=course,
                options=[{"name": "limitfrom", "value": start},
                         {"name": "limitnumber", "value": n},
                         {"name": "onlyactive", "value": 1}]), self.source.page_size):
            self._put(con, "user", course, None, page, "core_enrol_get_enrolled_users")
        last_access, last_seen = con.execute(
            "with visits as (select ((record->>'$.lastcourseaccess'))::bigint as visited, "
            "((record->>'$.id'))::bigint as moodle_user from stg_moodle__records "
            "where kind = 'user' and course = ?) "
            "select max(visited), list(moodle_user order by moodle_user) filter "
            "(where visited = (select max(visited) from visits)) from visits", [course]).fetchall()[0]
        sections = self.call("core_course_get_contents", courseid=course)
        self._put(con, "section", course, None, sections, "core_course_get_contents")

        # The grade report first (one call): a grade given since the last sync can complete
        # an activity (a passing grade required) without the learner coming back.
        grades = self.call("gradereport_user_get_grade_items", courseid=course)
        self._put(con, "grades", course, None, grades.get("usergrades", []),
                  "gradereport_user_get_grade_items")
        # Completion statuses only for learners who came back or were graded since the last
        # sync, or new to the warehouse: the others cannot have completed anything since.
        # a refresh asks every learner, as if none had been read before
        con.execute("insert into moodle_since values (?, ?, ?)",
                    [course, -1, None] if refresh else [course, since, seen])
        execute_script(con, sql_file(HERE / "sql", "moodle_users"), self._sql_params())
        active = [r[0] for r in con.execute(
            "select moodle_user from moodle_users where moodle_course = ? and is_learner and active "
            "order by 1", [course]).fetchall()]
        def completions() -> None:
            for user in active:
                data = self.call("core_completion_get_activities_completion_status",
                                 courseid=course, userid=user)
                self._put(con, "completion", course, user, data.get("statuses", []),
                          "core_completion_get_activities_completion_status")
        # one call per learner (Moodle has no bulk form): in a flow, one task for them all
        if active:
            fetched(f"{self.name}: completion statuses of {len(active)} learner(s), course "
                    f"{course}", completions)

        cursors: dict[str, str | None] = {
            # (0: nobody opened the course yet; no need to list everyone)
            f"course:{course}:access": (None if last_access is None else str(last_access)
                                        if last_access <= 0 else
                                        f"{last_access};users={','.join(map(str, last_seen))}"),
            f"course:{course}:refreshed": now.isoformat() if refresh else None}
        forums = [m["instance"] for s in sections for m in s.get("modules", [])
                  if m.get("modname") == "forum"]
        for forum in forums:
            forum_since = int(state.get(f"forum:{forum}") or -1)
            newest = None
            page = 0
            while True:
                data = self.call("mod_forum_get_forum_discussions", forumid=forum,
                                 sortorder=SORT_LASTPOST_DESC, page=page,
                                 perpage=self.source.page_size)
                discussions = data.get("discussions", [])
                fresh = [d for d in discussions if d.get("timemodified", 0) > forum_since]
                self._put(con, "discussion", course, None, fresh,
                          "mod_forum_get_forum_discussions")
                if fresh and newest is None:
                    newest = max(d["timemodified"] for d in fresh)
                # Moodle lists pinned discussions first whatever the order asked: an old
                # pinned one says nothing of the discussions after it
                stale = [d for d in discussions if not d.get("pinned")
                         and d.get("timemodified", 0) <= forum_since]
                if stale or len(discussions) < self.source.page_size:
                    break
                page += 1
            cursors[f"forum:{forum}"] = str(newest) if newest is not None else None
        return cursors

    def _put(self, con: duckdb.DuckDBPyConnection, kind: str, course: int | None,
             user: int | None, records: list, function: str) -> None:
        """One reply's records into the raw staging table, in one statement."""
        if not records:
            return
        con.execute(
            "insert into stg_moodle__records select ?, ?, ?, value, ?, ? + key::bigint + 1 "
            "from json_each(?::json)",
            [kind, course, user, f"{self.source.url.rstrip('/')}/{ENDPOINT} {function}",
             self._n, json.dumps(records)])
        self._n += len(records)

    def _sql_params(self) -> dict[str, Any]:
        return {"learner_key": self.source.learner_id, "course_key": self.source.course_id,
                "roles": self.source.roles, "base_url": self.source.url.rstrip("/"),
                "source": self.name,
                "now": clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")}


def cursors_items(per_course: dict[int, dict[str, str | None]]):
    for cursors in per_course.values():
        yield from cursors.items()


def _php_params(params: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested parameters the way Moodle's REST server reads them: options[0][name]=..."""
    flat: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}[{key}]" if prefix else str(key)
        if isinstance(value, dict):
            flat.update(_php_params(value, name))
        elif isinstance(value, (list, tuple)):
            flat.update(_php_params(dict(enumerate(value)), name))
        else:
            flat[name] = str(int(value)) if isinstance(value, bool) else str(value)
    return flat


def _shown(params: dict[str, Any]) -> str:
    return "(" + ", ".join(f"{k}={v}" for k, v in params.items() if k != "options") + ")"


def from_config(name: str, options: dict, base_dir: Path) -> MoodleConnector:
    try:
        return MoodleConnector(name, MoodleSource.model_validate(options))
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise SourceError(f"source {name}: {loc}: {first['msg']}") from None
