"""Sending each person their daily list at the start of their day, once.

A list is due when it is one of the person's working days (`days`) in their timezone and
their first span of `hours` has begun. Each (person, local date) is one row of the ledger
(`messages`: campaign '_team', message 'daily_list', learner 'person:<email>'; its unique
idempotency key makes a second list that day impossible), planned before it is sent:

- mail goes through the team file's channel. The outbox recognises its own files, so a
  list planned but not recorded as sent is written again safely; any other channel marks
  the row 'uncertain' before the request and 'sent' or 'failed' after it, so a process
  killed in between leaves it for a person to check (`relance uncertain`), never resent.
- chat posts through the team's webhook (channels/webhook.py), with its own row
  ('daily_list_chat'), the same way (a webhook post cannot be recognised either).

A failed list is tried again by the next call, up to MAX_ATTEMPTS.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from datetime import datetime

import duckdb

from relance import clock
from relance.channels import get_channel
from relance.channels.base import Channel, OutgoingMessage
from relance.team import lists
from relance.team.model import TeamFile

CAMPAIGN = "_team"
MAX_ATTEMPTS = 3


@dataclass
class SendReport:
    sent: list[str] = field(default_factory=list)          # "<email> mail|chat"
    failed: list[str] = field(default_factory=list)        # with why
    uncertain: list[str] = field(default_factory=list)
    not_due: list[str] = field(default_factory=list)


def _due(con, person, now: datetime) -> str | None:
    """The person's local date if their list is due now, else None."""
    local = con.execute("select timezone(?, ?::timestamptz)", [person.timezone, now]).fetchall()[0][0]
    day = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday",
           "sunday"][local.weekday()]
    if day not in person.days or local.time() < person.day_starts:
        return None
    return local.date().isoformat()


def _plan(con, key: str, kind: str, person, channel: str, now: datetime) -> tuple[str, str, int]:
    """The ledger row for this list: (message_id, status, attempts), planned if new."""
    message_id = hashlib.sha256(key.encode()).hexdigest()[:24]
    con.execute(
        "insert into messages (message_id, idempotency_key, run_id, campaign_id, message_key, "
        "trigger, learner_id, course_id, channel, locale, to_email, status, not_before, "
        "planned_at, attempts) values (?, ?, ?, ?, ?, 'daily_list', ?, '', ?, ?, ?, 'planned', "
        "?, ?, 0) on conflict do nothing",  # (attempts named: PostgreSQL's default is not
                                           # applied to a row the postgres extension inserts)
        [message_id, key, f"team-{key.rsplit('/', 1)[1]}", CAMPAIGN, kind,
         f"person:{person.email}", channel, person.locale, person.email, now, now]).fetchall()
    status, attempts = con.execute("select status, attempts from messages where message_id = ?",
                                   [message_id]).fetchall()[0]
    return message_id, status, attempts


def _record(con, message_id: str, status: str, now: datetime, error: str | None = None,
            subject: str | None = None) -> None:
    con.execute("update messages set status = ?, sent_at = case when ? = 'sent' then ? end, "
                "attempts = attempts + case when ? in ('sent', 'failed') then 1 else 0 end, "
                "error = ?, subject = coalesce(?, subject) where message_id = ?",
                [status, status, now, status, error, subject, message_id]).fetchall()


def send_due(con: duckdb.DuckDBPyConnection, team: TeamFile, *, now: datetime | None = None,
             outbox_dir: str = "outbox", channel: Channel | None = None,
             poster=None, link_for=None) -> SendReport:
    """Send every list due at `now` (default: the clock) that has not gone yet. `link_for`:
    a person's e-mail -> their signed sign-in link to the desk (relance/desk/server.py's
    `links_for`, given by the caller: team comes before desk), or None."""
    now = clock.or_now(now)
    report = SendReport()
    found = lists.compute(con, team, now)
    delivery = team.lists
    mail = channel or (get_channel(delivery.channel, outbox_dir=outbox_dir)
                       if "mail" in delivery.by else None)
    if "chat" in delivery.by and poster is None:
        from relance.channels.webhook import WebhookPoster
        url = os.environ.get(delivery.webhook_env or "")
        if url:
            poster = WebhookPoster(url, delivery.format)
        else:
            report.failed.append(f"chat: {delivery.webhook_env} is not set: no list is posted")
    for email, daily in found.items():
        person = team.person(email)
        local_date = _due(con, person, now)
        if local_date is None:
            report.not_due.append(email)
            continue
        subject, text = lists.render(daily, team, link_for(email) if link_for else None)
        if mail is not None:
            key = f"{CAMPAIGN}/daily_list/{email}/{local_date}"
            mid, status, attempts = _plan(con, key, "daily_list", person, mail.name, now)
            if status == "uncertain":
                report.uncertain.append(f"{email} mail")
            elif status == "planned" or (status == "failed" and attempts < MAX_ATTEMPTS):
                _send_mail(con, mail, mid, person, team, subject, text, now, report)
        if poster is not None:
            key = f"{CAMPAIGN}/daily_list_chat/{email}/{local_date}"
            mid, status, attempts = _plan(con, key, "daily_list_chat", person, "webhook", now)
            if status == "uncertain":
                report.uncertain.append(f"{email} chat")
            elif status == "planned" or (status == "failed" and attempts < MAX_ATTEMPTS):
                _record(con, mid, "uncertain", now)
                title = f"{person.chat or person.name}: {subject}"
                try:
                    poster.post(title, text.splitlines(), markup=False)
                except Exception as exc:        # WebhookError, a refused connection ...
                    _record(con, mid, "failed", now, error=str(exc)[:500])
                    report.failed.append(f"{email} chat: {exc}")
                else:
                    _record(con, mid, "sent", now, subject=title)
                    report.sent.append(f"{email} chat")
    return report


def _send_mail(con, mail: Channel, mid: str, person, team: TeamFile, subject: str, text: str,
               now: datetime, report: SendReport) -> None:
    sender = team.lists.sender
    msg = OutgoingMessage(
        message_id=mid, campaign_id=CAMPAIGN, to_email=person.email, to_name=person.name,
        from_email=sender.email, from_name=sender.name, reply_to=None, subject=subject,
        text=text, html=None, unsubscribe_url="", unsubscribe_mailto="", date=now,
        message_key="daily_list", locale=person.locale)
    if not mail.recognises_resends:
        _record(con, mid, "uncertain", now)       # may be on the wire from here on
    try:
        result = mail.send([msg])[0]
    except Exception as exc:
        _record(con, mid, "failed", now, error=str(exc)[:500])
        report.failed.append(f"{person.email} mail: {exc}")
        return
    _record(con, mid, result.status, result.sent_at or now, error=result.error, subject=subject)
    {"sent": report.sent, "failed": report.failed,
     "uncertain": report.uncertain}[result.status].append(
        f"{person.email} mail" + (f": {result.error}" if result.error else ""))
