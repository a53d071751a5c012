"""Peers of the network connectors' tests: a real Ralph LRS in its own virtualenv, and the
local Moodle and Canvas servers (tests/fakes/) started in their own processes.

Ralph (ralph-malph 5.1.0) pins a fastapi that prefect cannot live with, so it runs from
`.venv-ralph` at the repository root, built from `requirements-ralph.lock` the first time
(about a minute). Its file-system backend accepts one write per store (later writes
answer 500), so each server is seeded with all its statements in one POST; a second
batch of statements is a second server over a second store that holds both batches.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import textwrap
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx

from tests.server_process import free_port

REPO = Path(__file__).resolve().parent.parent
RALPH_VENV = REPO / ".venv-ralph"
RALPH_LOCK = REPO / "requirements-ralph.lock"
RALPH_USER, RALPH_PASSWORD = "relance", "lrs-password-for-tests"


def ralph_venv() -> Path:
    """The virtualenv's bin folder, built from the lock file if missing."""
    bin_dir = RALPH_VENV / "bin"
    if not (bin_dir / "uvicorn").exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(RALPH_VENV)], check=True)
        subprocess.run([str(bin_dir / "pip"), "install", "-q", "-r", str(RALPH_LOCK)], check=True)
    return bin_dir


def wait_until_up(url: str, process: subprocess.Popen, what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not answer {url} within {seconds} s")


def stop(process: subprocess.Popen) -> None:
    """Stop a server we started, by its own process group."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@dataclass
class Ralph:
    url: str
    process: subprocess.Popen

    def stop(self) -> None:
        stop(self.process)


def start_ralph(workdir: Path, statements: list[dict]) -> Ralph:
    """A Ralph LRS over a fresh file-system store holding `statements` (one write)."""
    bin_dir = ralph_venv()
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "store").mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RALPH_")}
    env.update({
        "RALPH_RUNSERVER_BACKEND": "fs",
        "RALPH_BACKENDS__LRS__FS__DEFAULT_DIRECTORY_PATH": str(workdir / "store"),
        "RALPH_AUTH_FILE": str(workdir / "auth.json"),
        "RALPH_RUNSERVER_MAX_SEARCH_HITS_COUNT": "500",
        "RALPH_APP_DIR": str(workdir / "app"),
    })
    subprocess.run([str(bin_dir / "ralph"), "auth", "-u", RALPH_USER, "-p", RALPH_PASSWORD,
                    "-s", "all", "-M", f"mailto:{RALPH_USER}@example.org", "-N", "relance",
                    "-w"], env=env, cwd=workdir, check=True, capture_output=True)
    port = free_port()
    process = subprocess.Popen(
        [str(bin_dir / "uvicorn"), "ralph.api:app", "--host", "127.0.0.1", "--port", str(port),
         "--log-level", "warning"],
        env=env, cwd=workdir, start_new_session=True,
        stdout=open(workdir / "ralph.log", "ab"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{url}/__lbheartbeat__", process, "Ralph")
        response = httpx.post(f"{url}/xAPI/statements", json=statements,
                              auth=(RALPH_USER, RALPH_PASSWORD),
                              headers={"X-Experience-API-Version": "1.0.3"}, timeout=60)
        response.raise_for_status()
    except BaseException:
        stop(process)
        raise
    return Ralph(url, process)


def two_ralphs(root: Path, week1: list[dict], week2: list[dict]):
    """An LRS a week apart, for a module fixture to yield from: a Ralph over `week1`, and
    one over `week1 + week2` (the same LRS grown: the fs store takes a single write)."""
    first = start_ralph(root / "week1", week1)
    try:
        both = start_ralph(root / "week2", week1 + week2)
    except BaseException:
        first.stop()
        raise
    try:
        yield first, both
    finally:
        first.stop()
        both.stop()


# -- xAPI statements --------------------------------------------------------------------------

ADL = "http://adlnet.gov/expapi/verbs/"
COURSE_IRI = "https://lms.example.org/course/anglais-b2"
T0 = datetime(2026, 10, 5, 8, 0, tzinfo=timezone.utc)


def statement(n: int, who: str, verb: str, *, at: datetime, obj: str | None = None,
              progress: int | None = None, course: str | None = COURSE_IRI,
              name: str = "Zoé Lefèvre", response: str | None = None,
              account: bool = False) -> dict:
    """One statement as a learning platform would send it."""
    actor = ({"objectType": "Agent", "name": name,
              "account": {"homePage": "https://lms.example.org", "name": who}}
             if account else {"objectType": "Agent", "name": name, "mbox": f"mailto:{who}"})
    object_id = obj or f"{COURSE_IRI}/activity/{n % 4 + 1}"
    s = {
        "id": str(uuid.UUID(int=n + 1)),
        "actor": actor,
        "verb": {"id": verb if verb.startswith("http") else ADL + verb,
                 "display": {"en-US": verb.rsplit("/", 1)[-1]}},
        "object": {"objectType": "Activity", "id": object_id,
                   "definition": {"name": {"en-US": f"Activity {object_id.rsplit('/', 1)[-1]}"},
                                  "type": "http://adlnet.gov/expapi/activities/lesson"}},
        "timestamp": at.isoformat(),
    }
    if course:
        s["context"] = {"contextActivities": {"parent": [
            {"objectType": "Activity", "id": course,
             "definition": {"name": {"en-US": "Anglais B2"},
                            "type": "http://adlnet.gov/expapi/activities/course"}}]}}
    if progress is not None:
        s["result"] = {"extensions": {"https://w3id.org/xapi/cmi5/result/extensions/progress": progress}}
    if response is not None:
        s.setdefault("result", {})["response"] = response
    return s


def first_batch() -> list[dict]:
    """Three learners' first weeks: 12 statements, and 2 the connector cannot load."""
    learners = ["zoe@example.org", "marc@example.org", "ines@example.org"]
    out = []
    for i, who in enumerate(learners):
        base = T0 + timedelta(hours=i)
        out.append(statement(10 * i + 0, who, "registered", at=base, obj=COURSE_IRI))
        out.append(statement(10 * i + 1, who, "experienced", at=base + timedelta(days=1)))
        out.append(statement(10 * i + 2, who, "completed", at=base + timedelta(days=2),
                             obj=f"{COURSE_IRI}/activity/1"))
        out.append(statement(10 * i + 3, who, "progressed", at=base + timedelta(days=2, minutes=1),
                             obj=COURSE_IRI, progress=25 * (i + 1)))
    out.append(statement(40, "zoe@example.org", "commented", at=T0 + timedelta(days=3),
                         obj=f"{COURSE_IRI}/forum/1", response="Voici ma présentation"))
    # no mapping for this verb: quarantined, with the verb named
    out.append(statement(41, "marc@example.org", "http://adlnet.gov/expapi/verbs/interacted",
                         at=T0 + timedelta(days=3, hours=1)))
    # no course in its context and no configured course matches: quarantined
    out.append(statement(42, "ines@example.org", "experienced", at=T0 + timedelta(days=3, hours=2),
                         obj="https://elsewhere.example.org/video/9", course=None))
    return out


def second_batch() -> list[dict]:
    """What happens the week after: a completion of the course, a new learner."""
    at = T0 + timedelta(days=8)
    return [
        statement(50, "zoe@example.org", "completed", at=at, obj=COURSE_IRI),
        statement(51, "L-0099", "registered", at=at + timedelta(hours=1), obj=COURSE_IRI,
                  account=True, name="Paul Martin"),
        statement(52, "L-0099", "experienced", at=at + timedelta(hours=2), account=True,
                  name="Paul Martin"),
    ]


# -- the Moodle and Canvas stand-ins ----------------------------------------------------------

@dataclass
class FakeServer:
    url: str
    process: subprocess.Popen

    def set(self, state: dict) -> None:
        httpx.put(f"{self.url}/__control__/state", json=state, timeout=5).raise_for_status()

    def calls(self, name: str | None = None) -> list[dict]:
        calls = httpx.get(f"{self.url}/__control__/calls", timeout=5).json()
        return [c for c in calls if name is None or c["call"] == name]

    def stop(self) -> None:
        stop(self.process)


def start_fake(module: str) -> FakeServer:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen([sys.executable, "-m", module, str(port)], cwd=REPO, env=env,
                               start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{url}/__control__/calls", process, module, seconds=20)
    except BaseException:
        stop(process)
        raise
    return FakeServer(url, process)


def unix(moment: datetime) -> int:
    return int(moment.timestamp())


MOODLE_TOKEN = "moodle-token-for-tests-0123456789abcdef"
M0 = datetime(2026, 9, 7, 7, 0, tzinfo=timezone.utc)      # the course starts


def moodle_user(uid: int, username: str, *, role: str = "student", last: datetime | None = None,
                email: str | None = None, first: str = "Zoé", lastname: str = "Lefèvre",
                lang: str = "fr", tz: str = "99") -> dict:
    """A user as core_enrol_get_enrolled_users returns one."""
    return {
        "id": uid, "username": username, "firstname": first, "lastname": lastname,
        "fullname": f"{first} {lastname}", "email": email or f"{username}@example.org",
        "department": "", "idnumber": f"EMP{uid:04d}", "firstaccess": unix(M0) if last else 0,
        "lastaccess": unix(last) if last else 0, "lastcourseaccess": unix(last) if last else 0,
        "description": "", "descriptionformat": 1, "city": "Lyon", "country": "FR",
        "lang": lang, "timezone": tz,
        "profileimageurlsmall": "https://moodle.example.org/theme/image.php/f2", "profileimageurl":
        "https://moodle.example.org/theme/image.php/f1",
        "groups": [], "roles": [{"roleid": 5 if role == "student" else 3, "name": "",
                                 "shortname": role, "sortorder": 0}],
        "enrolledcourses": [],
    }


def moodle_module(cmid: int, name: str, modname: str, *, instance: int | None = None,
                  completion: int = 2, dates: list[tuple[str, str, datetime]] = ()) -> dict:
    """A module as core_course_get_contents lists one (Moodle 4.x)."""
    return {
        "id": cmid, "url": f"https://moodle.example.org/mod/{modname}/view.php?id={cmid}",
        "name": name, "instance": instance or cmid * 10, "contextid": 1000 + cmid,
        "visible": 1, "uservisible": True, "visibleoncoursepage": 1, "modicon": "",
        "modname": modname, "modplural": modname + "s", "availability": None, "indent": 0,
        "onclick": "", "afterlink": None, "customdata": "{}", "noviewlink": False,
        "completion": completion,
        "dates": [{"label": label, "timestamp": unix(at), "dataid": dataid}
                  for label, dataid, at in dates],
    }


def moodle_site() -> dict:
    """A Moodle site with two courses; every shape as the web services return them."""
    w = timedelta(weeks=1)
    courses = [
        {"id": 1, "shortname": "site", "fullname": "Moodle", "displayname": "Moodle",
         "categoryid": 0, "format": "site", "startdate": 0, "enddate": 0},
        {"id": 12, "shortname": "ANG-B2", "fullname": "Anglais B2", "displayname": "Anglais B2",
         "categoryid": 2, "idnumber": "", "format": "weeks", "startdate": unix(M0),
         "enddate": unix(M0 + 20 * w), "visible": 1, "enablecompletion": 1},
        {"id": 15, "shortname": "CLIM", "fullname": "Climat : les bases", "displayname":
         "Climat : les bases", "categoryid": 2, "idnumber": "", "format": "topics",
         "startdate": unix(M0 + w), "enddate": 0, "visible": 1, "enablecompletion": 1},
    ]
    users = {
        "12": [moodle_user(2, "prof", role="editingteacher", last=M0 + w, first="Julie"),
               moodle_user(31, "zoe", last=M0 + 2 * w, tz="Europe/Paris"),
               moodle_user(32, "marc", first="Marc", lastname="Durand", lang="en"),
               moodle_user(33, "ines", last=M0 + w + timedelta(days=2), first="Inès",
                           lastname="Benali")],
        "15": [moodle_user(31, "zoe", last=M0 + w + timedelta(days=1), tz="Europe/Paris"),
               moodle_user(34, "paul", last=M0 + w + timedelta(days=3), email="paul@@example",
                           first="Paul", lastname="Martin")],
    }
    contents = {
        "12": [
            {"id": 120, "name": "Général", "visible": 1, "summary": "", "summaryformat": 1,
             "section": 0, "hiddenbynumsections": 0, "uservisible": True,
             "modules": [moodle_module(100, "Forum de la promo", "forum", instance=7,
                                       completion=0)]},
            {"id": 121, "name": "Semaine 1", "visible": 1, "summary": "", "summaryformat": 1,
             "section": 1, "hiddenbynumsections": 0, "uservisible": True,
             "modules": [
                 moodle_module(101, "Présentez-vous", "assign", dates=[
                     ("Opened:", "allowsubmissionsfromdate", M0),
                     ("Due:", "duedate", M0 + w)]),
                 moodle_module(102, "Quiz 1", "quiz", dates=[("Closes:", "timeclose", M0 + w)]),
                 moodle_module(103, "Bienvenue", "label", completion=0)]},
            {"id": 122, "name": "Semaine 2", "visible": 1, "summary": "", "summaryformat": 1,
             "section": 2, "hiddenbynumsections": 0, "uservisible": True,
             "modules": [moodle_module(104, "Lecture", "page", completion=1)]},
        ],
        "15": [
            {"id": 150, "name": "Thème 1", "visible": 1, "summary": "", "summaryformat": 1,
             "section": 1, "hiddenbynumsections": 0, "uservisible": True,
             "modules": [moodle_module(151, "Vidéo d'introduction", "page", completion=2)]},
        ],
    }

    def status(cmid, state, at, modname="assign"):
        return {"cmid": cmid, "modname": modname, "instance": cmid * 10, "state": state,
                "timecompleted": unix(at) if at else 0, "tracking": 2, "overrideby": None,
                "valueused": False, "hascompletion": True, "isautomatic": True,
                "istrackeduser": True, "uservisible": True, "details": []}
    completion = {
        "12:31": [status(101, 1, M0 + 3 * timedelta(days=1)), status(102, 2, M0 + 4 * timedelta(days=1), "quiz"),
                  status(104, 0, None, "page")],
        "12:32": [status(101, 0, None), status(102, 0, None, "quiz")],
        "12:33": [status(101, 1, M0 + w + timedelta(days=2)), status(102, 3, M0 + w + timedelta(days=2), "quiz")],
        "15:31": [status(151, 1, M0 + w + timedelta(days=1), "page")],
        "15:34": [status(151, 0, None, "page")],
    }

    def grade_item(iid, cmid, submitted):
        return {"id": iid, "itemname": f"Item {cmid}", "itemtype": "mod", "itemmodule": "assign",
                "iteminstance": cmid * 10, "itemnumber": 0, "idnumber": "", "categoryid": 1,
                "outcomeid": None, "scaleid": None, "locked": False, "cmid": cmid,
                "graderaw": 15.0 if submitted else None, "gradedatesubmitted":
                unix(submitted) if submitted else None, "gradedategraded": None,
                "gradehiddenbydate": False, "gradeneedsupdate": False, "gradeishidden": False,
                "gradeislocked": None, "gradeisoverridden": None, "gradeformatted": "15,00",
                "grademin": 0, "grademax": 20, "rangeformatted": "0–20",
                "percentageformatted": "75,00 %", "feedback": "", "feedbackformat": 0}
    grades = {"12": [
        {"courseid": 12, "userid": 31, "userfullname": "Zoé Lefèvre", "useridnumber": "",
         "maxdepth": 2, "gradeitems": [grade_item(501, 101, M0 + 2 * timedelta(days=1))]},
        {"courseid": 12, "userid": 33, "userfullname": "Inès Benali", "useridnumber": "",
         "maxdepth": 2, "gradeitems": [grade_item(501, 101, None)]},
    ]}

    def discussion(did, userid, subject, created, modified=None, replies=0):
        return {"id": did * 10, "name": subject, "groupid": -1, "timemodified": unix(modified or created),
                "usermodified": userid, "timestart": 0, "timeend": 0, "discussion": did,
                "parent": 0, "userid": userid, "created": unix(created),
                "modified": unix(modified or created), "mailed": 1, "subject": subject,
                "message": "<p>…</p>", "messageformat": 1, "messagetrust": 0,
                "attachment": False, "totalscore": 0, "mailnow": 0, "userfullname": "",
                "usermodifiedfullname": "", "userpictureurl": "", "usermodifiedpictureurl": "",
                "numreplies": replies, "numunread": 0, "pinned": False, "locked": False,
                "starred": False, "canreply": True, "canlock": False, "canfavourite": True}
    discussions = {"7": [
        discussion(70, 2, "Bienvenue à tous", M0),                          # the teacher's
        discussion(71, 31, "Je me présente", M0 + timedelta(days=2), replies=2),
        discussion(72, 999, "Question", M0 + timedelta(days=5)),            # not on the course
    ]}
    return {"token": MOODLE_TOKEN, "courses": courses, "users": users, "contents": contents,
            "completion": completion, "grades": grades, "discussions": discussions,
            "failures": []}


CANVAS_TOKEN = "canvas-token-for-tests-9876543210"
C0 = datetime(2026, 9, 14, 7, 0, tzinfo=timezone.utc)      # the Canvas course starts


def iso(moment: datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def canvas_user(uid: int, login: str, first: str, last: str, *, email: str | None = None) -> dict:
    """A user as GET /courses/:id/users?include[]=email&include[]=locale returns one."""
    return {"id": uid, "name": f"{first} {last}", "created_at": iso(C0 - timedelta(days=30)),
            "sortable_name": f"{last}, {first}", "short_name": first,
            "sis_user_id": f"SIS{uid}", "integration_id": None, "login_id": login,
            "email": email or f"{login}@example.edu", "locale": "fr"}


def canvas_enrollment(eid: int, course: int, user: dict, *, last: datetime | None,
                      state: str = "active") -> dict:
    """A student enrollment as GET /courses/:id/enrollments returns one."""
    return {"id": eid, "user_id": user["id"], "course_id": course, "type": "StudentEnrollment",
            "created_at": iso(C0 - timedelta(days=3)), "updated_at": iso(C0 - timedelta(days=3)),
            "associated_user_id": None, "start_at": None, "end_at": None,
            "course_section_id": 70 + course % 10, "root_account_id": 1,
            "limit_privileges_to_course_section": False, "enrollment_state": state,
            "role": "StudentEnrollment", "role_id": 3, "last_activity_at": iso(last),
            "last_attended_at": None, "total_activity_time": 3600 if last else 0,
            "html_url": f"https://canvas.example.edu/courses/{course}/users/{user['id']}",
            "grades": {"html_url": "", "current_score": None, "final_score": 0.0,
                       "current_grade": None, "final_grade": None},
            "user": {k: user[k] for k in ("id", "name", "created_at", "sortable_name",
                                          "short_name", "sis_user_id", "integration_id",
                                          "login_id")}}


def canvas_item(iid: int, module: int, position: int, title: str, kind: str, *,
                requirement: str | None = "must_view", due: datetime | None = None,
                unlock: datetime | None = None) -> dict:
    """A module item as GET /courses/:id/modules?include[]=items&include[]=content_details
    returns one."""
    item = {"id": iid, "module_id": module, "position": position, "title": title, "indent": 0,
            "quiz_lti": False, "type": kind, "content_id": iid * 10,
            "html_url": f"https://canvas.example.edu/courses/4021/modules/items/{iid}",
            "url": f"https://canvas.example.edu/api/v1/courses/4021/assignments/{iid * 10}",
            "published": True,
            "content_details": {"points_possible": 10, "due_at": iso(due),
                                "unlock_at": iso(unlock), "lock_at": None}}
    if requirement:
        item["completion_requirement"] = {"type": requirement}
    return item


def canvas_summary(uid: int, page_views: int, participations: int, *, missing: int = 0) -> dict:
    """A student summary as GET /courses/:id/analytics/student_summaries returns one."""
    return {"id": uid, "page_views": page_views, "max_page_views": 120,
            "page_views_level": 2 if page_views > 20 else 1,
            "participations": participations, "max_participations": 12,
            "participations_level": 2 if participations > 2 else 1,
            "tardiness_breakdown": {"total": 3, "on_time": 3 - missing, "late": 0,
                                    "missing": missing, "floating": 0}}


def canvas_site() -> dict:
    w = timedelta(weeks=1)
    zoe = canvas_user(501, "zoe", "Zoé", "Lefèvre")
    marc = canvas_user(502, "marc", "Marc", "Durand")
    ines = canvas_user(503, "ines", "Inès", "Benali")
    paul = canvas_user(504, "paul", "Paul", "Martin", email="paul@@example")
    courses = {
        "4021": {"id": 4021, "name": "Anglais B2", "account_id": 1, "uuid": "x",
                 "start_at": iso(C0), "end_at": iso(C0 + 20 * w), "course_code": "ANG-B2",
                 "sis_course_id": "ANG-B2-2026", "workflow_state": "available",
                 "default_view": "modules", "enrollment_term_id": 1, "time_zone": "Europe/Paris"},
        "4022": {"id": 4022, "name": "Climat : les bases", "account_id": 1, "uuid": "y",
                 "start_at": iso(C0 + w), "end_at": None, "course_code": "CLIM",
                 "sis_course_id": None, "workflow_state": "available",
                 "default_view": "modules", "enrollment_term_id": 1, "time_zone": "Europe/Paris"},
    }
    enrollments = {
        "4021": [canvas_enrollment(1, 4021, zoe, last=C0 + 2 * w),
                 canvas_enrollment(2, 4021, marc, last=None),
                 canvas_enrollment(3, 4021, ines, last=C0 + w, state="completed"),
                 canvas_enrollment(4, 4021, paul, last=C0 + w)],
        "4022": [canvas_enrollment(5, 4022, zoe, last=C0 + w + timedelta(days=1))],
    }
    users = {"4021": [zoe, marc, ines, paul], "4022": [zoe]}
    modules = {
        "4021": [
            {"id": 801, "workflow_state": "active", "position": 1, "name": "Semaine 1",
             "unlock_at": None, "require_sequential_progress": False, "requirement_type": "all",
             "publish_final_grade": False, "prerequisite_module_ids": [], "items_count": 3,
             "items_url": "https://canvas.example.edu/api/v1/courses/4021/modules/801/items",
             "items": [canvas_item(9001, 801, 1, "Semaine 1", "SubHeader", requirement=None),
                       canvas_item(9002, 801, 2, "Présentez-vous", "Assignment",
                                   requirement="must_submit", due=C0 + w, unlock=C0),
                       canvas_item(9003, 801, 3, "Lecture", "Page")]},
            {"id": 802, "workflow_state": "active", "position": 2, "name": "Semaine 2",
             "unlock_at": None, "require_sequential_progress": False, "requirement_type": "all",
             "publish_final_grade": False, "prerequisite_module_ids": [801], "items_count": 1,
             "items_url": "https://canvas.example.edu/api/v1/courses/4021/modules/802/items",
             "items": [canvas_item(9004, 802, 1, "Quiz 2", "Quiz", requirement="min_score",
                                   due=C0 + 2 * w)]},
        ],
        "4022": [
            {"id": 811, "workflow_state": "active", "position": 1, "name": "Thème 1",
             "unlock_at": None, "require_sequential_progress": False, "requirement_type": "all",
             "publish_final_grade": False, "prerequisite_module_ids": [], "items_count": 1,
             "items_url": "", "items": [canvas_item(9101, 811, 1, "Vidéo", "ExternalUrl")]},
        ],
    }
    completed = {"4021:501": [9002, 9003], "4021:503": [9002, 9003, 9004], "4022:501": [9101]}

    def view(uid, n, course, at):
        return {"id": f"a1b2c3d4-0000-4000-8000-{uid:06d}{n:06d}", "app_name": None,
                "url": f"https://canvas.example.edu/courses/{course}/modules",
                "context_type": "Course", "asset_type": None, "controller": "context_modules",
                "action": "index", "interaction_seconds": 12.5, "created_at": iso(at),
                "updated_at": iso(at), "user_request": True, "render_time": 0.2,
                "user_agent": "Mozilla/5.0", "participated": False, "http_method": "get",
                "remote_ip": "192.0.2.1",
                "links": {"user": uid, "context": course, "asset": None, "real_user": None,
                          "account": 1}}
    page_views = {
        "501": [view(501, 1, 4021, C0 + timedelta(days=1)), view(501, 2, 4021, C0 + 2 * w),
                view(501, 3, 4022, C0 + w + timedelta(days=1))],
        "503": [view(503, 1, 4021, C0 + w)],
        "504": [view(504, 1, 4021, C0 + w)],
    }
    topics = {"4021": [
        {"id": 61, "title": "Présentations", "message": "<p>…</p>",
         "html_url": "https://canvas.example.edu/courses/4021/discussion_topics/61",
         "posted_at": iso(C0), "last_reply_at": iso(C0 + timedelta(days=3)),
         "require_initial_post": False, "discussion_subentry_count": 2, "read_state": "read",
         "unread_count": 0, "subscribed": False, "published": True, "locked": False,
         "pinned": False, "user_name": "Julie Prof", "discussion_type": "threaded",
         "author": {"id": 9, "display_name": "Julie Prof"}}]}

    def entry(eid, uid, at, replies=0):
        return {"id": eid, "user_id": uid, "editor_id": None, "user_name": "", "message": "<p>Hi</p>",
                "read_state": "read", "forced_read_state": False, "created_at": iso(at),
                "updated_at": iso(at), "attachment": None, "parent_id": None,
                "rating_count": None, "rating_sum": None,
                "recent_replies": [{"id": eid * 10 + i, "user_id": 9} for i in range(replies)],
                "has_more_replies": False}
    entries = {"4021:61": [entry(701, 501, C0 + timedelta(days=1), replies=1),
                           entry(702, 9, C0 + timedelta(days=2))]}          # the teacher's
    summaries = {"4021": [canvas_summary(501, 40, 3), canvas_summary(502, 0, 0, missing=1),
                          canvas_summary(503, 25, 2), canvas_summary(504, 5, 0, missing=1)],
                 "4022": [canvas_summary(501, 8, 1)]}
    return {"token": CANVAS_TOKEN, "courses": courses, "enrollments": enrollments,
            "users": users, "modules": modules, "completed": completed,
            "page_views": page_views, "topics": topics, "entries": entries,
            "summaries": summaries, "failures": []}


def _source(tmp_path: Path, name: str, settings: str, extra: str = ""):
    """Source `name` from a sources file written in `tmp_path`: its `settings`, then
    `extra` (more settings, as YAML lines of the source)."""
    from connectors import open_source
    path = tmp_path / "sources.yaml"
    path.write_text(f"sources:\n  {name}:\n"
                    + textwrap.indent(textwrap.dedent(settings) + textwrap.dedent(extra), "    "),
                    encoding="utf-8")
    return open_source(name, path)


def lrs_source(tmp_path: Path, url: str, extra: str = "", page_size: int = 4):
    """The xAPI source `lrs` on a Ralph LRS."""
    return _source(tmp_path, "lrs", f"""\
        kind: xapi
        url: {url}
        username: {{env: LRS_USER}}
        password: {{env: LRS_PASSWORD}}
        page_size: {page_size}                 # 15 statements: four pages, three `more` links
        cursor_field: timestamp      # Ralph's fs backend compares `since` to timestamps
        filter_on_server: false      # ... and answers nothing to verb filters
        courses:
          - {{id: anglais-b2, iri: "{COURSE_IRI}", title: Anglais B2 (entreprise)}}
        """, extra)


def moodle_source(tmp_path: Path, url: str, extra: str = ""):
    """The Moodle source `moodle-prod` on the fake Moodle."""
    return _source(tmp_path, "moodle-prod", f"""\
        kind: moodle
        url: {url}
        token: {{env: MOODLE_TOKEN}}
        page_size: 2                # enrolled users come in pages of two
        retry: {{attempts: 3, base_delay: 0.01, max_delay: 0.05, timeout: 1}}
        """, extra)


def canvas_source(tmp_path: Path, url: str, extra: str = "", courses: str = "[4021, 4022]"):
    """The Canvas source `canvas` on the fake Canvas."""
    return _source(tmp_path, "canvas", f"""\
        kind: canvas
        url: {url}
        token: {{env: CANVAS_TOKEN}}
        courses: {courses}
        learner_id: login_id
        retry: {{attempts: 3, base_delay: 0.01, max_delay: 0.05, timeout: 1}}
        """, extra)
