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

from pydantic import BeforeValidator, Field, WithJsonSchema, field_validator, model_validator

from relance.campaign import conditions, testcases
from relance.campaign.measures import MEASURES
from relance.campaign.replies import Replies
from relance.campaign.sending import (CanvasOptions, Digest, Limits, MoodleOptions, Sender,
                                      SendGridOptions, SmtpOptions, Team)
from relance.campaign.testcases import CampaignTests
from relance.campaign.types import (PERCENT_SCHEMA, SLUG, Email, IdNames, LocaleCode, Milestone,
                                    RunSchedule, StageNames, StrictModel, Timezone, WeeklyTime,
                                    _percent_share, _variant_share)

RECAP_SECTIONS = ("last_week", "colleagues_contributions", "open_activities", "this_week")


# -- small value types ------------------------------------------------------------------


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


TRIGGERS = ("on_enter", "while_in", "every", "on_milestone", "on_activity")


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
    helpful: bool = Field(
        False, description="Ask \"Was this helpful?\": the message carries two signed "
                           "one-click links, yes and no (`helpful_yes_url`, `helpful_no_url` in "
                           "its templates, or appended at its end when they use neither); "
                           "answers are counted per message in `relance report` (see "
                           "docs/helpful.md).", examples=[True])
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

    course: IdNames | None = Field(None, description="Course id(s).", examples=[["anglais-b2"]])
    cohort: IdNames | None = Field(None, description="Cohort name(s).", examples=[["2026-09"]])
    where: str | None = Field(
        None, description="A SQL condition over the learner and enrolment columns (locale, "
                          "timezone, email, cohort, status, manager_email ...).",
        examples=["locale like 'fr%'"])
    exclude: list[Annotated[str, Field(pattern=SLUG)]] | None = Field(
        None, description="Campaign ids whose audiences (their course, cohort and `where`) are "
                          "left out of this one: those campaigns alone write to their "
                          "learners. This is how a campaign yields to another on the same "
                          "course, which `relance validate` warns about.",
        examples=[["parcours-anglais"]])

    @field_validator("where")
    @classmethod
    def _safe_condition(cls, v):
        if v is not None:
            from relance.campaign import audience_where
            audience_where.check(v)
        return v


class FollowUp(Criteria):
    """A rule that puts a learner on the community manager's follow-up list."""

    stage: StageNames | None = Field(None, description="Stage(s) the rule applies to.",
                                     examples=[["dormant"]])
    reason: str = Field(description="What the community manager reads.",
                        examples=["Silent for three weeks: call them."])


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
    channel: Literal["outbox", "sendgrid", "smtp", "moodle", "canvas"] = Field(
        "outbox", description="Where messages go: outbox writes .eml files (the default, no "
                              "account needed); sendgrid sends through the SendGrid API "
                              "(SENDGRID_API_KEY); smtp through your own mail server; moodle "
                              "and canvas to the learner's inbox in their LMS (see "
                              "docs/channels-lms.md).",
        examples=["sendgrid"])
    sendgrid: SendGridOptions = Field(
        default_factory=SendGridOptions,
        description="Options of the sendgrid channel (used when `channel: sendgrid`).",
        examples=[{"categories": ["relance"], "sandbox": True}])
    smtp: SmtpOptions | None = Field(
        None, description="Your mail server (required when `channel: smtp`).",
        examples=[{"host": "smtp.example.org", "port": 587, "security": "starttls"}])
    moodle: MoodleOptions | None = Field(
        None, description="The Moodle site to write to (required when `channel: moodle`).",
        examples=[{"source": "moodle-prod", "format": "text"}])
    canvas: CanvasOptions | None = Field(
        None, description="The Canvas instance to write to (required when `channel: canvas`).",
        examples=[{"source": "canvas"}])
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
    replies: Replies | None = Field(
        None, description="Learners' replies: a Reply-To per message, how replies are sorted "
                          "and routed, the acknowledgement (see docs/replies.md).",
        examples=[{"address": "replies@example.org", "support": "support@example.org",
                   "acknowledgement": "accuse-reception"}])
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
        for i, other in enumerate(self.audience.exclude or []):
            if other == self.id:
                found.append((("audience", "exclude", i),
                              "a campaign cannot exclude its own audience: name another "
                              "campaign, or remove it"))
        for key, rule in self.follow_up.items():
            for i, name in enumerate(rule.stage or []):
                check_stage(("follow_up", key, "stage", i), name)
        if self.channel == "smtp" and self.smtp is None:
            found.append((("channel",), "`channel: smtp` needs an `smtp:` block with at least "
                                        "`host:` (your mail server)"))
        if self.channel in ("moodle", "canvas") and self.digest is not None:
            found.append((("digest",), f"managers' digests go by e-mail, and `channel: "
                                       f"{self.channel}` writes to learners' LMS inboxes: "
                                       "put the digest in a campaign of its own on an e-mail "
                                       "channel (outbox, sendgrid, smtp)"))
        for lms in ("moodle", "canvas"):
            if self.channel == lms and getattr(self, lms) is None:
                found.append((("channel",), f"`channel: {lms}` needs a `{lms}:` block naming "
                                            f"the source whose site and token to use, for "
                                            f"example `{lms}: {{source: {lms}-prod}}`"))
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
        if self.replies is not None:
            found += self.replies.problems()
            routes = [(("replies", "otherwise"), self.replies.otherwise)] + [
                (("replies", "categories", k, "route"), c.route)
                for k, c in (self.replies.categories or {}).items()]
            for loc, route in routes:
                if route == "team" and self.team is None:
                    found.append((loc, "routes to `team`, but the campaign has no `team:` "
                                       "block: add one, or route to an address or `desk`"))
            if self.replies.acknowledgement and self.replies.acknowledgement in self.messages:
                found.append((("replies", "acknowledgement"),
                              "name a folder of its own, not a message's templates"))
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
