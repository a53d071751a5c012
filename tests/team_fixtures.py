"""A team file and a cohort whose learners fall silent, for the team and desk tests."""

from __future__ import annotations

import textwrap
import uuid
from datetime import datetime, timedelta

from tests.conftest import MONDAY

TEAM = """\
people:
  - name: Claire Martin
    email: claire@example.org
    role: community_manager
    locale: fr
    timezone: Europe/Paris
    hours: ["08:30-12:00", "14:00-17:00"]
    capacity: {claire}
  - name: Karim Benali
    email: karim@example.org
    role: tutor
    locale: en
    timezone: America/Montreal
    capacity: {karim}
  - name: Support
    email: support@example.org
    role: support
    capacity: 0
assignment:
  column: tutor_email
  rules:
    - course: c1
      to: [claire@example.org, karim@example.org]
desk_url: http://127.0.0.1/desk
"""

FOLLOW_UP = """
follow_up:
  appel:
    stage: dormant
    reason: "Silencieux depuis trois semaines : l'appeler."
  relancer:
    stage: at_risk
    reason: "Silent for a week: a word from you."
"""


def write_team(root, claire: int = 3, karim: int = 3, text: str | None = None):
    path = root / "_team.yaml"
    path.write_text(textwrap.dedent(text or TEAM.format(claire=claire, karim=karim)),
                    encoding="utf-8")
    return path


def record(con, learner_id: str, *, kind: str = "contact", outcome: str | None = "back_on_track",
           at: datetime = MONDAY, actor: str = "claire@example.org", course_id: str = "c1",
           resume_on=None, snooze_until=None, channel: str | None = "phone") -> None:
    con.execute("insert into follow_up_actions values (?, ?, ?, null, ?, ?, ?, ?, ?, ?, null, ?, ?)",
                [uuid.uuid4().hex, learner_id, course_id, actor, kind,
                 channel if kind == "contact" else None, outcome if kind == "contact" else None,
                 resume_on, snooze_until, at, at]).fetchall()


def days_before(n: float) -> datetime:
    return MONDAY - timedelta(days=n)
