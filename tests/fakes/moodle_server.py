"""A stand-in for a Moodle site's REST web services (webservice/rest/server.php), for the
Moodle connector's tests: it checks requests as Moodle does and answers with the shapes
Moodle documents (lib/db/services.php and each function's *_returns()), errors included:
Moodle reports a bad token, a function missing from the service or a bad parameter with
HTTP 200 and a body {"exception", "errorcode", "message"}.

    python -m tests.fakes.moodle_server PORT

The site's data is set by the test (base.py): courses, enrolled users per course, course
contents, completion statuses per course and user, grade items per course, discussions
per forum.
"""

from __future__ import annotations

import re
import sys
from urllib.parse import urlsplit

from tests.fakes.base import FakeHandler, serve

FUNCTIONS = {
    "core_course_get_courses": [],
    "core_enrol_get_enrolled_users": ["courseid"],
    "core_completion_get_activities_completion_status": ["courseid", "userid"],
    "core_course_get_contents": ["courseid"],
    "gradereport_user_get_grade_items": ["courseid"],
    "mod_forum_get_forum_discussions": ["forumid"],
    "core_message_send_instant_messages": [],       # messages[...]: checked by the function
}

# core_message\api::MESSAGE_MAX_LENGTH, and the formats external_format_value accepts
MESSAGE_MAX_LENGTH = 4096
TEXT_FORMATS = {"0", "1", "2", "4"}    # FORMAT_MOODLE, FORMAT_HTML, FORMAT_PLAIN, FORMAT_MARKDOWN
ALPHANUMEXT = re.compile(r"^[A-Za-z0-9_-]*$")

# mod/forum/classes/local/vaults/discussion_list.php
SORT_LASTPOST_DESC, SORT_LASTPOST_ASC, SORT_CREATED_DESC, SORT_CREATED_ASC = 1, 2, 3, 4


def moodle_error(exception: str, errorcode: str, message: str, debuginfo: str | None = None) -> dict:
    body = {"exception": exception, "errorcode": errorcode, "message": message}
    if debuginfo:
        body["debuginfo"] = debuginfo
    return body


def nested(params: dict, prefix: str) -> dict[str, dict[str, str]]:
    """PHP's options[0][name]=x&options[0][value]=y, as {'0': {'name': 'x', 'value': 'y'}}."""
    out: dict[str, dict[str, str]] = {}
    for key, value in params.items():
        m = re.fullmatch(rf"{prefix}\[(\w+)\]\[(\w+)\]", key)
        if m:
            out.setdefault(m.group(1), {})[m.group(2)] = value
    return out


