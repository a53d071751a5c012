"""Building RFC 5322 messages, shared by every e-mail channel.

User data (names, subjects) reaches headers only through `formataddr` and RFC 2047
encoded words, after line breaks and other control or separator characters are removed,
and folded here (`_folded`: at the spaces it holds, into lines of 78 characters; encoded
words when a word is too long for RFC 5322's 998), however long a name or a subject.
`message_bytes` writes a message's bytes directly: the bytes the `email.mime` classes and
the email package's generator give the same message (`to_bytes(build(...))`, which the
tests hold it to), its quoted-printable bodies made by the package's own encoder, in a
quarter of the time (the demo's messages: 0.18 ms each against 0.70 ms; the generator
folded every header a second time, the `Header` class looked character by character for
where to break a name that fits on its line). Delivering to the outbox took ~2.1 ms a message with the newer
`EmailMessage` header machinery, ~1.1 ms with the `email.mime` classes (rendering
included).
"""

from __future__ import annotations

import io
import random
import re
import sys
import unicodedata
from email import base64mime, quoprimime
from email import charset as email_charset
from email.generator import BytesGenerator
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import compat32
from email.utils import format_datetime, formataddr, make_msgid

from relance.campaign.values import email_refusal
from relance.channels.base import OutgoingMessage

# Quoted-printable bodies: readable in the raw .eml, 7-bit safe on the wire.
_UTF8_QP = email_charset.Charset("utf-8")
_UTF8_QP.body_encoding = email_charset.QP
_CRLF = compat32.clone(linesep="\r\n")


class HeaderError(ValueError):
    pass


_JOINERS = {"\u200c", "\u200d"}   # zero-width (non-)joiners: part of Persian names, emoji


_SPACES = re.compile(" {2,}")


def _clean(text: str) -> str:
    # Display names and subjects come from learner data: control characters, bidi overrides
    # and line or paragraph separators become spaces rather than fail; runs of spaces one.
    # No-break spaces stay (French typography: "50 %", "« Anglais »"), encoded as the rest.
    if text.isprintable() and "  " not in text and text.strip() == text:
        return text      # nothing to replace (the common case, ten times faster)
    return _SPACES.sub(" ", "".join(
        ch if ch in _JOINERS or unicodedata.category(ch) not in ("Cc", "Cf", "Zl", "Zp") else " "
        for ch in text)).strip()


def clean_text(text: str) -> str:
    """A single line of text fit for a header (a name, a subject) in any transport: the
    subject rendering gives every channel and the ledger (delivery/rendering.py), so what
    is recorded is what was sent."""
    return _clean(text)


def _encoded(value: str, header_name: str) -> str:
    """`value` as RFC 2047 encoded words (UTF-8), in RFC 5322 lines of at most 78
    characters, words of at most 75: what `Header` writes."""
    raw = value.encode("utf-8")
    # the common case, an encoded word that fits on the header's first line: the one word
    # Header would write (the shorter of Q and B), without its walk character by character
    # for where to break (quadratic: 0.5 ms for a short accented name, most of a message)
    q, b = quoprimime.header_length(raw), base64mime.header_length(raw)
    if min(q, b) <= 75 - len(header_name) - 2 - len("=?utf-8?q??="):
        encoder = base64mime if b < q else quoprimime
        return encoder.header_encode(raw, charset="utf-8")
    return Header(value, "utf-8", header_name=header_name).encode(linesep="\r\n", maxlinelen=75)


def _folded(value: str, header_name: str) -> str | None:
    """ASCII `value` folded at its spaces (each fold is CRLF before a space the value has,
    so unfolding gives it back exactly, inside a quoted string too) into lines of at most
    78 characters, the header's name on the first; None when a word is too long to keep
    within RFC 5322's 998 (it must then be encoded). Not the email package's folders:
    compat32's Header inserts spaces where it breaks at `,` or `;` and may begin with an
    empty line; the newer policies drop the quotes around a long quoted name (a 5,000-
    character name with a comma became two addresses) or leave a 5,000-character line."""
    lines: list[str] = []
    line = ""
    room = 78 - len(header_name) - 2           # the first line holds "Name: "
    for word in value.split(" "):
        if line and len(line) + 1 + len(word) > room:
            lines.append(line)
            line, room = word, 77               # a continuation line begins with its space
        else:
            line = f"{line} {word}" if line else word
    lines.append(line)
    if len(lines[0]) + len(header_name) + 2 > 998 or any(len(x) + 1 > 998 for x in lines[1:]):
        return None
    return "\r\n ".join(lines)


def address(name: str, email: str, header_name: str = "To") -> str:
    refusal = email_refusal(email)       # the rule the engine plans with
    if refusal:
        raise HeaderError(refusal)
    name = _clean(name)
    if not name:
        return email
    if name.isascii() and "=?" not in name:
        folded = _folded(formataddr((name, email)), header_name)
        if folded is not None:
            return folded
    # encoded, also when ASCII text merely looks like an encoded word (a mail client would
    # decode it and show something else), or holds a word too long to fold
    phrase = _encoded(name, header_name)
    # the address on the phrase's last line if it fits in 78 (the first line holds the
    # header's name too), else on a line of its own
    last = phrase.rpartition("\r\n")[2]
    used = len(last) + (0 if "\r\n" in phrase else len(header_name) + 2)
    fits = used + len(email) + 3 <= 78
    return phrase + (" " if fits else "\r\n ") + f"<{email}>"


