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
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
from jinja2 import TemplateNotFound, TemplateSyntaxError

from relance.campaign.contexts import announcement_context, locale_of
from relance.campaign.templates import (ANNOUNCEMENT_FIELDS, FINALIZE, _template_line, environment,
                                        template_name)
from warehouse import sql_file

if TYPE_CHECKING:
    from relance.campaign.loaded import LoadedCampaign

HERE = Path(__file__).parent


class AnnouncementError(Exception):
    """The announcement could not be rendered; says which file and line."""


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
    return announcement_context(loaded, row["as_of"], row["week"], {
        "learners": row["learners"], "control_group": row["control_group"],
        "stages": stages, "follow_ups": row["follow_ups"],
        "active_last_week": row["active_last_week"],
        "completed_activities_last_week": row["completed_activities_last_week"],
    }, {k: row[k] for k in ("sent", "failed", "deferred", "suppressed")}, row["courses"])


# -- rendering -----------------------------------------------------------------------------------

def _shown(loaded: "LoadedCampaign", name: str) -> str:
    from relance.campaign.problems import display
    return display(loaded.campaigns_dir / name)


def render(loaded: "LoadedCampaign", ctx: dict) -> tuple[str, list[str]]:
    """(title, lines) of the announcement in the team's format; AnnouncementError names the
    template file and line that failed."""
    campaign = loaded.campaign
    env = environment(loaded.campaigns_dir, finalize=FINALIZE[campaign.team.format])
    out = []
    for fld in ANNOUNCEMENT_FIELDS:
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

