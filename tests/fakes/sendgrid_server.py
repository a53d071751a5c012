"""A local stand-in for SendGrid's v3 mail/send, for tests and benchmarks.

It checks requests as SendGrid documents them (Authorization, JSON body, required fields,
at most 1,000 personalizations and recipients, each address once, valid addresses,
substitutions and custom_args of at most 10,000 bytes, at most 10 categories, the 30 MB
size limit, dynamic_template_data only with a template) and answers as SendGrid does:
202 with X-Message-Id, 200 in sandbox mode, 400/401/413 with SendGrid's error JSON. A 400
names what it refused in either of SendGrid's forms: in `field` (its documented errors,
the default) or, as its newer validation errors do, only at the end of `message`
("Validation error(s): ... for field personalizations.1", `field` null). It can
be told, request by request, to answer 400, 401, 403, 413, 429 (Retry-After or
X-RateLimit-Reset), 500 or 503, to hang without answering, or to accept and then hold its
answer (so a test can kill the sender between acceptance and acknowledgement). It records
every personalization it accepted, so tests count duplicates and losses.

    python -m tests.fakes.sendgrid_server --key SG.test [--port 0] [--details]

prints `listening on PORT` and serves until killed. Control endpoints (no auth):
POST /_control/script [{"status": 429, "retry_after": 2}, ...] (one entry per coming
request; "times": n repeats one; "hang": s; "hold": s; "drop": true),
POST /_control/clear-script, POST /_control/error-form {"form": "field"|"message"},
GET /_control/accepted, GET /_control/state, POST /_control/reset.
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import ssl
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 30 * 1024 * 1024
HELP = "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html"
EMAIL = re.compile(r"^[^@\s\"<>,;]+@[^@\s\"<>,;]+\.[^@\s\"<>,;]+$")
ERROR_FORMS = ("field", "message")
RESERVED_HEADERS = {"x-sg-id", "x-sg-eid", "received", "dkim-signature", "content-type",
                    "content-transfer-encoding", "to", "from", "subject", "reply-to", "cc", "bcc"}


def _error(message: str, field: str | None, anchor: str) -> dict:
    return {"message": message, "field": field, "help": f"{HELP}#message.{anchor}"}


def _in_message(error: dict) -> dict:
    """An error as SendGrid's newer validation answers it (its support article "Validation
    Error(s) when Sending Emails Using the Mail Send API"): what it names only in the text,
    a personalization's errors named at the personalization ("... for field
    personalizations.0"), `field` and `help` null."""
    field = error.get("field")
    if not field:
        return {**error, "help": None}
    named = ".".join(field.split(".")[:2]) if field.startswith("personalizations.") else field
    return {"message": f"Validation error(s): {error['message']} for field {named}",
            "field": None, "help": None}


