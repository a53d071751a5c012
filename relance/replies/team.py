"""Replies routed to `team`: posted to the campaign's Slack or Teams channel (its `team:`
block's webhook, relance/channels/webhook.py), each at most once. Run after reading replies
(`relance replies fetch`, the deliver-due flow); the receiver itself never posts (a
webhook's retries do not belong in an HTTP request's time)."""

from __future__ import annotations

import os
from collections import Counter

from relance import clock
from relance.channels.webhook import WebhookError, WebhookPoster
from relance.replies.ingest import Campaigns
from warehouse import transaction

EXCERPT = 600


def post_pending(con, campaigns_dir, *, poster_for=None) -> Counter:
    """Post every reply routed to `team` not posted yet; a count by outcome."""
    done: Counter = Counter()
    campaigns = Campaigns(campaigns_dir)
    rows = con.execute(
        "select r.reply_id, r.campaign_id, r.category, r.subject, r.body_text, r.from_address, "
        "trim(coalesce(l.first_name, '') || ' ' || coalesce(l.last_name, '')) "
        "from learner_replies r left join learners l using (learner_id) "
        "where r.routed_to = 'team' and r.team_posted_at is null order by r.received_at").fetchall()
    for reply_id, campaign_id, category, subject, body, sender, name in rows:
        loaded = campaigns.get(campaign_id)
        team = loaded.campaign.team if loaded is not None else None
        url = os.environ.get(team.webhook_env) if team is not None else None
        if not url:
            why = (f"set {team.webhook_env} (the team channel's webhook)" if team is not None
                   else "the campaign has no `team:` block any more")
            _mark(con, reply_id, None, why)
            done["waiting"] += 1
            continue
        poster = poster_for(url, team.format) if poster_for else WebhookPoster(url, team.format)
        text = (body or "").strip()
        lines = [f"{name or sender} ({sender}) · {category}", f"« {subject} »" if subject else "",
                 text[:EXCERPT] + ("…" if len(text) > EXCERPT else "")]
        try:
            poster.post(f"Reply from a learner ({campaign_id})", [x for x in lines if x])
        except WebhookError as exc:
            maybe = "may have been posted" in str(exc)
            # a post that may have arrived is not posted again (no second copy)
            _mark(con, reply_id, clock.now() if maybe else None, str(exc)[:300])
            done["uncertain" if maybe else "failed"] += 1
            continue
        _mark(con, reply_id, clock.now(), None)
        done["posted"] += 1
    return done


def _mark(con, reply_id: str, posted_at, error: str | None) -> None:
    with transaction(con):
        con.execute("update learner_replies set team_posted_at = ?, team_error = ? "
                    "where reply_id = ?", [posted_at, error, reply_id]).fetchall()
