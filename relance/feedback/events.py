"""What providers tell us after sending: SendGrid Event Webhook payloads, from the receiver
(relance/feedback/receiver.py) or from JSON files (`relance events import`).

Each event is stored once (by its `sg_event_id`) in `message_events`, joined to the ledger
by the `relance_message_id` the sendgrid channel put in its custom_args. Bounces, spam
reports and unsubscribes put the address on the suppression list, which the engine's
policies read at the next plan and delivery cancels what is already queued (cancel.sql).
An event about an 'uncertain' message proves SendGrid accepted it: it becomes 'sent'.

Signatures are checked as SendGrid documents them: ECDSA (P-256, SHA-256) over the
timestamp header followed by the raw body, with the public key shown in SendGrid's mail
settings (SENDGRID_WEBHOOK_PUBLIC_KEY, base64); and only near the moment they were made.
"""

from __future__ import annotations

import base64
import json
import math
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import duckdb
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


class SignatureError(EventError):
    """The request is not proven to come from SendGrid just now (the receiver answers 401)."""


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
           timestamp: str | None, *, window_seconds: float) -> None:
    """Raise SignatureError unless `signature` signs timestamp + payload, and `timestamp` is
    within `window_seconds` of the clock.

    SendGrid signs each POST as it sends it, so a genuine request, a late retry included,
    carries the moment it left (Symfony's SendGrid webhook parser holds requests to 300 s
    the same way); a captured request replayed later carries its old moment and is refused.
    The answer is a 401 whatever the reason: SendGrid retries any answer but a 2xx for 24
    hours, and a request of its own is signed afresh each time, so only a replay, or a
    clock that is wrong here, keeps being refused."""
    if not signature or not timestamp:
        raise SignatureError(f"unsigned request: the {SIGNATURE_HEADER} and {TIMESTAMP_HEADER} "
                             "headers are required")
    if not re.fullmatch(r"[0-9]{1,12}", timestamp):
        raise SignatureError(f"{TIMESTAMP_HEADER}: expected the Unix time (in seconds) SendGrid "
                             f"signed the request at, got {timestamp[:40]!r}")
    signed_at = datetime.fromtimestamp(int(timestamp), timezone.utc)
    now = clock.now()
    late = (now - signed_at).total_seconds()
    if abs(late) > window_seconds:
        raise SignatureError(
            f"the signature is {abs(late):.0f} s {'old' if late > 0 else 'in the future'} "
            f"(signed {signed_at:%Y-%m-%dT%H:%M:%SZ}, {TIMESTAMP_HEADER}; this server's clock "
            f"reads {now:%Y-%m-%dT%H:%M:%SZ}); a request is accepted within "
            f"{window_seconds:g} s of its signature, so a captured one cannot be replayed: if "
            "this clock is wrong, set it right (or widen RELANCE_SERVE_SIGNATURE_WINDOW_SECONDS)")
    try:
        key.verify(base64.b64decode(signature), timestamp.encode() + payload,
                   ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        raise SignatureError("the signature does not match the payload: not from SendGrid, "
                             "or altered on the way") from None


def parse(payload: bytes, source: str) -> list[dict]:
    """The events of a file: its first problem refuses it whole (fix it, import it again)."""
    events, problems = split(payload, source)
    if problems:
        raise EventError(problems[0])
    return events


def split(payload: bytes, source: str) -> tuple[list[dict], list[str]]:
    """The events of a batch that can be stored, and a located problem for each other one.
    Raises EventError when the payload is not a JSON array (or object) of events at all.

    The webhook stores the good events of a batch and refuses the others by name: SendGrid
    retries a refused batch for 24 hours, and a bounce or an unsubscribe must not be lost
    because another event of its batch is malformed (storing it again is harmless)."""
    try:
        events = json.loads(payload)
    except RecursionError:
        raise EventError(f"{source}: not JSON that can be read (nested too deeply)") from None
    except ValueError as exc:
        raise EventError(f"{source}: not JSON ({exc})") from None
    if isinstance(events, dict):
        events = [events]
    if not isinstance(events, list):
        raise EventError(f"{source}: expected a JSON array of SendGrid events, got {_show(events)}")
    good, problems = [], []
    for i, e in enumerate(events):
        problem = _problem(e)
        if problem:
            problems.append(f"{source}: event {i}: {problem}")
        else:
            good.append(e)
    return good, problems


# The text fields relance reads from an event (SendGrid sends each as a string, or not at all).
TEXT_FIELDS = ("sg_event_id", "sg_message_id", "relance_message_id", "relance_campaign",
               "type", "reason", "response", "url")
LAST_SECOND = 253402300799          # 9999-12-31T23:59:59Z, the last second a datetime holds


def _problem(e) -> str | None:
    """Why event `e` cannot be stored, or None."""
    if not isinstance(e, dict):
        return f"expected an object (one event), got {_show(e)}"
    missing = [k for k in ("event", "email", "timestamp") if k not in e]
    if missing:
        return f"missing {', '.join(missing)}"
    if e["event"] not in EVENT_TYPES:
        return f"unknown event type {_show(e['event'])}; expected one of {', '.join(EVENT_TYPES)}"
    if not isinstance(e["email"], str) or not e["email"]:
        return f"email: expected an address, got {_show(e['email'])}"
    if _seconds(e["timestamp"]) is None:
        return (f"timestamp: expected the event's Unix time in seconds (a number from 0 to "
                f"{LAST_SECOND}), got {_show(e['timestamp'])}")
    for k in TEXT_FIELDS:
        if e.get(k) is not None and not isinstance(e[k], str):
            return f"{k}: expected a string, got {_show(e[k])}"
    try:        # stored as the event's payload (JSON): no NaN, no unpaired surrogate
        json.dumps(e, allow_nan=False, ensure_ascii=False).encode("utf-8")
    except (ValueError, RecursionError):
        return "cannot be stored as JSON (NaN, Infinity, an unpaired surrogate or too deep)"
    return None


def _seconds(value) -> int | None:
    """A Unix time in seconds as SendGrid sends it (a number; a string of digits is read
    too), or None."""
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,12}", value):
        value = int(value)
    elif isinstance(value, float) and math.isfinite(value):
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= LAST_SECOND:
        return value
    return None


def _show(value) -> str:
    """A value quoted in a message, short (and never the repr of a deep structure)."""
    if isinstance(value, (list, dict)):
        return "an array" if isinstance(value, list) else "an object"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


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
    import pyarrow as pa        # imported when used: commands that never store events skip it
    table = pa.table({
        "event_id": [str(e.get("sg_event_id") or f"{e.get('sg_message_id')}:{e['event']}:"
                                                    f"{e['timestamp']}:{e['email']}") for e in events],
        "message_id": [e.get("relance_message_id") for e in events],
        "campaign_id": [e.get("relance_campaign") for e in events],
        "email": [str(e["email"]) for e in events],
        "event": [e["event"] for e in events],
        "occurred_at": pa.array([datetime.fromtimestamp(_seconds(e["timestamp"]), timezone.utc)
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
