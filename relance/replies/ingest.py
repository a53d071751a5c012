"""A reply, stored: matched to its learner and message, recognised as automatic or not,
sorted by the campaign's rules, routed, and its effects written in one transaction:

- `learner_replies`: one row per mail, whatever it is (nothing received is dropped);
- an unsubscribe (`suppressions`, as the link does) when it asks to stop;
- a progress event (verb 'replied') when it counts as activity, so every reader of
  `progress_events` (the engine's `inactive_days`, digests, the KPIs) sees the sign of life
  with no change of theirs;
- the forward to the category's address and the acknowledgement, as `planned` rows of the
  ledger with an idempotency key per reply: the next delivery of the campaign sends them,
  exactly once, with the campaign's channel (delivery/reply_mail.py renders them).

Matching: the reply address's token (links.reply_address: the message id, signed) names
the message, and through it the learner, course and campaign. A token that does not verify
is refused, never matched another way; one that verifies but names no message of the
ledger is unmatched. Without a token, the sender's address matches a learner only when
exactly one learner has it (then the campaign and course are those of the last message
relance sent them).

Storing a mail again (SendGrid posts it again, IMAP reads it again) finds its row (the
reply id is stable per mail) and changes nothing.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from relance import clock
from relance.campaign.replies import STOP_WORDS, Replies
from relance.delivery import links
from relance.feedback import unsubscribe
from relance.replies.mail import Inbound
from warehouse import transaction

RUN_ID = "replies"          # the ledger's run_id for what replies plan
ACK, FORWARD = "reply:ack", "reply:forward"
_TOKEN = re.compile(r"^[0-9a-f]{24}\.[0-9a-f]{16}$")


@dataclass
class Stored:
    reply_id: str
    status: str
    learner_id: str | None = None
    campaign_id: str | None = None
    category: str | None = None
    routed_to: str | None = None
    automatic: str | None = None
    reason: str | None = None
    acknowledged_message_id: str | None = None
    forwarded_message_id: str | None = None
    already: bool = False


# -- matching ------------------------------------------------------------------------------------

def _match(con, mail: Inbound) -> dict:
    """learner_id, course_id, campaign_id, message_id, status, reason."""
    tokens = [t for t in (links.reply_token(a) for a in mail.recipients) if t]
    if tokens:
        refused = None
        for token in tokens:
            message_id, why = links.verify_reply_token(token)
            if message_id is None:
                refused = refused or why
                continue
            row = con.execute("select learner_id, course_id, campaign_id from messages "
                              "where message_id = ?", [message_id]).fetchall()
            if not row or row[0][0].startswith("manager:"):
                return {"status": "unmatched", "message_id": message_id,
                        "reason": f"the reply address names message {message_id}, which the "
                                  "ledger does not hold (a message of another warehouse?)"}
            learner_id, course_id, campaign_id = row[0]
            return {"status": "matched", "learner_id": learner_id, "course_id": course_id,
                    "campaign_id": campaign_id, "message_id": message_id}
        # a plus-address of the shape relance writes that does not verify is forged (or of
        # another installation): refused, never matched by its sender; any other plus
        # address (the learner's own, in Cc) is no token at all
        if any(_TOKEN.match(t.lower()) for t in tokens):
            return {"status": "refused", "reason": refused}
    if not mail.from_address:
        return {"status": "unmatched", "reason": "no reply token and no sender address"}
    learners = con.execute("select learner_id from learners where lower(email) = ? limit 3",
                           [mail.from_address]).fetchall()
    if len(learners) != 1:
        return {"status": "unmatched", "reason": (
            "no reply token, and no learner has the sender's address" if not learners else
            f"no reply token, and {len(learners) if len(learners) < 3 else 'several'} learners "
            "share the sender's address: not matched, to route it to no wrong person")}
    learner_id = learners[0][0]
    last = con.execute(
        "select course_id, campaign_id, message_id from messages where learner_id = ? "
        "and status in ('sent', 'uncertain') order by sent_at desc nulls last, not_before desc "
        "limit 1", [learner_id]).fetchall()
    if not last:
        return {"status": "matched", "learner_id": learner_id,
                "reason": "matched by the sender's address; relance sent this learner nothing"}
    course_id, campaign_id, _ = last[0]
    return {"status": "matched", "learner_id": learner_id, "course_id": course_id,
            "campaign_id": campaign_id, "message_id": None,
            "reason": "matched by the sender's address (the only learner who has it)"}


# -- sorting ---------------------------------------------------------------------------------

def _plain(text: str) -> str:
    """Lower case, without accents, apostrophes made straight: what keywords are matched on."""
    text = unicodedata.normalize("NFKD", text.lower().replace("\u2019", "'"))
    return "".join(c for c in text if not unicodedata.combining(c))


def _has_term(plain: str, term: str) -> bool:
    return re.search(r"(?<!\w)" + re.escape(_plain(term)) + r"(?!\w)", plain) is not None


def asks_to_stop(mail: Inbound) -> bool:
    """A stop word in the subject, or in a short reply (at most 30 words): "STOP", "merci de
    me désinscrire". A long question that happens to say "stop" is not an unsubscribe."""
    words = [w for lang in STOP_WORDS.values() for w in lang]
    subject = _plain(mail.subject)
    if any(_has_term(subject, w) for w in words):
        return True
    fresh = mail.new_text
    return len(fresh.split()) <= 30 and any(_has_term(_plain(fresh), w) for w in words)


