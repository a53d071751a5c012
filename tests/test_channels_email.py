"""The bytes of a message the e-mail channels write (outbox, SMTP): `message_bytes` writes
them directly; they are the bytes the email package's classes and generator give the same
message (`to_bytes(build(...))`), and they read back as written."""

from __future__ import annotations

import email
import re
from datetime import datetime, timezone
from email import policy
from email.header import Header, decode_header, make_header
from email.utils import parseaddr

import pytest
from hypothesis import given, settings, strategies as st

from relance.channels import OutgoingMessage
from relance.channels.email import (HeaderError, _encoded, build, clean_text, message_bytes,
                                    to_bytes)

DATE = datetime(2026, 11, 23, 13, 5, tzinfo=timezone.utc)
# names and subjects: accents, quotes and separators, emoji, bidi and zero-width characters,
# no-break spaces, things that look like encoded words, control characters
_CHARS = st.sampled_from('aZ09 ,;."\\()<>@:=?-_\'éèçÉœ«»’😀\u202e\u200d\t\u00a0\r\n\x00')
_TEXT = st.one_of(
    st.text(alphabet=_CHARS, max_size=200),
    st.text(max_size=60),
    st.builds(lambda head, n, tail: head + "é" * n + tail,       # long: folded, split words
              st.text(alphabet=_CHARS, max_size=20), st.integers(0, 400),
              st.text(alphabet=_CHARS, max_size=20)))
# bodies: lines of any length, trailing spaces, "=", "From " and "." at a line's start,
# every kind of line end
_BODY = st.text(alphabet=st.sampled_from("ab =.\té€😀\r\nF-"), max_size=600).map(
    lambda s: s.replace("F", "From "))


def _message(name="Zoé Lefèvre-Côté", subject="Bonjour Zoé — votre semaine",
             text="Bonjour,\n\nOù en êtes-vous ?\n", html="<p>Où en êtes-vous&nbsp;?</p>\n",
             from_name="Julie, équipe formation", headers=None, reply_to=None):
    return OutgoingMessage(
        "1c097c71d1935fca1b014c6b", "parcours-anglais", "zoe.lefevre@example.org", name,
        "formation@relance-demo.example", from_name, reply_to, subject, text, html,
        "http://localhost:8000/unsubscribe?l=L00001&c=parcours-anglais&t=935d69b5",
        "mailto:formation@relance-demo.example?subject=unsubscribe%20parcours-anglais",
        headers=headers or {})


def _same_but_random(raw: bytes) -> bytes:
    """The bytes with the parts that differ between two builds of one message (the
    multipart boundary, the Message-ID) made equal."""
    raw = re.sub(rb"={15}\d{19}==", b"BOUNDARY", raw)
    return re.sub(rb"Message-ID: <[^>]*>", b"Message-ID: <ID>", raw)


def _unfolded(head: str, name: str) -> str:
    unfolded = re.sub(r"\r\n(?=[ \t])", "", head)
    return next(h for h in unfolded.split("\r\n") if h.startswith(f"{name}: "))[len(name) + 2:]


def _decoded(head: str, name: str) -> str:
    """A header as RFC 2047 reads it (adjacent encoded words joined, as mail clients join
    them)."""
    return str(make_header(decode_header(_unfolded(head, name))))


def _read(raw: bytes):
    return email.message_from_bytes(raw, policy=policy.default)


@settings(max_examples=300, deadline=None)
@given(name=_TEXT, subject=_TEXT, text=_BODY, html=st.one_of(st.none(), st.just(""), _BODY))
def test_the_bytes_are_the_email_packages_and_read_back_as_written(name, subject, text, html):
    msg = _message(name=name, subject=subject, text=text, html=html,
                   headers={"Auto-Submitted": "auto-generated"})
    raw = message_bytes(msg, date=DATE)
    assert _same_but_random(raw) == _same_but_random(to_bytes(build(msg, date=DATE)))
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    assert max(len(line) for line in head.split("\r\n")) <= 998
    assert _decoded(head, "Subject") == clean_text(subject)
    to_name, to_email = parseaddr(_unfolded(head, "To"))
    assert (str(make_header(decode_header(to_name))), to_email) == (
        clean_text(name), "zoe.lefevre@example.org")
    read = _read(raw)
    assert read["From"].addresses[0].display_name == "Julie, équipe formation"
    assert read["Auto-Submitted"] == "auto-generated"
    assert read["Date"].datetime == DATE
    parts = list(read.iter_parts()) if html else [read]
    assert [p.get_content_type() for p in parts] == (
        ["text/plain", "text/html"] if html else ["text/plain"])
    # a body reads back as written, its line ends the wire's (CRLF)
    for part, body in zip(parts, (text, html)):
        assert part.get_content() == re.sub(r"\r\n|\r|\n", "\r\n", body)


def test_a_french_message_reads_back_with_its_accents_and_a_long_subject_folded():
    subject = "Votre parcours « Anglais professionnel » : " + "encore un effort " * 8
    raw = message_bytes(_message(subject=subject, reply_to="aide@relance-demo.example"),
                        date=DATE)
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    fields = re.split(r"\r\n(?![ \t])", head)
    assert all(len(line) <= 78 for field in fields if field.startswith(("From:", "To:", "Subject:"))
               for line in field.split("\r\n"))
    assert re.search(r"^Subject: .*\r\n ", head, re.M)          # folded over several lines
    read = _read(raw)
    assert read["Subject"] == subject.strip()
    assert read["To"].addresses[0].display_name == "Zoé Lefèvre-Côté"
    assert read["Reply-To"].addresses[0].addr_spec == "aide@relance-demo.example"
    assert read["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert read["Message-ID"].endswith("@relance-demo.example>")
    assert read.get_body(("plain",)).get_content() == "Bonjour,\r\n\r\nOù en êtes-vous ?\r\n"
    assert read.get_body(("html",)).get_content() == "<p>Où en êtes-vous&nbsp;?</p>\r\n"


@pytest.mark.parametrize("headers, error", [
    ({"X-Bad\r\nBcc": "x"}, "cannot be a header's name"),
    ({"X-Bad: Bcc": "x"}, "cannot be a header's name"),
])
def test_a_header_name_that_would_inject_another_header_is_refused(headers, error):
    with pytest.raises(HeaderError, match=error):
        message_bytes(_message(headers=headers), date=DATE)


def test_user_data_never_starts_a_header_of_its_own():
    raw = message_bytes(_message(name="Zoé\r\nBcc: all@example.org",
                                 subject="Hi\nBcc: all@example.org"), date=DATE)
    read = _read(raw)
    assert read["Bcc"] is None
    assert read["Subject"] == "Hi Bcc: all@example.org"


@settings(max_examples=300, deadline=None)
@given(value=st.text(min_size=1, max_size=120).filter(lambda s: not s.isascii()).map(clean_text)
       .filter(bool), header_name=st.sampled_from(["To", "From", "Subject", "Reply-To"]))
def test_a_short_encoded_word_is_the_one_header_writes(value, header_name):
    assert _encoded(value, header_name) == Header(value, "utf-8", header_name=header_name).encode(
        linesep="\r\n", maxlinelen=75)
