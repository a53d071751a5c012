"""The campaign format: what a learning designer writes in `campaigns/<id>.yaml`.

These pydantic models are the format's single definition: they validate campaign files
(unknown keys are errors), and `relance schema` writes their JSON Schema for editors.
Checks that span several fields (a message naming an unknown stage) live in
`Campaign.problems()` so that each problem can point at its own line.
"""

from __future__ import annotations

import re
from datetime import time
from typing import Annotated, Literal, Union

from email_validator import EmailNotValidError, validate_email
from pydantic import (BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema,
                      field_validator, model_validator)

from relance.campaign import testcases, conditions, values
from relance.campaign.testcases import CampaignTests
from relance.campaign.measures import MEASURES

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




Timezone = Annotated[str, BeforeValidator(values.timezone), Field(examples=["Europe/Paris"])]
LocaleCode = Annotated[str, BeforeValidator(values.locale), Field(examples=["fr", "en"])]


# -- conditions over measures -------------------------------------------------------------

_DESCR = {name: f"{m.description} Example: {m.example}." for name, m in MEASURES.items()}
Cmp = Union[str, int, float]


class Criteria(StrictModel):
    """Conditions over the learner's measures; all of them must hold."""

    def uses(self, measure: str) -> bool:
        return getattr(self, measure) is not None or any(
            c.uses(measure) for c in (getattr(self, "any_of", None) or []))

    progress: Cmp | None = Field(None, description=_DESCR["progress"], examples=[">= 75%"])
    inactive_days: Cmp | None = Field(None, description=_DESCR["inactive_days"], examples=[">= 7"])
    enrolled_days: Cmp | None = Field(None, description=_DESCR["enrolled_days"], examples=[">= 7"])
    stalled_days: Cmp | None = Field(None, description=_DESCR["stalled_days"], examples=[">= 14"])
    overdue: Cmp | None = Field(None, description=_DESCR["overdue"], examples=[">= 2"])
    late_days: Cmp | None = Field(None, description=_DESCR["late_days"], examples=[">= 3"])
    behind: Cmp | None = Field(None, description=_DESCR["behind"], examples=[">= 40%"])
    course_week: Cmp | None = Field(None, description=_DESCR["course_week"], examples=["<= 2"])
    days_left: Cmp | None = Field(None, description=_DESCR["days_left"], examples=["<= 14"])
    risk: Cmp | None = Field(None, description=_DESCR["risk"], examples=[">= 0.7"])
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

    description: str | None = Field(None, description="What the stage means, for people.",
                                    examples=["Silent for a week, or two units behind."])
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
StageNames = Annotated[list[str], BeforeValidator(lambda v: [v] if isinstance(v, str) else v),
                       WithJsonSchema({"anyOf": [{"type": "string"},
                                                 {"type": "array", "items": {"type": "string"}}]})]
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

TRIGGERS = ("on_enter", "while_in", "every", "on_milestone", "on_activity")


def _variant_share(raw: object) -> float:
    value = conditions.parse_percent(raw)
    if not 0 < value <= 100:
        raise ValueError(f"a variant's share must be above 0% and at most 100%, got {raw!r}")
    return value


class Variant(StrictModel):
    """One version of a message (test and learn): its share of the learners and its
    templates. A learner always gets the same variant of a message."""

    share: Annotated[float, BeforeValidator(_variant_share)] = Field(
        description="Share of the learners who get this variant.", examples=["50%"])
    template: str | None = Field(
        None, description="Template folder under campaigns/<id>/ (default: "
                          "<message>/variants/<variant>).",
        examples=["relance/variants/court"])


