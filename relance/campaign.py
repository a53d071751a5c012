"""The campaign format: what a learning designer writes in `campaigns/<id>.yaml`.

These pydantic models are the format's single definition: they validate campaign files
(unknown keys are errors), and `relance schema` writes their JSON Schema for editors.
Checks that span several fields (a message naming an unknown stage) live in
`Campaign.problems()` so that each problem can point at its own line.
"""

from __future__ import annotations

import re
import zoneinfo
from datetime import time
from typing import Annotated, Literal, Union

from babel import Locale, UnknownLocaleError
from email_validator import EmailNotValidError, validate_email
from pydantic import (BaseModel, BeforeValidator, ConfigDict, Field, field_validator,
                      model_validator)

from relance import conditions
from relance.measures import MEASURES

WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
_DAY_ALIASES = {d[:3]: d for d in WEEKDAYS} | {d: d for d in WEEKDAYS} | {
    "lundi": "monday", "mardi": "tuesday", "mercredi": "wednesday", "jeudi": "thursday",
    "vendredi": "friday", "samedi": "saturday", "dimanche": "sunday",
}
RECAP_SECTIONS = ("last_week", "colleagues_contributions", "open_activities", "this_week")
SLUG = r"^[a-z0-9][a-z0-9-]*$"


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# -- small value types ------------------------------------------------------------------

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
        return validate_email(str(raw), check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValueError(f"expected an e-mail address such as 'team@example.org', got {raw!r} "
                         f"({exc})") from None


def _header_text(raw: object) -> str:
    text = str(raw)
    if any(c in text for c in "\r\n\0"):
        raise ValueError("must be a single line (it goes into an e-mail header)")
    return text.strip()


Email = Annotated[str, BeforeValidator(_email), Field(examples=["formation@example.org"])]
HeaderText = Annotated[str, BeforeValidator(_header_text)]


def _timezone(raw: object) -> str:
    try:
        zoneinfo.ZoneInfo(str(raw))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"expected an IANA timezone such as 'Europe/Paris', got {raw!r}") from None
    return str(raw)


def _locale(raw: object) -> str:
    try:
        Locale.parse(str(raw).replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        raise ValueError(f"expected a locale such as 'fr' or 'en', got {raw!r}") from None
    return str(raw)


Timezone = Annotated[str, BeforeValidator(_timezone), Field(examples=["Europe/Paris"])]
LocaleCode = Annotated[str, BeforeValidator(_locale), Field(examples=["fr", "en"])]


# -- conditions over measures -------------------------------------------------------------

_DESCR = {name: f"{m.description} Example: {m.example}." for name, m in MEASURES.items()}
Cmp = Union[str, int, float]


class Criteria(StrictModel):
    """Conditions over the learner's measures; all of them must hold."""

    progress: Cmp | None = Field(None, description=_DESCR["progress"], examples=[">= 75%"])
    inactive_days: Cmp | None = Field(None, description=_DESCR["inactive_days"], examples=[">= 7"])
    enrolled_days: Cmp | None = Field(None, description=_DESCR["enrolled_days"], examples=[">= 7"])
    stalled_days: Cmp | None = Field(None, description=_DESCR["stalled_days"], examples=[">= 14"])
    overdue: Cmp | None = Field(None, description=_DESCR["overdue"], examples=[">= 2"])
    course_week: Cmp | None = Field(None, description=_DESCR["course_week"], examples=["<= 2"])
    days_left: Cmp | None = Field(None, description=_DESCR["days_left"], examples=["<= 14"])
    started: bool | None = Field(None, description=_DESCR["started"], examples=[False])
    completed: bool | None = Field(None, description=_DESCR["completed"], examples=[True])

    @field_validator(*MEASURES, mode="after")
    @classmethod
    def _comparison(cls, raw, info):
        if raw is not None:
            conditions.parse(raw, info.field_name)
        return raw

    def parsed(self) -> dict[str, conditions.Comparison | bool]:
        return {name: conditions.parse(getattr(self, name), name)
                for name in MEASURES if getattr(self, name) is not None}

    def sql(self, table: str = "m") -> str:
        parts = [conditions.predicate(n, c, table) for n, c in self.parsed().items()]
        return " and ".join(parts) if parts else "true"


class Stage(Criteria):
    """A learner stage. Stages are tried in the order written; the first that matches wins.
    A stage with no condition matches everyone left (put it last)."""

    description: str | None = Field(None, description="What the stage means, for people.")
    any_of: list[Criteria] | None = Field(
        None, description="Alternatives: the stage also needs one of these to hold.",
        examples=[[{"inactive_days": ">= 21"}, {"overdue": ">= 3"}]])

    def sql(self, table: str = "m") -> str:
        base = super().sql(table)
        if self.any_of:
            alternatives = " or ".join(f"({c.sql(table)})" for c in self.any_of)
            return f"({base}) and ({alternatives})"
        return base

    @property
    def requires_completion(self) -> bool:
        parsed = self.parsed()
        progress = parsed.get("progress")
        return parsed.get("completed") is True or (
            isinstance(progress, conditions.Comparison)
            and progress.op in (">=", "=") and progress.value >= 100)


# -- messages ------------------------------------------------------------------------------

class WeeklyAt(StrictModel):
    day: Weekday
    at: time


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


WeeklyTime = Annotated[WeeklyAt, BeforeValidator(_weekly),
                       Field(json_schema_extra={"type": "string", "examples": ["monday 08:30"]})]
StageNames = Annotated[list[str], BeforeValidator(lambda v: [v] if isinstance(v, str) else v)]
Milestone = Annotated[float, BeforeValidator(_milestone)]

# When a campaign runs (its deployment's schedule): a weekday, every weekday or every day,
# at a time in the campaign's timezone. Cron stays out of campaign files.
RUN_DAYS = {"daily": "*", "weekdays": "1-5"}


class RunAt(StrictModel):
    days: str
    at: time

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
                        Field(json_schema_extra={"type": "string",
                                                 "examples": ["monday 08:00", "weekdays 09:00"]})]

