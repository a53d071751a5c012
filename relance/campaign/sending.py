"""To whom, how and how often a campaign sends: its sender, its limits (weekly caps, quiet
hours, send days, the control group), its channel's options (SendGrid, SMTP), the team
channel it reports to and the managers' digest.
"""

from __future__ import annotations

import re
from datetime import time
from typing import Annotated, Literal

from pydantic import Field, field_validator

from relance.campaign.types import (WEEKDAYS, Email, HeaderText, LocaleCode, StageNames,
                                    StrictModel, Weekday, WeeklyAt, WeeklyTime, _clock)


class Sender(StrictModel):
    """Who the messages come from."""

    name: HeaderText = Field(description="Display name of the sender.",
                             examples=["Julie, équipe formation"])
    email: Email = Field(description="Address of the sender.")


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
    quiet_after_contact_days: int = Field(
        7, ge=0, le=90,
        description="A learner a person of the team reached (the desk: `relance desk`, an "
                    "outcome other than no answer) gets no message of this campaign for this "
                    "many days, or until the date they said they would resume; 0: no pause.",
        examples=[7])

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


class MoodleOptions(StrictModel):
    """The moodle channel: messages to each learner's Moodle inbox through the web service
    `core_message_send_instant_messages`, sent as the web service token's user. The site and
    its token are a source of the sources file (`kind: moodle`): named here, never copied."""

    source: str = Field(min_length=1,
                        description="The Moodle source (a name in the sources file, "
                                    "RELANCE_SOURCES) whose url and token are used, and whose "
                                    "syncs tell each learner's Moodle user id.",
                        examples=["moodle-prod"])
    format: Literal["text", "html"] = Field(
        "text", description="text: body.txt, Moodle's auto-format (line breaks kept, links "
                            "made clickable); html: the inside of body.html's <body>.",
        examples=["html"])
    batch: int = Field(50, ge=1, le=100,
                       description="Messages per request (Moodle answers for each one).",
                       examples=[20])
    timeout: float = Field(30.0, gt=0, le=600, description="Seconds to wait for an answer.",
                           examples=[60])


class CanvasOptions(StrictModel):
    """The canvas channel: a conversation in each learner's Canvas Inbox (Conversations API,
    one per message), sent as the access token's user. The instance and its token are a
    source of the sources file (`kind: canvas`): named here, never copied."""

    source: str = Field(min_length=1,
                        description="The Canvas source (a name in the sources file, "
                                    "RELANCE_SOURCES) whose url and token are used, and whose "
                                    "syncs tell each learner's Canvas user id.",
                        examples=["canvas"])
    force_new: bool = Field(
        True, description="A new conversation for each message (its subject shown); false "
                          "adds it to an earlier private conversation with the learner, if "
                          "any (Canvas then ignores the subject).", examples=[False])
    timeout: float = Field(30.0, gt=0, le=600, description="Seconds to wait for an answer.",
                           examples=[60])


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