def validate(mail: object) -> list[dict]:
    """SendGrid's 400 errors for this body; empty if it would be accepted."""
    if not isinstance(mail, dict):
        return [_error("Bad Request", None, "body")]
    errors: list[dict] = []
    template = mail.get("template_id")
    ps = mail.get("personalizations")
    if not isinstance(ps, list) or not ps:
        errors.append(_error("The personalizations field is required and must have at least "
                             "one personalization.", "personalizations", "personalizations"))
        ps = []
    if len(ps) > 1000:
        errors.append(_error(f"The personalization block is limited to 1000 personalizations "
                             f"per API request. You have provided {len(ps)} personalizations. "
                             "Please consider splitting this into multiple requests and "
                             "resending your request.", "personalizations", "personalizations"))
        return errors
    seen: set[str] = set()
    n_recipients = 0
    for i, p in enumerate(ps):
        where = f"personalizations.{i}"
        if not isinstance(p, dict) or not isinstance(p.get("to"), list) or not p["to"]:
            errors.append(_error("The to array is required for all personalization objects, "
                                 "and must have at least one email object with a valid email "
                                 "address.", f"{where}.to", "personalizations.to"))
            continue
        for kind in ("to", "cc", "bcc"):
            for j, r in enumerate(p.get(kind) or []):
                n_recipients += 1
                email = r.get("email") if isinstance(r, dict) else None
                # SendGrid takes no address that needs SMTPUTF8 (a non-ASCII local part)
                if (not isinstance(email, str) or not EMAIL.match(email)
                        or not email.partition("@")[0].isascii()):
                    errors.append(_error("Does not contain a valid address.",
                                         f"{where}.{kind}.{j}.email", f"personalizations.{kind}"))
                    continue
                if email.lower() in seen:
                    errors.append(_error(
                        "Each email address in the personalization block should be unique "
                        "between to, cc, and bcc. We found the first duplicate instance of "
                        f"[{email}] in the personalizations.{i}.{kind} field.",
                        f"{where}.{kind}.{j}.email", "personalizations"))
                seen.add(email.lower())
        if not template and not (p.get("subject") or mail.get("subject")):
            errors.append(_error("The subject is required. You can get around this requirement "
                                 "if you use a template with a subject defined or if every "
                                 "personalization has a subject defined.", f"{where}.subject",
                                 "subject"))
        subs = p.get("substitutions") or {}
        if len(json.dumps(subs).encode()) > 10_000:
            errors.append(_error("The total size of your substitutions may not exceed 10,000 "
                                 "bytes per personalization object.", f"{where}.substitutions",
                                 "personalizations.substitutions"))
        args = {**(mail.get("custom_args") or {}), **(p.get("custom_args") or {})}
        if len(json.dumps(args).encode()) > 10_000:
            errors.append(_error("The total size of custom arguments may not exceed 10,000 "
                                 "bytes per personalization object.", f"{where}.custom_args",
                                 "custom_args"))
        if any(not isinstance(v, str) for v in args.values()):
            errors.append(_error("Custom arguments must be strings.", f"{where}.custom_args",
                                 "custom_args"))
        for name, value in (p.get("headers") or {}).items():
            if name.lower() in RESERVED_HEADERS or not isinstance(value, str):
                errors.append(_error(f"The header {name} is reserved or its value is not a "
                                     "string.", f"{where}.headers", "headers"))
        if "dynamic_template_data" in p and not str(template or "").startswith("d-"):
            errors.append(_error("dynamic_template_data is only allowed with a dynamic "
                                 "template (template_id starting with d-).",
                                 f"{where}.dynamic_template_data", "template_id"))
    if n_recipients > 1000:
        errors.append(_error("There is a limit of 1000 total recipients (to + cc + bcc) per "
                             "request.", "personalizations", "personalizations"))
    sender = mail.get("from")
    if not isinstance(sender, dict) or not EMAIL.match(str(sender.get("email", ""))):
        errors.append(_error("The from object must be provided for every email send. It is an "
                             "object that requires the email parameter, but may also contain "
                             "a name parameter.", "from", "from"))
    reply_to = mail.get("reply_to")
    if reply_to is not None and not EMAIL.match(str((reply_to or {}).get("email", ""))):
        errors.append(_error("The reply_to email does not contain a valid address.",
                             "reply_to.email", "reply_to"))
    content = mail.get("content")
    if not template:
        if not isinstance(content, list) or not content:
            errors.append(_error("Unless a valid template_id is provided, the content parameter "
                                 "is required. There must be at least one defined content "
                                 "block.", "content", "content"))
        else:
            for k, c in enumerate(content):
                if not isinstance(c, dict) or not c.get("type") or not c.get("value"):
                    errors.append(_error("The content value must be a string at least one "
                                         "character in length.", f"content.{k}.value",
                                         "content.value"))
            types = [c.get("type") for c in content if isinstance(c, dict)]
            if "text/plain" in types and types[0] != "text/plain":
                errors.append(_error("If present, text/plain content must be first, followed "
                                     "by any other content.", "content.0.type", "content.type"))
    categories = mail.get("categories") or []
    if len(categories) > 10 or len(set(categories)) != len(categories) or any(
            not isinstance(c, str) or len(c) > 255 for c in categories):
        errors.append(_error("The categories parameter may contain at most 10 unique "
                             "categories of at most 255 characters.", "categories", "categories"))
    return errors


class State:
    def __init__(self, key: str, details: bool):
        self.key = key
        self.details = details
        self.lock = threading.RLock()
        self.reset()

    def reset(self):
        self.script: list[dict] = []
        self.error_form = "field"              # how a 400 names what it refused
        self.accepted: Counter = Counter()     # relance_message_id (or address) -> times
        self.mails: list[dict] = []            # with --details: each accepted e-mail
        self.requests = 0
        self.n_accepted_requests = 0
        self.holding = 0
        self.statuses: Counter = Counter()

    def next_behaviour(self) -> dict:
        with self.lock:
            self.requests += 1
            if not self.script:
                return {}
            entry = self.script[0]
            times = entry.get("times", 1) - 1
            if times <= 0:
                self.script.pop(0)
            else:
                self.script[0] = {**entry, "times": times}
            return entry

    def accept(self, mail: dict, message_id: str, sandbox: bool) -> None:
        with self.lock:
            self.n_accepted_requests += 1
            for p in mail["personalizations"]:
                mid = (p.get("custom_args") or {}).get("relance_message_id") or p["to"][0]["email"]
                self.accepted[mid] += 1
                if self.details:
                    self.mails.append(_expanded(mail, p, message_id, sandbox))


def _expanded(mail: dict, p: dict, x_message_id: str, sandbox: bool) -> dict:
    """One accepted e-mail as a recipient would get it (substitutions applied)."""
    subs = p.get("substitutions") or {}

    def apply(text: str) -> str:
        for k, v in subs.items():
            text = text.replace(k, v)
        return text

    content = {c["type"]: apply(c["value"]) for c in mail.get("content") or []}
    return {"x_message_id": x_message_id, "sandbox": sandbox, "to": p["to"],
            "from": mail["from"], "reply_to": mail.get("reply_to"),
            "subject": apply(p.get("subject") or mail.get("subject") or ""),
            "text": content.get("text/plain"), "html": content.get("text/html"),
            "headers": {**(mail.get("headers") or {}), **(p.get("headers") or {})},
            "custom_args": {**(mail.get("custom_args") or {}), **(p.get("custom_args") or {})},
            "categories": mail.get("categories") or [], "template_id": mail.get("template_id"),
            "dynamic_template_data": p.get("dynamic_template_data")}


