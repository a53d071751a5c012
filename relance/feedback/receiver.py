"""A small HTTP receiver for what comes back from mail: `relance serve`.

    POST /events/sendgrid      SendGrid's Event Webhook (signed; SENDGRID_WEBHOOK_PUBLIC_KEY)
    GET  /unsubscribe?l&c&t    a page confirming the unsubscribe, this campaign or all
    POST /unsubscribe?l&c&t    RFC 8058 one-click (mail clients' button), or the page's form
    POST /inbound/sendgrid     SendGrid's Inbound Parse: a learner's reply (relance/replies/)
    GET  /helpful?m&a&t        "was this helpful?": a page to confirm the answer (helpful.py)
    POST /helpful?m&a&t        the page's form: the answer and an optional short comment

The warehouse is opened for each request and closed at once: DuckDB lets one process write
at a time, and deliveries must not wait for the receiver. When a delivery holds it, events
get 503 with Retry-After (SendGrid retries for 24 hours) and an unsubscribe is written to a
spool file beside the warehouse, which the next delivery reads before it sends anything.

It faces the internet: bodies are capped, slow clients cut off, workers bounded
(http_limits.py), and a signed batch is accepted only near the moment it was signed.
"""

from __future__ import annotations

import html
import json
import os
import sys
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import duckdb

import warehouse
from relance.delivery import links
from relance.feedback import events, helpful, unsubscribe
from relance.feedback import spool as spools
from relance.feedback.http_limits import BoundedServer, Limits, LimitedHandler, Refusal


def spool_path(warehouse_path: str | Path) -> Path:
    return spools.spool_file(warehouse_path, "unsubscribes")


def _open(warehouse_path: Path, wait: float):
    """The warehouse, or None if another process still holds it after `wait` seconds."""
    try:
        return warehouse.connect(warehouse_path, wait_seconds=wait)
    except warehouse.WarehouseBusy:
        return None


PAGE = """<!doctype html><html lang="fr"><meta charset="utf-8"><title>{title}</title>
<body style="font-family:sans-serif;max-width:36em;margin:3em auto"><h1>{title}</h1>{body}</body></html>"""


