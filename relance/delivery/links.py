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
