"""A cohort's weekly announcement to the team's Slack or Teams channel (`team.announcement`):
written by the learning designer like a message, rendered in the same sandbox with the
run's numbers and each course's calendar for the coming week (announcement.sql, one
query), posted by relance/team/notify.py before the summary and the follow-up list.

    campaigns/<id>/<announcement>/<team locale>/subject.txt   the post's title
    campaigns/<id>/<announcement>/<team locale>/body.txt      the post's text

The designer's text is the post's markup (Slack mrkdwn, or the Markdown Teams renders);
every `{{ value }}` is escaped for it as it is rendered, so no course or activity title can
turn into a link, a mention or broken markup.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
from jinja2 import TemplateNotFound, TemplateSyntaxError

from relance.delivery.rendering import _template_line, check_template, environment, template_name
from warehouse import sql_file

if TYPE_CHECKING:
    from relance.campaign.loader import LoadedCampaign, Problem

HERE = Path(__file__).parent
FIELDS = ("subject.txt", "body.txt")


class AnnouncementError(Exception):
    """The announcement could not be rendered; says which file and line."""


def slack_escape(value: Any) -> str:
    # Slack reads only these three as markup in text: `<` opens a link or a mention
    # (<!channel> pings everyone), `&` an entity
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _as_text(value: Any) -> str:
    # Teams: the JSON encoder escapes the payload; the value is shown as it is
    return str(value)


FINALIZE = {"slack": slack_escape, "teams": _as_text}


def locale_of(campaign) -> str:
    return campaign.team.locale or campaign.locale


# -- the context ---------------------------------------------------------------------------------

def context(con: duckdb.DuckDBPyConnection, loaded: "LoadedCampaign", run_id: str) -> dict:
    """What the announcement's templates get for run `run_id` (see docs/delivery.md)."""
    campaign = loaded.campaign
    row = con.sql(sql_file(HERE, "announcement"),
                  params={"run_id": run_id, "timezone": campaign.timezone}
                  ).to_arrow_table().to_pylist()[0]
    counted = {item["stage"]: item["learners"] for item in row["stages"]}
    # every stage of the campaign, in its order, zero included; a stage renamed since the
    # run keeps its count at the end
    stages = {name: counted.pop(name, 0) for name in campaign.stages} | counted
    return _context(loaded, row["as_of"], row["week"], {
        "learners": row["learners"], "control_group": row["control_group"],
        "stages": stages, "follow_ups": row["follow_ups"],
        "active_last_week": row["active_last_week"],
        "completed_activities_last_week": row["completed_activities_last_week"],
    }, {k: row[k] for k in ("sent", "failed", "deferred", "suppressed")}, row["courses"])


def _context(loaded: "LoadedCampaign", as_of: datetime, week: str, cohort: dict,
             messages: dict, courses: list[dict]) -> dict:
    campaign = loaded.campaign
    return {
        "campaign": {"id": campaign.id, "description": campaign.description},
        "channel": {"format": campaign.team.format, "locale": locale_of(campaign),
                    "timezone": campaign.timezone},
        "as_of": as_of,
        "week": week,
        "cohort": cohort,
        "messages": messages,
        "courses": courses,
        # the one course of most campaigns; the first (by id) of several
        "course": courses[0] if courses else None,
        "locale": locale_of(campaign),
    }


def sample_context(loaded: "LoadedCampaign") -> dict:
    """Every variable with made-up values, to check the templates before any run."""
    campaign = loaded.campaign
    now = datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc)
    course = {"id": "course-1", "title": "Anglais professionnel B2",
              "url": "https://lms.example.org/c/1", "forum_url": "https://lms.example.org/f/1",
              "starts_on": date(2026, 9, 7), "ends_on": date(2027, 1, 25), "week": 12,
              "weeks": 20, "learners": 120,
              "this_week": [{"id": "unit-12-quiz", "title": "Unit 12 quiz", "kind": "quiz",
                             "week": 12, "due_at": now + timedelta(days=4),
                             "url": "https://lms.example.org/a/12"}]}
    stages = {name: 10 * (i + 1) for i, name in enumerate(campaign.stages)}
    return _context(loaded, now, "2026-W48", {
        "learners": sum(stages.values()), "control_group": 12, "stages": stages,
        "follow_ups": 4, "active_last_week": 80, "completed_activities_last_week": 210,
    }, {"sent": 95, "failed": 0, "deferred": 3, "suppressed": 7}, [course])


# -- rendering -----------------------------------------------------------------------------------

def _shown(loaded: "LoadedCampaign", name: str) -> str:
    from relance.campaign.loader import _display
    return _display(loaded.campaigns_dir / name)


def render(loaded: "LoadedCampaign", ctx: dict) -> tuple[str, list[str]]:
    """(title, lines) of the announcement in the team's format; AnnouncementError names the
    template file and line that failed."""
    campaign = loaded.campaign
    env = environment(loaded.campaigns_dir, finalize=FINALIZE[campaign.team.format])
    out = []
    for fld in FIELDS:
        name = template_name(campaign.id, campaign.team.announcement, locale_of(campaign), fld)
        try:
            out.append(env.get_template(name).render(ctx))
        except TemplateNotFound:
            raise AnnouncementError(f"{_shown(loaded, name)}: the announcement's template is "
                                    "missing: create it") from None
        except TemplateSyntaxError as exc:
            raise AnnouncementError(f"{_shown(loaded, name)}:{exc.lineno}: template syntax: "
                                    f"{exc.message}") from None
        except Exception as exc:  # an undefined value, a filter given a wrong value ...
            line = _template_line(exc, name)
            where = f"{_shown(loaded, name)}:{line}" if line else _shown(loaded, name)
            raise AnnouncementError(f"{where}: {type(exc).__name__}: {exc}") from None
    title = re.sub(r"\s+", " ", out[0]).strip()
    return title, out[1].strip().splitlines()


# -- checking the templates before anything runs -------------------------------------------------

def check_templates(loaded: "LoadedCampaign") -> list["Problem"]:
    """The announcement's templates exist in the team's locale, use only its variables and
    render with a sample week, in the team's format."""
    from relance.campaign.loader import Problem, _display

    campaign = loaded.campaign
    if campaign.team is None or campaign.team.announcement is None:
        return []
    env = environment(loaded.campaigns_dir, finalize=FINALIZE[campaign.team.format])
    ctx = sample_context(loaded)
    problems = []
    for fld in FIELDS:
        name = template_name(campaign.id, campaign.team.announcement, locale_of(campaign), fld)
        path = loaded.campaigns_dir / name
        shown = _display(path)
        if not path.exists():
            problems.append(Problem(
                _display(loaded.path), loaded.line_of(("team", "announcement")),
                "team.announcement",
                f"template {shown} is missing: create it (subject.txt: the post's title, "
                f"body.txt: its text, in the team's locale {locale_of(campaign)!r})"))
            continue
        problems += check_template(
            env, path, name, ctx, attributes=False,
            hint=lambda var: f"; an announcement has: {', '.join(sorted(ctx))}")
    return problems