def _text(value: str, header_name: str) -> str:
    """A header value, folded here (the generator does not refold): ASCII folded at spaces,
    anything else (or ASCII that looks like an encoded word, or holds a word too long to
    fold) as RFC 2047 encoded words."""
    value = _clean(value)
    if value.isascii() and "=?" not in value:
        folded = _folded(value, header_name)
        if folded is not None:
            return folded
    return _encoded(value, header_name)


# RFC 5322 field names: printable ASCII but the colon (the few a channel adds: Auto-Submitted)
_FIELD_NAME = re.compile(r"[!-9;-~]+")


def _headers(msg: OutgoingMessage, date) -> list[tuple[str, str]]:
    """The message's own header fields, in order, each value folded and encoded as it goes
    out (ASCII: encoded words for the rest)."""
    fields = [("From", address(msg.from_name, msg.from_email, "From")),
              ("To", address(msg.to_name, msg.to_email, "To"))]
    if msg.reply_to:
        fields.append(("Reply-To", address("", msg.reply_to, "Reply-To")))
    domain = msg.from_email.partition("@")[2]
    fields += [("Subject", _text(msg.subject, "Subject")),
               ("Date", format_datetime(date)),
               ("Message-ID", make_msgid(idstring=msg.message_id, domain=domain))]
    # RFC 2369 and RFC 8058: a one-click unsubscribe that mail clients show as a button.
    # ASCII URLs, never encoded words (clients do not decode those in this header).
    # (none on the team's own mail, the daily lists: team/send.py)
    if msg.unsubscribe_url:
        fields += [("List-Unsubscribe", f"<{msg.unsubscribe_url}>, <{msg.unsubscribe_mailto}>"),
                   ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")]
    fields += [("X-Relance-Campaign", msg.campaign_id),
               ("X-Relance-Message-Id", msg.message_id)]
    for key, value in msg.headers.items():
        if not _FIELD_NAME.fullmatch(key):
            raise HeaderError(f"{key!r} cannot be a header's name (printable ASCII, no colon)")
        fields.append((key, _text(value, key)))
    return fields


def build(msg: OutgoingMessage, *, date) -> Message:
    """The message as the email package's classes (what `message_bytes` writes, as
    `to_bytes` gives it)."""
    text = MIMEText(msg.text, "plain", _UTF8_QP)
    if msg.html:
        mail: Message = MIMEMultipart("alternative")
        mail.attach(text)
        mail.attach(MIMEText(msg.html, "html", _UTF8_QP))
    else:
        mail = text
    for name, value in _headers(msg, date):
        mail[name] = value
    return mail


_PART = ('Content-Type: text/{}; charset="utf-8"\r\nMIME-Version: 1.0\r\n'
         'Content-Transfer-Encoding: quoted-printable\r\n')
_LINE_ENDS = re.compile(r"\r\n|\r|\n")


def _body(text: str) -> str:
    # quoted-printable as MIMEText makes it (the email package's own encoder), CRLF ends
    return _LINE_ENDS.sub("\r\n", _UTF8_QP.body_encode(text))


def message_bytes(msg: OutgoingMessage, *, date) -> bytes:
    """The message as sent on the wire (CRLF line ends): the bytes `to_bytes(build(msg))`
    gives, but for the multipart boundary and the Message-ID (both random), written
    directly. The email package's generator folded every header again through `Header`
    (eleven a message, whose values `_headers` has already folded and encoded) and
    compiled a regular expression per message to check its boundary (a quarter of the
    time; tests/test_channels_email.py holds both to the same bytes)."""
    fields = _headers(msg, date)
    lines = []
    for name, value in fields:
        if not value.isascii():
            # not a value `_headers` makes (they are ASCII or encoded words): the email
            # package's generator encodes it as it always did
            return to_bytes(build(msg, date=date))
        unfolded = value.replace("\r\n ", "")
        if "\r" in unfolded or "\n" in unfolded:      # a fold is the only line break
            raise HeaderError(f"{name}: a line break that is not a fold: {value!r}")
        lines.append(f"{name}: {value}\r\n")
    head = "".join(lines)
    text = _body(msg.text)
    if not msg.html:
        return f"{_PART.format('plain')}{head}\r\n{text}".encode("ascii")
    html = _body(msg.html)
    # a quoted-printable body writes every "=" as "=3D": no line of it is ever a boundary
    # made of "="s and digits (the generator checks it with a regular expression)
    boundary = "=" * 15 + "%019d" % random.randrange(sys.maxsize) + "=="
    return (f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n'
            f"MIME-Version: 1.0\r\n{head}\r\n"
            f"--{boundary}\r\n{_PART.format('plain')}\r\n{text}"
            f"\r\n--{boundary}\r\n{_PART.format('html')}\r\n{html}"
            f"\r\n--{boundary}--\r\n").encode("ascii")


def to_bytes(mail: Message) -> bytes:
    """The message as sent on the wire: CRLF line ends."""
    buffer = io.BytesIO()
    # maxheaderlen=0: headers go out as built above, never refolded (a fold right after
    # "List-Unsubscribe:" leaves a leading space some clients keep in the URL)
    # mangle_from_=False: a body line starting "From " stays as written (QP keeps it safe)
    BytesGenerator(buffer, policy=_CRLF, maxheaderlen=0, mangle_from_=False).flatten(mail)
    return buffer.getvalue()
