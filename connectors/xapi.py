"""An xAPI Learning Record Store (Ralph, Learning Locker, SCORM Cloud, ...), as a source:

    sources:
      lrs:
        kind: xapi
        url: https://lrs.example.org          # the LRS root (statements_path: xAPI/statements)
        username: {env: LRS_USER}             # basic auth, by reference (secrets.py)
        password: {env: LRS_PASSWORD}
        courses:                              # optional: course ids for IRIs (prefixes)
          - {id: anglais-b2, iri: "https://lms.example.org/course/12", title: Anglais B2}
        filters: {agent: {mbox: "mailto:zoe@example.org"}, verb: ..., activity: ...}

Statements are read with `GET /xAPI/statements`, page by page (`limit`, then each `more`
link to the end), from the last sync's cursor on (`since`). Raw statements are staged as
JSON, then mapped to the model in SQL (`sql/xapi_stage.sql`): verbs to progress events,
contributions or enrolments (`verbs:` adds or overrides mappings); the actor's account
name (else its e-mail) is the learner id; the context's parent or grouping activity is
the course; the statement id is the event id, so a statement read twice is loaded once.
Voiding statements are staged as voids (`stg_xapi__voids`): the loader removes what the
voided statement loaded, now or when it comes (sql/load_voids.sql).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urljoin

import duckdb
import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from connectors.base import SourceError, StageInterrupted, staged_counts, staging_table
from connectors.http import Retry, SourceHttp
from connectors.secrets import describe_secret, resolve_secret
from connectors.state import SourceState
from warehouse import execute_script, sql_file

HERE = Path(__file__).parent

# Verb IRIs, or their last segment (ADL's, cmi5's, ActivityStreams' spell them alike).
DEFAULT_VERBS: dict[str, str] = {
    "completed": "completed", "passed": "passed", "failed": "failed",
    "progressed": "progressed", "experienced": "accessed", "terminated": "accessed",
    "launched": "accessed", "initialized": "accessed", "attempted": "accessed",
    "answered": "accessed", "submitted": "submitted",
    "commented": "contribution", "posted": "contribution", "post": "contribution",
    "replied": "contribution", "shared": "contribution",
    "registered": "enrolment",
}
MapsTo = Literal["accessed", "progressed", "completed", "submitted", "passed", "failed",
                 "contribution", "enrolment", "ignore"]
CMI5_PROGRESS = "https://w3id.org/xapi/cmi5/result/extensions/progress"


class XapiCourse(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    iri: str          # the course activity's IRI, or a prefix of its activities' IRIs
    title: str | None = None


class XapiFilters(BaseModel):
    model_config = ConfigDict(extra="forbid")
    agent: dict[str, Any] | None = None   # an xAPI Agent object: {mbox: mailto:...} ...
    verb: str | None = None
    activity: str | None = None


class XapiSource(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["xapi"] = "xapi"
    url: str
    username: Any
    password: Any
    version: str = "1.0.3"
    # where statements are, relative to `url` (some LRSs serve them at `statements`)
    statements_path: str = "xAPI/statements"
    courses: list[XapiCourse] = Field(default_factory=list)
    verbs: dict[str, MapsTo] = Field(default_factory=dict)
    progress_extensions: list[str] = Field(default_factory=lambda: [CMI5_PROGRESS])
    filters: XapiFilters = Field(default_factory=XapiFilters)
    # Send the verb and activity filters to the LRS too (they are always applied here as
    # well). Ralph's file-system backend answers nothing to them: set false for it.
    filter_on_server: bool = True
    # The statement time `since` compares: 'stored', as the xAPI spec says; Ralph's
    # file-system backend compares `timestamp` instead.
    cursor_field: Literal["stored", "timestamp"] = "stored"
    page_size: int = Field(500, ge=1)
    timezone: str = "UTC"
    retry: Retry = Field(default_factory=Retry)


class XapiConnector:
    kind = "xapi"
    datetime_formats = ["%Y-%m-%dT%H:%M:%S"]
    date_formats = ["%Y-%m-%d"]
    progress_scale = "percent"
    STREAM = "statements"
    transport: httpx.BaseTransport | None = None   # the network itself, for tests that break it

    def __init__(self, name: str, source: XapiSource):
        self.name = name
        self.source = source
        self.timezone = source.timezone

    def _http(self) -> SourceHttp:
        where = f"source {self.name}"
        user = resolve_secret(self.source.username, f"{where}: username")
        password = resolve_secret(self.source.password, f"{where}: password")
        refs = " and ".join(describe_secret(s) for s in (self.source.username, self.source.password))
        return SourceHttp(
            self.name, self.source.url, retry=self.source.retry,
            auth=httpx.BasicAuth(user, password),
            headers={"X-Experience-API-Version": self.source.version},
            transport=self.transport,
            auth_fix=f"check the LRS credentials ({refs}) and that this account may read "
                     f"statements (Ralph: scope statements/read or all)")

    def _params(self, since: str | None) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": self.source.page_size, "ascending": "true"}
        if since:
            params["since"] = since
        f = self.source.filters
        if f.agent:
            params["agent"] = json.dumps(f.agent)
        if self.source.filter_on_server:
            if f.verb:
                params["verb"] = f.verb
            if f.activity:
                params["activity"] = f.activity
        return params

    def stage(self, con: duckdb.DuckDBPyConnection, state: SourceState) -> dict[str, int]:
        raw = staging_table(self.kind, "statements")
        con.execute(f"create or replace table {raw} (statement json, _file varchar, _row bigint)")
        since = state.get(self.STREAM)
        http = self._http()
        n = 0
        moments: list = []        # each statement's cursor field, in the order read
        interrupted = None
        try:
            pages = http.follow(self.source.statements_path.lstrip("/"), _more, params=self._params(since))
            for page, (page_url, data) in enumerate(pages, start=1):
                statements = data.get("statements") if isinstance(data, dict) else None
                if not isinstance(statements, list):
                    raise SourceError(f"source {self.name}: {page_url} is not an xAPI "
                                      f"statement result (no `statements` list); is `url` "
                                      f"the LRS root?")
                if not statements:
                    continue
                # the whole page in one statement: DuckDB unpacks the JSON array
                con.execute(f"insert into {raw} select value, ?, ? + key::bigint + 1 "
                            f"from json_each(?::json)",
                            [f"{page_url} page {page}", n, json.dumps(statements)])
                n += len(statements)
                moments += [_moment(s, self.source.cursor_field) for s in statements]
        except SourceError as exc:
            if not moments:
                raise
            interrupted = exc
        finally:
            http.close()
        self._map(con)
        cursor = _next_cursor(moments, complete=interrupted is None)
        if cursor is not None and cursor != since:
            state.advance(self.STREAM, cursor)
        counts = staged_counts(con, self.kind)
        if interrupted is not None:
            raise StageInterrupted(counts, interrupted)
        return counts

    def _map(self, con: duckdb.DuckDBPyConnection) -> None:
        verbs = {**DEFAULT_VERBS, **self.source.verbs}
        con.execute("create or replace temp table xapi_verb_map (key varchar, maps_to varchar)")
        con.executemany("insert into xapi_verb_map values (?, ?)", list(verbs.items()))
        con.execute("create or replace temp table xapi_courses (iri varchar, course_id varchar, "
                    "title varchar)")
        if self.source.courses:
            con.executemany("insert into xapi_courses values (?, ?, ?)",
                            [(c.iri, c.id, c.title) for c in self.source.courses])
        execute_script(con, sql_file(HERE / "sql", "xapi_stage"), {
            "verb_filter": self.source.filters.verb,
            "activity_filter": self.source.filters.activity,
            "courses_configured": bool(self.source.courses),
            "progress_keys": self.source.progress_extensions,
        })


def _more(response: httpx.Response, data: Any) -> str | None:
    """The xAPI `more` link, on the LRS that answered: xAPI makes it a path and query
    "excluding scheme, host, and port"; an LRS behind a proxy may still write its own
    internal origin, which is unreachable from here and must not get the credentials."""
    more = data.get("more") if isinstance(data, dict) else None
    if not more:
        return None
    link = httpx.URL(more)
    path = link.raw_path.decode("ascii") if link.is_absolute_url else more
    return urljoin(str(response.url), path)


def _moment(statement: Any, field: str) -> datetime | None:
    value = statement.get(field) if isinstance(statement, dict) else None
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def _next_cursor(moments: list[datetime | None], *, complete: bool) -> str | None:
    """The `since` of the next sync (ISO 8601 in UTC: Ralph answers 500 to one without a
    timezone). After a full read, the latest moment read. After an interrupted one, only
    if the LRS answered in order: the latest moment before the last one read, since more
    statements of that very moment may be on the page that never came (`since` is
    exclusive)."""
    known = [m for m in moments if m is not None]
    if not known:
        return None
    if complete:
        return max(known).isoformat()
    if any(b < a for a, b in zip(known, known[1:])):
        return None           # not in order: nothing tells what the missing pages held
    earlier = [m for m in known if m < known[-1]]
    return max(earlier).isoformat() if earlier else None


def from_config(name: str, options: dict, base_dir: Path) -> XapiConnector:
    try:
        return XapiConnector(name, XapiSource.model_validate(options))
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise SourceError(f"source {name}: {loc}: {first['msg']}") from None
