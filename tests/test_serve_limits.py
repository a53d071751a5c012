"""`relance serve` faces the internet: whatever a client sends, it gets a clear HTTP answer
fast, holds no more than a bounded share of the server, and writes nothing unless SendGrid
signed it just now."""

from __future__ import annotations

import json
import socket
import time
from datetime import datetime, timedelta, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import warehouse
from relance.feedback.events import EVENT_TYPES
from tests.delivery_fixtures import PUBLIC_B64, Receiver, signed

KEY = {"SENDGRID_WEBHOOK_PUBLIC_KEY": PUBLIC_B64}
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)      # the receiver's clock (--now)
NOW_TS = int(NOW.timestamp())
CLOCK = ("--now", NOW.isoformat())


def fresh_warehouse(tmp_path):
    db = tmp_path / "w.duckdb"
    warehouse.connect(db).close()
    return db


class Answer:
    def __init__(self, raw: bytes, seconds: float):
        self.seconds = seconds
        head, _, self.body = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1]) if lines[0].startswith("HTTP/") else None
        self.headers = {k.lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}

    def json(self) -> dict:
        return json.loads(self.body)

    def __repr__(self):
        return f"<{self.status} after {self.seconds:.1f}s: {self.body[:300]!r}>"


def read_answer(sock: socket.socket, started: float, wait: float) -> Answer:
    """What the server sends until it closes the connection (or `wait` seconds pass)."""
    sock.settimeout(wait)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return Answer(data, time.monotonic() - started)


