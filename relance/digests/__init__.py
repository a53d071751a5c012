"""Managers' weekly digests: one message per manager and week listing their team (the
campaign's learners whose `manager_email` is theirs), grouped as the campaign's `digest:`
says, with progress and last activity, in the team's locale.

    eval_state -> plan.sql (eval_digest_members, eval_digests) -> persist.sql (ledger)
    ledger (trigger 'digest') -> context.sql (per batch) -> render -> the campaign's channel

Planned by the engine in the same evaluation and transaction as the learners' messages,
delivered by the same delivery, through the same channel, ledger and idempotency keys
(campaign / digest / manager / ISO week in the manager's timezone).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from relance.feedback import unsubscribe
from relance.campaign.model import Campaign
from relance.campaign.types import WEEKDAYS
from warehouse import sql_file

if TYPE_CHECKING:
    from relance.campaign.loader import LoadedCampaign, Problem

HERE = Path(__file__).parent
TRIGGER = "digest"


def _literal(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def group_case(campaign: Campaign) -> str:
    """The digest group of each stage, as a CASE over eval_state's `stage` (s.stage)."""
    whens = " ".join(f"when s.stage in ({', '.join(_literal(x) for x in stages)}) "
                     f"then {_literal(group)}"
                     for group, stages in campaign.digest.groups.items())
    return f"(case {whens} end)"


def plan_sql(campaign: Campaign) -> str:
    return sql_file(HERE, "plan", group_case=group_case(campaign))


def persist_sql() -> str:
    return sql_file(HERE, "persist")


def params(campaign: Campaign) -> dict:
    every = campaign.digest.every
    return {"digest_minutes": WEEKDAYS.index(every.day) * 1440 + every.at.hour * 60
            + every.at.minute}


def empty_tables(con: duckdb.DuckDBPyConnection) -> None:
    """For a campaign without a digest: the same tables, empty, so `plan` reads them alike."""
    con.execute("create or replace temp table eval_digests (manager_email varchar, locale "
                "varchar, tz varchar, week varchar, idempotency_key varchar, n_listed bigint, "
                "n_withheld bigint, not_before timestamptz, outcome varchar, reason varchar)")


def counts(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str | None, int]]:
    """(outcome, reason, managers) of the evaluation's digests."""
    return con.execute("select outcome, reason, count(*) from eval_digests group by all "
                       "order by outcome, count(*) desc").fetchall()


# -- delivery ------------------------------------------------------------------------------------

def context_rows(con: duckdb.DuckDBPyConnection, default_timezone: str) -> list[dict]:
    """The digests of delivery_batch (the temp table delivery fills), one query for all."""
    return con.sql(sql_file(HERE, "context"),
                   params={"timezone": default_timezone}).to_arrow_table().to_pylist()


def template_context(loaded: "LoadedCampaign", row: dict) -> dict:
    campaign = loaded.campaign
    groups = {name: [] for name in campaign.digest.groups}
    for member in row["members"] or []:
        # a group renamed since the digest was planned keeps its old name
        groups.setdefault(member.pop("group_name"), []).append(member)
    return {
        "manager": {"email": row["to_email"], "locale": row["locale"],
                    "timezone": row["timezone"]},
        "team": {"listed": row["n_listed"], "withheld": row["n_withheld"]},
        "groups": groups,
        "week": row["week"],
        "campaign": {"id": campaign.id},
        "sender": {"name": campaign.sender.name, "email": campaign.sender.email},
        "unsubscribe_url": unsubscribe.url(row["learner_id"], campaign.id),
        "as_of": row["as_of"],
    }


def outgoing(loaded: "LoadedCampaign", renderer, row: dict):
    from relance.channels import OutgoingMessage
    campaign = loaded.campaign
    ctx = template_context(loaded, row)
    rendered = renderer.render_folder(campaign.digest.template, row["locale"], ctx)
    return OutgoingMessage(
        message_id=row["message_id"], campaign_id=campaign.id, to_email=row["to_email"],
        to_name="", from_email=campaign.sender.email, from_name=campaign.sender.name,
        reply_to=campaign.reply_to, subject=rendered.subject, text=rendered.text,
        html=rendered.html, unsubscribe_url=ctx["unsubscribe_url"],
        unsubscribe_mailto=unsubscribe.mailto(campaign.sender.email, campaign.id),
        date=row["not_before"], message_key="digest", locale=row["locale"])


# -- checking templates --------------------------------------------------------------------------

def sample_context(loaded: "LoadedCampaign", locale: str) -> dict:
    campaign = loaded.campaign
    now = datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc)
    member = {"first_name": "Zoé", "last_name": "Lefèvre", "name": "Zoé Lefèvre",
              "course": "Anglais professionnel B2", "stage": next(iter(campaign.stages)),
              "progress": 42.0, "inactive_days": 3, "last_activity_at": now - timedelta(days=3)}
    return {
        "manager": {"email": "manager@example.org", "locale": locale,
                    "timezone": campaign.timezone},
        "team": {"listed": 1, "withheld": 1},
        "groups": {name: [dict(member)] for name in campaign.digest.groups},
        "week": "2026-W48",
        "campaign": {"id": campaign.id},
        "sender": {"name": campaign.sender.name, "email": campaign.sender.email},
        "unsubscribe_url": "https://relance.example.org/unsubscribe?t=sample",
        "as_of": now,
        "locale": locale,
    }


def check_templates(loaded: "LoadedCampaign") -> list["Problem"]:
    """The digest's templates exist in every locale and render with a sample team."""
    from relance.campaign.loader import Problem, _display
    from relance.delivery.rendering import (
        FIELDS,
        REQUIRED_FIELDS,
        check_template,
        environment,
        template_name,
    )

    campaign = loaded.campaign
    if campaign.digest is None:
        return []
    env = environment(loaded.campaigns_dir)
    problems = []
    for locale in campaign.locales:
        for fld in FIELDS:
            name = template_name(campaign.id, campaign.digest.template, locale, fld)
            path = loaded.campaigns_dir / name
            if not path.exists():
                if fld in REQUIRED_FIELDS:
                    problems.append(Problem(
                        _display(loaded.path), loaded.line_of(("digest",)), "digest",
                        f"template {_display(path)} is missing: create it (subject.txt, "
                        "body.txt, optional body.html, one folder per locale in `locales`)"))
                continue
            context = sample_context(loaded, locale)
            problems += check_template(
                env, path, name, context, attributes=False,
                hint=lambda var: f"; a digest has: {', '.join(sorted(context))}")
    return problems