class Message(StrictModel):
    """A message and what triggers it. Exactly one trigger per message."""

    description: str | None = Field(None, description="What the message is for, for people.",
                                    examples=["A week of silence; a light nudge."])
    on_enter: str | None = Field(
        None, description="Send once each time the learner enters this stage.",
        examples=["at_risk"])
    while_in: StageNames | None = Field(
        None, description="Send once a week while the learner is in one of these stages.",
        examples=[["at_risk"]])
    every: WeeklyTime | None = Field(
        None, examples=["monday 08:30"], description="The weekly rhythm: send once a week, from this weekday and time "
                          "in the learner's timezone, to the stages listed in `to`.")
    to: StageNames | None = Field(
        None, description="With `every`: the stages that get the message (default: all).",
        examples=[["active", "at_risk"]])
    on_milestone: Annotated[list[Milestone], BeforeValidator(
        lambda v: [v] if not isinstance(v, list) else v), WithJsonSchema(
        {"anyOf": [PERCENT_SCHEMA, {"type": "array", "items": PERCENT_SCHEMA}]})] | None = Field(
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
        None, description="Template folder under campaigns/<id>/ (default: the message key).",
        examples=["relance"])
    variants: dict[str, Variant] | None = Field(
        None, description="Test and learn: versions of the message with their shares (summing "
                          "to 100%), each with its own templates; `relance report` compares "
                          "them on opens, clicks, re-engagement and completion.",
        examples=[{"court": {"share": "50%"}, "detaille": {"share": "50%"}}])
    after_course_end: bool = Field(
        False, description="Also send once the course has ended (default: no).",
        examples=[True])
    to_completed: bool | None = Field(
        None, description="Also send to learners who completed the course. Default: only "
                          "for milestones and for stages that require completion.",
        examples=[True])

    @model_validator(mode="after")
    def _one_trigger(self):
        given = [t for t in TRIGGERS if getattr(self, t) is not None]
        if len(given) != 1:
            raise ValueError(
                "a message needs exactly one trigger among " + ", ".join(TRIGGERS)
                + (f"; found {', '.join(given)}" if given else "; found none")
                + ", for example `on_enter: at_risk`")
        if self.to is not None and self.every is None:
            raise ValueError("`to` goes with `every` (the weekly rhythm); "
                             "for other triggers the stage is part of the trigger: remove "
                             "`to`, or write for example `every: monday 08:30` and `to: [active]`")
        if self.variants is not None:
            total = sum(v.share for v in self.variants.values())
            if len(self.variants) < 2 or abs(total - 100) > 0.01:
                raise ValueError(f"variants need at least two versions whose shares sum to 100% "
                                 f"(found {len(self.variants)}, summing to {total:g}%)"
                                 f", for example `variants: {{court: {{share: 50%}}, "
                                 f"detaille: {{share: 50%}}}}`")
        return self

    def template_folder(self, key: str, variant: str | None = None) -> str:
        """The template folder of this message (key `key`), or of one of its variants."""
        if variant is not None and self.variants and variant in self.variants:
            return self.variants[variant].template or f"{self.template or key}/variants/{variant}"
        return self.template or key

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
            from relance.campaign import audience_where
            audience_where.check(v)
        return v


class Sender(StrictModel):
    """Who the messages come from."""

    name: HeaderText = Field(description="Display name of the sender.",
                             examples=["Julie, équipe formation"])
    email: Email = Field(description="Address of the sender.")


class FollowUp(Criteria):
    """A rule that puts a learner on the community manager's follow-up list."""

    stage: StageNames | None = Field(None, description="Stage(s) the rule applies to.",
                                     examples=[["dormant"]])
    reason: str = Field(description="What the community manager reads.",
                        examples=["Silent for three weeks: call them."])


class Limits(StrictModel):
    """How much mail, and when: weekly caps and the send window in each learner's time."""

    per_learner_per_week: int = Field(
        2, ge=1, le=50,
        description="At most this many relance messages per learner per week (the learner's "
                    "own calendar week, all campaigns together).", examples=[2])
    per_campaign_per_week: int = Field(
        1, ge=1, le=7,
        description="At most this many messages of this campaign per learner per week; when "
                    "several are due, the first in the file goes and the others wait.",
        examples=[1])
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


