"""`relance desk`: the desk's pages, on the receiver's capped HTTP server
(feedback/http_limits.py: bodies capped, deadlines, bounded workers).

    GET  /login?t=<token>           a magic link: sets the session cookie, then the list
    GET  /                          today's list (team/lists.py, the person's own)
    GET  /learner/<id>/<course>     one learner's timeline, and the two forms below
    POST /learner/<id>/<course>/contact   record a contact: channel, outcome, note
    POST /learner/<id>/<course>/snooze    off the lists until a date
    GET  /logout

Every page but /login needs the session cookie (auth.py); every form its CSRF token; a
person sees and records only the learners assigned to them. Pages are Jinja2 with
autoescape, in the person's locale (French or English). The warehouse is opened for each
request and closed at once, like the receiver's: deliveries never wait for the desk.
"""

from __future__ import annotations

from datetime import datetime
from http.cookies import CookieError, SimpleCookie
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlparse

from babel.dates import format_date, format_datetime
from jinja2 import Environment, FileSystemLoader, StrictUndefined

import warehouse
from relance import clock
from relance.desk import actions, auth
from relance.desk.words import words
from relance.feedback.http_limits import BoundedServer, LimitedHandler, Limits, Refusal
from relance.team import lists
from relance.team.model import TeamFile
from warehouse import sql_file

HERE = Path(__file__).parent
COOKIE = "relance_desk"
HEADERS = {
    # nothing but this page's own forms and inline style; no framing, no referrer leaks
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
ENV = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True,
                  undefined=StrictUndefined)
# an id as one segment of a path, whatever it holds ('/' included)
ENV.filters["segment"] = lambda value: quote(str(value), safe="")


def login_link(base_url: str, secret: bytes, email: str,
               hours: float = auth.LINK_HOURS) -> str:
    return f"{base_url.rstrip('/')}/login?t={quote(auth.issue(secret, 'login', email, hours))}"


def links_for(team: TeamFile):
    """A person's e-mail -> their signed sign-in link, for the daily lists (team/send.py);
    None when the desk has no address (`desk_url`) or no secret (RELANCE_DESK_SECRET)."""
    try:
        secret = auth.secret_from_env()
    except auth.AuthError:
        return None
    if not team.desk_url:
        return None
    return lambda email: login_link(team.desk_url, secret, email)


