"""Managers' digests as delivery sends them: their context (digest_context.sql, one query per
batch: each manager's team, grouped, with progress and last activity) and their message,
rendered from the campaign's `digest.template` in the manager's locale. Planned by the
engine (engine/digests.py), sent in the same batches as the learners' messages.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from relance.delivery import links
from warehouse import sql_file

if TYPE_CHECKING:
    from relance.campaign.loaded import LoadedCampaign

HERE = Path(__file__).parent
# The learners a digest lists of each group, at most (`counts.<group>` says how many the
# group has): a team of thousands made a digest nobody reads, and one whose rendering
# grew with the team until it went past the render budget (1 s) at 100,000 learners.
PER_GROUP = 30


def context_rows(con: duckdb.DuckDBPyConnection, default_timezone: str) -> list[dict]:
    """The digests of delivery_batch (the temp table delivery fills), one query for all."""
    return con.sql(sql_file(HERE, "digest_context"),
                   params={"timezone": default_timezone,
                                  "per_group": PER_GROUP}).to_arrow_table().to_pylist()


def template_context(loaded: "LoadedCampaign", row: dict) -> dict:
    campaign = loaded.campaign
    groups = {name: [] for name in campaign.digest.groups}
    for member in row["members"] or []:
        # a group renamed since the digest was planned keeps its old name
        groups.setdefault(member.pop("group_name"), []).append(member)
    counts = {name: 0 for name in campaign.digest.groups}
    for size in row.get("group_sizes") or []:
        counts[size["group_name"]] = size["n"]
    return {
        "manager": {"email": row["to_email"], "locale": row["locale"],
                    "timezone": row["timezone"]},
        "team": {"listed": row["n_listed"], "withheld": row["n_withheld"]},
        "groups": groups,
        "counts": counts,
        "week": row["week"],
        "campaign": {"id": campaign.id},
        "sender": {"name": campaign.sender.name, "email": campaign.sender.email},
        "unsubscribe_url": links.url(row["learner_id"], campaign.id),
        "as_of": row["as_of"],
    }


def outgoing(loaded: "LoadedCampaign", renderer, row: dict, *, date: datetime | None = None):
    from relance.channels import OutgoingMessage
    campaign = loaded.campaign
    ctx = template_context(loaded, row)
    rendered = renderer.render_folder(campaign.digest.template, row["locale"], ctx)
    return OutgoingMessage(
        message_id=row["message_id"], campaign_id=campaign.id, to_email=row["to_email"],
        to_name="", from_email=campaign.sender.email, from_name=campaign.sender.name,
        reply_to=campaign.reply_to, subject=rendered.subject, text=rendered.text,
        html=rendered.html, unsubscribe_url=ctx["unsubscribe_url"],
        unsubscribe_mailto=links.mailto(campaign.sender.email, campaign.id),
        date=date or row["not_before"], message_key="digest", locale=row["locale"])
