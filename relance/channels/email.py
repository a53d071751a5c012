"""Building RFC 5322 messages, shared by every e-mail channel. User data (names, subjects)
only reaches headers through `email.headerregistry`, which refuses line breaks."""

from __future__ import annotations

import unicodedata
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid

from relance.channels.base import OutgoingMessage


class HeaderError(ValueError):
    pass


def _clean(text: str) -> str:
    # Display names come from learner data: drop control characters and line or paragraph
    # separators rather than fail.
    return "".join(ch for ch in text
                   if unicodedata.category(ch) not in ("Cc", "Cf", "Zl", "Zp")).strip()


def address(name: str, email: str) -> Address:
    local, _, domain = email.partition("@")
    if not local or not domain or any(c in email for c in "\r\n<>\",; "):
        raise HeaderError(f"not a valid e-mail address: {email!r}")
    return Address(display_name=_clean(name), username=local, domain=domain)


def build(msg: OutgoingMessage, *, date) -> EmailMessage:
    # policy.SMTP: CRLF line ends and RFC 2047 encoded words, so accents in names and
    # subjects survive every mail client and relay, 8-bit clean or not. Lines may run to
    # RFC 5322's 998 characters: folding at 78 would turn the long List-Unsubscribe URL
    # into encoded words, which mail clients do not decode in that header.
    mail = EmailMessage(policy=SMTP.clone(max_line_length=998))
    mail["From"] = address(msg.from_name, msg.from_email)
    mail["To"] = address(msg.to_name, msg.to_email)
    if msg.reply_to:
        mail["Reply-To"] = address("", msg.reply_to)
    if any(c in msg.subject for c in "\r\n"):
        raise HeaderError("the subject holds a line break")
    mail["Subject"] = msg.subject
    mail["Date"] = format_datetime(date)
    domain = msg.from_email.partition("@")[2]
    mail["Message-ID"] = make_msgid(idstring=msg.message_id, domain=domain)
    # RFC 2369 and RFC 8058: a one-click unsubscribe that mail clients show as a button.
    mail["List-Unsubscribe"] = f"<{msg.unsubscribe_url}>, <{msg.unsubscribe_mailto}>"
    mail["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    mail["X-Relance-Campaign"] = msg.campaign_id
    mail["X-Relance-Message-Id"] = msg.message_id
    for key, value in msg.headers.items():
        mail[key] = value
    mail.set_content(msg.text, charset="utf-8")
    if msg.html:
        mail.add_alternative(msg.html, subtype="html", charset="utf-8")
    return mail