TRIGGERS = ("on_enter", "while_in", "every", "on_milestone", "on_activity")


class Message(StrictModel):
    """A message and what triggers it. Exactly one trigger per message."""

    description: str | None = None
    on_enter: str | None = Field(
        None, description="Send once each time the learner enters this stage.",
        examples=["at_risk"])
    while_in: StageNames | None = Field(
        None, description="Send once a week while the learner is in one of these stages.",
        examples=[["at_risk"]])
    every: WeeklyTime | None = Field(
        None, description="The weekly rhythm: send once a week, from this weekday and time "
                          "in the learner's timezone, to the stages listed in `to`.")
    to: StageNames | None = Field(
        None, description="With `every`: the stages that get the message (default: all).",
        examples=[["active", "at_risk"]])
    on_milestone: Annotated[list[Milestone], BeforeValidator(
        lambda v: [v] if not isinstance(v, list) else v)] | None = Field(
        None, description="Send once when progress crosses each of these thresholds "
                          "(the highest one crossed, if several were crossed at once).",
        examples=[["25%", "50%", "75%"]])
    on_activity: StageNames | None = Field(
        None, description="Send once when the learner completes one of these activities "
                          "(activity ids of the course calendar).", examples=[["quiz-unit-3"]])
    include: list[Literal[RECAP_SECTIONS]] = Field(  # type: ignore[valid-type]
        default_factory=list,
        description="Recap sections made available to the templates: last_week, "
                    "colleagues_contributions, open_activities, this_week.",
        examples=[["last_week", "this_week"]])
    template: str | None = Field(
        None, description="Template folder under campaigns/<id>/ (default: the message key).")
    after_course_end: bool = Field(
        False, description="Also send once the course has ended (default: no).")
    to_completed: bool | None = Field(
        None, description="Also send to learners who completed the course. Default: only "
                          "for milestones and for stages that require completion.")

    @model_validator(mode="after")
    def _one_trigger(self):
        given = [t for t in TRIGGERS if getattr(self, t) is not None]
        if len(given) != 1:
            raise ValueError(
                "a message needs exactly one trigger among " + ", ".join(TRIGGERS)
                + (f"; found {', '.join(given)}" if given else "; found none"))
        if self.to is not None and self.every is None:
            raise ValueError("`to` goes with `every` (the weekly rhythm); "
                             "for other triggers the stage is part of the trigger")
        return self

    @property
    def trigger(self) -> str:
        return next(t for t in TRIGGERS if getattr(self, t) is not None)


