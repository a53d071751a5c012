"""Whatever arrives, reading it never crashes: any body and Content-Type posted to the
Inbound Parse route, and any bytes read from a mailbox, give a reply or MailError (the
receiver's 400 with its reason), never another exception."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from relance.replies.inbound_parse import parse
from relance.replies.mail import MailError, from_bytes

PART = st.builds(
    lambda name, value, filename: (f'--B\r\nContent-Disposition: form-data; name="{name}"'
                                   + (f'; filename="{filename}"' if filename else "")
                                   + "\r\n\r\n").encode() + value + b"\r\n",
    st.sampled_from(["to", "from", "subject", "text", "html", "headers", "envelope", "charsets",
                     "attachments", "attachment-info", "email", "x"]),
    st.binary(max_size=200) | st.sampled_from([b"{}", b"[]", b'{"to": 3}', b'{"text": "nope"}',
                                               b"Subject: x\r\n\r\nbody", b"\xff\xfe"]),
    st.none() | st.text(max_size=10))


@settings(max_examples=300, deadline=None)
@given(st.lists(PART, max_size=6), st.booleans(),
       st.sampled_from(["multipart/form-data; boundary=B", "multipart/form-data",
                        "multipart/form-data; boundary=", "text/plain", ""]))
@example([b'--B\r\nContent-Disposition: form-data; name="charsets"\r\n\r\n{"text": "nope"}\r\n'
          b'--B\r\nContent-Disposition: form-data; name="text"\r\n\r\nx\r\n'
          b'--B\r\nContent-Disposition: form-data; name="from"\r\n\r\na@b.c\r\n'
          b'--B\r\nContent-Disposition: form-data; name="to"\r\n\r\nc@d.e\r\n'], True,
         "multipart/form-data; boundary=B")
@example([b'--B\r\nContent-Disposition: form-data; name="to"; filename="\xc2\x80"\r\n\r\n\r\n'],
         True, "multipart/form-data; boundary=B")
def test_any_post_is_a_reply_or_a_reason(parts, closed, ctype):
    body = b"".join(parts) + (b"--B--\r\n" if closed else b"")
    try:
        mail = parse(body, ctype or None)
    except MailError as exc:
        assert str(exc)
        return
    mail.automatic()
    assert isinstance(mail.reply_id, str) and len(mail.text) <= 20_000


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600) | st.builds(
    lambda head, body: head + b"\r\n\r\n" + body,
    st.lists(st.sampled_from([b"From: =?utf-8?b?broken", b"From: Z\xc3\xa9 <z@x.org>",
                              b"Subject: caf\xc3\xa9 \xff", b"Cc: \xe9@x", b"Content-Type: multipart/report",
                              b"Content-Type: text/plain; charset=nope", b"Date: yesterday",
                              b"Auto-Submitted: no", b"Subject: Out of office",
                              b"Content-Transfer-Encoding: base64", b"To: a+b.c@d"]),
             max_size=6).map(b"\r\n".join),
    st.binary(max_size=300)))
@example(b"From: Z\xc3\xa9 <z@x.org>\r\nTo: r\xc3\xa9+a@b.c, q@d.e\r\nSubject: caf\xc3\xa9\r\n"
         b"Message-ID: <\xc3\xa9@x>\r\nDate: \xc3\xa9\r\n\r\nbody")
def test_any_bytes_from_a_mailbox_are_a_reply_or_a_reason(raw):
    try:
        mail = from_bytes(raw, "imap")
    except MailError:
        return
    mail.automatic()
    assert mail.new_text is not None
