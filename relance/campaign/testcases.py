"""The `tests:` block of a campaign file: example learners and what each should get.

A designer describes a learner by the measures they reason with (progress, days inactive,
days enrolled, activities done, locale, timezone ...) as of a moment, and states the stage
and the message (or no message, and why) the campaign should give them. `relance test`
(relance/workbench/testbench.py) writes the examples into a throwaway warehouse, each kept
apart from the others, and runs the real engine on it. These models only describe the block; `problems()` checks that the names it
uses (stages, messages, reasons, follow-up rules) exist in the campaign.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Annotated, Literal

from pydantic import (BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema,
                      model_validator)

from relance.campaign import conditions, values
from relance.campaign.reasons import REASONS

# What a designer may write in `expect.reason`: the engine's reason codes.
REASON_CODES = tuple(REASONS)
NONE = "none"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _moment(raw: object) -> object:
    """A date (09:00 that day), or a date and time; without an offset it is read in the
    campaign's timezone (attached by the test bench)."""
    if isinstance(raw, datetime):
        return raw
    if isinstance(raw, date):
        return datetime.combine(raw, time(9, 0))
    text = str(raw).strip().replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"expected a date or a date and time such as '2026-11-23' or "
                         f"'2026-11-23T09:00+01:00', got {raw!r}") from None
    if len(text) == 10:
        parsed = datetime.combine(parsed.date(), time(9, 0))
    return parsed


def _progress(raw: object) -> float:
    if isinstance(raw, bool):
        raise ValueError(f"expected a percentage such as '40%', got {raw!r}")
    value = float(raw) if isinstance(raw, (int, float)) else conditions.parse_percent(raw)
    if not 0 <= value <= 100:
        raise ValueError(f"expected a percentage from 0% to 100% such as '40%', got {raw!r}")
    return value




# As written: a date, or a date and time with or without an offset (see the JSON Schema
# note in campaign.py).
Moment = Annotated[datetime, BeforeValidator(_moment), WithJsonSchema(
    {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2})?.*)?$"})]
Days = Annotated[int, Field(ge=0, le=3650)]


class Given(_Strict):
    """An example learner, described by the measures the campaign's conditions read. The
    test bench writes the enrolment, events and course calendar that produce them."""

    id: str | None = Field(
        None, description="Learner id (default: one derived from the example's name that is "
                          "outside the control group).", examples=["L00042"])
    first_name: str = Field("Camille", description="First name, for the templates.",
                            examples=["Zoé"])
    locale: Annotated[str, BeforeValidator(values.locale)] | None = Field(
        None, description="The learner's locale (default: the campaign's `locale`).",
        examples=["en-GB"])
    timezone: Annotated[str, BeforeValidator(values.timezone)] | None = Field(
        None, description="The learner's timezone (default: the campaign's `timezone`).",
        examples=["America/Montreal"])
    email: str | None = Field(
        "learner@example.org", description="The learner's address; null for a learner "
                                           "without one.", examples=[None])
    course: str | None = Field(
        None, description="Course id (default: the audience's first course).",
        examples=["anglais-b2"])
    cohort: str | None = Field(
        None, description="Cohort (default: the audience's first cohort).", examples=["2026-09"])
    enrolled_days: Days = Field(28, description="Whole days since enrolment.", examples=[10])
    enrolled_at: Moment | None = Field(
        None, description="When the learner enrolled, instead of enrolled_days (a date, or a "
                          "date and time; without an offset, in the campaign's timezone).",
        examples=["2026-09-07"])
    started: bool = Field(
        True, description="Whether the learner has done anything at all; false means no "
                          "recorded activity (then inactive_days and progress do not apply).",
        examples=[False])
    inactive_days: Days = Field(
        1, description="Whole days since the learner's last activity.", examples=[8])
    last_active_at: Moment | None = Field(
        None, description="When the learner was last active, instead of inactive_days.",
        examples=["2026-11-14T18:30"])
    progress: Annotated[float, BeforeValidator(_progress), WithJsonSchema(
        {"anyOf": [{"type": "number"}, {"type": "string", "pattern": r"^\s*\d+([.,]\d+)?\s*%\s*$"}]})] = Field(
        0.0, description="Share of the course done, as the LMS reports it.", examples=["40%"])
    stalled_days: Days | None = Field(
        None, description="Whole days since the learner last made progress (default: "
                          "inactive_days).", examples=[21])
    overdue: Annotated[int, Field(ge=0, le=100)] = Field(
        0, description="Required activities that fell due since enrolment and are not done.",
        examples=[3])
    activities_done: list[str] = Field(
        default_factory=list, description="Activity ids the learner completed, when they "
                                          "last made progress.", examples=[["w01-quiz"]])
    completed: bool = Field(False, description="Whether the learner completed the course.",
                            examples=[True])
    course_week: Annotated[int, Field(ge=1, le=520)] | None = Field(
        None, description="Week of the course as of the test (default: counted from the "
                          "enrolment).", examples=[3])
    days_left: Annotated[int, Field(ge=-3650, le=3650)] | None = Field(
        None, description="Days until the course ends; negative once it has (default: "
                          "months away).", examples=[14])
    unsubscribed: bool = Field(False, description="Whether the learner unsubscribed.",
                               examples=[True])
    control_group: bool = Field(
        False, description="Put the learner in the campaign's control group (needs a "
                           "`control_group` share above 0%).", examples=[True])

    @model_validator(mode="after")
    def _consistent(self):
        for days, moment in (("enrolled_days", "enrolled_at"), ("inactive_days", "last_active_at")):
            if days in self.model_fields_set and getattr(self, moment) is not None:
                raise ValueError(f"give {days} or {moment}, not both")
        if not self.started and (self.progress or self.activities_done or self.completed):
            raise ValueError("a learner who has not started has no progress, activities "
                             "or completion: remove `started: false` or those fields")
        if self.enrolled_at is not None or self.last_active_at is not None:
            return self      # checked against as_of by the test bench
        if self.started and self.inactive_days > self.enrolled_days:
            raise ValueError(f"inactive_days ({self.inactive_days}) cannot exceed "
                             f"enrolled_days ({self.enrolled_days}): there was no activity "
                             "before enrolment")
        if self.stalled_days is not None and not (
                self.inactive_days <= self.stalled_days <= self.enrolled_days):
            raise ValueError(f"stalled_days ({self.stalled_days}) must be between "
                             f"inactive_days ({self.inactive_days}) and enrolled_days "
                             f"({self.enrolled_days})")
        if self.overdue and self.enrolled_days < 1:
            raise ValueError("overdue activities fell due after enrolment: give "
                             "enrolled_days of 1 or more")
        return self


