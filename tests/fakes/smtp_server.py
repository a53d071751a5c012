"""A real SMTP server (aiosmtpd) for the smtp channel's tests, in its own process.

    python -m tests.fakes.smtp_server --maildir DIR [--security starttls|tls|none]
        [--cert CERT --key KEY] [--user USER --password PW] [--refuse ADDR]...
        [--drop-on-mail ADDR]... [--drop-after-data ADDR]...
        [--refuse-data ADDR]... [--drop-on-data ADDR]... [--hold-greeting SECONDS]

prints `listening on PORT`. Each accepted message is written to DIR as `<n>.eml`.
--refuse answers RCPT with 550; --drop-on-mail closes the connection at MAIL FROM for a
message to that address (nothing accepted); --drop-after-data stores the message and closes
the connection without answering DATA (accepted, the client never hears it);
--refuse-data answers the DATA command with 554, before any of the message is sent;
--drop-on-data closes the connection at the DATA command (nothing accepted);
--hold-greeting takes each connection and says nothing for SECONDS before its greeting (a
server too busy to answer: the client is still connecting), noting each connection held as
a file `held-<n>` in DIR.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import socket
import ssl
import threading
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword, syntax


class Handler:
    def __init__(self, args):
        self.args = args
        self.maildir = Path(args.maildir)
        self.counter = itertools.count(1)
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.args.refuse:
            return "550 5.1.1 <%s>: Recipient address rejected: User unknown" % address
        if address in self.args.drop_on_mail:
            server.transport.close()
            return "421 closing"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            n = next(self.counter)
        (self.maildir / f"{n:05d}.eml").write_bytes(envelope.original_content or envelope.content)
        if set(envelope.rcpt_tos) & set(self.args.drop_after_data):
            server.transport.close()
            return "421 closing"
        return "250 2.0.0 Ok: queued as %05d" % n


class ScriptedSMTP(SMTP):
    """aiosmtpd's server, which can refuse or drop the DATA command itself (its handlers
    only see DATA once the whole message has arrived)."""

    def __init__(self, handler, *, args, **kwargs):
        super().__init__(handler, **kwargs)
        self.args = args

    async def _handle_client(self) -> None:
        # aiosmtpd's per-connection coroutine, which starts with the greeting (not held
        # for the connection its controller makes to itself as it starts)
        if self.args.hold_greeting and self.args.started:
            with self.event_handler.lock:
                n = next(self.event_handler.counter)
            (self.event_handler.maildir / f"held-{n:05d}").touch()
            await asyncio.sleep(self.args.hold_greeting)
        await super()._handle_client()

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        to = set(self.envelope.rcpt_tos) if self.envelope else set()
        if to & set(self.args.refuse_data):
            await self.push("554 5.7.1 Message refused: sending policy")
            return
        if to & set(self.args.drop_on_data):
            self.transport.close()
            return
        await super().smtp_DATA(arg)


class ScriptedController(Controller):
    def __init__(self, handler, *, args, **kwargs):
        super().__init__(handler, **kwargs)
        self.args = args

    def factory(self):
        return ScriptedSMTP(self.handler, args=self.args, **self.SMTP_kwargs)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--maildir", required=True)
    p.add_argument("--security", default="none", choices=["starttls", "tls", "none"])
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--user")
    p.add_argument("--password")
    p.add_argument("--refuse", action="append", default=[])
    p.add_argument("--drop-on-mail", action="append", default=[])
    p.add_argument("--drop-after-data", action="append", default=[])
    p.add_argument("--refuse-data", action="append", default=[])
    p.add_argument("--drop-on-data", action="append", default=[])
    p.add_argument("--hold-greeting", type=float, default=0)
    args = p.parse_args()
    Path(args.maildir).mkdir(parents=True, exist_ok=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    context = None
    if args.security != "none":
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)
    kwargs = {}
    if args.user:
        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = (isinstance(auth_data, LoginPassword) and auth_data.login == args.user.encode()
                  and auth_data.password == args.password.encode())
            return AuthResult(success=ok, handled=False)   # aiosmtpd sends the 235/535
        kwargs.update(authenticator=authenticator, auth_required=True,
                      auth_require_tls=args.security != "none")
    if args.security == "starttls":
        kwargs.update(tls_context=context, require_starttls=True)
    controller = ScriptedController(Handler(args), args=args, hostname="127.0.0.1", port=port,
                                    ssl_context=context if args.security == "tls" else None,
                                    server_hostname="localhost", **kwargs)
    args.started = False
    controller.start()
    args.started = True
    print(f"listening on {port}", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
