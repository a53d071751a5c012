"""What `relance serve` accepts before it trusts anything: a body is capped (413 before a
byte of a bigger one is read), a request must arrive whole within a deadline (408), and a
fixed number of workers serve a bounded number of connections (503 with Retry-After beyond
them). The receiver's routes are in receiver.py; this is the HTTP they stand on.

http.server's ThreadingHTTPServer starts a thread per connection and reads whatever a
handler asks for: a `Content-Length` of 300 MB is read whole before anyone looks at the
signature, a client that announces a body and sends nothing holds its thread for ever,
and a thousand such clients start a thousand threads.
"""

from __future__ import annotations

import contextvars
import io
import json
import math
import re
import socket
import sys
import threading
import time
import traceback
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from datetime import datetime
from http.server import BaseHTTPRequestHandler, HTTPServer

from relance import clock
from relance.settings import Settings


@dataclass(frozen=True)
class Limits:
    """The receiver's limits; their defaults and meaning are in relance/settings.py."""
    max_events_bytes: int
    max_form_bytes: int
    timeout_seconds: float
    workers: int
    max_connections: int
    signature_window_seconds: float
    # last, with a default: Limits built by hand before replies existed still work
    max_inbound_bytes: int = 10_485_760

    @classmethod
    def from_settings(cls, settings: Settings | None = None, **given) -> "Limits":
        """The settings (RELANCE_SERVE_*), with any value given here (a CLI option) winning."""
        s = settings or Settings()
        values = {f.name: given.get(f.name) if given.get(f.name) is not None
                  else getattr(s, f"serve_{f.name}") for f in fields(cls)}
        for name, value in values.items():
            if not value > 0:
                raise ValueError(f"--{name.replace('_', '-')} (RELANCE_SERVE_{name.upper()}): "
                                 f"expected a number above 0, got {value}")
        if values["max_connections"] < values["workers"]:
            raise ValueError(f"--max-connections ({values['max_connections']}) is below --workers "
                             f"({values['workers']}): connections held include those being served")
        return cls(**values)


