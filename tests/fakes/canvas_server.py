"""A stand-in for a Canvas LMS REST API (/api/v1), for the Canvas connector's tests: bearer
tokens, Link-header pagination (`per_page` capped at 100, `page` from 1), and the shapes
Canvas documents for courses, enrollments, users, modules and their items, page views,
discussion topics and entries, and course analytics' student summaries. Errors as Canvas
sends them: 401 with WWW-Authenticate for a bad token, 403 for a role that may not read
something, 403 with `X-Rate-Limit-Remaining: 0` when the rate limit is spent (injected,
base.py), 404. Analytics as an instance without them answers (`"analytics": "disabled"`:
404) or for a user without the right to see them (`"unauthorized"`: 401, no
WWW-Authenticate, Canvas's "user not authorized to perform that action").

    python -m tests.fakes.canvas_server PORT
"""

from __future__ import annotations

import copy
import re
import sys
from datetime import datetime
from urllib.parse import parse_qs, urlencode, urlsplit

from tests.fakes.base import FakeHandler, serve

ROUTES = [
    (r"/api/v1/courses/(\d+)", "course"),
    (r"/api/v1/courses/(\d+)/enrollments", "enrollments"),
    (r"/api/v1/courses/(\d+)/users", "users"),
    (r"/api/v1/courses/(\d+)/search_users", "users"),    # the same list (canvasapi's)
    (r"/api/v1/courses/(\d+)/modules", "modules"),
    (r"/api/v1/users/(\d+)/page_views", "page_views"),
    (r"/api/v1/courses/(\d+)/discussion_topics", "topics"),
    (r"/api/v1/courses/(\d+)/discussion_topics/(\d+)/entries", "entries"),
    (r"/api/v1/courses/(\d+)/discussion_topics/(\d+)/entries/(\d+)/replies", "replies"),
    (r"/api/v1/courses/(\d+)/analytics/student_summaries", "student_summaries"),
]


