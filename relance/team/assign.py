"""Assigning learners to the team file's people, in the warehouse (`team_assignments`).

    team file -> team_people, team_rules, team_rule_people (temp tables) -> assign.sql

One set-based pass (assign.sql) over every active enrolment; the Python here only turns
the team file into three small tables. Run by `relance team assign`, and before each daily
list, so a new learner has someone on the day they first need a call.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb

from relance import clock
from relance.team.model import TeamFile
from warehouse import execute_script, sql_file, transaction

HERE = Path(__file__).parent


def load_people(con: duckdb.DuckDBPyConnection, team: TeamFile) -> None:
    """The team file as temp tables on `con`: team_people, team_rules, team_rule_people."""
    con.execute("create or replace temp table team_people (email varchar, name varchar, "
                "role varchar, locale varchar, tz varchar, capacity integer, "
                "day_starts time, days integer[], position integer)")
    con.executemany("insert into team_people values (?, ?, ?, ?, ?, ?, ?, ?, ?)", [
        [p.email, p.name, p.role, p.locale, p.timezone, p.capacity, p.day_starts,
         [["monday", "tuesday", "wednesday", "thursday", "friday", "saturday",
           "sunday"].index(d) + 1 for d in p.days], i]
        for i, p in enumerate(team.people)])
    con.execute("create or replace temp table team_rules (rule_no integer, courses varchar[], "
                "cohorts varchar[])")
    con.execute("create or replace temp table team_rule_people (rule_no integer, email "
                "varchar, position integer)")
    rules = team.assignment.rules
    if rules:
        con.executemany("insert into team_rules values (?, ?, ?)",
                        [[i + 1, r.course, r.cohort] for i, r in enumerate(rules)])
        con.executemany("insert into team_rule_people values (?, ?, ?)",
                        [[i + 1, email, j] for i, r in enumerate(rules)
                         for j, email in enumerate(r.to)])


def assign(con: duckdb.DuckDBPyConnection, team: TeamFile,
           as_of: datetime | None = None) -> dict[str, int]:
    """Assign every active learner who needs it; returns learners per person (all of their
    active ones), and under '' those no one could take (no column, no rule)."""
    as_of = clock.or_now(as_of)
    load_people(con, team)
    execute_script(con, sql_file(HERE, "assign"),
                   {"as_of": as_of, "by_column": team.assignment.column})
    with transaction(con):
        execute_script(con, sql_file(HERE, "assign_write"), {"as_of": as_of})
    rows = con.execute(
        "select coalesce(t.kept, n.email, ''), count(*) from team_targets t "
        "left join team_new n using (learner_id, course_id) group by all").fetchall()
    return dict(rows)


def unassigned(con: duckdb.DuckDBPyConnection, team: TeamFile,
               as_of: datetime | None = None) -> list[tuple[str, str | None, int]]:
    """(course, cohort, learners) of the active learners the team file leaves to no one:
    no column names someone of the team, and no rule matches. Nothing is written."""
    as_of = clock.or_now(as_of)
    load_people(con, team)
    execute_script(con, sql_file(HERE, "assign"),
                   {"as_of": as_of, "by_column": team.assignment.column})
    return con.execute(
        "select course_id, cohort, count(*) from team_targets "
        "where by_column is null and rule_no is null group by all "
        "order by count(*) desc, course_id, cohort").fetchall()