class Refusal(Exception):
    """A request refused before its body is trusted: answered `status` with `message`."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class _DeadlineReader(io.RawIOBase):
    """The client's socket, read against one deadline for the whole request: a client that
    sends its headers or its body a byte at a time cannot hold the connection past it (a
    plain socket timeout would restart at each byte)."""

    def __init__(self, sock: socket.socket, seconds: float):
        self.sock = sock
        self.deadline = time.monotonic() + seconds
        self.expired = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        left = self.deadline - time.monotonic()
        if left <= 0:
            self.expired = True
            raise TimeoutError("the client did not send its request in time")
        self.sock.settimeout(left)
        try:
            return self.sock.recv_into(buffer)
        except TimeoutError:
            self.expired = True
            raise


class LimitedHandler(BaseHTTPRequestHandler):
    """A request handler that reads against the server's limits and always answers: a
    refusal, a timeout (408) or a bug (500) each get a status and a JSON `error`, never a
    dropped connection."""

    server: "BoundedServer"

    def setup(self):
        super().setup()
        self.rfile.close()              # the socket's own reader, replaced by one with a deadline
        self._reader = _DeadlineReader(self.connection, self.server.limits.timeout_seconds)
        self.rfile = io.BufferedReader(self._reader)
        self._answered = False

    def log_message(self, fmt, *args):
        pass            # no access log: query strings hold learners' ids and link tokens

    def send_response(self, code, message=None):
        self._answered = True
        super().send_response(code, message)

    def reply(self, status: int, body: str | bytes, ctype: str = "application/json",
              headers: dict | None = None) -> None:
        if self._answered:
            return
        if getattr(self, "request_version", "HTTP/0.9") == "HTTP/0.9":
            self.request_version = "HTTP/1.0"       # not parsed (yet): still a status line
        data = body.encode() if isinstance(body, str) else body
        self.connection.settimeout(self.server.limits.timeout_seconds)   # for the writes
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def refuse(self, refusal: Refusal) -> None:
        self.reply(refusal.status, json.dumps({"error": str(refusal)}))
        self._discard_unread()

    def read_body(self, cap: int, setting: str) -> bytes:
        """The request's body: refused (Refusal) before it is read unless one Content-Length
        announces at most `cap` bytes (`setting` names where the cap is set)."""
        lengths = self.headers.get_all("Content-Length") or []
        if self.headers.get("Transfer-Encoding") is not None:
            # RFC 9112 §6.3: a server may refuse a body without a length (411), and both
            # headers at once is how requests are smuggled past proxies (400)
            raise Refusal(400 if lengths else 411,
                          "Transfer-Encoding bodies (chunked) are not accepted: send the body "
                          "with a Content-Length" + (" only" if lengths else ""))
        if not lengths:
            raise Refusal(411, "a POST needs a Content-Length header (the body's size in bytes)")
        value = lengths[0].strip()
        if len(lengths) > 1 or not re.fullmatch(r"[0-9]+", value):
            raise Refusal(400, "Content-Length: expected one size in bytes (digits), got "
                               f"{', '.join(lengths)[:60]!r}")
        if len(value) > 18 or int(value) > cap:
            raise Refusal(413, f"the body announces {value[:20]} bytes; this server reads at most "
                               f"{cap} bytes here ({setting})")
        size = int(value)
        body = self.rfile.read(size)
        if len(body) < size:
            raise Refusal(400, f"the body ended after {len(body)} of the {size} bytes its "
                               "Content-Length announced")
        return body

    def handle(self):
        try:
            super().handle()        # http.server closes on a TimeoutError, without answering
            if self._reader.expired:
                timeout = self.server.limits.timeout_seconds
                self.reply(408, json.dumps({"error": (
                    f"the request did not arrive whole within {timeout:g} s "
                    "(RELANCE_SERVE_TIMEOUT_SECONDS): send it at once")}))
        except (ConnectionError, TimeoutError):
            pass                    # the client went away, or reads nothing: no one to answer
        except Exception:
            # a bug: its traceback is for the operator, and the client still gets an answer
            traceback.print_exc(file=sys.stderr)
            try:
                self.reply(500, json.dumps({"error": "internal error: see relance serve's output"}))
            except OSError:
                pass

    def _discard_unread(self) -> None:
        """Read and drop, briefly, what the client already sent of a body refused unread:
        closing a socket with unread data resets the connection, and the client would
        lose the answer it was just sent."""
        try:
            self.connection.shutdown(socket.SHUT_WR)
            self.connection.settimeout(0.5)
            budget = 256 * 1024
            while budget > 0:
                chunk = self.connection.recv(min(65536, budget))
                if not chunk:
                    break
                budget -= len(chunk)
        except OSError:
            pass


class BoundedServer(HTTPServer):
    """An HTTP server with `workers` threads serving at most `max_connections` connections
    (those served and those waiting for a worker); a connection beyond them is answered
    503 with Retry-After at once and closed, and costs no thread."""

    request_queue_size = 128        # connections the kernel holds until they are accepted

    def __init__(self, address, handler, limits: Limits):
        self.limits = limits
        super().__init__(address, handler)
        self._pool = ThreadPoolExecutor(limits.workers, thread_name_prefix="relance-serve")
        self._slots = threading.BoundedSemaphore(limits.max_connections)
        self._closing: deque[tuple[float, socket.socket]] = deque()

    def serve(self, now: datetime | None = None, on_ready=None) -> None:
        """Serve until stopped, then close. `now`: the clock's moment for every request
        (relance.clock) instead of the wall clock; `on_ready(port)` once it listens."""
        try:
            with clock.at(now):
                if on_ready:
                    on_ready(self.server_address[1])
                self.serve_forever()
        finally:
            self.server_close()

    def process_request(self, request, client_address):
        if not self._slots.acquire(blocking=False):
            self._turn_away(request)
            return
        # each request sees the context the server was started in: the clock a caller set
        context = contextvars.copy_context()
        self._pool.submit(context.run, self._work, request, client_address)

    def _work(self, request, client_address):
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)
            self._slots.release()

    def _turn_away(self, sock: socket.socket) -> None:
        retry = math.ceil(self.limits.timeout_seconds)
        body = json.dumps({"error": f"busy: {self.limits.max_connections} connections are held "
                                    f"already (RELANCE_SERVE_MAX_CONNECTIONS); retry in {retry} s"})
        head = ("HTTP/1.0 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nRetry-After: {retry}\r\nConnection: close\r\n\r\n")
        try:
            sock.setblocking(False)             # the accepting thread never waits on a client
            sock.send((head + body).encode())
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            sock.close()
            return
        # closed a second later, once the client's request has arrived and can be dropped
        # unread (see _discard_unread); a bounded number wait so
        self._closing.append((time.monotonic() + 1.0, sock))
        while len(self._closing) > 256:
            self._drop(self._closing.popleft()[1])

    def service_actions(self):
        """Between requests (serve_forever calls it at least every half second)."""
        while self._closing and self._closing[0][0] <= time.monotonic():
            self._drop(self._closing.popleft()[1])

    @staticmethod
    def _drop(sock: socket.socket) -> None:
        try:
            for _ in range(4):
                if not sock.recv(65536):
                    break
        except OSError:
            pass
        sock.close()

    def server_close(self):
        super().server_close()
        while self._closing:
            self._closing.popleft()[1].close()
        self._pool.shutdown(wait=False, cancel_futures=True)