def make_handler(warehouse_path: Path, key, wait: float = 5.0, inbound=None):
    """`inbound`: what takes learners' replies (relance.replies.inbound_parse.Route, given by
    the CLI: feedback does not import the replies, which record stops through it); None:
    POST /inbound/sendgrid is 404."""
    class Handler(LimitedHandler):
        def _send(self, status: int, body: str, ctype: str = "text/html; charset=utf-8",
                  headers: dict | None = None):
            self.reply(status, body, ctype, headers)

        def _link(self):
            q = parse_qs(urlparse(self.path).query)
            lid, cid, tok = (q.get(k, [""])[0] for k in ("l", "c", "t"))
            if not (lid and cid and tok and links.verify(lid, cid, tok)):
                self._send(400, PAGE.format(title="Lien invalide / Invalid link", body=(
                    "<p>Ce lien de désinscription est incomplet ou altéré. / This unsubscribe "
                    "link is incomplete or altered.</p>")))
                return None
            return lid, cid

        def _helpful_link(self):
            link = helpful.verified(parse_qs(urlparse(self.path).query))
            if link is None:
                self._send(400, PAGE.format(title="Lien invalide / Invalid link", body=(
                    "<p>Ce lien est incomplet ou altéré. / This link is incomplete or "
                    "altered.</p>")))
            return link

        def do_GET(self):
            if urlparse(self.path).path == "/helpful":
                link = self._helpful_link()
                if link:
                    self._send(200, PAGE.format(
                        title="Ce message vous a-t-il été utile ? / Was this message helpful?",
                        body=helpful.question_page(self.path, link[1])))
                return
            if urlparse(self.path).path != "/unsubscribe":
                self._send(404, "not found", "text/plain")
                return
            link = self._link()
            if link:
                action = html.escape(self.path, quote=True)
                self._send(200, PAGE.format(title="Se désinscrire / Unsubscribe", body=(
                    f'<form method="post" action="{action}">'
                    '<p><button name="scope" value="campaign">Ne plus recevoir ces messages / '
                    'Stop these messages</button></p>'
                    '<p><button name="scope" value="all">Ne plus rien recevoir / Stop all '
                    'messages</button></p></form>')))

        def do_POST(self):
            limits = self.server.limits
            path = urlparse(self.path).path
            if path == "/events/sendgrid":
                route, cap, setting = (self._events, limits.max_events_bytes,
                                       "RELANCE_SERVE_MAX_EVENTS_BYTES")
            elif path == "/unsubscribe":
                route, cap, setting = (self._unsubscribe, limits.max_form_bytes,
                                       "RELANCE_SERVE_MAX_FORM_BYTES")
            elif path == "/inbound/sendgrid" and inbound is not None:
                if not self._inbound_allowed():
                    return
                route, cap, setting = (self._inbound, limits.max_inbound_bytes,
                                       "RELANCE_SERVE_MAX_INBOUND_BYTES")
            elif path == "/helpful":
                route, cap, setting = (self._helpful, limits.max_form_bytes,
                                       "RELANCE_SERVE_MAX_FORM_BYTES")
            else:
                self._send(404, "not found", "text/plain")
                return
            try:
                body = self.read_body(cap, setting)
            except Refusal as refusal:
                self.refuse(refusal)
                return
            route(body)

        def _inbound_allowed(self) -> bool:
            """With RELANCE_INBOUND_PARSE_TOKEN set, the Inbound Parse URL must carry it
            (`?token=`): SendGrid does not sign these posts. Checked before the body is read."""
            import hmac
            expected = os.environ.get("RELANCE_INBOUND_PARSE_TOKEN")
            if not expected:
                return True
            given = parse_qs(urlparse(self.path).query).get("token", [""])[0]
            if hmac.compare_digest(given.encode(), expected.encode()):
                return True
            self.refuse(Refusal(403, "POST /inbound/sendgrid needs ?token= with the value of "
                                     "RELANCE_INBOUND_PARSE_TOKEN (set in the Inbound Parse URL)"))
            return False

        def _inbound(self, body: bytes):
            try:
                mail = inbound.parse(body, self.headers.get("Content-Type"))
            except ValueError as exc:
                # a 4xx: SendGrid does not retry it; the reason is in its log and ours
                print(f"relance serve: POST /inbound/sendgrid: {exc}", file=sys.stderr, flush=True)
                self._json(400, {"error": str(exc)})
                return
            con = _open(warehouse_path, wait)
            if con is None:       # a delivery holds the warehouse: SendGrid retries 5xx
                self._json(503, {"error": "busy, retry later"}, {"Retry-After": "60"})
                return
            try:
                stored = inbound.store(con, mail)
            finally:
                con.close()
            self._json(200, {"reply_id": stored.reply_id, "status": stored.status,
                             "already": stored.already, "reason": stored.reason})

        def _json(self, status: int, answer: dict, headers: dict | None = None):
            self._send(status, json.dumps(answer), "application/json", headers)

        def _events(self, body: bytes):
            try:
                if key is None:
                    events.public_key_from_env()      # raises, saying what to set
                events.verify(key, body, self.headers.get(events.SIGNATURE_HEADER),
                              self.headers.get(events.TIMESTAMP_HEADER),
                              window_seconds=self.server.limits.signature_window_seconds)
                parsed, refused = events.split(body, "webhook")
            except events.EventError as exc:
                self._json(401 if isinstance(exc, events.SignatureError) else 400,
                           {"error": str(exc)})
                return
            answer = {"stored": 0, "suppressed": 0}
            if parsed:
                con = _open(warehouse_path, wait)
                if con is None:       # a delivery holds the warehouse: SendGrid will try again
                    self._json(503, {"error": "busy, retry later"}, {"Retry-After": "60"})
                    return
                try:
                    report = events.store(con, parsed, source="webhook")
                finally:
                    con.close()
                answer = {"stored": report.stored, "suppressed": report.suppressed}
            if not refused:
                self._json(200, answer)
                return
            # The good events are stored (events.split says why); the batch is answered 400,
            # naming the others, so that SendGrid's webhook log shows it and the operator
            # sees it here. SendGrid's retries of it store nothing twice.
            kept = f"the other {len(parsed)} are stored" if parsed else "none is stored"
            error = (f"{len(refused)} of {len(refused) + len(parsed)} events refused ({kept}): "
                     + "; ".join(refused[:3])
                     + (f"; and {len(refused) - 3} more" if len(refused) > 3 else ""))
            print(f"relance serve: POST /events/sendgrid: {error}", file=sys.stderr, flush=True)
            self._json(400, {"error": error, "refused": refused[:20], **answer})

        def _unsubscribe(self, body: bytes):
            link = self._link()
            if not link:
                return
            lid, cid = link
            form = parse_qs(body.decode("utf-8", "replace"))
            scope_all = form.get("scope", [""])[0] == "all"
            campaign = None if scope_all else cid
            con = _open(warehouse_path, wait)
            if con is None:
                spools.append(spool_path(warehouse_path),
                              {"learner_id": lid, "campaign_id": campaign})
            else:
                try:
                    unsubscribe.record(con, lid, campaign, source="link")
                except unsubscribe.UnsubscribeError:
                    pass          # a learner since deleted: nothing to send them anyway
                finally:
                    con.close()
            self._send(200, PAGE.format(title="C'est fait / Done", body=(
                "<p>Vous ne recevrez plus " + ("aucun message." if scope_all else "ces messages.")
                + " / You will get " + ("no more messages." if scope_all else
                                        "no more of these messages.") + "</p>")))

        def _helpful(self, body: bytes):
            link = self._helpful_link()
            if not link:
                return
            message_id, answer = link
            form = parse_qs(body.decode("utf-8", "replace"))
            given = form.get("answer", [answer])[0]
            answer = given if given in ("yes", "no") else answer
            comment = form.get("comment", [""])[0]
            con = _open(warehouse_path, wait)
            if con is None:
                helpful.spool(warehouse_path, message_id, answer, comment)
            else:
                try:
                    helpful.record(con, message_id, answer, comment)
                except helpful.HelpfulError:
                    self._send(404, PAGE.format(title="Message inconnu / Unknown message", body=(
                        "<p>Ce message n'est plus connu. / This message is no longer "
                        "known.</p>")))
                    return
                finally:
                    con.close()
            self._send(200, PAGE.format(title="Merci / Thank you", body=(
                "<p>Votre réponse est enregistrée. / Your answer is recorded.</p>")))

    return Handler


