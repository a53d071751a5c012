"""The team file, `campaigns/_team.yaml`: who follows which learners (issue 18).

It names the people a learner's follow-up reaches (community managers, tutors, support,
trainers, the training office), when they work and how many learners a day they can
call, and how learners are assigned to them: from a column of the data (`tutor_email`,
as `manager_email` is for digests) or by rules (a course, a cohort; shared among several
people in proportion to what they can take). Assignments are kept in the warehouse
(`team_assignments`), so a learner keeps their person from week to week.

These pydantic models are the format's one definition; `relance team schema` writes their
JSON Schema (`team.schema.json` beside this file) for editors, as the campaign format does.
"""

from __future__ import annotations

from datetime import time
from typing import Annotated, Literal

from typing import Any

from pydantic import BeforeValidator, Field, PrivateAttr, field_validator

from relance.campaign import values
from relance.campaign.sending import Sender
from relance.campaign.types import (IdNames, LocaleCode, StrictModel, Timezone, Weekday,
                                    WEEKDAYS, _clock)

ROLES = ("community_manager", "tutor", "support", "trainer", "training_office")
# the roles whose people get a daily list of learners to contact (others receive routed
# replies: support, trainers, the training office)
LIST_ROLES = ("community_manager", "tutor")


def _address(raw: object) -> str:
    """An address relance can send to, by the channels' one rule (values.email_problem)."""
    text = str(raw).strip()
    problem = values.email_problem(text)
    if problem:
        raise ValueError(f"{text!r} is {values.EMAIL_PROBLEMS[problem]}; write a plain "
                         "address such as 'claire.martin@example.org'")
    return text.lower()


Address = Annotated[str, BeforeValidator(_address), Field(examples=["claire.martin@example.org"])]


def _span(raw: object) -> str:
    parts = str(raw).split("-")
    if len(parts) != 2:
        raise ValueError(f'expected a span of hours "HH:MM-HH:MM" such as "09:00-12:00", '
                         f"got {raw!r}")
    start, end = (_clock(p) for p in parts)
    if start >= end:
        raise ValueError(f"{raw!r} ends before it starts: write the earlier time first, "
                         'for example "09:00-12:00"')
    return f"{start:%H:%M}-{end:%H:%M}"


Span = Annotated[str, BeforeValidator(_span), Field(examples=["09:00-12:00"])]


class Person(StrictModel):
    """Someone of the team: who they are, how to reach them, when they work, how many
    learners a day they can contact."""

    name: str = Field(min_length=1, description="Their name, as learners and colleagues read it.",
                      examples=["Claire Martin"])
    email: Address = Field(description="Their e-mail address: their daily list goes there, and "
                                       "it is their login to the desk.",
                           examples=["claire.martin@example.org"])
    chat: str | None = Field(None, pattern=r"^[@A-Za-z0-9._-]{1,80}$",
                             description="Their chat handle (Slack or Teams), mentioned in the "
                                         "team channel's post of their list.",
                             examples=["@claire"])
    role: Literal[ROLES] = Field(  # type: ignore[valid-type]
        "community_manager",
        description="community_manager, tutor, support, trainer or training_office. "
                    "Community managers and tutors get a daily list; the others receive the "
                    "replies routed to them.", examples=["tutor"])
    locale: LocaleCode = Field("fr", description="The language of their list and of the desk.",
                               examples=["en"])
    timezone: Timezone = Field("Europe/Paris", description="Where they work: their day, and the "
                                                          "moment their list is sent, are in "
                                                          "this timezone.",
                               examples=["America/Montreal"])
    hours: list[Span] = Field(
        default_factory=lambda: ["09:00-17:00"],
        description="The hours they are available, in their timezone; their list is sent at "
                    "the start of the first span of each working day.",
        examples=[["09:00-12:00", "14:00-16:00"]])
    days: list[Weekday] = Field(
        default_factory=lambda: WEEKDAYS[:5],
        description="The weekdays they work (no list on the others).",
        examples=[["monday", "tuesday", "thursday"]])
    capacity: int = Field(
        10, description="How many learners a day they can contact: their list is cut there, "
                        "and rules share learners among people in proportion to it. 0: they "
                        "get no learners (on leave).", examples=[12])

    @field_validator("capacity")
    @classmethod
    def _capacity(cls, v):
        if v < 0:
            raise ValueError(f"capacity {v} is below zero: write how many learners a day they "
                             "can contact, 0 for none (on leave), for example `capacity: 10`")
        if v > 500:
            raise ValueError(f"capacity {v}: a person cannot call more than 500 learners a "
                             "day; is it a weekly figure? for example `capacity: 10`")
        return v

    @field_validator("hours")
    @classmethod
    def _some_hours(cls, v):
        if not v:
            raise ValueError('list at least one span of hours, for example ["09:00-12:00"]')
        return sorted(v)

    @property
    def day_starts(self) -> time:
        """When their working day starts (their list's moment), in their timezone."""
        return _clock(self.hours[0].split("-")[0])


class Rule(StrictModel):
    """Learners matching a rule (all its filters) are shared among its people in
    proportion to their capacity. Rules are tried in order: the first that matches wins."""

    course: IdNames | None = Field(None, description="Course id(s).", examples=[["anglais-b2"]])
    cohort: IdNames | None = Field(None, description="Cohort name(s).", examples=[["2026-09"]])
    to: Annotated[list[str], BeforeValidator(lambda v: [v] if isinstance(v, str) else v)] = Field(
        min_length=1, description="The people (their e-mail address in `people`) who share the "
                                  "learners this rule matches.",
        examples=[["claire.martin@example.org", "karim.benali@example.org"]])

    @field_validator("to", mode="before")
    @classmethod
    def _lower(cls, v):
        items = v if isinstance(v, list) else [v]
        return [str(x).strip().lower() for x in items]