class MoodleHandler(FakeHandler):
    secret_params = ("wstoken",)

    def do_GET(self):
        self.handle_ws()

    def do_POST(self):
        self.handle_ws()

    def do_PUT(self):
        self.control()

    def handle_ws(self):
        if self.control():
            return
        if urlsplit(self.path).path != "/webservice/rest/server.php":
            self.send_json(404, {"error": "not found"})
            return
        params = self.params()
        function = params.get("wsfunction", "")
        self.record(function, params)
        if params.get("moodlewsrestformat", "xml") != "json":
            body = b"<?xml version='1.0' encoding='UTF-8' ?>\n<RESPONSE></RESPONSE>\n"
            self.send_response(200)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if params.get("wstoken") != self.state.get("token"):
            self.send_json(200, moodle_error("moodle_exception", "invalidtoken",
                                             "Invalid token - token not found"))
            return
        allowed = self.state.get("functions", list(FUNCTIONS))
        if function not in FUNCTIONS or function not in allowed:
            self.send_json(200, moodle_error("webservice_access_exception", "accessexception",
                                             "Access control exception"))
            return
        missing = [p for p in FUNCTIONS[function] if p not in params]
        if missing:
            self.send_json(200, moodle_error(
                "invalid_parameter_exception", "invalidparameter",
                "Invalid parameter value detected",
                f"Missing required key in single structure: {missing[0]}"))
            return
        if self.injected(params):
            return
        if function == "core_course_get_courses" and not self.state.get("course_view", True):
            # core_course_get_courses requires moodle/course:view in every course it returns:
            # by default the manager role's, not the teacher role's
            self.send_json(200, moodle_error(
                "required_capability_exception", "nopermissions",
                "Sorry, but you do not currently have permissions to do that (View courses "
                "without participation)."))
            return
        if function == "core_message_send_instant_messages" and self.command != "POST":
            self.send_json(405, {"error": "POST only"})
            return
        self.send_json(200, getattr(self, function)(params))

    # -- the functions ---------------------------------------------------------------------
    def core_course_get_courses(self, params):
        ids = {v for k, v in params.items() if k.startswith("options[ids]")}
        return [c for c in self.state.get("courses", []) if not ids or str(c["id"]) in ids]

    def core_enrol_get_enrolled_users(self, params):
        options = {o["name"]: o.get("value") for o in nested(params, "options").values()}
        users = self.state.get("users", {}).get(str(params["courseid"]), [])
        # a suspended enrolment, or one past its end date, is listed unless onlyactive is
        # set (Moodle's records do not say which enrolments are active)
        if options.get("onlyactive") not in (None, "", "0"):
            inactive = set(self.state.get("inactive", {}).get(str(params["courseid"]), []))
            users = [u for u in users if u["id"] not in inactive]
        start = int(options.get("limitfrom") or 0)
        count = int(options.get("limitnumber") or 0)
        page = users[start:start + count] if count else users[start:]
        # Moodle pages in its SQL, then leaves out the users user_get_user_details() will
        # not give the token's user (enrol/externallib.php): a page can be short mid-list
        hidden = set(self.state.get("hidden", {}).get(str(params["courseid"]), []))
        return [u for u in page if u["id"] not in hidden]

    def core_completion_get_activities_completion_status(self, params):
        key = f"{params['courseid']}:{params['userid']}"
        return {"statuses": self.state.get("completion", {}).get(key, []), "warnings": []}

    def core_course_get_contents(self, params):
        return self.state.get("contents", {}).get(str(params["courseid"]), [])

    def gradereport_user_get_grade_items(self, params):
        usergrades = self.state.get("grades", {}).get(str(params["courseid"]), [])
        userid = int(params.get("userid") or 0)
        if userid:
            usergrades = [g for g in usergrades if g["userid"] == userid]
        return {"usergrades": usergrades, "warnings": []}

    def mod_forum_get_forum_discussions(self, params):
        discussions = list(self.state.get("discussions", {}).get(str(params["forumid"]), []))
        sortorder = int(params.get("sortorder", -1))
        key, reverse = {SORT_LASTPOST_ASC: ("timemodified", False),
                        SORT_CREATED_DESC: ("created", True),
                        SORT_CREATED_ASC: ("created", False)}.get(sortorder, ("timemodified", True))
        discussions.sort(key=lambda d: d[key], reverse=reverse)
        # Moodle lists pinned discussions first whatever the sort order (discussion_list
        # vault: "pinned DESC, <key> <direction>"); a stable sort keeps the order within each
        discussions.sort(key=lambda d: not d.get("pinned"))
        page, perpage = int(params.get("page", -1)), int(params.get("perpage", 0))
        if page >= 0 and perpage > 0:
            discussions = discussions[page * perpage:(page + 1) * perpage]
        return {"discussions": discussions, "warnings": []}

    def core_message_send_instant_messages(self, params):
        """message/externallib.php: the site's messaging and the token user's capability
        first (exceptions, nothing sent), the parameters validated as a whole (an exception),
        then each message on its own: a result with msgid, or msgid -1 and errormessage.
        Sent messages are kept in the state's `sent` (GET /__control__/state)."""
        if not self.state.get("messaging", True):
            return moodle_error("moodle_exception", "disabled",
                                "Messaging is disabled on this site")
        if not self.state.get("can_send", True):
            return moodle_error("required_capability_exception", "nopermissions",
                                "Sorry, but you do not currently have permissions to do that "
                                "(Send a message to any user).")
        messages = nested(params, "messages")
        if not messages:
            return moodle_error("invalid_parameter_exception", "invalidparameter",
                                "Invalid parameter value detected",
                                "Missing required key in single structure: messages")
        for index, m in sorted(messages.items(), key=lambda kv: int(kv[0])):
            for key in ("touserid", "text"):
                if key not in m:
                    return moodle_error("invalid_parameter_exception", "invalidparameter",
                                        "Invalid parameter value detected",
                                        f"messages => Invalid parameter value detected "
                                        f"(Missing required key in single structure: {key})")
            if not m["touserid"].lstrip("-").isdigit() \
                    or m.get("textformat", "0") not in TEXT_FORMATS \
                    or not ALPHANUMEXT.match(m.get("clientmsgid", "")):
                return moodle_error("invalid_parameter_exception", "invalidparameter",
                                    "Invalid parameter value detected",
                                    f"messages => Invalid parameter value detected "
                                    f"(messages[{index}]: touserid, textformat or clientmsgid)")
        known = {u["id"] for users in self.state.get("users", {}).values() for u in users}
        known |= set(self.state.get("message_users", []))
        blocked = set(self.state.get("blocked", []))
        names = {u["id"]: u.get("fullname", "") for users in self.state.get("users", {}).values()
                 for u in users}
        out = []
        with self.lock:
            sent = self.state.setdefault("sent", [])
            for index, m in sorted(messages.items(), key=lambda kv: int(kv[0])):
                user = int(m["touserid"])
                result = {}
                if "clientmsgid" in m:
                    result["clientmsgid"] = m["clientmsgid"]
                if user not in known:
                    error = f"You can not send a message to a user id ({user}) that doesn't exist"
                elif len(m["text"].encode()) > MESSAGE_MAX_LENGTH:
                    error = "The message is longer than the maximum allowed."
                elif user in blocked:
                    error = (f"You can't message {names.get(user, user)} due to their message "
                             "preferences. Try adding them as a contact.")
                else:
                    error = None
                if error:
                    out.append({**result, "msgid": -1, "errormessage": error,
                                "candeletemessagesforallusers": False})
                    continue
                msgid = 1000 + len(sent) + 1
                sent.append({"msgid": msgid, "touserid": user, "text": m["text"],
                             "textformat": int(m.get("textformat", "0")),
                             "clientmsgid": m.get("clientmsgid")})
                out.append({**result, "msgid": msgid, "text": m["text"],
                            "timecreated": 1790000000, "conversationid": 500 + user,
                            "useridfrom": 2, "candeletemessagesforallusers": False})
        return out


if __name__ == "__main__":
    serve(MoodleHandler, int(sys.argv[1]))
