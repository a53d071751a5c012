"""The smtp channel: your own mail server, through `smtplib`.

One connection is kept for a whole delivery (re-opened if the server drops it), with
STARTTLS or implicit TLS, and authentication when a username is set (the password comes
from the environment variable the campaign names, never from the file). Each message is
its own transaction (MAIL, RCPT, DATA), so the server's verdict is per message:
- a recipient or sender refused, the DATA command or the message refused: 'failed' with
  the server's reply (5xx: the same message will fail again; 4xx: a later delivery may
  succeed);
- the connection lost before the whole message was written (up to its final dot): the
  server accepts a message only once it has that dot, so nothing was accepted: tried
  again once on a new connection, then 'failed';
- the connection lost once the whole message was written, before the server's reply: the
  server may have queued it: 'uncertain' (reported, never resent blindly).

Delivery records a chunk of CHUNK messages at once; the channel tells it (`Attempts.sending`)
just before the chunk's first message content is written, so a process killed while it
connects, greets, logs in or has only had envelopes refused leaves the chunk's messages due
again, not 'uncertain' (a server accepts nothing before a message's final dot).
"""

from __future__ import annotations

import os
import re
import smtplib
import ssl
from datetime import datetime, timezone

from relance import clock
from relance.channels.base import (UNRECORDED, Attempts, ChannelConfigError, OutgoingMessage,
                                   SendResult)
from relance.channels.email import HeaderError, message_bytes

DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}
CHUNK = 20          # messages recorded as in flight together (one ledger write each way)
_LEADING_DOT = re.compile(rb"(?m)^\.")


def _data_block(data: bytes) -> bytes:
    """The message as DATA carries it (RFC 5321 4.5.2): a line's leading dot doubled, ended
    by a line holding one dot."""
    block = _LEADING_DOT.sub(b"..", data)
    return block + (b"" if block.endswith(b"\r\n") else b"\r\n") + b".\r\n"


class SmtpChannel:
    name = "smtp"
    recognises_resends = False
    # a delivery's render workers build each message's bytes (OutgoingMessage.mime)
    sends_mime = True
    # delivery hands `send` the chunk's attempts: in flight from its first message's DATA
    reports_attempts = True

    def __init__(self, host: str, port: int | None = None, *, security: str = "starttls",
                 username: str | None = None, password: str | None = None,
                 timeout: float = 30.0, ca_file: str | None = None):
        self.host, self.security = host, security
        self.port = port or DEFAULT_PORTS[security]
        self.username, self._password = username, password
        self.timeout, self.ca_file = timeout, ca_file
        self._conn: smtplib.SMTP | None = None
        self.stopped: str | None = None

    @classmethod
    def from_options(cls, options) -> "SmtpChannel":
        password = None
        if options.username:
            password = os.environ.get(options.password_env)
            if not password:
                raise ChannelConfigError(
                    f"{options.password_env} is not set: the smtp channel cannot log in as "
                    f"{options.username!r}; set it (or name another variable in "
                    "smtp.password_env). Nothing was sent.")
        return cls(options.host, options.port, security=options.security,
                   username=options.username, password=password, timeout=options.timeout,
                   ca_file=options.ca_file)

    def __repr__(self) -> str:      # never shows the password
        return f"SmtpChannel({self.host}:{self.port}, {self.security}, user={self.username!r})"

    def sent_to(self, campaign_id: str) -> str:
        return f"accepted by the SMTP server {self.host}:{self.port}"

    def chunks(self, batch: list[OutgoingMessage]):
        return [batch[i:i + CHUNK] for i in range(0, len(batch), CHUNK)]

    def _connect(self) -> smtplib.SMTP:
        if self._conn is not None:
            return self._conn
        context = ssl.create_default_context(cafile=self.ca_file)
        if self.security == "tls":
            conn = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
        else:
            conn = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            if self.security == "starttls":
                conn.starttls(context=context)
        conn.ehlo()          # (again after STARTTLS: the server's extensions may change)
        if self.username:
            conn.login(self.username, self._password or "")
        self._conn = conn
        return conn

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.quit()
            except (smtplib.SMTPException, OSError):
                pass
            self._conn = None

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None

    def send(self, chunk: list[OutgoingMessage],
             attempts: Attempts = UNRECORDED) -> list[SendResult]:
        results = []
        for msg in chunk:
            if self.stopped:
                results.append(SendResult(msg.message_id, "failed", error=self.stopped))
                continue
            try:
                data = (msg.mime if msg.mime is not None
                        else message_bytes(msg, date=msg.date or clock.now()))
            except (HeaderError, ValueError) as exc:
                results.append(SendResult(msg.message_id, "failed", error=f"invalid message: {exc}"))
                continue
            try:
                results.append(self._send_one(msg, data, attempts))
            except ChannelConfigError as exc:
                # a refused login: every further message would be refused the same way
                self.stopped = str(exc)
                results.append(SendResult(msg.message_id, "failed", error=self.stopped))
        return results

    def _send_one(self, msg: OutgoingMessage, data: bytes, attempts: Attempts) -> SendResult:
        for attempt in (1, 2):
            stage = "connect"
            try:
                conn = self._connect()
                stage = "envelope"
                code, reply = conn.mail(msg.from_email)
                if code != 250:
                    conn.rset()
                    return self._refused(msg, "sender refused", code, reply)
                code, reply = conn.rcpt(msg.to_email)
                if code not in (250, 251):
                    conn.rset()
                    return self._refused(msg, "recipient refused", code, reply)
                # DATA by hand, not smtplib's data(): it raises the same error whether the
                # DATA command was refused (nothing sent) or the answer to the message was
                # lost (the server may have it), and the ledger must tell the two apart
                stage = "data"
                code, reply = conn.docmd("data")
                if code != 354:
                    conn.rset()
                    return self._refused(msg, "DATA refused", code, reply)
                # the chunk is in flight from its first message content on (written once)
                attempts.sending()
                conn.send(_data_block(data))
                stage = "answer"        # all of it written: from here it may be queued
                code, reply = conn.getreply()
                if code != 250:
                    return self._refused(msg, "message refused", code, reply)
                return SendResult(msg.message_id, "sent", datetime.now(timezone.utc),
                                  reply.decode("utf-8", "replace")[:200])
            except smtplib.SMTPAuthenticationError as exc:
                self._drop()
                raise ChannelConfigError(
                    f"SMTP server {self.host} refused the login of {self.username!r}: "
                    f"{exc.smtp_code} {exc.smtp_error.decode('utf-8', 'replace')}; check "
                    "smtp.username and its password") from None
            except (smtplib.SMTPServerDisconnected, smtplib.SMTPResponseException, OSError) as exc:
                self._drop()
                if stage == "answer":
                    return SendResult(msg.message_id, "uncertain", error=(
                        f"SMTP connection lost after the message was sent, before the server "
                        f"answered ({type(exc).__name__}: {exc}); it may have been accepted"))
                if attempt == 2:
                    return SendResult(msg.message_id, "failed", error=(
                        f"SMTP server {self.host}:{self.port} unreachable ({stage}): "
                        f"{type(exc).__name__}: {exc}"))
        raise AssertionError("unreachable")

    @staticmethod
    def _refused(msg: OutgoingMessage, what: str, code: int, reply: bytes) -> SendResult:
        return SendResult(msg.message_id, "failed", error=(
            f"SMTP {what} ({code}{', permanent' if code >= 500 else ', temporary'}): "
            f"{reply.decode('utf-8', 'replace')}"))
