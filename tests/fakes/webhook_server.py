"""A local stand-in for Slack/Teams incoming webhooks: records each JSON post; answers
per script (POST /_control/script [{"status": 429, "retry_after": 3}, ...]), else 200 "ok".
GET /_control/posts lists what it accepted.

    python -m tests.fakes.webhook_server    # prints `listening on PORT`
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

posts: list = []
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
            with lock:
                posts.append({"path": self.path, "body": json.loads(data)})
            self._reply(200, b"ok")


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(f"listening on {server.server_address[1]}", flush=True)
    server.serve_forever()
