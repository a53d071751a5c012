"""What providers tell us after sending: SendGrid Event Webhook payloads, from the receiver
(relance/feedback/receiver.py) or from JSON files (`relance events import`).

Each event is stored once (by its `sg_event_id`) in `message_events`, joined to the ledger
by the `relance_message_id` the sendgrid channel put in its custom_args. Bounces, spam
reports and unsubscribes put the address on the suppression list, which the engine's
policies read at the next plan and delivery cancels what is already queued (cancel.sql).
An event about an 'uncertain' message proves SendGrid accepted it: it becomes 'sent'.

Signatures are checked as SendGrid documents them: ECDSA (P-256, SHA-256) over the
timestamp header followed by the raw body, with the public key shown in SendGrid's mail
settings (SENDGRID_WEBHOOK_PUBLIC_KEY, base64).
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pyarrow as pa
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

from relance import clock
from warehouse import execute_script, transaction

HERE = Path(__file__).parent
EVENT_TYPES = ("processed", "delivered", "deferred", "open", "click", "bounce", "dropped",
               "spamreport", "unsubscribe", "group_unsubscribe", "group_resubscribe")
SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"


class EventError(Exception):
    pass


def public_key_from_env() -> ec.EllipticCurvePublicKey:
    raw = os.environ.get("SENDGRID_WEBHOOK_PUBLIC_KEY")
    if not raw:
        raise EventError("SENDGRID_WEBHOOK_PUBLIC_KEY is not set: SendGrid events cannot be "
                         "verified, so none is accepted; copy the verification key from "
                         "SendGrid (Settings > Mail Settings > Signed Event Webhook)")
    try:
        key = load_der_public_key(base64.b64decode(raw))
    except ValueError as exc:
        raise EventError(f"SENDGRID_WEBHOOK_PUBLIC_KEY is not a base64 public key: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise EventError("SENDGRID_WEBHOOK_PUBLIC_KEY is not an ECDSA public key")
    return key


def verify(key: ec.EllipticCurvePublicKey, payload: bytes, signature: str | None,
           timestamp: str | None) -> None:
    """Raise EventError unless `signature` signs timestamp + payload."""
    if not signature or not timestamp:
        raise EventError(f"unsigned request: the {SIGNATURE_HEADER} and {TIMESTAMP_HEADER} "
                         "headers are required")
    try:
        key.verify(base64.b64decode(signature), timestamp.encode() + payload,
                   ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        raise EventError("the signature does not match the payload: not from SendGrid, "
                         "or altered on the way") from None


def parse(payload: bytes, source: str) -> list[dict]:
    try:
        events = json.loads(payload)
    except ValueError as exc:
        raise EventError(f"{source}: not JSON ({exc})") from None
    if isinstance(events, dict):
        events = [events]
    if not isinstance(events, list):
        raise EventError(f"{source}: expected a JSON array of SendGrid events")
    for i, e in enumerate(events):
        missing = [k for k in ("event", "email", "timestamp") if not isinstance(e, dict) or k not in e]
        if missing:
            raise EventError(f"{source}: event {i}: missing {', '.join(missing)}")
        if e["event"] not in EVENT_TYPES:
            raise EventError(f"{source}: event {i}: unknown event type {e['event']!r}; "
                             f"expected one of {', '.join(EVENT_TYPES)}")
    return events


@dataclass
class EventsReport:
    received: int = 0
    stored: int = 0                 # new (an event already stored is not stored again)
    unmatched: int = 0              # no relance_message_id we know
    suppressed: int = 0             # addresses newly put on the suppression list
    confirmed: int = 0              # uncertain messages now known to be sent
    by_type: dict[str, int] = field(default_factory=dict)


def _reason(e: dict) -> str | None:
    return e.get("reason") or e.get("response") or e.get("url") or e.get("type")


def store(con: duckdb.DuckDBPyConnection, events: list[dict], source: str) -> EventsReport:
    """Store the events, update suppressions and uncertain messages: one transaction."""
    report = EventsReport(received=len(events))
    for e in events:
        report.by_type[e["event"]] = report.by_type.get(e["event"], 0) + 1
    table = pa.table({
        "event_id": [str(e.get("sg_event_id") or f"{e.get('sg_message_id')}:{e['event']}:"
                                                    f"{e['timestamp']}:{e['email']}") for e in events],
        "message_id": [e.get("relance_message_id") for e in events],
        "campaign_id": [e.get("relance_campaign") for e in events],
        "email": [str(e["email"]) for e in events],
        "event": [e["event"] for e in events],
        "occurred_at": pa.array([datetime.fromtimestamp(int(e["timestamp"]), timezone.utc)
                                 for e in events], pa.timestamp("us", tz="UTC")),
        "reason": [None if _reason(e) is None else str(_reason(e)) for e in events],
        "bounce_type": [e.get("type") for e in events],
        "provider_message_id": [(e.get("sg_message_id") or "").split(".")[0] or None for e in events],
        "payload": [json.dumps(e) for e in events],
    })
    con.register("incoming_events", table)
    try:
        with transaction(con):
            before = _counts(con)
            execute_script(con, (HERE / "events.sql").read_text(encoding="utf-8"),
                           {"source": source, "now": clock.now()})
            after = _counts(con)
            report.unmatched = con.execute(
                "select count(*) from incoming_events i left join messages m using (message_id) "
                "where m.message_id is null").fetchall()[0][0]
    finally:
        con.unregister("incoming_events")
    report.stored = after[0] - before[0]
    report.suppressed = after[1] - before[1]
    report.confirmed = before[2] - after[2]
    return report


def _counts(con) -> tuple[int, int, int]:
    return con.execute(
        "select (select count(*) from message_events), (select count(*) from suppressions), "
        "(select count(*) from messages where status = 'uncertain')").fetchall()[0]


def import_file(con: duckdb.DuckDBPyConnection, path: Path) -> EventsReport:
    """Events saved from SendGrid (a JSON array, or one JSON array or event per line)."""
    raw = path.read_bytes()
    try:
        json.loads(raw)
        events = parse(raw, str(path))
    except ValueError:               # not one JSON document: one per line
        events = []
        for n, line in enumerate(raw.decode("utf-8").splitlines(), 1):
            if line.strip():
                events += parse(line.encode(), f"{path}:{n}")
    return store(con, events, source=str(path))
