"""The value types a campaign file is written in: weekdays and times (`monday 08:30`),
shares and milestones (`10%`), addresses, header text, timezones, locales, run schedules.

Each parses what a designer writes and refuses the rest with a message that says what was
expected; the JSON Schema describes the written form, so editors check it as they type.
"""

from __future__ import annotations

import re
from datetime import time
from typing import Annotated

from email_validator import EmailNotValidError, validate_email
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

from relance.campaign import conditions, values


WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


_DAY_ALIASES = {d[:3]: d for d in WEEKDAYS} | {d: d for d in WEEKDAYS} | {
    "lundi": "monday", "mardi": "tuesday", "mercredi": "wednesday", "jeudi": "thursday",
    "vendredi": "friday", "samedi": "saturday", "dimanche": "sunday",
}


SLUG = r"^[a-z0-9][a-z0-9-]*$"


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _weekday(raw: object) -> str:
    day = _DAY_ALIASES.get(str(raw).strip().lower())
    if not day:
        raise ValueError(f"expected a weekday such as 'monday' or 'mon', got {raw!r}")
    return day


def _clock(text: str) -> time:
    m = re.match(r"^(\d{1,2})[:hH](\d{2})$", text.strip())
    if not m or int(m.group(1)) > 23 or int(m.group(2)) > 59:
        raise ValueError(f"expected a time of day 'HH:MM' from 00:00 to 23:59, got {text!r}")
    return time(int(m.group(1)), int(m.group(2)))


Weekday = Annotated[str, BeforeValidator(_weekday)]


def _percent_share(raw: object) -> float:
    value = conditions.parse_percent(raw)
    if not 0 <= value <= 50:
        raise ValueError(f"a control group share must be between 0% and 50%, got {raw!r}")
    return value


def _milestone(raw: object) -> float:
    value = conditions.parse_percent(raw) if not isinstance(raw, (int, float)) or raw >= 1 \
        else float(raw) * 100
    if not 0 < value <= 100:
        raise ValueError(f"a progress milestone must be above 0% and at most 100%, got {raw!r}")
    return value


def _email(raw: object) -> str:
    try:
        checked = validate_email(str(raw), check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"expected an e-mail address such as 'team@example.org', got {raw!r} "
                         f"({exc})") from None
    # a domain with accents in its ASCII (xn--) form; then the channels' own rule, so a
    # sender that validates is one they can send from
    address = checked.ascii_email or checked.normalized
    problem = values.email_problem(address)
    if problem:
        raise ValueError(f"expected an e-mail address such as 'team@example.org', got {raw!r} "
                         f"({values.EMAIL_PROBLEMS[problem]})")
    return address


def _header_text(raw: object) -> str:
    text = str(raw)
    if any(c in text for c in "\r\n\0"):
        raise ValueError("must be a single line (it goes into an e-mail header)")
    return text.strip()


Email = Annotated[str, BeforeValidator(_email), Field(examples=["formation@example.org"])]


HeaderText = Annotated[str, BeforeValidator(_header_text)]


Timezone = Annotated[str, BeforeValidator(values.timezone), Field(examples=["Europe/Paris"])]


LocaleCode = Annotated[str, BeforeValidator(values.locale), Field(examples=["fr", "en"])]


class WeeklyAt(StrictModel):
    """A weekly moment, written `monday 08:30`."""

    day: Weekday = Field(description="Weekday, in English or French, in full or in three "
                                     "letters.", examples=["monday"])
    at: time = Field(description="Time of day, HH:MM, in the learner's timezone.",
                     examples=["08:30"])


def _weekly(raw: object) -> object:
    if isinstance(raw, str):
        parts = raw.split()
        if len(parts) != 2:
            raise ValueError(f"expected a weekday and a time such as 'monday 08:30', got {raw!r}")
        errors = []
        for check, part in ((_weekday, parts[0]), (_clock, parts[1])):
            try:
                check(part)
            except ValueError as exc:
                errors.append(str(exc))
        if errors:
            raise ValueError("; ".join(errors))
        return {"day": parts[0], "at": _clock(parts[1])}
    return raw


# The JSON Schema describes what a designer writes (editors check it as they type), which
# for these types is looser than what the models hold once validated.
_PERCENT_TEXT = {"type": "string", "pattern": r"^\s*-?\d+([.,]\d+)?\s*%\s*$"}


PERCENT_SCHEMA = {"anyOf": [{"type": "number"}, _PERCENT_TEXT]}


WeeklyTime = Annotated[WeeklyAt, BeforeValidator(_weekly),
                       WithJsonSchema({"type": "string", "examples": ["monday 08:30"]})]


_NAMES_SCHEMA = WithJsonSchema({"anyOf": [{"type": "string"},
                                          {"type": "array", "items": {"type": "string"}}]})
StageNames = Annotated[list[str], BeforeValidator(lambda v: [v] if isinstance(v, str) else v),
                       _NAMES_SCHEMA]


def _as_texts(v):
    return v if v is None else [str(x) for x in (v if isinstance(v, list) else [v])]


# course ids and cohort names: one or a list, each read as text (YAML reads a cohort named
# 2026 as a number); the same in campaigns and team files
IdNames = Annotated[list[str], BeforeValidator(_as_texts), _NAMES_SCHEMA]


Milestone = Annotated[float, BeforeValidator(_milestone), WithJsonSchema(PERCENT_SCHEMA)]


# When a campaign runs (its deployment's schedule): a weekday, every weekday or every day,
# at a time in the campaign's timezone. Cron stays out of campaign files.
RUN_DAYS = {"daily": "*", "weekdays": "1-5"}


class RunAt(StrictModel):
    """When a campaign runs, written as one string: 'monday 08:00', 'weekdays 09:00'."""

    days: str = Field(description="A weekday, weekdays or daily.", examples=["monday"])
    at: time = Field(description="The local time of the run.", examples=["08:00"])

    def cron(self) -> str:
        days = RUN_DAYS.get(self.days) or str((WEEKDAYS.index(self.days) + 1) % 7)
        return f"{self.at.minute} {self.at.hour} * * {days}"

    def __str__(self) -> str:
        return f"{self.days} {self.at:%H:%M}"


def _run_at(raw: object) -> object:
    if not isinstance(raw, str):
        return raw
    parts = raw.split()
    if len(parts) != 2:
        raise ValueError(f"expected days and a time such as 'monday 08:00', 'weekdays 09:00' "
                         f"or 'daily 07:00', got {raw!r}")
    days = parts[0].lower() if parts[0].lower() in RUN_DAYS else _weekday(parts[0])
    return {"days": days, "at": _clock(parts[1])}


RunSchedule = Annotated[RunAt, BeforeValidator(_run_at),
                        WithJsonSchema({"type": "string",
                                        "examples": ["monday 08:00", "weekdays 09:00"]})]


def _variant_share(raw: object) -> float:
    value = conditions.parse_percent(raw)
    if not 0 < value <= 100:
        raise ValueError(f"a variant's share must be above 0% and at most 100%, got {raw!r}")
    return value