class CanvasHandler(FakeHandler):
    def do_PUT(self):
        self.control()

    def do_POST(self):
        """POST /api/v1/conversations (conversations_controller.rb#create), checked as Canvas
        does: the token, a form body, recipients[] (user ids the token's user may message:
        users of the state's courses, less `unmessageable`), a body, a subject of at most 255
        characters; answered 201 with the conversations made ([one], as a private
        conversation with one recipient gives), or 400 with [{"attribute", "message"}].
        Conversations made are kept in the state's `conversations`."""
        if self.control():
            return
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode() if length else ""
        multi = parse_qs(raw, keep_blank_values=True) if "application/x-www-form-urlencoded" in (
            self.headers.get("Content-Type") or "") else {}
        flat = {k: v[-1] for k, v in multi.items()}
        self.record("conversations" if split.path == "/api/v1/conversations" else split.path,
                    {**flat, "recipients[]": multi.get("recipients[]", []), "path": split.path})
        if self.headers.get("Authorization") != f"Bearer {self.state.get('token')}":
            self.send_json(401, {"errors": [{"message": "Invalid access token."}]},
                           {"WWW-Authenticate": 'Bearer realm="canvas-lms"'})
            return
        if split.path != "/api/v1/conversations":
            self.send_json(404, {"errors": [{"message": "The specified resource does not exist."}]})
            return
        if self.injected({**flat, "path": split.path, "route": "conversations"}):
            return
        if not self.state.get("can_send_messages", True):
            self.send_json(403, {"status": "unauthorized",
                                 "errors": [{"message": "user not authorized to perform that action"}]})
            return
        recipients = multi.get("recipients[]", [])
        known = {str(u["id"]) for users in self.state.get("users", {}).values() for u in users}
        messageable = known - {str(u) for u in self.state.get("unmessageable", [])}
        if not recipients:
            self.send_json(400, [{"attribute": "recipients", "message": "blank"}])
            return
        if not [r for r in recipients if r in messageable]:
            self.send_json(400, [{"attribute": "recipients", "message": "invalid"}])
            return
        if not flat.get("body", "").strip():
            self.send_json(400, [{"attribute": "body", "message": "blank"}])
            return
        if len(flat.get("subject", "")) > 255:
            self.send_json(400, {"errors": {"subject": [
                {"attribute": "subject", "type": "too_long", "message": "too_long"}]}})
            return
        with self.lock:
            made = self.state.setdefault("conversations", [])
            cid = 7000 + len(made) + 1
            made.append({"id": cid, "recipients": recipients, "subject": flat.get("subject"),
                         "body": flat["body"], "force_new": flat.get("force_new")})
        ids = [int(r) for r in recipients if r in messageable]
        self.send_json(201, [{
            "id": cid, "subject": flat.get("subject"), "workflow_state": "read",
            "last_message": flat["body"][:100], "last_message_at": "2026-11-23T08:00:00Z",
            "message_count": 1, "subscribed": True, "private": len(ids) == 1,
            "starred": False, "properties": ["last_author"], "audience": ids,
            "audience_contexts": {"courses": {}, "groups": {}},
            "avatar_url": "https://canvas.example.edu/images/messages/avatar-50.png",
            "participants": [{"id": 9, "name": "Julie Prof", "full_name": "Julie Prof"}]
                            + [{"id": i, "name": str(i), "full_name": str(i)} for i in ids],
            "visible": True, "context_name": None}])

    def do_GET(self):
        if self.control():
            return
        split = urlsplit(self.path)
        multi = parse_qs(split.query, keep_blank_values=True)
        flat = {k: v[-1] for k, v in multi.items()}
        route = next(((name, m.groups()) for pattern, name in ROUTES
                      if (m := re.fullmatch(pattern, split.path))), None)
        self.record(route[0] if route else split.path, {**flat, "path": split.path})
        if self.headers.get("Authorization") != f"Bearer {self.state.get('token')}":
            self.send_json(401, {"errors": [{"message": "Invalid access token."}]},
                           {"WWW-Authenticate": 'Bearer realm="canvas-lms"'})
            return
        if self.injected({**flat, "path": split.path, "route": route[0] if route else ""}):
            return
        if any(split.path.startswith(p) for p in self.state.get("forbidden", [])):
            self.send_json(403, {"status": "unauthorized",
                                 "errors": [{"message": "user not authorized to perform that action"}]})
            return
        if route and route[0] == "student_summaries" and self.state.get("analytics") == "unauthorized":
            self.send_json(401, {"status": "unauthorized",
                                 "errors": [{"message": "user not authorized to perform that action"}]})
            return
        if route is None or (route[0] == "student_summaries"
                             and self.state.get("analytics") == "disabled"):
            self.send_json(404, {"errors": [{"message": "The specified resource does not exist."}]})
            return
        name, args = route
        result = getattr(self, name)(multi, *args)
        if result is None:
            self.send_json(404, {"errors": [{"message": "The specified resource does not exist."}]})
        elif isinstance(result, list):
            self.paged(split.path, multi, result)
        else:
            self.send_json(200, result)

    def paged(self, path: str, multi: dict, items: list) -> None:
        # Rails reads the last of repeated keys; Canvas caps per_page at 100, or at the
        # site's `max_per_page` here, so that small lists still take several pages
        per_page = min(int(multi.get("per_page", ["10"])[-1]), 100,
                       int(self.state.get("max_per_page", 100)))
        page = int(multi.get("page", ["1"])[-1])
        last = max((len(items) + per_page - 1) // per_page, 1)

        def link(n):
            query = {k: v for k, v in multi.items() if k != "page"}
            query["page"] = [str(n)]
            return f"<http://{self.headers['Host']}{path}?{urlencode(query, doseq=True)}>"
        links = [f'{link(page)}; rel="current"']
        if page < last:
            links.append(f'{link(page + 1)}; rel="next"')
        if page > 1:
            links.append(f'{link(page - 1)}; rel="prev"')
        links += [f'{link(1)}; rel="first"', f'{link(last)}; rel="last"']
        self.send_json(200, items[(page - 1) * per_page:page * per_page],
                       {"Link": ",".join(links)})

    # -- the resources --------------------------------------------------------------------
    def course(self, multi, course_id):
        return self.state.get("courses", {}).get(course_id)

    def enrollments(self, multi, course_id):
        types = multi.get("type[]") or []
        states = multi.get("state[]") or ["active", "invited"]
        return [e for e in self.state.get("enrollments", {}).get(course_id, [])
                if (not types or e["type"] in types) and e["enrollment_state"] in states]

    def users(self, multi, course_id):
        include = set(multi.get("include[]", []))
        # only users whose enrollment is in one of these states: active and invited unless
        # asked (a concluded or deactivated student is left out by default)
        states = set(multi.get("enrollment_state[]") or ["active", "invited"])
        enrolled = {}
        for e in self.state.get("enrollments", {}).get(course_id, []):
            enrolled.setdefault(e["user_id"], set()).add(e["enrollment_state"])
        out = []
        for user in self.state.get("users", {}).get(course_id, []):
            if user["id"] in enrolled and not enrolled[user["id"]] & states:
                continue
            user = dict(user)
            for optional in ("email", "locale"):
                if optional not in include:
                    user.pop(optional, None)
            out.append(user)
        return out

    def modules(self, multi, course_id):
        include = set(multi.get("include[]", []))
        student = (multi.get("student_id") or [None])[-1]
        done = set(self.state.get("completed", {}).get(f"{course_id}:{student}", []))
        out = []
        for module in copy.deepcopy(self.state.get("modules", {}).get(course_id, [])):
            if "items" in include:
                for item in module["items"]:
                    if "content_details" not in include:
                        item.pop("content_details", None)
                    if student and item.get("completion_requirement"):
                        item["completion_requirement"]["completed"] = item["id"] in done
            else:
                module.pop("items", None)
            out.append(module)
        return out

    def page_views(self, multi, user_id):
        start = (multi.get("start_time") or [None])[-1]
        views = self.state.get("page_views", {}).get(user_id, [])
        if start:
            since = datetime.fromisoformat(start.replace("Z", "+00:00"))
            views = [v for v in views
                     if datetime.fromisoformat(v["created_at"].replace("Z", "+00:00")) >= since]
        return sorted(views, key=lambda v: v["created_at"], reverse=True)

    def student_summaries(self, multi, course_id):
        # GET /courses/:id/analytics/student_summaries: one per student of the course,
        # sorted by `sort_column` (name by default; page_views, participations ...)
        if course_id not in self.state.get("courses", {}):
            return None
        summaries = self.state.get("summaries", {}).get(course_id, [])
        student = (multi.get("student_id") or [None])[-1]
        if student:
            summaries = [s for s in summaries if str(s["id"]) == student]
        column = (multi.get("sort_column") or ["name"])[-1]
        key = column.removesuffix("_descending")
        if key in ("page_views", "participations"):
            summaries = sorted(summaries, key=lambda s: s[key],
                               reverse=column.endswith("_descending"))
        return summaries

    def topics(self, multi, course_id):
        return self.state.get("topics", {}).get(course_id, [])

    def entries(self, multi, course_id, topic_id):
        # top-level entries only, each with its 10 most recent replies (the thread below
        # it, flattened, newest first) and whether there are more
        out = []
        for entry in self.state.get("entries", {}).get(f"{course_id}:{topic_id}", []):
            replies = self.state.get("replies", {}).get(f"{course_id}:{topic_id}:{entry['id']}")
            if replies is not None:
                newest = sorted(replies, key=lambda r: r["created_at"], reverse=True)
                entry = {**entry, "recent_replies": newest[:10], "has_more_replies": len(newest) > 10}
            out.append(entry)
        return out

    def replies(self, multi, course_id, topic_id, entry_id):
        replies = self.state.get("replies", {}).get(f"{course_id}:{topic_id}:{entry_id}", [])
        return sorted(replies, key=lambda r: r["created_at"], reverse=True)


if __name__ == "__main__":
    serve(CanvasHandler, int(sys.argv[1]))