def make_handler(state: State):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):      # quiet
            pass

        def _reply(self, status: int, body: dict | None = None, headers: dict | None = None,
                   count: bool = True):
            data = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, str(v))
            if data:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            if count:                  # mail/send answers only, not the control calls
                with state.lock:
                    state.statuses[status] += 1

        def do_GET(self):
            if self.path == "/_control/accepted":
                with state.lock:
                    self._reply(200, {"accepted": dict(state.accepted), "mails": state.mails},
                                count=False)
            elif self.path == "/_control/state":
                with state.lock:
                    self._reply(200, {"requests": state.requests, "holding": state.holding,
                                      "accepted_requests": state.n_accepted_requests,
                                      "accepted_messages": sum(state.accepted.values()),
                                      "statuses": dict(state.statuses)}, count=False)
            else:
                self._reply(404, {"errors": [{"message": "not found"}]})

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            if self.path.startswith("/_control/"):
                payload = json.loads(self.rfile.read(length) or b"null")
                with state.lock:
                    if self.path == "/_control/script":
                        state.script.extend(payload)
                    elif self.path == "/_control/clear-script":
                        state.script = []
                    elif self.path == "/_control/error-form":
                        assert payload["form"] in ERROR_FORMS, payload
                        state.error_form = payload["form"]
                    elif self.path == "/_control/reset":
                        state.reset()
                self._reply(200, {}, count=False)
                return
            if self.path != "/v3/mail/send":
                self._reply(404, {"errors": [{"message": "not found", "field": None, "help": None}]})
                return
            if length > MAX_BODY:
                self.rfile.read(length)
                self._reply(413, {"errors": [{"message": "Payload Too Large", "field": None,
                                              "help": None}]})
                return
            raw = self.rfile.read(length)
            behaviour = state.next_behaviour()
            if behaviour.get("hang"):
                time.sleep(behaviour["hang"])       # the client times out first
                self.close_connection = True
                return
            auth = self.headers.get("Authorization", "")
            if auth != f"Bearer {state.key}":
                self._reply(401, {"errors": [{
                    "message": "The provided authorization grant is invalid, expired, or revoked",
                    "field": None, "help": None}]})
                return
            status = behaviour.get("status", 202)
            if status == 429:
                headers = ({"Retry-After": behaviour["retry_after"]} if "retry_after" in behaviour
                           else {"X-RateLimit-Reset": int(time.time() + behaviour.get("reset_in", 1))})
                self._reply(429, {"errors": [{"message": "too many requests", "field": None,
                                              "help": None}]}, headers)
                return
            if status in (401, 403, 413, 500, 503) or (status == 400 and "errors" in behaviour):
                messages = {401: "The provided authorization grant is invalid, expired, or revoked",
                            403: "access forbidden", 413: "Payload Too Large",
                            500: "internal server error", 503: "service unavailable"}
                errors = behaviour.get("errors") or [{"message": messages[status],
                                                      "field": None, "help": None}]
                self._reply(status, {"errors": errors})
                return
            if self.headers.get("Content-Type", "").split(";")[0] != "application/json":
                self._reply(400, {"errors": [_error("Content-Type should be application/json.",
                                                    None, "content-type")]})
                return
            try:
                mail = json.loads(raw)
            except ValueError:
                self._reply(400, {"errors": [_error("Bad Request", None, "body")]})
                return
            errors = validate(mail)
            if errors:
                if state.error_form == "message":
                    errors = [_in_message(e) for e in errors]
                self._reply(400, {"errors": errors})
                return
            sandbox = bool(((mail.get("mail_settings") or {}).get("sandbox_mode") or {}).get("enable"))
            x_message_id = secrets.token_urlsafe(16)
            state.accept(mail, x_message_id, sandbox)
            if behaviour.get("hold"):
                # accepted, the answer held back: a sender killed now never hears of it
                with state.lock:
                    state.holding += 1
                time.sleep(behaviour["hold"])
                with state.lock:
                    state.holding -= 1
            if behaviour.get("drop"):
                self.close_connection = True     # accepted, connection closed, no answer
                return
            self._reply(200 if sandbox else 202, None, {"X-Message-Id": x_message_id})

    return Handler


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--key", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--details", action="store_true",
                        help="keep each accepted e-mail (tests), not only the counts (bench)")
    parser.add_argument("--cert", help="serve HTTPS with this certificate (PEM), as SendGrid does")
    parser.add_argument("--cert-key", help="the certificate's private key (PEM)")
    args = parser.parse_args(argv)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(State(args.key, args.details)))
    if args.cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.cert, args.cert_key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    server.daemon_threads = True
    server.request_queue_size = 128
    print(f"listening on {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
