"""Each person's daily list (issue 18): whom to contact today and why, in priority order,
cut at their capacity, with what relance already sent and what the learner wrote back.

    team file -> assign (team_assignments) -> daily_list.sql (team_lists) -> text / desk

One query for every person at once (daily_list.sql); the text of a list is rendered from
a template per locale (templates/list.<locale>.txt, French and English) with Babel's dates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import duckdb
from babel.dates import format_date
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from relance import clock
from relance.team import assign
from relance.team.model import TeamFile
from warehouse import execute_script, sql_file

HERE = Path(__file__).parent
REPLY_DAYS = 14         # replies this recent are shown, and bring a learner onto a list

# what each list says of an outcome and a reason code, per locale
WORDS = {
    "fr": {"back_on_track": "reparti", "will_resume": "reprendra", "stopping": "arrête",
           "no_answer": "pas de réponse", "phone": "téléphone", "mail": "courriel",
           "video": "visio", "chat": "messagerie", "in_person": "en personne",
           "replied": "a répondu"},
    "en": {"back_on_track": "back on track", "will_resume": "will resume",
           "stopping": "stopping", "no_answer": "no answer", "phone": "phone", "mail": "mail",
           "video": "video", "chat": "chat", "in_person": "in person", "replied": "replied"},
}


def words(locale: str) -> dict[str, str]:
    return WORDS.get(locale.split("-")[0].split("_")[0], WORDS["en"])


@dataclass
class DailyList:
    email: str
    name: str
    locale: str
    today: date
    waiting: int = 0                    # learners waiting in all, before the capacity cut
    rows: list[dict] = field(default_factory=list)


def compute(con: duckdb.DuckDBPyConnection, team: TeamFile,
            as_of: datetime | None = None) -> dict[str, DailyList]:
    """Assign learners (team_assignments), then every list-holder's list as of `as_of`
    (their own day in their timezone): {person's e-mail: DailyList}, one per community
    manager and tutor with capacity, empty lists included."""
    as_of = clock.or_now(as_of)
    assign.assign(con, team, as_of)
    execute_script(con, sql_file(HERE, "daily_list", risk=_risk_sql(con)), {
        "as_of": as_of, "reply_days": REPLY_DAYS,
        "list_after_contact_days": team.list_after_contact_days})
    lists: dict[str, DailyList] = {}
    for p in team.people:
        if p.role in ("community_manager", "tutor") and p.capacity > 0:
            today = con.execute("select timezone(?, ?::timestamptz)::date",
                                [p.timezone, as_of]).fetchall()[0][0]
            lists[p.email] = DailyList(p.email, p.name, p.locale, today)
    cur = con.execute("select * from team_lists order by person_email, rank")
    names = [d[0] for d in cur.description]
    for values in cur.fetchall():
        row = dict(zip(names, values))
        daily = lists[row["person_email"]]
        daily.waiting = row["n_waiting"]
        daily.rows.append(row)
    return lists


# the learners a list may hold, as the risk score's audience (engine/risk_score.py)
_CANDIDATES = """
    select c.learner_id, c.course_id, e.enrolled_at,
           coalesce(co.starts_on, e.enrolled_at::date) as course_start
    from (select distinct learner_id, course_id from candidates) c
    join enrolments e using (learner_id, course_id)
    join courses co using (course_id)
"""


def _risk_sql(con: duckdb.DuckDBPyConnection) -> str:
    from relance.engine.risk_score import has_model, score_sql
    if has_model(con):
        return score_sql(_CANDIDATES)
    return "select null::varchar as learner_id, null::varchar as course_id, null::double as risk where false"


def _env() -> Environment:
    env = Environment(loader=FileSystemLoader(HERE / "templates"), undefined=StrictUndefined,
                      autoescape=False, trim_blocks=True, lstrip_blocks=True,
                      keep_trailing_newline=True)
    return env


def render(daily: DailyList, team: TeamFile, desk_link: str | None = None) -> tuple[str, str]:
    """(subject, text) of a person's list, in their locale (French or English), ending with
    `desk_link` (their signed sign-in link) or else the desk's address."""
    lang = "fr" if daily.locale.lower().startswith("fr") else "en"
    template = _env().get_template(f"list.{lang}.txt")

    def day(value) -> str:
        if value is None:
            return "—"
        value = value.date() if isinstance(value, datetime) else value
        return format_date(value, "d MMM", locale=lang)

    text = template.render(daily=daily, w=words(lang), day=day,
                           today=format_date(daily.today, "full", locale=lang),
                           desk_url=desk_link or team.desk_url)
    subject, _, body = text.partition("\n")
    return subject.strip(), body.lstrip("\n")
