"""Shared fixtures: a fresh warehouse, a cohort builder, and campaign files written the way
a designer writes them (YAML plus one template file per field and locale)."""

from __future__ import annotations

import os
import sys
import textwrap
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

import warehouse  # noqa: E402
from hypothesis import settings as hypothesis_settings  # noqa: E402
from relance.campaign.loader import load  # noqa: E402

# Property-based tests search the same inputs on every machine and keep no example database
# beside the code: a verdict must not depend on the run (or the day), and what one search
# found becomes an @example in the test, not a file in .hypothesis/.
hypothesis_settings.register_profile("relance", derandomize=True, database=None,
                                     print_blob=True)
hypothesis_settings.load_profile("relance")

REPO = Path(__file__).resolve().parent.parent
OULAD = REPO.parent / "shared" / "data" / "oulad-2013"

# A Monday, 09:00 in Paris (08:00 UTC): the default "now" of these tests.
MONDAY = datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc)


from tests.pg_fixtures import postgres_server  # noqa: E402,F401  (a fixture)


def pytest_addoption(parser):
    # `--warehouse=shared`: the tests on the `wh` fixture run on the shared warehouse (a
    # database of their own in a real PostgreSQL), as `make test` runs a subset of them
    parser.addoption("--warehouse", choices=("embedded", "shared"), default="embedded",
                     help="the backend of the `wh` fixture's warehouse")


@pytest.fixture
def wh(request):
    if request.config.getoption("--warehouse") == "shared":
        server = request.getfixturevalue("postgres_server")
        con = warehouse.connect(server.fresh_database())
    else:
        con = warehouse.connect(":memory:")
    yield con
    con.close()


@pytest.fixture
def wh_location(request, tmp_path) -> str:
    """Where a test's commands and child processes find their warehouse: a file of its
    own, or under `--warehouse=shared` a database of its own in the real PostgreSQL."""
    if request.config.getoption("--warehouse") == "shared":
        return request.getfixturevalue("postgres_server").fresh_database()
    return str(tmp_path / "relance.duckdb")


class _SharedInMemory:
    """The `warehouse` module as tests/roi_fixtures.py sees it under --warehouse=shared: its
    in-memory warehouse is a fresh shared database instead (the KPI views and the report's
    data read from PostgreSQL); anything else is the module's."""

    def __init__(self, server):
        self._server = server

    def connect(self, path=":memory:", **options):
        if str(path) == ":memory:":
            path = self._server.fresh_database()
        return warehouse.connect(path, **options)

    def __getattr__(self, name):
        return getattr(warehouse, name)


@pytest.fixture(autouse=True)
def _roi_fixtures_on_the_chosen_warehouse(request, monkeypatch):
    roi_fixtures = sys.modules.get("tests.roi_fixtures")
    if roi_fixtures is not None and request.config.getoption("--warehouse") == "shared":
        monkeypatch.setattr(roi_fixtures, "warehouse",
                            _SharedInMemory(request.getfixturevalue("postgres_server")))


