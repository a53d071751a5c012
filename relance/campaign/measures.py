"""The measures the warehouse computes for every learner on every course, as of a moment.

Stage and follow-up conditions are written over these names. The SQL that computes
them is `engine/sql/measures.sql` (`engine/sql/coursework.sql` for late_days and behind,
`engine/sql/risk_score.sql` for risk: computed only for campaigns that name them); this
module is the one place that names them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["percent", "days", "count", "bool", "score"]


@dataclass(frozen=True)
class Measure:
    name: str
    kind: Kind
    description: str
    example: str


MEASURES: dict[str, Measure] = {m.name: m for m in [
    Measure("progress", "percent",
            "Share of the course done, 0-100 %: the larger of the LMS's own progress figure "
            "and the weighted share of required activities completed.", '">= 75%"'),
    Measure("inactive_days", "days",
            "Whole days since the learner's last recorded activity on the course "
            "(since enrolment if there is none yet).", '">= 7"'),
    Measure("enrolled_days", "days", "Whole days since enrolment.", '">= 7"'),
    Measure("stalled_days", "days",
            "Whole days since the learner last completed something or raised their progress "
            "(since enrolment if never): 'stuck at the same step'.", '">= 14"'),
    Measure("overdue", "count",
            "Required activities that fell due since the learner enrolled, less those they have "
            "done among the activities due so far (never below 0).", '">= 2"'),
    Measure("late_days", "days",
            "Whole days since the deadline of the oldest required coursework (not exams) that "
            "fell due since the learner enrolled and is still not handed in; 0 when nothing due "
            "is missing. `>= 3`: missed a deadline by three days or more.", '">= 3"'),
    Measure("behind", "percent",
            "Weighted share of the required coursework (not exams) due since the learner "
            "enrolled that is still not handed in, 0-100 % (0 when nothing weighted is due yet).",
            '">= 40%"'),
    Measure("course_week", "count", "Week of the course as of the run (1 = first week).",
            '"<= 2"'),
    Measure("days_left", "days", "Whole days until the course ends (negative once it has).",
            '"<= 14"'),
    Measure("started", "bool", "Whether the learner has any recorded activity.", "false"),
    Measure("risk", "score",
            "Early-warning score, 0-1: the chance the learner withdraws, from their behaviour "
            "only (registration timing, hand-ins and lateness, activity and its trend), by the "
            "warehouse's latest risk model (`relance risk train`).", '">= 0.7"'),
    Measure("completed", "bool",
            "Whether the learner completed the course (LMS completion or 100 % progress).",
            "true"),
]}
