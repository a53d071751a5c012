"""A local stand-in for SendGrid's v3 mail/send, for tests and benchmarks.

It checks requests as SendGrid documents them (Authorization, JSON body, the rules of
sendgrid_validation.py, the 30 MB size limit) and answers as SendGrid does: 202 with
X-Message-Id, 200 in sandbox mode, 400/401/413 with SendGrid's error JSON. It can be told,
request by request, to answer 400, 401, 403, 413, 429 (Retry-After, or SendGrid's own
X-RateLimit-* headers only), 500 or 503, to hang without answering, to hold any answer
(accepted or not: so a test can kill the sender while its request is at SendGrid), to drop
the connection after accepting, or to reset it (a TCP RST) half-way through reading the
request or writing its answer; told which addresses it refuses (a 400 naming their
personalization, in SendGrid's older `field` form or its newer `Validation error(s): ...
for field ...` message; or a 413 for the whole request); and, served over TLS, to present
a certificate the client does not trust, to answer bytes that are not TLS, or to hold the
handshake, connection by connection. It records every personalization it accepted, so
tests count duplicates and losses, and (with --details) which messages each request
carried and how it was answered, so tests know which messages reached it.

    python -m tests.fakes.sendgrid_server --key SG.test [--port 0] [--details]
        [--cert C --cert-key K [--untrusted-cert C2 --untrusted-key K2]]

prints `listening on PORT` (over TLS, then `control on PORT`: the control endpoints over
plain HTTP) and serves until killed. Control endpoints (no auth):
POST /_control/script [{"status": 429, "retry_after": 2}, ...] (one entry per coming
request; "times": n repeats one; "hang": s; "hold": s; "drop": true; "reset": "request" or
"answer"; over TLS, "tls": "untrusted", "garbage" or "hold"), POST /_control/clear-script,
POST /_control/refuse {"emails": {"a@b.org": 400}, "form": "field" or "message"},
POST /_control/error-form {"form": "field" or "message"} (how the 400s of its own checks
name what they refuse),
GET /_control/accepted, GET /_control/state, GET /_control/requests, POST /_control/reset.
A reset also releases whatever an earlier test left held.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import socket
import ssl
import struct
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.fakes.sendgrid_validation import HELP, MAX_BODY, _error, in_message, validate

# a request's message ids, read even from the half of a body a reset left
MESSAGE_IDS = re.compile(rb'"relance_message_id":\s*"([^"\\]+)"')
TEXTS = {401: "The provided authorization grant is invalid, expired, or revoked",
         403: "access forbidden", 413: "Payload Too Large", 429: "too many requests",
         500: "internal server error", 503: "service unavailable"}


class State:
    def __init__(self, key: str, details: bool):
        self.key = key
        self.details = details
        self.lock = threading.RLock()
        self.generation = 0
        self.released = threading.Event()
        self.reset()

    def reset(self):
        with self.lock:
            # what an earlier test left held (its sender is gone) stops now, uncounted
            self.released.set()
            self.released = threading.Event()
            self.generation += 1
            self.script: list[dict] = []
            self.accepted: Counter = Counter()     # relance_message_id (or address) -> times
            self.mails: list[dict] = []            # with --details: each accepted e-mail
            self.log: list[dict] = []              # with --details: each request's ids, answer
            self.requests = 0
            self.n_accepted_requests = 0
            self.held: dict[int, list[str]] = {}   # request number -> its message ids
            self.statuses: Counter = Counter()
            self.refused: dict[str, int] = {}      # address -> 400 or 413, until reset
            self.refusal_form = "field"
            self.error_form = "field"              # how a 400 of validate() names what it refused

    def next_behaviour(self) -> tuple[int, dict]:
        """The coming request's number and what the script says to do with it."""
        with self.lock:
            self.requests += 1
            if not self.script:
                return self.requests, {}
            entry = self.script[0]
            times = entry.get("times", 1) - 1
            if times <= 0:
                self.script.pop(0)
            else:
                self.script[0] = {**entry, "times": times}
            return self.requests, entry

    def next_connection(self) -> tuple[int, dict]:
        """Over TLS: a script entry naming a `tls` fault is this connection's (it will carry
        no request); otherwise the request it carries takes its own entry."""
        with self.lock:
            if self.script and "tls" in self.script[0]:
                return self.next_behaviour()
            return 0, {}

    def note(self, n: int, ids: list[str], answer: str | int, **more) -> None:
        if self.details:
            with self.lock:
                self.log.append({"n": n, "ids": ids, "answer": answer, **more})

    def wait(self, seconds: float) -> bool:
        """Wait `seconds`; False if a reset came meanwhile (its test is over)."""
        with self.lock:
            generation, released = self.generation, self.released
        released.wait(seconds)
        return self.generation == generation

    def hold(self, seconds: float, n: int, ids: list[str]) -> bool:
        """Hold request n (counted in `holding`) for `seconds`; False if a reset came
        meanwhile (its test is over)."""
        with self.lock:
            generation, released = self.generation, self.released
            self.held[n] = ids
        released.wait(seconds)
        with self.lock:
            if self.generation != generation:
                return False
            self.held.pop(n, None)
            return True

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
            "from": mail["from"],
            # SendGrid: substitutions "apply to the text and html content of the body of your
            # email, in addition to the subject and reply-to parameters"
            "reply_to": {**mail["reply_to"], "email": apply(mail["reply_to"].get("email", ""))}
                        if isinstance(mail.get("reply_to"), dict) else mail.get("reply_to"),
            "subject": apply(p.get("subject") or mail.get("subject") or ""),
            "text": content.get("text/plain"), "html": content.get("text/html"),
            "headers": {**(mail.get("headers") or {}), **(p.get("headers") or {})},
            "custom_args": {**(mail.get("custom_args") or {}), **(p.get("custom_args") or {})},
            "categories": mail.get("categories") or [], "template_id": mail.get("template_id"),
            "dynamic_template_data": p.get("dynamic_template_data")}


