"""Checks of single values that the campaign model and its example learners share, and
the one rule of an e-mail address relance can send to (the channels', the engine's and
the loaders' rule)."""

from __future__ import annotations

import re
import zoneinfo

from babel import Locale, UnknownLocaleError


def timezone(raw: object) -> str:
    try:
        zoneinfo.ZoneInfo(str(raw))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"expected an IANA timezone such as 'Europe/Paris', got {raw!r}") from None
    return str(raw)


def locale(raw: object) -> str:
    try:
        Locale.parse(str(raw).replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        raise ValueError(f"expected a locale such as 'fr' or 'en', got {raw!r}") from None
    return str(raw)


# An address every channel can send to, without SMTPUTF8 (which SendGrid and most mail
# servers do not offer): ASCII only (a domain with accents is written in its xn-- form), a
# dot-atom before the @ (no quoted local part, no comment), at most 64 characters there
# and 254 in all (RFC 5321), a domain of letter-or-digit labels ending in a top-level
# domain of letters. Stricter than RFC 5322 on purpose: an address outside it is a typo
# far more often than a real mailbox. warehouse/macros.sql's `email_problem` is the same
# rule in SQL (loaders, engine); tests/test_addresses.py holds both to the same answers.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
EMAIL_PATTERN = rf"{_ATOM}(?:\.{_ATOM})*@(?:{_LABEL}\.)+(?:[A-Za-z]{{2,63}}|xn--[A-Za-z0-9-]{{1,59}})"
_EMAIL = re.compile(EMAIL_PATTERN)
# what each problem means, for people
EMAIL_PROBLEMS = {
    "non-ASCII": "not ASCII: a non-ASCII name before the @ needs SMTPUTF8, which SendGrid and "
                 "most mail servers refuse; a domain with accents is written in its xn-- form",
    "malformed": "not a plain address such as name@example.org",
    "too long": "longer than 64 characters before the @ or 254 in all",
}


def email_problem(address: str) -> str | None:
    """What keeps relance from sending to `address` (a key of EMAIL_PROBLEMS), or None."""
    if not address.isascii():
        return "non-ASCII"
    if not _EMAIL.fullmatch(address):
        return "malformed"
    if len(address.partition("@")[0]) > 64 or len(address) > 254:
        return "too long"
    return None


def email_refusal(address: str) -> str | None:
    """Why relance cannot send to `address`, in words, or None."""
    problem = email_problem(address)
    return f"cannot send to {address!r}: {EMAIL_PROBLEMS[problem]}" if problem else None