def import_spool(con: duckdb.DuckDBPyConnection, warehouse_path: str | Path) -> int:
    """Unsubscribes the receiver could not write while a delivery held the warehouse.
    Recording is idempotent, so a spool left half-imported by a crash is simply read again."""
    n = 0
    for item, at in spools.take(spool_path(warehouse_path)):
        try:
            unsubscribe.record(con, item["learner_id"], item.get("campaign_id"),
                               source="link", at=at)
            n += 1
        except unsubscribe.UnsubscribeError:
            pass      # a learner since deleted: nothing to send them anyway
    # "was this helpful?" answers written meanwhile too (counted apart: not unsubscribes)
    helpful.import_spool(con, warehouse_path)
    return n


def serve(warehouse_path: Path, host: str = "127.0.0.1", port: int = 8000, *,
          wait: float = 5.0, limits: Limits | None = None, now: datetime | None = None,
          on_ready=None, inbound=None) -> None:
    """Serve until stopped. `now`: the clock's moment for every request (signatures' age,
    unsubscribes' dates) instead of the wall clock, e.g. to replay saved requests."""
    try:
        key = events.public_key_from_env()
    except events.EventError:
        key = None              # unsubscribe links still work; events are refused, saying why
    server = BoundedServer((host, port), make_handler(Path(warehouse_path), key, wait, inbound),
                           limits or Limits.from_settings())
    server.serve(now, on_ready)