class Expect(_Strict):
    """What the campaign should do for the example learner."""

    stage: str | None = Field(None, description="The stage the learner is in.",
                              examples=["at_risk"])
    message: str | None = Field(
        None, description="The message the learner gets (now or later the same week), or "
                          "`none` for no message.", examples=["relance", "none"])
    reason: str | None = Field(
        None, description="With `message: none`, the reason code: "
                          + ", ".join(REASON_CODES) + ".", examples=["already_sent"])
    follow_up: str | None = Field(
        None, description="The follow-up rule that lists the learner, or `none`.",
        examples=["appel-dormant"])
    send: Literal["now", "later"] | None = Field(
        None, description="With a message: whether it goes now, or later (quiet hours, send "
                          "days or its weekly time in the learner's timezone).",
        examples=["later"])

    @model_validator(mode="after")
    def _something(self):
        if self.stage is None and self.message is None and self.follow_up is None:
            raise ValueError("expect at least one of stage, message, follow_up, for example "
                             "{stage: at_risk, message: relance}")
        if self.send is not None and self.message in (None, NONE):
            raise ValueError("`send` goes with a message (when it goes); e.g. "
                             "{message: recap, send: later}")
        if self.reason is not None and self.message not in (NONE,):
            raise ValueError("`reason` goes with `message: none` (why no message is sent), "
                             "for example {message: none, reason: holdout}")
        if self.reason is not None and self.reason not in REASON_CODES:
            raise ValueError(f"unknown reason {self.reason!r}; the reasons are: "
                             + ", ".join(REASON_CODES))
        return self


class CampaignTest(_Strict):
    """One example learner, and what the campaign should give them."""

    name: str = Field(min_length=1, description="What the example shows, for people.",
                      examples=["silent for a week gets the relance"])
    as_of: Moment | None = Field(
        None, description="When (default: the block's `as_of`); without an offset, in the "
                          "campaign's timezone.", examples=["2026-11-23T09:00"])
    first_run: bool = Field(
        False, description="Evaluate as the campaign's very first run. By default the "
                           "campaign also ran a week earlier (what was due then went out "
                           "then; milestones and activities count from then on).",
        examples=[True])
    given: Given = Field(description="The learner.",
                         examples=[{"inactive_days": 8, "progress": "30%"}])
    expect: Expect = Field(description="What they should get.",
                           examples=[{"stage": "at_risk", "message": "relance"}])


class CampaignTests(_Strict):
    """Example learners and what each should get, run by `relance test`."""

    as_of: Moment = Field(description="When the examples are evaluated (a Monday morning is "
                                      "typical); without an offset, in the campaign's timezone.",
                          examples=["2026-11-23T09:00"])
    cases: Annotated[list[CampaignTest], Field(min_length=1)] = Field(
        description="The examples.",
        examples=[[{"name": "silent for a week gets the relance",
                    "given": {"inactive_days": 8},
                    "expect": {"stage": "at_risk", "message": "relance"}}]])


def problems(campaign) -> list[tuple[tuple, str]]:
    """Names in the tests block that the campaign does not have."""
    found: list[tuple[tuple, str]] = []
    tests: CampaignTests | None = getattr(campaign, "tests", None)
    if tests is None:
        return found
    names = {"stage": list(campaign.stages), "message": list(campaign.messages),
             "follow_up": list(campaign.follow_up)}
    kinds = {"stage": "stage", "message": "message", "follow_up": "follow-up rule"}
    seen: dict[str, int] = {}
    for i, case in enumerate(tests.cases):
        if case.name in seen:
            found.append((("tests", "cases", i, "name"),
                          f"{case.name!r} is already the name of case {seen[case.name] + 1}: "
                          "give each example its own name"))
        seen.setdefault(case.name, i)
        for key, known in names.items():
            value = getattr(case.expect, key)
            if value is None or value == NONE and key != "stage" or value in known:
                continue
            import difflib
            close = difflib.get_close_matches(value, known, n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}? " if close else ""
            found.append((("tests", "cases", i, "expect", key),
                          f"unknown {kinds[key]} {value!r}; {hint}the campaign's are: "
                          + (", ".join(known) or "none") + (" (or none)" if key != "stage" else "")))
        if case.given.control_group and not campaign.control_group:
            found.append((("tests", "cases", i, "given", "control_group"),
                          "the campaign has no control group (control_group: 0%)"))
    return found