@dataclass
class Cohort:
    """Builds learners on one course with the measures a test needs, as raw events."""

    con: object
    course_id: str = "c1"
    starts_on: datetime = MONDAY - timedelta(weeks=6)
    n: int = 0
    activities: list[str] = field(default_factory=list)

    def __post_init__(self):
        self.con.execute(
            "insert into courses values (?, 'Anglais B2 — démo', 'https://lms.example/c1', "
            "'https://lms.example/f1', ?, ?, 'test', now())",
            [self.course_id, self.starts_on.date(), (self.starts_on + timedelta(weeks=20)).date()]
        ).fetchall()
        # four required activities of equal weight: each is 25 % of the course
        for week in range(1, 5):
            self.add_activity(f"a{week}", week=week, due=self.starts_on + timedelta(weeks=week))

    def add_activity(self, activity_id: str, *, week: int, due: datetime | None = None,
                     weight: float = 1.0) -> None:
        self.con.execute(
            "insert into activities values (?, ?, ?, 'quiz', ?, null, ?, ?, true, null, 'test', now())",
            [self.course_id, activity_id, f"Activité {activity_id}", week, due, weight]).fetchall()
        self.activities.append(activity_id)

    def learner(self, *, inactive_days: float | None = 1, done: int = 0, tz: str = "Europe/Paris",
                locale: str = "fr", enrolled_days: float = 40, email: str | None = None,
                completed: bool = False, as_of: datetime = MONDAY, learner_id: str | None = None,
                first_name: str = "Zoé", last_name: str = "Lefèvre") -> str:
        self.n += 1
        lid = learner_id or f"L{self.n:05d}"
        self.con.execute(
            "insert into learners values (?, ?, ?, ?, ?, ?, null, 'test', now())",
            [lid, email if email is not None else f"{lid.lower()}@example.org", first_name,
             last_name, locale, tz]).fetchall()
        self.con.execute(
            "insert into enrolments values (?, ?, 'co', ?, ?, ?, null, 'test', now())",
            [lid, self.course_id, as_of - timedelta(days=enrolled_days),
             "completed" if completed else "enrolled",
             as_of - timedelta(days=2) if completed else None]).fetchall()
        if inactive_days is not None:
            last = as_of - timedelta(days=inactive_days)
            for i, activity in enumerate(self.activities[:done]):
                self.event(lid, activity, "completed", last - timedelta(hours=len(self.activities) - i))
            self.event(lid, None, "accessed", last)
        return lid

    def event(self, learner_id: str, activity_id: str | None, verb: str, at: datetime) -> None:
        self.con.execute(
            "insert into progress_events values (?, ?, ?, ?, ?, ?, null, 'test', now())",
            [f"e-{learner_id}-{activity_id}-{verb}-{at.isoformat()}", learner_id, self.course_id,
             activity_id, verb, at]).fetchall()


@pytest.fixture
def cohort(wh):
    return Cohort(wh)


SUBJECTS = {"fr": "Bonjour {{ learner.first_name }} — {{ stage }}",
            "en": "Hello {{ learner.first_name }} — {{ stage }}"}
BODIES = {"fr": "Vous en êtes à {{ progress.percent | percent }} de « {{ course.title }} ».",
          "en": "You are at {{ progress.percent | percent }} of “{{ course.title }}”."}

BASE_CAMPAIGN = """\
id: {id}
description: A test campaign.
audience:
  course: c1
sender: {{name: "Julie, équipe formation", email: formation@example.org}}
control_group: 0%
stages:
  completed: {{completed: true}}
  dormant: {{inactive_days: ">= 21"}}
  at_risk: {{inactive_days: ">= 7"}}
  active: {{}}
messages:
  bravo:
    on_milestone: [25%, 50%, 75%]
  relance:
    on_enter: at_risk
  remobilisation:
    on_enter: dormant
  recap:
    every: monday 08:30
    to: [active, at_risk]
limits:
  per_learner_per_week: 2
"""


@dataclass
class CampaignFolder:
    root: Path

    def write(self, text: str, *, name: str | None = None, templates: bool = True,
              template_overrides: dict | None = None) -> Path:
        """Write a campaign file (and, by default, templates for each of its messages)."""
        import yaml
        text = textwrap.dedent(text)
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError:      # a test of a broken file: write it as it is
            data = {}
        cid = name or data.get("id", "test")
        path = self.root / f"{cid}.yaml"
        path.write_text(text, encoding="utf-8")
        if templates and isinstance(data.get("messages"), dict):
            for key in data["messages"]:
                for locale in data.get("locales", ["fr", "en"]):
                    folder = self.root / cid / key / locale
                    folder.mkdir(parents=True, exist_ok=True)
                    (folder / "subject.txt").write_text(SUBJECTS[locale[:2]], encoding="utf-8")
                    (folder / "body.txt").write_text(BODIES[locale[:2]], encoding="utf-8")
                    (folder / "body.html").write_text(
                        "<p>{{ learner.first_name }}, {{ progress.percent | percent }}</p>",
                        encoding="utf-8")
        for rel, content in (template_overrides or {}).items():
            target = self.root / cid / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content, encoding="utf-8")
        return path

    def base(self, cid: str = "test", **replace: str) -> str:
        text = BASE_CAMPAIGN.format(id=cid)
        for old, new in replace.items():
            assert old in text, old
            text = text.replace(old, new)
        return text

    def load(self, cid: str = "test"):
        return load(self.root / f"{cid}.yaml", campaigns_dir=self.root)


@pytest.fixture
def campaigns(tmp_path) -> CampaignFolder:
    root = tmp_path / "campaigns"
    root.mkdir()
    return CampaignFolder(root)