# -- the rest of a campaign -------------------------------------------------------------------

class Audience(StrictModel):
    """Who the campaign is for. All the given filters must hold."""

    course: StageNames | None = Field(None, description="Course id(s).", examples=[["anglais-b2"]])
    cohort: StageNames | None = Field(None, description="Cohort name(s).", examples=[["2026-09"]])
    where: str | None = Field(
        None, description="A SQL condition over the learner and enrolment columns (locale, "
                          "timezone, email, cohort, status, manager_email ...).",
        examples=["locale like 'fr%'"])

    @field_validator("course", "cohort", mode="before")
    @classmethod
    def _as_text(cls, v):
        if v is None:
            return v
        return [str(x) for x in (v if isinstance(v, list) else [v])]

    @field_validator("where")
    @classmethod
    def _safe_condition(cls, v):
        if v is not None:
            from relance import audience_condition
            audience_condition.check(v)
        return v


class Sender(StrictModel):
    name: HeaderText = Field(description="Display name of the sender.",
                             examples=["Julie, équipe formation"])
    email: Email


class FollowUp(Criteria):
    """A rule that puts a learner on the community manager's follow-up list."""

    stage: StageNames | None = Field(None, description="Stage(s) the rule applies to.",
                                     examples=[["dormant"]])
    reason: str = Field(description="What the community manager reads.",
                        examples=["Silent for three weeks: call them."])


class Limits(StrictModel):
    per_learner_per_week: int = Field(
        2, ge=1, le=50,
        description="At most this many relance messages per learner per week (the learner's "
                    "own calendar week, all campaigns together).")
    per_campaign_per_week: int = Field(
        1, ge=1, le=7,
        description="At most this many messages of this campaign per learner per week; when "
                    "several are due, the first in the file goes and the others wait.")
    quiet_hours: str | None = Field(
        None, description="No mail in this span of the learner's local time; a message "
                          "due then waits for its end.", examples=["20:00-08:00"])
    send_days: list[Weekday] = Field(
        default_factory=lambda: list(WEEKDAYS),
        description="Weekdays on which mail may go out (learner's local time).",
        examples=[["monday", "tuesday", "wednesday", "thursday", "friday"]])

    @field_validator("quiet_hours")
    @classmethod
    def _span(cls, v):
        if v is None:
            return v
        parts = v.split("-")
        if len(parts) != 2:
            raise ValueError(f'expected "HH:MM-HH:MM", got {v!r}')
        start, end = (_clock(p) for p in parts)
        if start == end:
            raise ValueError(f"quiet hours {v!r} start and end at the same time")
        return v

    def allows(self, day: int, at: time) -> bool:
        """Whether mail may go out on weekday `day` (0 = Monday) at `at`, local time."""
        if WEEKDAYS[day] not in self.send_days:
            return False
        span = self.quiet_span
        if span is None:
            return True
        start, end = span
        quiet = (at >= start or at < end) if start > end else (start <= at < end)
        return not quiet

    def sends_within_week(self, moment: "WeeklyAt") -> bool:
        """Whether a weekly message due at `moment` can go out before its week ends: at that
        moment, or at a later window opening (the end of the quiet hours) in the same week."""
        day = WEEKDAYS.index(moment.day)
        if self.allows(day, moment.at):
            return True
        opening = self.quiet_span[1] if self.quiet_span else time(0, 0)
        return any(self.allows(d, opening) and (d > day or opening > moment.at)
                   for d in range(day, 7))

    @property
    def quiet_span(self) -> tuple[time, time] | None:
        if not self.quiet_hours:
            return None
        a, b = self.quiet_hours.split("-")
        return _clock(a), _clock(b)