def exchange(port: int, request: bytes, wait: float = 15.0) -> Answer:
    """Send raw bytes, as any client may, and read the answer."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        try:
            sock.sendall(request)
        except (BrokenPipeError, ConnectionResetError):
            pass            # answered (and closed) before the whole request was sent
        return read_answer(sock, started, wait)


def post(path: str, body: bytes, headers: dict, length: str | None = "exact") -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: relance.example.org"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if length == "exact":
        lines.append(f"Content-Length: {len(body)}")
    elif length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def server_status(receiver: Receiver, field: str) -> int:
    for line in open(f"/proc/{receiver.proc.pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(field)


def counts(db) -> tuple[int, int]:
    con = warehouse.connect(db)
    try:
        return con.execute("select (select count(*) from message_events), "
                           "(select count(*) from suppressions)").fetchall()[0]
    finally:
        con.close()


def event(kind: str, n: int, **extra) -> dict:
    return {"email": f"learner{n}@example.org", "timestamp": NOW_TS - 60, "event": kind,
            "sg_event_id": f"ev-{kind}-{n}", **extra}


def test_a_body_bigger_than_the_cap_is_refused_with_413_before_it_is_read(tmp_path):
    db = fresh_warehouse(tmp_path)
    receiver = Receiver(db, KEY, args=CLOCK)
    try:
        peak = server_status(receiver, "VmHWM")
        # 300 MiB announced: refused from the headers alone, at once, saying where to set it
        answer = exchange(receiver.port, post("/events/sendgrid", b"", {}, length=str(300 << 20)),
                          wait=5)
        assert answer.status == 413 and answer.seconds < 3, answer
        assert answer.json()["error"] == ("the body announces 314572800 bytes; this server reads "
                                          "at most 1048576 bytes here "
                                          "(RELANCE_SERVE_MAX_EVENTS_BYTES)")
        # a client that sends its 300 MiB anyway: the server reads none of it
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", receiver.port)) as sock:
            sock.sendall(post("/events/sendgrid", b"", {}, length=str(300 << 20)))
            try:
                for _ in range(64):
                    sock.sendall(b" " * (1 << 20))
            except (BrokenPipeError, ConnectionResetError):
                pass
            assert read_answer(sock, started, 5).status in (413, None)  # None: reset, unread
        assert server_status(receiver, "VmHWM") - peak < 16 * 1024, "the server read the body"
        # an unsubscribe form is a few bytes
        answer = exchange(receiver.port, post("/unsubscribe?l=a&c=b&t=c", b"", {}, length="5000"))
        assert answer.status == 413 and "RELANCE_SERVE_MAX_FORM_BYTES" in answer.json()["error"]
    finally:
        receiver.stop()
    # the cap is a setting
    receiver = Receiver(db, KEY, args=(*CLOCK, "--max-events-bytes", "100"))
    try:
        payload = json.dumps([event("delivered", n) for n in range(3)]).encode()
        answer = exchange(receiver.port, post("/events/sendgrid", payload,
                                              signed(payload, str(NOW_TS))))
        assert answer.status == 413 and "at most 100 bytes" in answer.json()["error"]
    finally:
        receiver.stop()
    assert counts(db) == (0, 0)


def test_a_missing_or_malformed_content_length_is_answered_411_or_400(tmp_path):
    receiver = Receiver(fresh_warehouse(tmp_path), KEY, args=CLOCK)
    try:
        def ask(body: bytes, length, **headers) -> Answer:
            answer = exchange(receiver.port, post("/events/sendgrid", body, headers, length))
            assert answer.seconds < 3, answer
            return answer

        answer = ask(b"[]", None)
        assert answer.status == 411 and "needs a Content-Length" in answer.json()["error"]
        for length in ("-1", "abc", "1e3", "+2", "2, 2"):
            answer = ask(b"[]", length)
            assert answer.status == 400, (length, answer)
            assert answer.json()["error"].startswith("Content-Length: expected one size in bytes")
        answer = ask(b"[]", None, **{"Content-Length": "2", "content-length": "3"})
        assert answer.status == 400
        answer = ask(b"2\r\n[]\r\n0\r\n\r\n", None, **{"Transfer-Encoding": "chunked"})
        assert answer.status == 411 and "send the body with a Content-Length" in answer.body.decode()
        answer = ask(b"[]", "2", **{"Transfer-Encoding": "chunked"})
        assert answer.status == 400
    finally:
        receiver.stop()
    assert "Traceback" not in receiver.errors()


def test_a_slow_client_is_answered_408_and_frees_its_worker(tmp_path):
    receiver = Receiver(fresh_warehouse(tmp_path), KEY,
                        args=(*CLOCK, "--timeout-seconds", "1", "--workers", "1"))
    try:
        # a body announced and never sent
        answer = exchange(receiver.port, post("/events/sendgrid", b"[", {}, length="100000"))
        assert answer.status == 408 and 0.9 < answer.seconds < 4, answer
        assert "did not arrive whole within 1 s" in answer.json()["error"]
        # headers sent a byte at a time, each in time for a per-read timeout: the deadline
        # is for the whole request
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", receiver.port)) as sock:
            sock.sendall(b"POST /events/sendgrid HTTP/1.1\r\n")
            try:
                for byte in b"X-Slow: " + b"z" * 100:
                    sock.sendall(bytes([byte]))
                    time.sleep(0.2)
            except (BrokenPipeError, ConnectionResetError):
                pass
            answer = read_answer(sock, started, 5)
        assert answer.status == 408 and answer.seconds < 4, answer
        # the one worker is free again
        answer = exchange(receiver.port, b"GET /unsubscribe?l=a&c=b&t=c HTTP/1.1\r\n\r\n", wait=5)
        assert answer.status == 400 and b"Invalid link" in answer.body and answer.seconds < 2
    finally:
        receiver.stop()
    assert "Traceback" not in receiver.errors()


def test_connections_beyond_the_limit_get_503_and_the_threads_stay_bounded(tmp_path):
    workers, held, timeout = 2, 4, 2
    receiver = Receiver(fresh_warehouse(tmp_path), KEY, args=(
        *CLOCK, "--workers", str(workers), "--max-connections", str(held),
        "--timeout-seconds", str(timeout)))
    slow = []
    try:
        threads = server_status(receiver, "Threads")
        for _ in range(held + 6):       # each sends half its headers, then nothing
            sock = socket.create_connection(("127.0.0.1", receiver.port))
            sock.sendall(b"POST /events/sendgrid HTTP/1.1\r\nContent-")
            slow.append(sock)
        time.sleep(0.5)
        turned_away = []
        for sock in slow:
            sock.setblocking(False)
            try:
                turned_away.append(Answer(sock.recv(4096), 0))
            except BlockingIOError:
                pass            # held: being served, or waiting for a worker
        assert len(turned_away) == 6
        assert all(a.status == 503 and a.headers["retry-after"] == str(timeout)
                   and "RELANCE_SERVE_MAX_CONNECTIONS" in a.json()["error"] for a in turned_away)
        assert server_status(receiver, "Threads") <= threads + workers
        # a good request, retried as SendGrid does after a 503, is answered once the slow
        # ones have had their `timeout` seconds: within three of them
        started = time.monotonic()
        while True:
            answer = exchange(receiver.port, b"GET /unsubscribe?l=a&c=b&t=c HTTP/1.1\r\n\r\n")
            if answer.status != 503:
                break
            time.sleep(int(answer.headers["retry-after"]))
        assert answer.status == 400 and b"Invalid link" in answer.body
        assert time.monotonic() - started < 3 * timeout, time.monotonic() - started
        assert server_status(receiver, "Threads") <= threads + workers
    finally:
        for sock in slow:
            sock.close()
        receiver.stop()
    assert "Traceback" not in receiver.errors()


def test_a_signed_batch_is_accepted_only_near_the_moment_it_was_signed(tmp_path):
    db = fresh_warehouse(tmp_path)
    payload = json.dumps([event("bounce", 1)]).encode()
    first = post("/events/sendgrid", payload, signed(payload, str(NOW_TS - 240)))
    receiver = Receiver(db, KEY, args=CLOCK)
    try:
        answer = exchange(receiver.port, first)
        assert answer.status == 200 and answer.json() == {"stored": 1, "suppressed": 1}
        other = json.dumps([event("spamreport", 2)]).encode()
        for at, says in ((NOW_TS - 360, "the signature is 360 s old"),
                         (NOW_TS + 360, "the signature is 360 s in the future")):
            answer = exchange(receiver.port, post("/events/sendgrid", other, signed(other, str(at))))
            assert answer.status == 401, answer
            error = answer.json()["error"]
            assert error.startswith(says) and "accepted within 300 s of its signature" in error
            assert "RELANCE_SERVE_SIGNATURE_WINDOW_SECONDS" in error
        answer = exchange(receiver.port, post("/events/sendgrid", other, signed(other, "soon")))
        assert answer.status == 401
        assert answer.json()["error"] == ("X-Twilio-Email-Event-Webhook-Timestamp: expected the "
                                          "Unix time (in seconds) SendGrid signed the request "
                                          "at, got 'soon'")
    finally:
        receiver.stop()
    # the first request, captured and replayed an hour later
    later = ("--now", (NOW + timedelta(hours=1)).isoformat())
    receiver = Receiver(db, KEY, args=later)
    try:
        answer = exchange(receiver.port, first)
        assert answer.status == 401 and "the signature is 3840 s old" in answer.json()["error"]
    finally:
        receiver.stop()
    assert counts(db) == (1, 1)
    # the window is a setting (for requests that reach this server late through a queue)
    receiver = Receiver(db, KEY, args=(*later, "--signature-window-seconds", "7200"))
    try:
        answer = exchange(receiver.port, first)
        assert answer.status == 200 and answer.json() == {"stored": 0, "suppressed": 0}
    finally:
        receiver.stop()


def test_a_malformed_event_is_refused_by_name_and_the_rest_of_its_batch_is_stored(tmp_path):
    db = fresh_warehouse(tmp_path)
    batch = [event("bounce", 0), event("unsubscribe", 1, timestamp="yesterday"),
             event("spamreport", 2), event("unsubscribe", 3, timestamp=10 ** 30),
             event("unsubscribe", 4, relance_message_id=["m1"])]
    payload = json.dumps(batch).encode()
    receiver = Receiver(db, KEY, args=CLOCK)
    try:
        answer = exchange(receiver.port, post("/events/sendgrid", payload,
                                              signed(payload, str(NOW_TS))))
    finally:
        receiver.stop()
    assert answer.status == 400, answer
    assert answer.json() == {
        "error": "3 of 5 events refused (the other 2 are stored): webhook: event 1: timestamp: "
                 "expected the event's Unix time in seconds (a number from 0 to 253402300799), "
                 "got 'yesterday'; webhook: event 3: timestamp: expected the event's Unix time "
                 "in seconds (a number from 0 to 253402300799), got "
                 "1000000000000000000000000000000; webhook: event 4: relance_message_id: "
                 "expected a string, got an array",
        "refused": [
            "webhook: event 1: timestamp: expected the event's Unix time in seconds (a number "
            "from 0 to 253402300799), got 'yesterday'",
            "webhook: event 3: timestamp: expected the event's Unix time in seconds (a number "
            "from 0 to 253402300799), got 1000000000000000000000000000000",
            "webhook: event 4: relance_message_id: expected a string, got an array"],
        "stored": 2, "suppressed": 2}
    con = warehouse.connect(db)
    assert sorted(con.execute("select email, reason from suppressions").fetchall()) == [
        ("learner0@example.org", "bounce"), ("learner2@example.org", "spamreport")]
    con.close()
    assert "3 of 5 events refused" in receiver.errors() and "Traceback" not in receiver.errors()


# -- fuzzing: any request gets an answer in time, and only SendGrid's signed events are written

BUDGET = 5.0                # seconds for any answer (the fuzzed server's timeout is 0.5 s)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.integers(10 ** 15, 10 ** 40)
    | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=10)
GOOD_EVENT = st.fixed_dictionaries(
    {"email": st.emails(), "event": st.sampled_from(EVENT_TYPES),
     "timestamp": st.integers(0, 4_000_000_000)},
    optional={"sg_event_id": st.uuids().map(str), "reason": st.text(max_size=30),
              "type": st.sampled_from(["bounce", "blocked"])})
ANY_EVENT = st.fixed_dictionaries(
    {"email": st.emails() | JSON, "event": st.sampled_from(EVENT_TYPES) | JSON,
     "timestamp": st.integers(0, 4_000_000_000) | st.just(str(NOW_TS)) | JSON},
    optional={"sg_event_id": st.uuids().map(str) | JSON, "relance_message_id": JSON,
              "type": JSON, "reason": JSON, "sg_message_id": JSON})
BODIES = st.one_of(
    st.lists(GOOD_EVENT, max_size=4).map(lambda b: (json.dumps(b).encode(), True)),
    st.lists(ANY_EVENT, max_size=4).map(lambda b: (json.dumps(b).encode(), False)),
    JSON.map(lambda v: (json.dumps(v).encode(), False)),
    st.binary(max_size=300).map(lambda b: (b, False)),
    st.integers(1, 200_000).map(lambda n: (b"[" * n + b"]" * n, False)),     # nested deep
    st.integers(1, 6000).map(lambda n: (b"9" * n, False)),                   # a huge number
)
HEADER_TEXT = st.text(st.characters(min_codepoint=33, max_codepoint=126, exclude_characters=":"),
                      min_size=1, max_size=20)
REQUESTS = st.tuples(
    BODIES,
    st.sampled_from(["valid"] * 4 + ["none", "garbage", "other key", "stale", "future", "text"]),
    st.sampled_from(["exact"] * 6 + ["missing", "negative", "text", "short", "long"]),
    st.dictionaries(HEADER_TEXT.map(lambda h: "X-" + h), HEADER_TEXT, max_size=3))


def test_the_event_webhook_answers_any_request_in_time_and_writes_only_signed_events(tmp_path):
    from cryptography.hazmat.primitives.asymmetric import ec
    other_key = ec.generate_private_key(ec.SECP256R1())
    db = fresh_warehouse(tmp_path)
    receiver = Receiver(db, KEY, args=(*CLOCK, "--timeout-seconds", "0.5"))
    written = {"stored": 0, "suppressed": 0}

    @settings(max_examples=150, deadline=timedelta(seconds=2 * BUDGET), derandomize=True,
              database=None, suppress_health_check=[HealthCheck.too_slow,
                                                    HealthCheck.data_too_large])
    @given(REQUESTS)
    def one_request(request):
        (body, good), signature, length, junk = request
        at = str(NOW_TS - 30)
        headers = {**junk, "Content-Type": "application/json"}
        if signature == "valid":
            headers.update(signed(body, at))
        elif signature == "garbage":
            headers.update(signed(body, at), **{"X-Twilio-Email-Event-Webhook-Signature": "!!"})
        elif signature == "other key":
            headers.update(signed(body, at, key=other_key))
        elif signature in ("stale", "future"):
            headers.update(signed(body, str(NOW_TS + (-3600 if signature == "stale" else 3600))))
        elif signature == "text":
            headers.update(signed(body, "yesterday"))
        sent_length = {"exact": "exact", "missing": None, "negative": "-1", "text": "ten",
                       "short": str(len(body) + 10), "long": str(max(len(body) - 1, 0))}[length]
        answer = exchange(receiver.port, post("/events/sendgrid", body, headers, sent_length),
                          wait=BUDGET + 1)
        assert answer.status is not None and answer.seconds < BUDGET, answer
        expected = {"missing": {411}, "negative": {400}, "text": {400}, "short": {408}}.get(
            length, {200, 400} if signature == "valid" else {401})
        if length == "long":
            expected = {400, 401}       # the body read is cut short: no longer what was signed
        assert answer.status in expected, (request, answer)
        if good and signature == "valid" and length == "exact":
            assert answer.status == 200, (request, answer)
        if answer.status in (200, 400) and "stored" in answer.body.decode():
            for k in written:
                written[k] += answer.json()[k]

    try:
        one_request()
    finally:
        receiver.stop()
    assert "Traceback" not in receiver.errors(), receiver.errors()[-3000:]
    # everything in the warehouse was reported stored by a signed answer: nothing else wrote
    assert counts(db) == (written["stored"], written["suppressed"])
    assert written["stored"] > 0


def test_a_limit_that_is_not_above_zero_is_refused_naming_its_setting(tmp_path):
    from typer.testing import CliRunner
    from relance.cli.main import app
    db = fresh_warehouse(tmp_path)
    result = CliRunner().invoke(app, ["serve", "--workers", "0", "--warehouse", str(db)])
    assert result.exit_code == 1
    assert "--workers (RELANCE_SERVE_WORKERS): expected a number above 0, got 0" in result.output
    result = CliRunner().invoke(app, ["serve", "--workers", "8", "--max-connections", "4",
                                      "--warehouse", str(db)])
    assert result.exit_code == 1
    assert "--max-connections (4) is below --workers (8)" in " ".join(result.output.split())
