"""An inbound mail as relance reads it, whatever brought it (SendGrid Inbound Parse, an IMAP
mailbox): who wrote, to which address, what they wrote (the text, capped; attachments
described, never kept), and whether a person wrote it at all.

Automatic mail is recognised (`automatic()`), in this order: a bounce (a delivery-status
report, RFC 3464, or a mailer daemon's mail), a message that says it is automatic (RFC 3834
`Auto-Submitted`, `X-Autoreply`/`X-Autorespond`, `Precedence: auto_reply|bulk|junk`), then
an out-of-office subject in French or English. Such mail is stored, but is not a learner's
words: no activity, no routing, no acknowledgement.
"""

from __future__ import annotations

import hashlib
import html as html_lib
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email import policy
from email.header import decode_header, make_header
from email.message import Message
from email.parser import BytesParser
from email.utils import getaddresses, parseaddr, parsedate_to_datetime

# What is kept of a mail's text: enough for any question, not a novel (the column is text).
MAX_TEXT = 20_000
# What classification reads: the start of what the learner wrote.
MAX_CLASSIFIED = 10_000


class MailError(ValueError):
    """A mail that cannot be read at all: said in words, for the HTTP answer or the log."""


@dataclass
class Inbound:
    source: str                           # 'inbound_parse' or 'imap'
    recipients: list[str]                 # envelope and To/Cc addresses, lower-case
    from_address: str | None
    subject: str
    text: str                             # what the mail says (capped at MAX_TEXT)
    message_id_header: str | None
    sent_at: datetime | None
    headers: dict[str, str] = field(default_factory=dict)     # lower-case names, first value
    content_type: str = "text/plain"
    report_type: str | None = None
    has_delivery_status: bool = False
    attachments: str | None = None        # what was attached, in words: never kept
    raw_digest: str = ""                  # sha256 of what was received, for a mail with no id

    @property
    def reply_id(self) -> str:
        """Stable per mail: the same mail read twice (posted again, fetched again, or by
        both paths) has the same id."""
        basis = (self.message_id_header or "").strip().lower() or self.raw_digest
        return hashlib.sha256(f"reply\x1f{basis}".encode()).hexdigest()[:24]

    @property
    def new_text(self) -> str:
        """What the learner wrote above the quoted message they answer."""
        return fresh_text(self.text)[:MAX_CLASSIFIED]

    def automatic(self) -> str | None:
        return automatic_reason(self)


# -- reading ----------------------------------------------------------------------------------