class SendGridOptions(StrictModel):
    """The sendgrid channel. The API key is never in a campaign file: it comes from the
    environment (SENDGRID_API_KEY) or the Prefect Secret block named in `api_key_secret`."""

    categories: list[Annotated[str, Field(min_length=1, max_length=255)]] = Field(
        default_factory=list, max_length=9,
        description="SendGrid categories for statistics (at most 9: the campaign id is "
                    "always added as the tenth).", examples=[["relance", "mooc"]])
    sandbox: bool = Field(
        False, description="SendGrid sandbox mode: requests are validated, nothing is delivered.",
        examples=[True])
    templates: dict[str, Annotated[str, Field(pattern=r"^d-[0-9a-f]{32}$")]] = Field(
        default_factory=dict,
        description="Dynamic templates stored in SendGrid, by message key: the message's "
                    "context goes out as dynamic_template_data instead of relance's own "
                    "rendering.", examples=[{"relance": "d-0123456789abcdef0123456789abcdef"}])
    concurrency: int = Field(
        1, ge=1, le=8,
        description="Requests in flight at once. More helps when each request spends its "
                    "time on the network; against a local server one is fastest.",
        examples=[4])
    api_key_secret: str | None = Field(
        None, description="Name of a Prefect Secret block holding the API key, when it is "
                          "not in SENDGRID_API_KEY.", examples=["sendgrid-api-key"])


class SmtpOptions(StrictModel):
    """The smtp channel. The password is never in a campaign file: it is read from the
    environment variable named in `password_env`."""

    host: str = Field(min_length=1, description="Mail server host name.",
                      examples=["smtp.example.org"])
    port: int | None = Field(None, ge=1, le=65535,
                             description="Default: 587 with starttls, 465 with tls, 25 with none.",
                             examples=[587])
    security: Literal["starttls", "tls", "none"] = Field(
        "starttls", description="starttls (upgrade after connecting), tls (implicit TLS from "
                                "the first byte) or none (a relay on a trusted network).",
        examples=["tls"])
    username: str | None = Field(None, description="Login, if the server requires one.",
                                examples=["relance@example.org"])
    password_env: str = Field("RELANCE_SMTP_PASSWORD", pattern=r"^[A-Z_][A-Z0-9_]*$",
                              description="Environment variable holding the password.",
                              examples=["SMTP_PASSWORD"])
    timeout: float = Field(30.0, gt=0, le=600, description="Seconds per server reply.",
                           examples=[60])
    ca_file: str | None = Field(
        None, description="A CA certificate file to trust, for a server whose certificate "
                          "is signed by a private authority (default: the system's).",
        examples=["/etc/ssl/certs/entreprise-ca.pem"])


class Team(StrictModel):
    """Posts to the team's Slack or Teams channel after each run: the designer's weekly
    announcement, the week in numbers, the follow-up list. The webhook URL is a secret: it
    is read from the environment variable named here."""

    webhook_env: str = Field(pattern=r"^[A-Z_][A-Z0-9_]*$",
                             description="Environment variable holding the incoming-webhook URL.",
                             examples=["RELANCE_SLACK_WEBHOOK_URL"])
    format: Literal["slack", "teams"] = Field("slack", description="slack or teams.",
                                                examples=["teams"])
    summary: bool = Field(True, description="Post the cohort's week: learners per stage, "
                                            "messages sent.", examples=[False])
    follow_ups: bool = Field(True, description="Post the community manager's follow-up list.",
                            examples=[False])
    announcement: str | None = Field(
        None, pattern=r"^[a-z0-9][a-z0-9_-]*$",
        description="Template folder under campaigns/<id>/ of the cohort's weekly "
                    "announcement, posted before the summary at each run: subject.txt (the "
                    "post's title) and body.txt in the team's `locale` (see docs/delivery.md "
                    "for its variables).",
        examples=["annonce"])
    locale: LocaleCode | None = Field(
        None, description="The locale of the announcement's templates and of its dates and "
                          "numbers (default: the campaign's `locale`).", examples=["fr"])


class Digest(StrictModel):
    """A weekly digest for each learner's manager: one message per manager and week listing
    their team (the audience's learners whose `manager_email` is theirs), grouped as the
    designer says, with progress and last activity, in the team's locale."""

    to: Literal["manager"] = Field(
        "manager", description="Who gets the digest: `manager`, the address in the learners' "
                               "`manager_email` column (an HR contact can be put there too).",
        examples=["manager"])
    every: WeeklyTime = Field(
        description="When, weekly, in the manager's timezone (the one most of their team "
                    "has); the send window (`limits`) applies as for learners.",
        examples=["monday 08:00"])
    template: str = Field(
        "digest", description="Template folder under campaigns/<id>/ (subject.txt, body.txt, "
                              "body.html per locale).", examples=["digest-manager"])
    groups: dict[str, StageNames] = Field(
        min_length=1,
        description="The digest's sections, in order: each lists the learners of those "
                    "stages. Learners in no listed stage are left out.",
        examples=[{"on_track": ["active"], "stalled": ["at_risk", "dormant"],
                   "finished": ["completed"]}])

    @field_validator("groups")
    @classmethod
    def _group_keys(cls, v):
        for key in v:
            if not re.match(r"^[a-z][a-z0-9_]*$", key):
                raise ValueError(f"group {key!r}: use lower-case letters, digits and '_' (it is "
                                 f"a template variable, `groups.{key}`), for example 'on_track'")
        return v


