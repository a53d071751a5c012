""""Was this helpful?": the answers to a message's two signed links (delivery/links.py makes
them, for messages with `helpful: true`), as `relance serve` takes them.

    GET  /helpful?m&a&t    a small page: the question, the answer the link gave already
                           chosen, an optional comment (at most 300 characters); records
                           nothing (mail security scanners open every link of a message:
                           a GET that recorded would count answers nobody gave)
    POST /helpful?m&a&t    the page's form: records the answer (yes or no) and the comment

The link's signature (over the message id, RELANCE_SECRET_KEY) is checked before anything
else: a forged or altered link is refused with 400 and records nothing. One row per message
(`helpful_answers`): a second answer replaces the first (a misclick is put right), keeps
the first's moment, counts the answers; a comment replaces the earlier one only when one is
given. A message the warehouse no longer holds is answered 404, nothing stored.

When a delivery holds the warehouse, the answer is written to a spool file beside it
(`<warehouse>.helpful.jsonl`), read by the next delivery (receiver.import_spool).
"""

from __future__ import annotations

import html
import unicodedata
from datetime import datetime
from pathlib import Path

from relance import clock
from relance.delivery import links
from relance.feedback import spool as spools
from warehouse import transaction

MAX_COMMENT_CHARS = 300       # a short comment: the page's form caps it, and so does this


class HelpfulError(ValueError):
    pass


def clean_comment(text: str | None) -> str | None:
    """A comment as stored: control characters (but line breaks) removed, at most
    MAX_COMMENT_CHARS, None when empty."""
    if not text:
        return None
    kept = "".join(ch for ch in text.replace("\r\n", "\n")
                   if ch == "\n" or unicodedata.category(ch) not in ("Cc", "Cf", "Zl", "Zp"))
    kept = kept.strip()[:MAX_COMMENT_CHARS]
    return kept or None


def record(con, message_id: str, answer: str, comment: str | None = None, *,
           at: datetime | None = None) -> None:
    """The learner's answer to message `message_id` (see the module's docstring)."""
    if answer not in links.HELPFUL_ANSWERS:
        raise HelpfulError(f"answer: expected yes or no, got {answer!r}")
    at = clock.or_now(at)
    comment = clean_comment(comment)
    with transaction(con):
        row = con.execute("select campaign_id, message_key, learner_id from messages "
                          "where message_id = ?", [message_id]).fetchall()
        if not row:
            raise HelpfulError(f"unknown message {message_id!r}")
        campaign_id, message_key, learner_id = row[0]
        con.execute(
            "insert into helpful_answers (message_id, campaign_id, message_key, learner_id, "
            "answer, comment, first_answered_at, answered_at, n_answers) "
            "values (?, ?, ?, ?, ?, ?, ?, ?, 1) on conflict (message_id) do update set "
            "answer = excluded.answer, comment = coalesce(excluded.comment, helpful_answers.comment), "
            "answered_at = excluded.answered_at, n_answers = helpful_answers.n_answers + 1",
            [message_id, campaign_id, message_key, learner_id, answer, comment, at, at]
        ).fetchall()


# -- the spool, while a delivery holds the warehouse -----------------------------------------

def spool_path(warehouse_path: str | Path) -> Path:
    return spools.spool_file(warehouse_path, "helpful")


def spool(warehouse_path: str | Path, message_id: str, answer: str, comment: str | None) -> None:
    spools.append(spool_path(warehouse_path), {"message_id": message_id, "answer": answer,
                                              "comment": clean_comment(comment)})


def import_spool(con, warehouse_path: str | Path) -> int:
    """Answers the receiver could not write; recorded in the order given (a later answer
    replaces an earlier one, as it would have)."""
    n = 0
    for item, at in spools.take(spool_path(warehouse_path)):
        try:
            record(con, item["message_id"], item["answer"], item.get("comment"), at=at)
            n += 1
        except HelpfulError:
            pass      # a message since removed: nothing to count it against
    return n


# -- the pages -----------------------------------------------------------------------------

def question_page(path: str, answer: str) -> str:
    """The form of GET /helpful: posts to the same signed address."""
    action = html.escape(path, quote=True)
    checked = {a: " checked" if a == answer else "" for a in links.HELPFUL_ANSWERS}
    return (
        f'<form method="post" action="{action}">'
        '<p><label><input type="radio" name="answer" value="yes"'
        f'{checked["yes"]}> Oui, utile / Yes, helpful</label></p>'
        '<p><label><input type="radio" name="answer" value="no"'
        f'{checked["no"]}> Non, pas utile / No, not helpful</label></p>'
        '<p><label for="comment">Un commentaire ? (facultatif) / A comment? (optional)'
        f'</label><br><textarea id="comment" name="comment" rows="3" cols="40" '
        f'maxlength="{MAX_COMMENT_CHARS}"></textarea></p>'
        '<p><button type="submit">Envoyer / Send</button></p></form>')


def verified(query: dict) -> tuple[str, str] | None:
    """(message id, answer) of a signed link's query, or None if it is forged or altered."""
    message_id, answer, token = (query.get(k, [""])[0] for k in ("m", "a", "t"))
    if not (message_id and token and answer in links.HELPFUL_ANSWERS
            and links.verify_helpful(message_id, token)):
        return None
    return message_id, answer
