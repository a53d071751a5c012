"""What the local stand-ins for LMS APIs share: a threaded HTTP server run in its own
process, a state the test sets (`PUT /__control__/state`: the site's data, its
credentials, failures to inject) and a log of the calls it answered
(`GET /__control__/calls`), secrets left out.

A failure is `{"match": {...}, "times": n, ...}`: the next n requests whose parameters
include `match` (after the first `skip` of them, if given) get `status` (with `headers`), or wait `sleep` seconds before answering
(a timeout, for a client that waits less); with `"pass": true` the request is then served
as usual (a slow provider that acts on a request its client stopped waiting for).
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit


class FakeHandler(BaseHTTPRequestHandler):
    state: dict = {}
    calls: list = []
    lock = threading.Lock()
    secret_params: tuple[str, ...] = ()

    def log_message(self, *args):  # quiet
        pass

    # -- plumbing ------------------------------------------------------------------------
    def params(self) -> dict[str, str]:
        """Query and form parameters, as PHP and Rails read them (flat keys)."""
        query = dict(parse_qsl(urlsplit(self.path).query, keep_blank_values=True))
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        if body and "application/x-www-form-urlencoded" in (self.headers.get("Content-Type") or ""):
            query.update(dict(parse_qsl(body, keep_blank_values=True)))
        return query

    def send_html(self, status: int, text: str, headers: dict | None = None) -> None:
        self.send_body(status, text.encode(), "text/html; charset=utf-8", headers)

    def send_json(self, status: int, payload, headers: dict | None = None) -> None:
        self.send_body(status, json.dumps(payload).encode(), "application/json; charset=utf-8",
                       headers)

    def send_body(self, status: int, body: bytes, content_type: str,
                  headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def control(self) -> bool:
        path = urlsplit(self.path).path
        if not path.startswith("/__control__/"):
            return False
        if path == "/__control__/state" and self.command == "PUT":
            length = int(self.headers.get("Content-Length") or 0)
            with self.lock:
                type(self).state = json.loads(self.rfile.read(length))
                type(self).calls = []
            self.send_json(200, {"ok": True})
        elif path == "/__control__/state" and self.command == "GET":
            # what the peer holds now (e.g. the messages it accepted: what a learner sees)
            with self.lock:
                self.send_json(200, self.state)
        elif path == "/__control__/calls":
            with self.lock:
                self.send_json(200, list(self.calls))
        else:
            self.send_json(404, {"error": "unknown control"})
        return True

    def record(self, name: str, params: dict) -> None:
        with self.lock:
            self.calls.append({"call": name, **{k: v for k, v in params.items()
                                                 if k not in self.secret_params}})

    def injected(self, params: dict) -> bool:
        """Answer with an injected failure if one matches; True when it did."""
        failure = None
        with self.lock:
            for f in self.state.get("failures", []):
                if f.get("times", 0) > 0 and all(str(params.get(k)) == str(v)
                                                  for k, v in f.get("match", {}).items()):
                    if f.get("skip", 0) > 0:        # the first `skip` matches go through
                        f["skip"] -= 1
                        continue
                    f["times"] -= 1
                    failure = f
                    break
        if failure is None:
            return False
        if failure.get("sleep"):
            time.sleep(failure["sleep"])
        if failure.get("pass"):
            # a slow answer, not a failure: the request is then served as usual (what a
            # client that gave up meanwhile, or was killed, never hears of)
            return False
        if "html" in failure:       # what stands in front of the API answers (a sign-on page)
            self.send_html(failure.get("status", 200), failure["html"], failure.get("headers"))
        else:
            self.send_json(failure.get("status", 200), failure.get("body", {"error": "injected"}),
                           failure.get("headers"))
        return True


def serve(handler: type[FakeHandler], port: int) -> None:
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer(("127.0.0.1", port), handler).serve_forever()
