"""Learners' replies read from an IMAP mailbox (`relance replies fetch`, and the first step
of the hourly `deliver-due` flow): the standard library's imaplib, over TLS by default.

Each mail is read once: the mailbox's highest UID read is kept in the warehouse
(`reply_mailboxes`, under the mailbox's UIDVALIDITY), moved in the same transaction as the
reply it read is stored, so a fetch killed half-way resumes after the last reply stored. Mail is
read with BODY.PEEK[] (it stays unread for a person looking at the mailbox) and never
deleted. A mail read twice (a new UIDVALIDITY, the same mail also posted by Inbound
Parse) is stored once: replies have a stable id.

Settings (relance/settings.py): RELANCE_IMAP_HOST, _PORT, _SECURITY (tls, starttls, none),
_USER, _MAILBOX, _CA_FILE, _TIMEOUT_SECONDS. The password is read from RELANCE_IMAP_PASSWORD
or the Prefect Secret block named in RELANCE_IMAP_PASSWORD_SECRET, and never appears in a
message or the warehouse.
"""

from __future__ import annotations

import imaplib
import os
import re
import ssl
from dataclasses import dataclass, field

from relance import clock
from relance.replies import ingest
from relance.replies.mail import MailError, from_bytes
from relance.settings import Settings
from warehouse import transaction

# A mail bigger than this is not fetched whole: its headers are, and it is stored without
# its body, with the reason (the mailbox's own quota bounds the rest).
MAX_MAIL_BYTES = 10_485_760
BATCH = 200


class ImapError(RuntimeError):
    """The mailbox cannot be read: what is wrong and which setting fixes it."""


@dataclass
class FetchReport:
    read: int = 0
    by_status: dict = field(default_factory=dict)
    mailbox: str = ""


def password(settings: Settings) -> str:
    from connectors.base import SourceError
    from connectors.secrets import resolve_secret
    block = os.environ.get("RELANCE_IMAP_PASSWORD_SECRET")
    spec = {"prefect_secret": block} if block else {"env": "RELANCE_IMAP_PASSWORD"}
    try:
        return resolve_secret(spec, "replies mailbox: password")
    except SourceError as exc:
        raise ImapError(str(exc)) from None


def _connect(s: Settings) -> imaplib.IMAP4:
    if not s.imap_host or not s.imap_user:
        raise ImapError("set RELANCE_IMAP_HOST and RELANCE_IMAP_USER (and RELANCE_IMAP_PASSWORD) "
                        "to read replies from a mailbox")
    security = s.imap_security.lower()
    if security not in ("tls", "starttls", "none"):
        raise ImapError(f"RELANCE_IMAP_SECURITY: expected tls, starttls or none, got {security!r}")
    port = s.imap_port or (993 if security == "tls" else 143)
    context = ssl.create_default_context(cafile=str(s.imap_ca_file) if s.imap_ca_file else None)
    try:
        if security == "tls":
            imap = imaplib.IMAP4_SSL(s.imap_host, port, ssl_context=context,
                                     timeout=s.imap_timeout_seconds)
        else:
            imap = imaplib.IMAP4(s.imap_host, port, timeout=s.imap_timeout_seconds)
            if security == "starttls":
                imap.starttls(ssl_context=context)
    except ssl.SSLError as exc:
        raise ImapError(f"IMAP {s.imap_host}:{port}: TLS failed ({exc.reason or exc}); a private "
                        "certificate authority goes in RELANCE_IMAP_CA_FILE") from None
    except OSError as exc:
        raise ImapError(f"IMAP {s.imap_host}:{port}: cannot connect ({exc}); check "
                        "RELANCE_IMAP_HOST, RELANCE_IMAP_PORT and RELANCE_IMAP_SECURITY") from None
    try:
        imap.login(s.imap_user, password(s))
    except imaplib.IMAP4.error:
        imap.shutdown()
        raise ImapError(f"IMAP {s.imap_host}:{port}: the server refused the login of "
                        f"{s.imap_user!r}: check RELANCE_IMAP_USER and the password") from None
    return imap


def _ok(answer, what: str):
    kind, data = answer
    if kind != "OK":
        raise ImapError(f"IMAP {what}: {kind} {(data or [b''])[0]!r}")
    return data


def fetch(con, campaigns_dir, settings: Settings | None = None) -> FetchReport:
    """Read the mailbox's new mail into learner_replies (each mail once); a report."""
    s = settings or Settings()
    name = f"{s.imap_user}@{s.imap_host}:{s.imap_port or ''}/{s.imap_mailbox}"
    report = FetchReport(mailbox=name)
    campaigns = ingest.Campaigns(campaigns_dir)
    imap = _connect(s)
    try:
        _ok(imap.select(f'"{s.imap_mailbox}"', readonly=True), f"SELECT {s.imap_mailbox}")
        validity = int((imap.response("UIDVALIDITY")[1] or [b"0"])[0] or 0)
        row = con.execute("select uidvalidity, last_uid from reply_mailboxes where mailbox = ?",
                          [name]).fetchall()
        last = row[0][1] if row and row[0][0] == validity else 0
        uids = [int(u) for u in _ok(imap.uid("SEARCH", None, f"UID {last + 1}:*"),
                                    "UID SEARCH")[0].split()]
        # `n:*` names the last mail even when its UID is below n (RFC 3501 6.4.8)
        for uid in sorted(u for u in uids if u > last):
            raw = _read(imap, uid)
            try:
                mail = from_bytes(raw, "imap")
            except MailError as exc:
                mail = from_bytes(b"Subject: (unreadable mail)\r\n\r\n", "imap")
                mail.raw_digest = f"{name}#{validity}#{uid}"
                mail.text = f"(the mail could not be read: {exc})"
            def advance(c, uid=uid):
                c.execute("insert or replace into reply_mailboxes values (?, ?, ?, ?)",
                          [name, validity, uid, clock.now()]).fetchall()
            stored = ingest.store(con, mail, campaigns, also=advance)
            if stored.already:            # stored before (Inbound Parse, a new UIDVALIDITY)
                with transaction(con):
                    advance(con)
            report.read += 1
            report.by_status[stored.status] = report.by_status.get(stored.status, 0) + 1
        if not row:
            with transaction(con):
                con.execute("insert or ignore into reply_mailboxes values (?, ?, ?, ?)",
                            [name, validity, last, clock.now()]).fetchall()
    finally:
        try:
            imap.logout()
        except (imaplib.IMAP4.error, OSError):
            pass
    return report


def _read(imap: imaplib.IMAP4, uid: int) -> bytes:
    size_data = _ok(imap.uid("FETCH", str(uid), "(RFC822.SIZE)"), f"FETCH {uid} size")
    m = re.search(rb"RFC822\.SIZE (\d+)", size_data[0] or b"")
    size = int(m.group(1)) if m else 0
    part = "BODY.PEEK[]" if size <= MAX_MAIL_BYTES else "BODY.PEEK[HEADER]"
    data = _ok(imap.uid("FETCH", str(uid), f"({part})"), f"FETCH {uid}")
    raw = next((item[1] for item in data if isinstance(item, tuple)), b"")
    if size > MAX_MAIL_BYTES:
        raw += (f"\r\n(mail of {size / 1_000_000:.1f} MB: only its headers were read; "
                "attachments are not kept)\r\n").encode()
    return raw