class Campaign(StrictModel):
    """An engagement campaign: who, in which stages, gets which message, and when."""

    id: str = Field(pattern=SLUG, description="Equal to the file name, e.g. parcours-anglais.",
                    examples=["parcours-anglais"])
    description: str = Field(min_length=1, description="The audience and the grain, for people.",
                             examples=["Five-month English path; at most one email a week."])
    audience: Audience = Field(description="Who the campaign is for.",
                               examples=[{"course": "anglais-b2", "cohort": "2026-09"}])
    locale: LocaleCode = Field("fr", description="Locale for learners whose own locale is not "
                                                 "among `locales`.")
    locales: list[LocaleCode] = Field(
        default_factory=lambda: ["fr", "en"],
        description="Locales the templates exist in; a learner gets their own if listed.",
        examples=[["fr", "en"]])
    timezone: Timezone = Field("Europe/Paris", description="For learners with no timezone.")
    sender: Sender = Field(description="Who the messages come from (usually in _defaults.yaml).",
                           examples=[{"name": "Julie, équipe formation",
                                      "email": "formation@example.org"}])
    reply_to: Email | None = Field(None, description="Where replies go (default: the sender).",
                                   examples=["tutors@example.org"])
    channel: Literal["outbox", "sendgrid", "smtp"] = Field(
        "outbox", description="Where messages go: outbox writes .eml files (the default, no "
                              "account needed); sendgrid sends through the SendGrid API "
                              "(SENDGRID_API_KEY); smtp through your own mail server.",
        examples=["sendgrid"])
    sendgrid: SendGridOptions = Field(
        default_factory=SendGridOptions,
        description="Options of the sendgrid channel (used when `channel: sendgrid`).",
        examples=[{"categories": ["relance"], "sandbox": True}])
    smtp: SmtpOptions | None = Field(
        None, description="Your mail server (required when `channel: smtp`).",
        examples=[{"host": "smtp.example.org", "port": 587, "security": "starttls"}])
    team: Team | None = Field(
        None, description="After each run, post the cohort's weekly announcement, a summary "
                          "and the follow-up list to a Slack or Teams channel (incoming webhook).",
        examples=[{"webhook_env": "RELANCE_SLACK_WEBHOOK_URL", "format": "slack"}])
    control_group: Annotated[float, BeforeValidator(_percent_share),
                             WithJsonSchema(PERCENT_SCHEMA)] = Field(
        0.0, description="Share of learners kept as a control group (0-50 %): evaluated, "
                         "never messaged, stable per learner and campaign.", examples=["10%"])
    stages: dict[str, Stage] = Field(
        min_length=1, description="Stages, first match wins.",
        examples=[{"dormant": {"inactive_days": ">= 21"}, "at_risk": {"inactive_days": ">= 7"},
                   "active": {}}])
    messages: dict[str, Message] = Field(
        min_length=1, description="Messages and their triggers; when several are due, the "
                                  "first listed goes.",
        examples=[{"relance": {"on_enter": "at_risk"},
                   "recap": {"every": "monday 08:30", "to": ["active", "at_risk"]}}])
    follow_up: dict[str, FollowUp] = Field(
        default_factory=dict, description="Rules for the community manager's follow-up list.",
        examples=[{"appel": {"stage": "dormant", "reason": "Silent for three weeks: call them."}}])
    limits: Limits = Field(default_factory=Limits, description="Weekly caps and the send window.",
                           examples=[{"per_learner_per_week": 2, "quiet_hours": "20:00-08:00"}])
    schedule: RunSchedule | None = Field(
        None, description="When the campaign runs, in its `timezone`: 'monday 08:00', "
                          "'weekdays 09:00' or 'daily 07:00'. Default: the day and time of its "
                          "first weekly (`every`) message in the week, else monday 08:00. "
                          "`relance deployments` turns it into the Prefect schedule.",
        examples=["monday 08:00"])
    digest: Digest | None = Field(
        None, description="A weekly digest of each manager's team (see docs/digests.md).",
        examples=[{"every": "monday 08:00", "groups": {
            "on_track": ["active"], "stalled": ["at_risk", "dormant"], "finished": ["completed"]}}])
    tests: CampaignTests | None = Field(
        None, description="Example learners and what each should get, run by `relance test` "
                          "and by the test suite; the engine ignores them.",
        examples=[{"as_of": "2026-11-23T09:00", "cases": [
            {"name": "silent for a week gets the relance", "given": {"inactive_days": 8},
             "expect": {"stage": "at_risk", "message": "relance"}}]}])

    @field_validator("stages", "messages", "follow_up")
    @classmethod
    def _slug_keys(cls, v):
        for key in v:
            if not re.match(r"^[a-z0-9][a-z0-9_-]*$", key):
                fixed = re.sub(r"[^a-z0-9_-]+", "_", key.lower()).strip("_-") or "name"
                raise ValueError(f"{key!r}: use lower-case letters, digits, '-' and '_', "
                                 f"for example {fixed!r}")
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
                              "recap sections go with a weekly message (`every` or `while_in`), "
                              "for example `every: monday 08:30`"))
        for key, msg in self.messages.items():
            if msg.every is not None and not self.limits.sends_within_week(msg.every):
                found.append((("messages", key, "every"),
                              f"{msg.every.day} {msg.every.at:%H:%M} is outside the send window "
                              f"(send_days, quiet_hours) and the next moment mail may go out is "
                              f"in the following week, so this weekly message would never be "
                              f"sent: choose a day and time inside the window, for example "
                              f"`every: {self.limits.send_days[0]} "
                              f"{(self.limits.quiet_span or (None, time(9, 0)))[1]:%H:%M}`"))
        if self.digest is not None:
            seen: dict[str, str] = {}
            for group, names in self.digest.groups.items():
                for i, name in enumerate(names):
                    check_stage(("digest", "groups", group, i), name)
                    if name in seen:
                        found.append((("digest", "groups", group, i),
                                      f"stage {name!r} is already in group {seen[name]!r}: a "
                                      "learner is listed once, so put each stage in one group"))
                    seen.setdefault(name, group)
            if not self.limits.sends_within_week(self.digest.every):
                found.append((("digest", "every"),
                              f"{self.digest.every.day} {self.digest.every.at:%H:%M} is outside "
                              "the send window (send_days, quiet_hours) until the following "
                              "week, so the digest would never be sent: choose a day and time "
                              "inside the window, for example `every: monday 09:00`"))
        if self.team is not None and self.team.locale is not None \
                and self.team.locale not in self.locales:
            found.append((("team", "locale"), f"{self.team.locale!r} must be one of `locales` "
                                              f"({', '.join(self.locales)}), for example "
                                              f"`locale: {self.locales[0]}`"))
        for key, rule in self.follow_up.items():
            for i, name in enumerate(rule.stage or []):
                check_stage(("follow_up", key, "stage", i), name)
        if self.channel == "smtp" and self.smtp is None:
            found.append((("channel",), "`channel: smtp` needs an `smtp:` block with at least "
                                        "`host:` (your mail server)"))
        for key in self.sendgrid.templates:
            if key not in self.messages:
                found.append((("sendgrid", "templates", key),
                              f"unknown message {key!r}; the messages are: "
                              f"{', '.join(self.messages)}"))
        if self.locale not in self.locales:
            found.append((("locale",), f"{self.locale!r} must be one of `locales` "
                                       f"({', '.join(self.locales)}), for example "
                                       f"`locale: {self.locales[0]}`"))
        catch_all = [n for n, s in self.stages.items() if s.sql() == "true"]
        if catch_all and catch_all[0] != known[-1]:
            found.append((("stages", catch_all[0]),
                          f"stage {catch_all[0]!r} has no condition, so the stages after it "
                          "can never match: move it last"))
        found += testcases.problems(self)
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