def classify(replies: Replies, mail: Inbound, language: str | None) -> tuple[str, str]:
    """(category, route as configured) of a learner's reply: the first category whose
    keywords or patterns it holds, else ('other', `otherwise`)."""
    text = f"{mail.subject}\n{mail.new_text}"
    plain = _plain(text)
    for name, category in replies.effective_categories().items():
        if any(_has_term(plain, k) for k in category.keywords.terms(language)):
            return name, category.route
        if any(re.search(p, text, re.IGNORECASE) or re.search(p, plain, re.IGNORECASE)
               for p in category.patterns.terms(language)):
            return name, category.route
    return "other", replies.otherwise


# -- storing -----------------------------------------------------------------------------------

class Campaigns:
    """The campaigns' `replies:` blocks, read once per ingest batch (None: not found, or no
    block: defaults apply, the reply goes to the desk)."""

    def __init__(self, campaigns_dir: Path | None):
        self.dir = Path(campaigns_dir) if campaigns_dir else None
        self._cache: dict[str, object] = {}

    def get(self, campaign_id: str | None):
        if not campaign_id or self.dir is None:
            return None
        if campaign_id not in self._cache:
            from relance.campaign import loader
            from relance.campaign.problems import CampaignError
            path = self.dir / f"{campaign_id}.yaml"
            try:
                self._cache[campaign_id] = loader.load(path, campaigns_dir=self.dir) \
                    if path.exists() else None
            except CampaignError:
                self._cache[campaign_id] = None
        return self._cache[campaign_id]


def _plan(con, key: str, campaign, trigger: str, learner_id: str, course_id: str,
          locale: str, to_email: str, now) -> str:
    """A planned row of the ledger, once per idempotency key; its message id."""
    con.execute(
        "insert into messages (message_id, idempotency_key, run_id, campaign_id, message_key, "
        "trigger, learner_id, course_id, channel, locale, to_email, status, not_before, "
        "planned_at) select substr(sha256(?::varchar), 1, 24), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
        "'planned', ?, ? where not exists (select 1 from messages where idempotency_key = ?)",
        [key, key, RUN_ID, campaign.id, trigger, trigger, learner_id, course_id,
         campaign.channel, locale, to_email, now, now, key]).fetchall()
    return con.execute("select message_id from messages where idempotency_key = ?",
                       [key]).fetchall()[0][0]


