"""The signed one-click unsubscribe link (and mailto) each message carries, one per learner
and campaign; the receiver checks it (`verify`) when it comes back.

The signing key comes from RELANCE_SECRET_KEY. Without it, links are signed with a
development key and a warning says so once: fine for the outbox demo, not for real mail.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from urllib.parse import urlencode


log = logging.getLogger("relance")


_DEV_KEY = b"relance-development-key-not-secret"


_warned = False


def _key() -> bytes:
    global _warned
    key = os.environ.get("RELANCE_SECRET_KEY")
    if key:
        return key.encode()
    if not _warned:
        log.warning("RELANCE_SECRET_KEY is not set: unsubscribe links are signed with a "
                    "development key; set it before sending real mail")
        _warned = True
    return _DEV_KEY


def base_url() -> str:
    return os.environ.get("RELANCE_UNSUBSCRIBE_URL", "http://localhost:8000/unsubscribe")


def token(learner_id: str, campaign_id: str) -> str:
    digest = hmac.new(_key(), f"{learner_id}\x1f{campaign_id}".encode(), hashlib.sha256)
    return digest.hexdigest()[:32]


def verify(learner_id: str, campaign_id: str, candidate: str) -> bool:
    return hmac.compare_digest(token(learner_id, campaign_id), candidate)


def url(learner_id: str, campaign_id: str) -> str:
    query = urlencode({"l": learner_id, "c": campaign_id, "t": token(learner_id, campaign_id)})
    return f"{base_url()}?{query}"


def mailto(sender_email: str, campaign_id: str) -> str:
    return f"mailto:{sender_email}?subject=unsubscribe%20{campaign_id}"


# -- reply addresses (issue 18): replies+<message id>.<signature>@domain ----------------------

def _reply_signature(message_id: str) -> str:
    return hmac.new(_key(), f"reply\x1f{message_id}".encode(), hashlib.sha256).hexdigest()[:16]


def reply_address(mailbox: str, message_id: str) -> str:
    """The Reply-To of one message: `mailbox` plus-addressed with the message's id and a
    signature, so a reply names the message (and through it the learner) unforgeably."""
    local, _, domain = mailbox.partition("@")
    return f"{local}+{message_id}.{_reply_signature(message_id)}@{domain}"


def reply_token(address: str) -> str | None:
    """The token of a plus-addressed reply address ('<id>.<signature>'), or None."""
    local = address.strip().strip("<>").partition("@")[0]
    if "+" not in local:
        return None
    return local.partition("+")[2]


def verify_reply_token(token: str) -> tuple[str | None, str | None]:
    """(message id, None) when the token is signed by this installation, else (None, why)."""
    message_id, dot, signature = token.partition(".")
    if not dot or not message_id or not signature:
        return None, f"reply token {token[:60]!r} is not <message>.<signature>"
    if not hmac.compare_digest(_reply_signature(message_id), signature.lower()):
        return None, "reply token signature does not match (forged, or signed with another key)"
    return message_id, None
# -- "Was this helpful?" ----------------------------------------------------------------------
# Two links per message (a message option, `helpful: true`), yes and no, signed over the
# message id with the same key: the answer is in the link, the signature says the link was
# made by relance for that message (a forged or altered one is refused by the receiver).

HELPFUL_ANSWERS = ("yes", "no")


def helpful_base_url() -> str:
    """RELANCE_HELPFUL_URL, else the unsubscribe address's server at /helpful."""
    given = os.environ.get("RELANCE_HELPFUL_URL")
    if given:
        return given
    return base_url().rsplit("/", 1)[0] + "/helpful"


def helpful_token(message_id: str) -> str:
    digest = hmac.new(_key(), f"helpful\x1f{message_id}".encode(), hashlib.sha256)
    return digest.hexdigest()[:32]


def verify_helpful(message_id: str, candidate: str) -> bool:
    return hmac.compare_digest(helpful_token(message_id), candidate)


def helpful_url(message_id: str, answer: str) -> str:
    if answer not in HELPFUL_ANSWERS:
        raise ValueError(f"answer: expected one of {', '.join(HELPFUL_ANSWERS)}, got {answer!r}")
    query = urlencode({"m": message_id, "a": answer, "t": helpful_token(message_id)})
    return f"{helpful_base_url()}?{query}"