class Assignment(StrictModel):
    """How learners are given to people: a data column first (when it names someone of the
    team), then the rules, in order."""

    column: Literal["tutor_email", "manager_email"] | None = Field(
        "tutor_email", description="A learner whose column holds the address of someone of "
                                   "the team is theirs (tutor_email, or manager_email); null: "
                                   "rules only.", examples=["tutor_email"])
    rules: list[Rule] = Field(
        default_factory=list,
        description="Rules for the learners the column leaves out, first match wins. A rule "
                    "with no course and no cohort matches every learner left: put it last.",
        examples=[[{"course": "anglais-b2", "to": ["claire.martin@example.org"]},
                   {"to": ["karim.benali@example.org"]}]])


class ListDelivery(StrictModel):
    """How the daily lists go out: by e-mail through a channel (through the ledger, once per
    person and day) and/or as a post on the team's chat webhook."""

    by: list[Literal["mail", "chat"]] = Field(
        default_factory=lambda: ["mail"], description="mail, chat, or both.",
        examples=[["mail", "chat"]])
    channel: Literal["outbox", "sendgrid"] = Field(
        "outbox", description="The mail channel: outbox (.eml files) or sendgrid "
                              "(SENDGRID_API_KEY).", examples=["sendgrid"])
    sender: Sender = Field(
        default_factory=lambda: Sender(name="relance", email="relance@example.org"),
        description="Who the lists come from.",
        examples=[{"name": "relance", "email": "formation@example.org"}])
    webhook_env: str | None = Field(
        None, pattern=r"^[A-Z_][A-Z0-9_]*$",
        description="With `chat`: the environment variable holding the team's incoming-"
                    "webhook URL (each person is mentioned by their `chat` handle).",
        examples=["RELANCE_SLACK_WEBHOOK_URL"])
    format: Literal["slack", "teams"] = Field("slack", description="slack or teams.",
                                                examples=["teams"])


class TeamFile(StrictModel):
    """The team: its people, how learners are assigned to them, and how long a learner just
    contacted stays off their list."""

    people: list[Person] = Field(min_length=1, description="The team's people.",
                                 examples=[[{"name": "Claire Martin",
                                             "email": "claire.martin@example.org",
                                             "role": "community_manager", "capacity": 12}]])
    assignment: Assignment = Field(default_factory=Assignment,
                                   description="How learners are assigned to people.",
                                   examples=[{"column": "tutor_email",
                                              "rules": [{"to": "claire.martin@example.org"}]}])
    list_after_contact_days: int = Field(
        7, ge=0, le=90, description="A learner contacted by someone of the team leaves the "
                                    "daily lists for this many days (a reply brings them back).",
        examples=[7])
    lists: ListDelivery = Field(default_factory=ListDelivery,
                                description="How the daily lists are sent.",
                                examples=[{"by": ["mail"], "channel": "outbox"}])
    desk_url: str | None = Field(
        None, pattern=r"^https?://[^\s]+$",
        description="Where `relance desk` is reached, for the links in the daily lists.",
        examples=["https://desk.example.org"])
    # (file shown, Locator) once loaded: where to point problems found later
    _source: Any = PrivateAttr(None)

    def person(self, email: str) -> Person | None:
        email = email.strip().lower()
        return next((p for p in self.people if p.email == email), None)

    def problems(self) -> list[tuple[tuple, str]]:
        """Checks across fields: (location, what is wrong)."""
        found: list[tuple[tuple, str]] = []
        seen: dict[str, int] = {}
        for i, p in enumerate(self.people):
            if p.email in seen:
                found.append((("people", i, "email"), f"{p.email} is already person "
                              f"#{seen[p.email] + 1} ({self.people[seen[p.email]].name}): "
                              "list each person once"))
            seen.setdefault(p.email, i)
        known = {p.email: p for p in self.people}
        rules = self.assignment.rules
        for r, rule in enumerate(rules):
            for j, email in enumerate(rule.to):
                if email not in known:
                    import difflib
                    close = difflib.get_close_matches(email, list(known), n=1)
                    found.append((("assignment", "rules", r, "to", j),
                                  f"unknown person {email!r}: no one in `people` has this "
                                  "address" + (f"; did you mean {close[0]!r}?" if close else
                                               f"; the people are: {', '.join(known)}")))
            if rule.to and all(e in known and known[e].capacity == 0 for e in rule.to):
                found.append((("assignment", "rules", r, "to"),
                              "every person of this rule has capacity 0, so the learners it "
                              "matches would be left unassigned: add someone who has capacity"))
            if rule.course is None and rule.cohort is None and r != len(rules) - 1:
                found.append((("assignment", "rules", r),
                              "this rule has no course and no cohort, so it matches every "
                              "learner left and the rules after it never apply: move it last"))
        if "chat" in self.lists.by and not self.lists.webhook_env:
            found.append((("lists", "by"), "`chat` needs `webhook_env:` (the environment "
                                          "variable holding the team's webhook URL), for "
                                          "example `webhook_env: RELANCE_SLACK_WEBHOOK_URL`"))
        return found