def store(con, mail: Inbound, campaigns: Campaigns, also=None) -> Stored:
    """Store one inbound mail and its effects (one transaction, with `also(con)` when given:
    an IMAP cursor moves with it); idempotent per mail."""
    reply_id = mail.reply_id
    found = con.execute("select status, learner_id, campaign_id, category, routed_to, automatic, "
                        "reason, acknowledged_message_id, forwarded_message_id "
                        "from learner_replies where reply_id = ?", [reply_id]).fetchall()
    if found:
        return Stored(reply_id, *found[0], already=True)
    now = clock.now()
    match = _match(con, mail)
    out = Stored(reply_id, match["status"], match.get("learner_id"), match.get("campaign_id"),
                 reason=match.get("reason"))
    course_id = match.get("course_id")
    loaded = campaigns.get(out.campaign_id)
    with transaction(con):
        campaign = loaded.campaign if loaded is not None else None
        replies = campaign.replies if campaign is not None else None
        learner = None
        if out.learner_id:
            rows = con.execute("select email, locale from learners where learner_id = ?",
                               [out.learner_id]).fetchall()
            learner = rows[0] if rows else (None, None)
        out.automatic = mail.automatic()
        if out.status == "refused":
            pass                    # a forged token: nothing of it is believed
        elif out.automatic:
            out.status = "automatic"
        elif out.status == "unmatched":
            pass
        elif asks_to_stop(mail):
            out.status, out.category = "unsubscribed", "stop"
            scope = None if (replies is not None and replies.stop_scope == "all") else out.campaign_id
            try:
                unsubscribe.record(con, out.learner_id, scope, source=f"reply {reply_id}", at=now)
            except unsubscribe.UnsubscribeError as exc:
                out.reason = f"asked to stop, but {exc}"
        else:
            out.status = "routed"
            language = (learner[1] or "")[:2].lower() if learner else None
            if replies is not None:
                out.category, route = classify(replies, mail, language)
                out.routed_to = replies.resolve(route)
            else:
                out.category, out.routed_to = "other", "desk"
                if out.campaign_id and not out.reason:
                    out.reason = (f"campaign {out.campaign_id!r} has no `replies:` block (or its "
                                  "file cannot be read): sent to the desk")
            counts = replies.counts_as_activity if replies is not None else True
            if counts and course_id:
                con.execute(
                    "insert into progress_events (event_id, learner_id, course_id, activity_id, "
                    "verb, occurred_at, progress, source, loaded_at) select ?, ?, ?, null, "
                    "'replied', ?, null, 'replies', ? where not exists (select 1 from "
                    "progress_events where event_id = ? and source = 'replies')",
                    [f"reply:{reply_id}", out.learner_id, course_id, now, now,
                     f"reply:{reply_id}"]).fetchall()
            if campaign is not None and course_id:
                locale = _locale(campaign, learner[1] if learner else None)
                if "@" in (out.routed_to or ""):
                    out.forwarded_message_id = _plan(
                        con, f"{FORWARD}/{reply_id}", campaign, FORWARD,
                        f"manager:{out.routed_to}", course_id, campaign.locale, out.routed_to, now)
                if replies is not None and replies.acknowledgement and learner and learner[0]:
                    out.acknowledged_message_id = _plan(
                        con, f"{ACK}/{reply_id}", campaign, ACK, out.learner_id, course_id,
                        locale, learner[0], now)
        con.execute(
            "insert into learner_replies (reply_id, source, received_at, sent_at, from_address, "
            "subject, body_text, learner_id, course_id, campaign_id, message_id, automatic, "
            "category, routed_to, status, reason, acknowledged_message_id, "
            "forwarded_message_id, attachments) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
            "?, ?, ?, ?, ?, ?)",
            [reply_id, mail.source, now, mail.sent_at, mail.from_address, mail.subject,
             mail.text, out.learner_id, course_id, out.campaign_id, match.get("message_id"),
             out.automatic, out.category, out.routed_to, out.status, out.reason,
             out.acknowledged_message_id, out.forwarded_message_id, mail.attachments]).fetchall()
        if also is not None:
            also(con)
    return out


def _locale(campaign, learner_locale: str | None) -> str:
    if learner_locale:
        for candidate in (learner_locale, learner_locale[:2]):
            if candidate in campaign.locales:
                return candidate
    return campaign.locale
