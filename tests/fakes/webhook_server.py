"""A local stand-in for Slack/Teams incoming webhooks: records each JSON post; answers
per script (POST /_control/script [{"status": 429, "retry_after": 3}, ...]; {"drop": true}
records the post and closes the connection without answering), else checks
the body as the service does and answers 200 "ok" or its error: Slack (paths /services/...)
needs a non-empty `text` (400 no_text), at most 40,000 characters; Teams (other paths) an
Adaptive Card attachment whose body elements each have a type, and TextBlocks a non-empty
text (400 otherwise, as Power Automate refuses a card it cannot parse).
GET /_control/posts lists what it accepted.

    python -m tests.fakes.webhook_server    # prints `listening on PORT`
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

posts: list = []


def refusal(path: str, body) -> str | None:
    """Why the service would refuse this body, or None."""
    if not isinstance(body, dict):
        return "invalid_payload"
    if path.startswith("/services/"):
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            return "no_text"
        return "msg_too_long" if len(text) > 40000 else None
    attachments = body.get("attachments")
    if body.get("type") != "message" or not isinstance(attachments, list) or not attachments:
        return "invalid_payload: a message with attachments is expected"
    for a in attachments:
        content = a.get("content") if isinstance(a, dict) else None
        if (a.get("contentType") != "application/vnd.microsoft.card.adaptive"
                or not isinstance(content, dict) or content.get("type") != "AdaptiveCard"
                or not isinstance(content.get("body"), list)):
            return "invalid_payload: an Adaptive Card attachment is expected"
        for element in content["body"]:
            if not isinstance(element, dict) or "type" not in element:
                return "invalid_payload: a card element without a type"
            if element["type"] == "TextBlock" and not (
                    isinstance(element.get("text"), str) and element["text"].strip()):
                return "invalid_payload: a TextBlock needs a non-empty text"
    return None
script: list = []
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _reply(self, status: int, body: bytes, headers: dict | None = None):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        with lock:
            self._reply(200, json.dumps(posts).encode())

    def do_POST(self):
        data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/_control/script":
            with lock:
                script.extend(json.loads(data))
            self._reply(200, b"{}")
            return
        with lock:
            entry = script.pop(0) if script else {}
        status = entry.get("status", 200)
        if status == 429:
            self._reply(429, b"rate_limited", {"Retry-After": entry.get("retry_after", 1)})
        elif status != 200:
            self._reply(status, entry.get("body", "invalid_payload").encode())
        elif self.headers.get("Content-Type", "").split(";")[0] != "application/json":
            self._reply(400, b"invalid_payload")
        else:
            try:
                body = json.loads(data)
            except ValueError:
                self._reply(400, b"invalid_payload")
                return
            why = refusal(self.path, body)
            if why:
                self._reply(400, why.encode())
                return
            with lock:
                posts.append({"path": self.path, "body": body})
            if entry.get("drop"):           # posted, and the poster never hears it
                self.close_connection = True
                return
            self._reply(200, b"ok")


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(f"listening on {server.server_address[1]}", flush=True)
    server.serve_forever()