def _ids(state: State, raw: bytes) -> list[str]:
    # with --details only: the benchmark's server reads 1,000-message bodies at full speed
    return [m.decode() for m in MESSAGE_IDS.findall(raw)] if state.details else []


def _refusals(state: State, mail: dict) -> tuple[int, list[dict], list[int]] | None:
    """The answer to a request naming an address the test made SendGrid refuse: 413 for
    the whole request, or a 400 naming each such personalization, in the form chosen
    (older: `field`; newer: the field only inside `message`, `field` null)."""
    if not state.refused or not isinstance(mail, dict):
        return None
    named = [(i, state.refused[t["email"].lower()])
             for i, p in enumerate(mail.get("personalizations") or [])
             for t in (p.get("to") or []) if str(t.get("email", "")).lower() in state.refused]
    if not named:
        return None
    if any(status == 413 for _, status in named):
        return 413, [{"message": TEXTS[413], "field": None, "help": None}], []
    text = "Does not contain a valid address."
    if state.refusal_form == "message":
        errors = [{"message": f"Validation error(s): {text} for field personalizations.{i}",
                   "field": None, "help": None} for i, _ in named]
    else:
        errors = [{"message": text, "field": f"personalizations.{i}.to.0.email",
                   "help": f"{HELP}#message.personalizations.to"} for i, _ in named]
    return 400, errors, [i for i, _ in named]


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

        def _reset(self):
            """Close with a TCP reset (RST), as a load balancer giving up does."""
            self.close_connection = True
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            os.close(self.connection.detach())

        def do_GET(self):
            with state.lock:
                if self.path == "/_control/accepted":
                    self._reply(200, {"accepted": dict(state.accepted), "mails": state.mails},
                                count=False)
                elif self.path == "/_control/state":
                    self._reply(200, {"requests": state.requests, "holding": len(state.held),
                                      "held": [{"n": n, "ids": ids} for n, ids in state.held.items()],
                                      "accepted_requests": state.n_accepted_requests,
                                      "accepted_messages": sum(state.accepted.values()),
                                      "statuses": dict(state.statuses)}, count=False)
                elif self.path == "/_control/requests":
                    self._reply(200, state.log, count=False)
                else:
                    self._reply(404, {"errors": [{"message": "not found"}]})

        def _control(self, length: int) -> None:
            payload = json.loads(self.rfile.read(length) or b"null")
            with state.lock:
                if self.path == "/_control/script":
                    state.script.extend(payload)
                elif self.path == "/_control/clear-script":
                    state.script = []
                elif self.path == "/_control/refuse":
                    state.refused.update({k.lower(): v for k, v in payload["emails"].items()})
                    state.refusal_form = payload.get("form", "field")
                elif self.path == "/_control/error-form":
                    assert payload["form"] in ("field", "message"), payload
                    state.error_form = payload["form"]
                elif self.path == "/_control/reset":
                    state.reset()
            self._reply(200, {}, count=False)

        def _verdict(self, raw: bytes, behaviour: dict):
            """(status, errors, headers, named personalizations) SendGrid would answer."""
            if self.headers.get("Authorization", "") != f"Bearer {state.key}":
                return 401, [{"message": TEXTS[401], "field": None, "help": None}], {}, []
            status = behaviour.get("status", 202)
            if status == 429:
                # SendGrid's rate-limit headers; Retry-After only when the test asks for it
                reset = int(time.time() + behaviour.get("retry_after", behaviour.get("reset_in", 1)))
                headers = {"X-RateLimit-Limit": 600, "X-RateLimit-Remaining": 0,
                           "X-RateLimit-Reset": reset}
                if "retry_after" in behaviour:
                    headers["Retry-After"] = behaviour["retry_after"]
                return 429, [{"message": TEXTS[429], "field": None, "help": None}], headers, []
            if status in (401, 403, 413, 500, 503) or (status == 400 and "errors" in behaviour):
                errors = behaviour.get("errors") or [{"message": TEXTS[status], "field": None,
                                                      "help": None}]
                return status, errors, {}, []
            if self.headers.get("Content-Type", "").split(";")[0] != "application/json":
                return 400, [_error("Content-Type should be application/json.", None,
                                    "content-type")], {}, []
            try:
                mail = json.loads(raw)
            except ValueError:
                return 400, [_error("Bad Request", None, "body")], {}, []
            refused = _refusals(state, mail)
            if refused:
                return refused[0], refused[1], {}, refused[2]
            errors = validate(mail)
            if errors:
                if state.error_form == "message":
                    errors = [in_message(e) for e in errors]
                return 400, errors, {}, []
            sandbox = bool(((mail.get("mail_settings") or {}).get("sandbox_mode") or {}).get("enable"))
            return (200 if sandbox else 202), mail, {}, []

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            if self.path.startswith("/_control/"):
                self._control(length)
                return
            if self.path != "/v3/mail/send":
                self._reply(404, {"errors": [{"message": "not found", "field": None, "help": None}]})
                return
            if length > MAX_BODY:
                self.rfile.read(length)
                self._reply(413, {"errors": [{"message": TEXTS[413], "field": None,
                                              "help": None}]})
                return
            n, behaviour = state.next_behaviour()
            if behaviour.get("reset") == "request":
                # the connection dies half-way through the request: SendGrid has part of it
                ids = _ids(state, self.rfile.read(max(1, length // 2)))
                state.note(n, ids, "reset while reading the request")
                if state.hold(behaviour.get("hold", 0), n, ids):
                    self._reset()
                return
            raw = self.rfile.read(length)
            ids = _ids(state, raw)
            if behaviour.get("hang"):
                state.note(n, ids, "hang")
                state.wait(behaviour["hang"])           # the client times out first
                self.close_connection = True
                return
            status, body, headers, named = self._verdict(raw, behaviour)
            if status >= 300:
                state.note(n, ids, status, named=[ids[i] for i in named if i < len(ids)])
                if state.hold(behaviour.get("hold", 0), n, ids):
                    self._reply(status, {"errors": body}, headers)
                return
            x_message_id = secrets.token_urlsafe(16)
            state.accept(body, x_message_id, status == 200)
            if behaviour.get("reset") == "answer":
                # accepted; the connection dies half-way through the answer
                state.note(n, ids, "reset while writing the answer")
                self.wfile.write(b"HTTP/1.1 202 Accepted\r\nServer: nginx\r\nX-Message-")
                if state.hold(behaviour.get("hold", 0), n, ids):
                    self._reset()
                return
            state.note(n, ids, status)
            if behaviour.get("hold"):
                # accepted, the answer held back: a sender killed now never hears of it
                if not state.hold(behaviour["hold"], n, ids):
                    return
            if behaviour.get("drop"):
                self.close_connection = True     # accepted, connection closed, no answer
                return
            self._reply(status, None, {"X-Message-Id": x_message_id})

    return Handler


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def handle_error(self, request, client_address):
        # a sender killed mid-request leaves a dead connection: nothing to report
        if not isinstance(sys.exc_info()[1], (ConnectionError, ssl.SSLError, TimeoutError)):
            super().handle_error(request, client_address)


class TLSServer(Server):
    """HTTPS, its handshake made per connection in that connection's thread, so that one
    connection can be given a certificate nobody trusts, bytes that are not TLS, or a
    handshake held, while the others are served normally."""

    def __init__(self, address, handler, state: State, trusted: ssl.SSLContext,
                 untrusted: ssl.SSLContext | None):
        super().__init__(address, handler)
        self.state, self.trusted, self.untrusted = state, trusted, untrusted

    def finish_request(self, request, client_address):
        n, fault = self.state.next_connection()
        kind = fault.get("tls")
        if kind:
            self.state.note(n, [], f"tls {kind}")
        if kind == "hold" and not self.state.hold(fault.get("hold", 60), n, []):
            return
        if kind == "garbage":
            request.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\nthis port does not speak TLS\r\n")
            return
        context = self.untrusted if kind == "untrusted" else self.trusted
        try:
            conn = context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return          # the client refused the certificate, or went away
        try:
            super().finish_request(conn, client_address)
        finally:
            try:
                conn.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            conn.close()


def _context(cert: str, key: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--key", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--details", action="store_true",
                        help="keep each accepted e-mail and each request's message ids "
                             "(tests), not only the counts (bench)")
    parser.add_argument("--cert", help="serve HTTPS with this certificate (PEM), as SendGrid does")
    parser.add_argument("--cert-key", help="the certificate's private key (PEM)")
    parser.add_argument("--untrusted-cert", help="the certificate a `tls: untrusted` fault "
                                                 "presents (one the client does not trust)")
    parser.add_argument("--untrusted-key")
    args = parser.parse_args(argv)
    state = State(args.key, args.details)
    handler = make_handler(state)
    if args.cert:
        untrusted = (_context(args.untrusted_cert, args.untrusted_key)
                     if args.untrusted_cert else None)
        server = TLSServer(("127.0.0.1", args.port), handler, state,
                           _context(args.cert, args.cert_key), untrusted)
        control = Server(("127.0.0.1", 0), handler)
        threading.Thread(target=control.serve_forever, daemon=True).start()
        print(f"listening on {server.server_address[1]}", flush=True)
        print(f"control on {control.server_address[1]}", flush=True)
    else:
        server = Server(("127.0.0.1", args.port), handler)
        print(f"listening on {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
