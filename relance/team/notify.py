"""After a run, what the team reads in its Slack or Teams channel: the designer's weekly
announcement (relance/team/announcement.py), the cohort's week in numbers and the follow-up list
(`team:` in a campaign; relance/channels/webhook.py posts).

Each post stands alone: one that cannot be rendered or is refused is reported with why,
and the others still go. None of it fails the run (the learners' mail has gone already)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import duckdb

from relance.team import announcement
from relance.channels.base import ChannelConfigError
from relance.channels.webhook import WebhookError, WebhookPoster

MAX_LINES = 50      # a longer list is cut, with where to find the rest


@dataclass
class TeamReport:
    posted: list[str] = field(default_factory=list)     # titles of the posts that went
    errors: list[str] = field(default_factory=list)     # one per post that did not, with why


def poster(team) -> WebhookPoster:
    url = os.environ.get(team.webhook_env)
    if not url:
        raise ChannelConfigError(f"{team.webhook_env} is not set: the team's {team.format} "
                                 "channel gets no post; set it to the incoming-webhook URL")
    return WebhookPoster(url, team.format)


def messages(con: duckdb.DuckDBPyConnection, campaign_id: str, run_id: str,
             team) -> list[tuple[str, list[str]]]:
    """(title, lines) of the generated posts for this run, plain text."""
    posts = []
    if team.summary:
        stages = con.execute("select coalesce(stage, '(none)'), count(*) from decisions "
                             "where run_id = ? group by all order by count(*) desc",
                             [run_id]).fetchall()
        sent, as_of = con.execute(
            "select coalesce(n_sent, 0), as_of from campaign_runs where run_id = ?",
            [run_id]).fetchall()[0]
        posts.append((f"{campaign_id}: week of {as_of:%d %b %Y}",
                      [", ".join(f"{s} {n}" for s, n in stages), f"{sent} messages sent"]))
    if team.follow_ups:
        rows = con.execute(
            "select trim(coalesce(l.first_name, '') || ' ' || coalesce(l.last_name, '')), "
            "l.email, f.reason from follow_ups f join learners l using (learner_id) "
            "where f.run_id = ? order by f.rule, f.learner_id", [run_id]).fetchall()
        if rows:
            lines = [f"{name} <{email}>: {reason}" for name, email, reason in rows[:MAX_LINES]]
            if len(rows) > MAX_LINES:
                lines.append(f"… and {len(rows) - MAX_LINES} more: `from follow_up_list "
                             f"where campaign_id = '{campaign_id}'`")
            posts.append((f"{campaign_id}: {len(rows)} learners to contact", lines))
    return posts


def notify(con: duckdb.DuckDBPyConnection, loaded, run_id: str,
           post: WebhookPoster | None = None) -> TeamReport:
    """Post this run's announcement, summary and follow-up list. Raises only when there is
    no channel to post to (ChannelConfigError); each post's failure is in the report."""
    team = loaded.campaign.team
    report = TeamReport()
    if team is None:
        return report
    post = post or poster(team)

    def send(title: str, lines: list[str], *, markup: bool) -> None:
        try:
            post.post(title, lines, markup=markup)
            report.posted.append(title)
        except WebhookError as exc:
            report.errors.append(f"post {title!r}: {exc}")

    if team.announcement:
        try:
            title, lines = announcement.render(loaded,
                                               announcement.context(con, loaded, run_id))
        except announcement.AnnouncementError as exc:
            report.errors.append(f"announcement not posted: {exc}")
        else:
            send(title, lines, markup=True)
    for title, lines in messages(con, loaded.id, run_id, team):
        send(title, lines, markup=False)
    return report
