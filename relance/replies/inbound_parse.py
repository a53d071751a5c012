"""SendGrid's Inbound Parse webhook: a mail posted as multipart/form-data, as SendGrid
documents it (https://www.twilio.com/docs/sendgrid/for-developers/parsing-email/inbound-email):
fields `to`, `from`, `cc`, `subject`, `text`, `html`, `headers` (the raw header block),
`envelope` (JSON: {"to": [...], "from": "..."}), `charsets` (JSON: each field's charset),
`attachments` (a count), `attachment-info` (JSON) and one file part per attachment; or,
with "POST the raw, full MIME message" checked, the whole mail in the `email` field.

The form is parsed by the standard library's MIME parser (a form is a MIME multipart);
anything it cannot take apart is refused with the reason (400), never a crash. Attachment
parts are counted and dropped. The body was capped by the receiver before it was read.
"""

from __future__ import annotations

import json

from email import policy
from email.parser import BytesParser
from email.utils import collapse_rfc2231_value, getaddresses

from relance.replies.mail import (MAX_TEXT, Inbound, MailError, _address, _clean_line,
                                  _describe, _date, from_bytes, headers_block, html_to_text)

import hashlib


class Route:
    """What `relance serve` hands an Inbound Parse post to: `parse` (MailError, a
    ValueError, says why it is refused) then `store`, on the warehouse it opened."""

    def __init__(self, campaigns_dir):
        self.campaigns_dir = campaigns_dir

    def parse(self, body: bytes, content_type: str | None):
        return parse(body, content_type)

    def store(self, con, mail):
        from relance.replies import ingest
        return ingest.store(con, mail, ingest.Campaigns(self.campaigns_dir))


def parse(body: bytes, content_type: str | None) -> Inbound:
    """The mail a SendGrid Inbound Parse POST carries; MailError says what is wrong."""
    if not content_type or not content_type.lower().startswith("multipart/form-data"):
        raise MailError(f"expected Content-Type multipart/form-data (SendGrid Inbound Parse), "
                        f"got {(content_type or 'none')[:80]!r}")
    if "boundary=" not in content_type.lower():
        raise MailError("multipart/form-data without a boundary parameter")
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1", "replace")
    try:
        form = BytesParser(policy=policy.compat32).parsebytes(head + body)
    except Exception as exc:
        raise MailError(f"the form cannot be parsed: {exc}") from None
    defects = [type(d).__name__ for d in form.defects]
    if not form.is_multipart() or any(d in defects for d in (
            "StartBoundaryNotFoundDefect", "CloseBoundaryNotFoundDefect",
            "MultipartInvariantViolationDefect", "NoBoundaryInMultipartDefect")):
        raise MailError("malformed multipart/form-data body"
                        + (f" ({', '.join(defects)})" if defects else "")
                        + ": expected parts separated by the boundary the Content-Type names")
    fields: dict[str, bytes] = {}
    n_files, file_bytes = 0, 0
    for part in form.get_payload():
        # str(): a header with non-ASCII bytes is an email.header.Header object
        disposition = str(part.get("Content-Disposition", ""))
        if not disposition.lower().startswith("form-data"):
            raise MailError("a form part has no `Content-Disposition: form-data` header")
        name = collapse_rfc2231_value(part.get_param("name", header="content-disposition") or "")
        if part.get_param("filename", header="content-disposition") is not None:
            n_files += 1
            file_bytes += len(part.get_payload(decode=True) or b"")
            continue
        if name:
            fields.setdefault(str(name), part.get_payload(decode=True) or b"")
    try:
        charsets = json.loads(fields.get("charsets", b"{}") or b"{}")
        if not isinstance(charsets, dict):
            raise ValueError
    except ValueError:
        raise MailError("`charsets` is not a JSON object of field names to charsets") from None

    def text(name: str) -> str:
        raw = fields.get(name, b"")
        charset = str(charsets.get(name) or "utf-8")
        try:
            return raw.decode(charset, "replace")
        except LookupError:
            return raw.decode("utf-8", "replace")

    try:
        envelope = json.loads(text("envelope") or "{}")
        if not isinstance(envelope, dict):
            raise ValueError
    except ValueError:
        raise MailError("`envelope` is not the JSON object SendGrid sends "
                        '({"to": [...], "from": "..."})') from None
    envelope_to = [str(a).lower() for a in envelope.get("to") or [] if "@" in str(a)]

    if "email" in fields:          # raw mode: the whole mail
        mail = from_bytes(fields["email"], "inbound_parse", envelope_to=envelope_to)
        if n_files and not mail.attachments:
            mail.attachments = _describe(n_files, file_bytes)
        return mail

    if not fields.get("from") and not envelope.get("from"):
        raise MailError("the form has no `from` field (nor an envelope sender): not an "
                        "Inbound Parse post")
    if not fields.get("to") and not envelope_to:
        raise MailError("the form has no `to` field (nor envelope recipients)")
    headers = headers_block(text("headers")) if fields.get("headers") else {}
    body_text = text("text") if "text" in fields else html_to_text(text("html"))
    recipients = [a.lower() for _, a in getaddresses([text("to"), text("cc")]) if "@" in a]
    try:
        n_declared = int(text("attachments") or 0)
    except ValueError:
        n_declared = 0
    report_type = None
    ctype = (headers.get("content-type") or "text/plain").split(";")[0].strip().lower()
    if ctype == "multipart/report":
        report_type = "delivery-status" if "delivery-status" in headers.get("content-type", "").lower() else ""
    digest = hashlib.sha256(body).hexdigest()
    return Inbound(
        source="inbound_parse", recipients=recipients + envelope_to,
        from_address=_address(text("from")) or _address(str(envelope.get("from") or "")),
        subject=_clean_line(text("subject")), text=body_text[:MAX_TEXT],
        message_id_header=headers.get("message-id") or None,
        sent_at=_date(headers.get("date")), headers=headers, content_type=ctype,
        report_type=report_type, has_delivery_status=False,
        attachments=_describe(max(n_files, n_declared), file_bytes), raw_digest=digest)
