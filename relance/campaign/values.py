"""Checks of single values that the campaign model and its example learners share."""

from __future__ import annotations

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
