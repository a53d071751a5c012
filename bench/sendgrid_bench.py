"""The sendgrid channel's throughput against the local SendGrid-compatible server, as a
ratio to the server's own acceptance rate for the same requests sent raw, and the
sender's peak memory as the send grows.

    python bench/sendgrid_bench.py [--messages 100000] [--memory 100000,1000000]

1. Throughput: the same 100,000 messages (rendered beforehand, as delivery hands them
   over in batches of 2,000) are sent (a) through SendGridChannel (grouping, request
   bodies, the SDK, answers parsed) and (b) raw: the very request bodies, serialized
   beforehand, POSTed with http.client, one connection per request as the SDK does.
   Rounds are interleaved and the best of each kind kept; the ratio is (a)/(b).
2. Memory: a child process streams N messages through the channel, batch by batch, as
   delivery does (each batch generated, sent, dropped), and reports its peak RSS.
"""

from __future__ import annotations

import argparse
import http.client
import os
import resource
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.results import record  # noqa: E402
from relance.channels.base import OutgoingMessage  # noqa: E402
from relance.channels.sendgrid import SendGridChannel  # noqa: E402
from relance.delivery import send_chunks  # noqa: E402
from tests.delivery_fixtures import FakeSendGrid  # noqa: E402

BATCH = 2000        # relance.delivery.BATCH_SIZE

TEXT = ("Bonjour {name},\n\nVous en êtes à 42 % de « Anglais B2 ». Cette semaine : trois "
        "activités vous attendent, dont le quiz de l'unité 5 (à rendre jeudi).\n\n"
        "Trois collègues ont posté sur le forum : « Astuce pour le listening », « Qui pour "
        "un échange en visio ? »…\n\nÀ bientôt,\nJulie, équipe formation\n")
HTML = "<html><body>" + "".join(f"<p>{line}</p>" for line in TEXT.split("\n") if line) + "</body></html>"


def batch(start: int, n: int) -> list[OutgoingMessage]:
    out = []
    for i in range(start, start + n):
        name = f"Learner {i}"
        out.append(OutgoingMessage(
            message_id=f"m{i:08d}", campaign_id="bench", to_email=f"l{i:08d}@example.org",
            to_name=name, from_email="formation@example.org", from_name="Julie",
            reply_to=None, subject=f"Bonjour {name} — votre semaine", text=TEXT.format(name=name),
            html=HTML.format(name=name),
            unsubscribe_url=f"https://relance.example/unsubscribe?l=L{i}&c=bench&t=0123456789abcdef",
            unsubscribe_mailto="mailto:formation@example.org?subject=unsubscribe",
            message_key="relance", locale="fr" if i % 3 else "en"))
    return out


def _end(attempt_id, chunk, results) -> None:
    assert all(r.status == "sent" for r in results), results[0]


def send_channel(channel: SendGridChannel, batches: list[list[OutgoingMessage]]) -> float:
    """As delivery drives the channel (send_chunks), minus the ledger writes."""
    started = time.perf_counter()
    with ThreadPoolExecutor(channel.concurrency) as pool:
        send_chunks(channel, (chunk for b in batches for chunk in channel.chunks(b)),
                    lambda chunk: None, _end, pool)
    return time.perf_counter() - started


def send_raw(url: str, key: str, bodies: list[bytes]) -> float:
    host = urlparse(url)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json; charset=utf-8"}
    started = time.perf_counter()
    for body in bodies:
        conn = http.client.HTTPConnection(host.hostname, host.port, timeout=60)
        conn.request("POST", "/v3/mail/send", body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        assert response.status == 202, response.status
        conn.close()
    return time.perf_counter() - started


def throughput(n: int, rounds: int) -> None:
    server = FakeSendGrid(details=False)
    try:
        channel = SendGridChannel(server.key, host=server.url)
        batches = [batch(i, min(BATCH, n - i)) for i in range(0, n, BATCH)]
        bodies = [channel.encode(channel.body(chunk))
                  for b in batches for chunk in channel.chunks(b)]
        n_requests = len(bodies)
        best_channel = best_raw = float("inf")
        for r in range(rounds):
            server.reset()
            best_raw = min(best_raw, send_raw(server.url, server.key, bodies))
            server.reset()
            best_channel = min(best_channel, send_channel(channel, batches))
            accepted = server.state()["accepted_messages"]
            assert accepted == n, f"the server accepted {accepted} of {n}"
            print(f"  round {r + 1}: raw {n / best_raw:,.0f} msg/s, channel {n / best_channel:,.0f} msg/s",
                  flush=True)
    finally:
        server.stop()
    print(f"{n:,} messages in {n_requests} requests of at most 1,000")
    print(f"server's acceptance rate, raw requests: {n / best_raw:,.0f} messages/s")
    print(f"through the sendgrid channel (SDK):    {n / best_channel:,.0f} messages/s")
    print(f"ratio: {best_raw / best_channel:.2f} (goal >= 0.90)")
    record("sendgrid.channel", best_raw / best_channel, 0.9, ">=",
           scale=f"{n:,} messages", script="sendgrid_bench.py")


def memory_child(n: int, url: str, key: str) -> None:
    channel = SendGridChannel(key, host=url)
    with ThreadPoolExecutor(channel.concurrency) as pool:
        send_chunks(channel, (chunk for start in range(0, n, BATCH)
                              for chunk in channel.chunks(batch(start, min(BATCH, n - start)))),
                    lambda chunk: None, _end, pool)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)   # MiB


def memory(sizes: list[int]) -> None:
    server = FakeSendGrid(details=False)
    try:
        for n in sizes:
            server.reset()
            started = time.perf_counter()
            out = subprocess.run([sys.executable, __file__, "--memory-child", str(n), server.url,
                                  server.key], capture_output=True, text=True, check=True,
                                 env={**os.environ, "PYTHONPATH": str(ROOT)})
            assert server.state()["accepted_messages"] == n
            print(f"sender's peak memory at {n:>9,} messages: {int(out.stdout.split()[-1]):>4} MiB "
                  f"({n / (time.perf_counter() - started):,.0f} msg/s)", flush=True)
    finally:
        server.stop()


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--memory-child":
        memory_child(int(sys.argv[2]), sys.argv[3], sys.argv[4])
        return
    p = argparse.ArgumentParser()
    p.add_argument("--messages", type=int, default=100_000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--memory", default="100000,1000000",
                   help="message counts for the memory runs (comma-separated; empty: none)")
    args = p.parse_args()
    throughput(args.messages, args.rounds)
    if args.memory:
        memory([int(x) for x in args.memory.split(",")])


if __name__ == "__main__":
    main()