def _raw(value) -> str:
    """A header as text: compat32 keeps a header with 8-bit bytes (UTF-8 written raw, as
    RFC 6532 allows and many clients do) as a Header object, read here as UTF-8."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    try:
        return "".join(b.decode(c if c and c != "unknown-8bit" else "utf-8", "replace")
                       if isinstance(b, bytes) else b for b, c in decode_header(value))
    except LookupError:
        return str(value)


def _decoded(value) -> str:
    value = _raw(value)
    if not value:
        return ""
    try:
        return str(make_header(decode_header(value)))
    except Exception:        # a broken encoded word: shown as written
        return value


def _clean_line(text: str) -> str:
    return " ".join(text.split())[:998]


def _address(value: str | None) -> str | None:
    addr = parseaddr(value or "")[1].strip().lower()
    return addr if "@" in addr else None


def html_to_text(html: str) -> str:
    text = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", html)
    text = re.sub(r"(?i)<br\s*/?>|</p>|</div>|</li>", "\n", text)
    text = re.sub(r"<[^>]*>", " ", text)
    return html_lib.unescape(text)


def _describe(n: int, size: int) -> str | None:
    if not n:
        return None
    return (f"{n} attachment{'s' if n > 1 else ''}, {size / 1_000_000:.1f} MB: not kept")


def from_bytes(raw: bytes, source: str, *, envelope_to: list[str] | None = None) -> Inbound:
    """A whole RFC 5322 mail (IMAP, or Inbound Parse's raw mode)."""
    try:
        msg = BytesParser(policy=policy.compat32).parsebytes(raw)
    except Exception as exc:
        raise MailError(f"the mail cannot be parsed: {exc}") from None
    if not msg.keys():
        raise MailError("the mail has no headers")
    text, html, n_att, size = None, None, 0, 0
    has_status = False
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype in ("message/delivery-status", "message/global-delivery-status"):
            has_status = True
        if part.is_multipart():
            continue
        disposition = (part.get("Content-Disposition") or "").lower()
        if disposition.startswith("attachment") or (part.get_filename() and ctype not in (
                "text/plain", "text/html")):
            n_att += 1
            size += len(part.get_payload(decode=False) or "") * 3 // 4
            continue
        if ctype == "text/plain" and text is None:
            text = _payload_text(part)
        elif ctype == "text/html" and html is None:
            html = _payload_text(part)
    body = text if text is not None else html_to_text(html or "")
    headers = {k.lower(): _decoded(v) for k, v in reversed(msg.items())}
    recipients = [a.lower() for _, a in getaddresses(
        [_raw(v) for name in ("To", "Cc", "Delivered-To") for v in msg.get_all(name, [])])
        if "@" in a] + [a.lower() for a in envelope_to or []]
    return Inbound(
        source=source, recipients=recipients, from_address=_address(_raw(msg.get("From"))),
        subject=_clean_line(_decoded(msg.get("Subject"))), text=body[:MAX_TEXT],
        message_id_header=_raw(msg.get("Message-ID")).strip() or None,
        sent_at=_date(_raw(msg.get("Date"))), headers=headers,
        content_type=msg.get_content_type(),
        report_type=(_raw(msg.get_param("report-type")) or None)
        if msg.get_content_type() == "multipart/report" else None,
        has_delivery_status=has_status, attachments=_describe(n_att, size),
        raw_digest=hashlib.sha256(raw).hexdigest())


def _payload_text(part: Message) -> str:
    data = part.get_payload(decode=True) or b""
    charset = part.get_content_charset() or "utf-8"
    try:
        return data.decode(charset, "replace")
    except LookupError:
        return data.decode("utf-8", "replace")


def _date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        dt = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if dt is None:
        return None
    return (dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


def headers_block(raw_headers: str) -> dict[str, str]:
    """Inbound Parse's `headers` field (the raw header block) as a lower-case mapping."""
    msg = BytesParser(policy=policy.compat32).parsebytes(
        raw_headers.encode("utf-8", "surrogateescape") + b"\r\n\r\n", headersonly=True)
    return {k.lower(): _decoded(v) for k, v in reversed(msg.items())}


# -- what the learner wrote ---------------------------------------------------------------------

_QUOTE_START = re.compile(
    r"^\s*(le .{3,120} a [ée]crit\s*:|on .{3,120} wrote\s*:|-{2,}\s*(original message|message "
    r"d'origine)\s*-{2,}|de\s*:\s.+|from\s*:\s.+|envoy[ée]\s*:\s.+|sent\s*:\s.+)\s*$",
    re.IGNORECASE)


def fresh_text(text: str) -> str:
    """The reply above the quote of the message it answers ("> " lines, "Le ... a écrit :",
    "On ... wrote:", an Outlook "From:" block): what classification reads."""
    kept = []
    for line in text.splitlines():
        if _QUOTE_START.match(line):
            break
        if line.lstrip().startswith(">"):
            continue
        kept.append(line)
    return "\n".join(kept).strip()


# -- automatic mail --------------------------------------------------------------------------

_PRECEDENCE_AUTO = {"auto_reply", "bulk", "junk"}
_DAEMONS = re.compile(r"^(mailer-daemon|postmaster|mail-daemon|mailerdaemon|bounce[s]?)(\+.*)?@",
                      re.IGNORECASE)
_BOUNCE_SUBJECT = re.compile(
    r"(undeliver(able|ed)|delivery status notification|delivery (has )?failed|mail delivery "
    r"(failed|subsystem)|returned mail|non remis|non distribuable|[ée]chec de (la )?remise|"
    r"message non d[ée]livr[ée])", re.IGNORECASE)
_OUT_OF_OFFICE = re.compile(
    r"(out of (the )?office|automatic reply|auto[- ]?reply|autoreply|auto[- ]?response|"
    r"away from (the |my )?office|on vacation|on holiday|on leave|"
    r"absent(e)? du bureau|absence du bureau|r[ée]ponse automatique|message d'absence|"
    r"en cong[ée]s?|notification d'absence|je suis absent)", re.IGNORECASE)


def automatic_reason(mail: Inbound) -> str | None:
    """Why a mail is not a learner's words: 'bounce', 'auto_submitted', 'out_of_office', or
    None when a person wrote it."""
    h = mail.headers
    if (mail.content_type == "multipart/report" and (mail.report_type or "").lower()
            in ("delivery-status", "")) or mail.has_delivery_status:
        return "bounce"
    if mail.from_address and _DAEMONS.match(mail.from_address):
        return "bounce"
    if _BOUNCE_SUBJECT.search(mail.subject) and not mail.from_address:
        return "bounce"
    auto = h.get("auto-submitted", "").strip().lower()
    if auto and auto.split(";")[0].strip() != "no":
        return "auto_submitted"
    if h.get("x-autoreply") or h.get("x-autorespond") or h.get("x-autoresponder"):
        return "auto_submitted"
    if h.get("precedence", "").strip().lower() in _PRECEDENCE_AUTO:
        return "auto_submitted"
    if h.get("x-auto-response-suppress", "").strip().lower() in ("all", "oof", "autoreply") \
            and _OUT_OF_OFFICE.search(mail.subject):
        return "out_of_office"
    if _OUT_OF_OFFICE.search(mail.subject):
        return "out_of_office"
    if _BOUNCE_SUBJECT.search(mail.subject):
        return "bounce"
    return None