def make_handler(warehouse_path: Path, team: TeamFile, secret: bytes, wait: float = 5.0):
    class Handler(LimitedHandler):

        # -- answers ---------------------------------------------------------------------

        def _page(self, status: int, template: str, person=None, *, cookie: str | None = None,
                  **context) -> None:
            locale = person.locale if person else (team.people[0].locale if team.people else "en")
            w = words(locale)
            lang = "fr" if locale.lower().startswith("fr") else "en"
            tz = person.timezone if person else "UTC"

            def day(value) -> str:
                if value is None:
                    return "—"
                value = value.date() if isinstance(value, datetime) else value
                return format_date(value, "d MMM yyyy", locale=lang)

            def stamp(value) -> str:
                return format_datetime(value, "d MMM yyyy HH:mm", tzinfo=tz, locale=lang) \
                    if value else "—"
            body = ENV.get_template(template).render(w=w, lang=lang, person=person, day=day,
                                                     stamp=stamp, **context)
            headers = dict(HEADERS)
            if cookie is not None:
                headers["Set-Cookie"] = cookie
            self.reply(status, body, "text/html; charset=utf-8", headers)

        def _refused(self, status: int, key: str, person=None, *, cookie: str | None = None):
            if person is not None:
                w = words(person.locale)
                title, message = w["refused_title"], w[key]
            else:       # no one known yet: both languages
                fr, en = words("fr"), words("en")
                title = f"{fr['refused_title']} / {en['refused_title']}"
                message = f"{fr[key]} / {en[key]}"
            self._page(status, "refused.html", person, cookie=cookie, page_title=title,
                       message=message)

        def _redirect(self, to: str, cookie: str | None = None) -> None:
            headers = dict(HEADERS, Location=to)
            if cookie is not None:
                headers["Set-Cookie"] = cookie
            self.reply(303, "", "text/plain", headers)

        # -- who is asking ---------------------------------------------------------------

        def _session(self) -> tuple[object, str] | None:
            """(person, session token), or None once a refusal is answered."""
            raw = self.headers.get("Cookie") or ""
            try:
                jar = SimpleCookie(raw)
            except CookieError:
                jar = SimpleCookie()
            token = jar[COOKIE].value if COOKIE in jar else None
            try:
                holder = auth.verify(secret, token, "session")
            except auth.AuthError as exc:
                self._refused(401, str(exc))
                return None
            person = team.person(holder.email)
            if person is None:
                self._refused(403, "unknown_person")
                return None
            return person, token

        def _open(self, person):
            try:
                return warehouse.connect(warehouse_path, wait_seconds=wait)
            except warehouse.WarehouseBusy:
                self._refused(503, "busy", person)
                return None

        # -- routes ----------------------------------------------------------------------

        def do_GET(self):
            url = urlparse(self.path)
            parts = [unquote(p) for p in url.path.split("/") if p]
            if url.path == "/login":
                token = parse_qs(url.query).get("t", [""])[0]
                try:
                    holder = auth.verify(secret, token, "login")
                except auth.AuthError as exc:
                    self._refused(401, str(exc))
                    return
                if team.person(holder.email) is None:
                    self._refused(403, "unknown_person")
                    return
                session = auth.issue(secret, "session", holder.email, auth.SESSION_HOURS)
                self._redirect("/", f"{COOKIE}={session}; HttpOnly; SameSite=Lax; Path=/; "
                                    f"Max-Age={auth.SESSION_HOURS * 3600}")
                return
            if url.path == "/logout":
                self._refused(401, "no_token",
                              cookie=f"{COOKIE}=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0")
                return
            who = self._session()
            if who is None:
                return
            person, token = who
            if url.path == "/":
                self._list(person, parse_qs(url.query))
            elif len(parts) == 3 and parts[0] == "learner":
                self._learner(person, token, parts[1], parts[2])
            else:
                self._refused(404, "not_found", person)

        def do_POST(self):
            url = urlparse(self.path)
            parts = [unquote(p) for p in url.path.split("/") if p]
            who = self._session()
            if who is None:
                self._discard_unread()
                return
            person, token = who
            if not (len(parts) == 4 and parts[0] == "learner"
                    and parts[3] in ("contact", "snooze")):
                self._refused(404, "not_found", person)
                return
            try:
                body = self.read_body(self.server.limits.max_form_bytes,
                                      "RELANCE_SERVE_MAX_FORM_BYTES")
            except Refusal as refusal:
                self.refuse(refusal)
                return
            form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace"),
                                                   keep_blank_values=True).items()}
            if not auth.check_csrf(secret, token, form.get("csrf")):
                self._refused(403, "csrf", person)
                return
            lid, cid = parts[1], parts[2]
            con = self._open(person)
            if con is None:
                return
            try:
                if not self._assigned(con, person, lid, cid):
                    self._refused(403, "not_yours", person)
                    return
                try:
                    if parts[3] == "contact":
                        actions.record_contact(
                            con, learner_id=lid, course_id=cid, actor=person.email,
                            channel=form.get("channel", ""), outcome=form.get("outcome", ""),
                            note=form.get("note", ""), resume_on=form.get("resume_on"),
                            campaign_id=self._campaign_of(con, lid, cid))
                    else:
                        actions.snooze(con, learner_id=lid, course_id=cid, actor=person.email,
                                       until=form.get("until", ""), note=form.get("note", ""))
                except actions.ActionError as exc:
                    self._learner(person, token, lid, cid, error=words(person.locale)[str(exc)],
                                  con=con, status=400)
                    return
            finally:
                con.close()
            flash = "recorded" if parts[3] == "contact" else "snoozed"
            self._redirect(f"/?done={flash}&l={quote(lid)}&c={quote(cid)}"
                           + (f"&u={quote(form.get('until', ''))}" if flash == "snoozed" else ""))

        # -- pages -----------------------------------------------------------------------

        @staticmethod
        def _assigned(con, person, lid: str, cid: str) -> bool:
            return bool(con.execute(
                "select 1 from team_assignments where learner_id = ? and course_id = ? "
                "and person_email = ?", [lid, cid, person.email]).fetchall())

        @staticmethod
        def _campaign_of(con, lid: str, cid: str) -> str | None:
            rows = con.execute("select campaign_id from follow_ups where learner_id = ? and "
                               "course_id = ? order by created_at desc limit 1",
                               [lid, cid]).fetchall()
            return rows[0][0] if rows else None

        def _list(self, person, query: dict) -> None:
            con = self._open(person)
            if con is None:
                return
            try:
                daily = lists.compute(con, team).get(person.email) or lists.DailyList(
                    person.email, person.name, person.locale, clock.now().date())
                flash = None
                done = query.get("done", [""])[0]
                if done in ("recorded", "snoozed"):
                    rows = con.execute("select first_name, last_name from learners where "
                                       "learner_id = ?", [query.get("l", [""])[0]]).fetchall()
                    if rows:
                        name = " ".join(x for x in rows[0] if x)
                        w = words(person.locale)
                        flash = w[done].format(name=name, day=query.get("u", [""])[0])
            finally:
                con.close()
            lang = "fr" if person.locale.lower().startswith("fr") else "en"
            title = words(person.locale)["list_for"].format(
                day=format_date(daily.today, "full", locale=lang))
            self._page(200, "list.html", person, page_title=title, daily=daily, flash=flash)

        def _learner(self, person, token: str, lid: str, cid: str, *, error: str | None = None,
                     con=None, status: int = 200) -> None:
            own = con is None
            con = con or self._open(person)
            if con is None:
                return
            try:
                if not self._assigned(con, person, lid, cid):
                    self._refused(403, "not_yours", person)
                    return
                row = con.execute("select learner_id, first_name, last_name, email from "
                                  "learners where learner_id = ?", [lid]).fetchall()
                cur = con.execute(sql_file(HERE, "timeline"),
                                  {"learner_id": lid, "course_id": cid, "as_of": clock.now()})
                names = [d[0] for d in cur.description]
                timeline = [dict(zip(names, r)) for r in cur.fetchall()]
            finally:
                if own:
                    con.close()
            learner = dict(zip(("learner_id", "first_name", "last_name", "email"), row[0]))
            title = f"{learner['first_name'] or ''} {learner['last_name'] or ''} · {cid}".strip()
            self._page(status, "learner.html", person, page_title=title, learner=learner,
                       course_id=cid, timeline=timeline, csrf=auth.csrf(secret, token),
                       channels=actions.CHANNELS, outcomes=actions.OUTCOMES, error=error)

    return Handler


def serve(warehouse_path: Path, team: TeamFile, host: str = "127.0.0.1", port: int = 8010, *,
          wait: float = 5.0, limits: Limits | None = None, now: datetime | None = None,
          on_ready=None, secret: bytes | None = None, ready_server=None) -> None:
    """Serve the desk until stopped. `now`: the clock's moment for every request (links'
    expiry, the day's list, the actions' times) instead of the wall clock."""
    secret = secret or auth.secret_from_env()
    server = BoundedServer((host, port), make_handler(Path(warehouse_path), team, secret, wait),
                           limits or Limits.from_settings())
    if ready_server:
        ready_server(server)
    server.serve(now, on_ready)