class Campaign(StrictModel):
    """An engagement campaign: who, in which stages, gets which message, and when."""

    id: str = Field(pattern=SLUG, description="Equal to the file name, e.g. parcours-anglais.",
                    examples=["parcours-anglais"])
    description: str = Field(min_length=1, description="The audience and the grain, for people.")
    audience: Audience
    locale: LocaleCode = Field("fr", description="Locale for learners whose own locale is not "
                                                 "among `locales`.")
    locales: list[LocaleCode] = Field(
        default_factory=lambda: ["fr", "en"],
        description="Locales the templates exist in; a learner gets their own if listed.")
    timezone: Timezone = Field("Europe/Paris", description="For learners with no timezone.")
    sender: Sender
    reply_to: Email | None = None
    channel: Literal["outbox"] = Field(
        "outbox", description="Where messages go: outbox writes .eml files (the default).")
    control_group: Annotated[float, BeforeValidator(_percent_share)] = Field(
        0.0, description="Share of learners kept as a control group (0-50 %): evaluated, "
                         "never messaged, stable per learner and campaign.", examples=["10%"])
    stages: dict[str, Stage] = Field(min_length=1, description="Stages, first match wins.")
    messages: dict[str, Message] = Field(min_length=1)
    follow_up: dict[str, FollowUp] = Field(
        default_factory=dict, description="Rules for the community manager's follow-up list.")
    limits: Limits = Field(default_factory=Limits)
    schedule: RunSchedule | None = Field(
        None, description="When the campaign runs, in its `timezone`: 'monday 08:00', "
                          "'weekdays 09:00' or 'daily 07:00'. Default: the day and time of its "
                          "first weekly (`every`) message in the week, else monday 08:00. "
                          "`relance deployments` turns it into the Prefect schedule.")

    @field_validator("stages", "messages", "follow_up")
    @classmethod
    def _slug_keys(cls, v):
        for key in v:
            if not re.match(r"^[a-z0-9][a-z0-9_-]*$", key):
                raise ValueError(f"{key!r}: use lower-case letters, digits, '-' and '_'")
        return v

    def problems(self) -> list[tuple[tuple, str]]:
        """Cross-field checks: (location, what is wrong) pairs; empty when all is well."""
        found: list[tuple[tuple, str]] = []
        known = list(self.stages)

        def check_stage(loc: tuple, name: str) -> None:
            if name not in self.stages:
                found.append((loc, f"unknown stage {name!r}; the stages are: {', '.join(known)}"))

        for key, msg in self.messages.items():
            if msg.on_enter is not None:
                check_stage(("messages", key, "on_enter"), msg.on_enter)
            for i, name in enumerate(msg.while_in or []):
                check_stage(("messages", key, "while_in", i), name)
            for i, name in enumerate(msg.to or []):
                check_stage(("messages", key, "to", i), name)
            if msg.include and msg.every is None and msg.while_in is None:
                found.append((("messages", key, "include"),
                              "recap sections go with a weekly message (`every` or `while_in`)"))
        for key, msg in self.messages.items():
            if msg.every is not None and not self.limits.sends_within_week(msg.every):
                found.append((("messages", key, "every"),
                              f"{msg.every.day} {msg.every.at:%H:%M} is outside the send window "
                              f"(send_days, quiet_hours) and the next moment mail may go out is "
                              f"in the following week, so this weekly message would never be "
                              f"sent: choose a day and time inside the window"))
        for key, rule in self.follow_up.items():
            for i, name in enumerate(rule.stage or []):
                check_stage(("follow_up", key, "stage", i), name)
        if self.locale not in self.locales:
            found.append((("locale",), f"{self.locale!r} must be one of `locales` "
                                       f"({', '.join(self.locales)})"))
        catch_all = [n for n, s in self.stages.items() if s.sql() == "true"]
        if catch_all and catch_all[0] != known[-1]:
            found.append((("stages", catch_all[0]),
                          f"stage {catch_all[0]!r} has no condition, so the stages after it "
                          "can never match: move it last"))
        return found

    def allows_completed(self, key: str) -> bool:
        """Whether message `key` may go to a learner who completed the course."""
        msg = self.messages[key]
        if msg.to_completed is not None:
            return msg.to_completed
        if msg.on_milestone or msg.on_activity:
            return True
        targets = ([msg.on_enter] if msg.on_enter else []) + (msg.while_in or []) + (msg.to or [])
        return bool(targets) and all(
            self.stages[t].requires_completion for t in targets if t in self.stages)
