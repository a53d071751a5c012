"""What each kind of template gets, and the check of every template of a campaign before
anything runs: a message's (its learner, course, progress and the sections it includes), a
manager's digest's and the team announcement's, each with made-up values that cover every
variable (`check_templates`, called by the loader).

The real contexts are built where they are rendered (delivery/context.sql, delivery's
digests, team/announcement.py); a test holds them to the same fields.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from relance.campaign.problems import Problem, display
from relance.campaign.templates import (ANNOUNCEMENT_FIELDS, FIELDS, FINALIZE, REQUIRED_FIELDS, check_template,
                                        environment, template_name)

if TYPE_CHECKING:
    from relance.campaign.loaded import LoadedCampaign


def message_sample_context(loaded: "LoadedCampaign", message_key: str, locale: str) -> dict:
    """A context with every variable a template of `message_key` may use, made-up values."""
    campaign = loaded.campaign
    msg = campaign.messages[message_key]
    now = datetime(2026, 11, 23, 8, 30, tzinfo=timezone.utc)
    activity = {"id": "unit-3-quiz", "title": "Unit 3 quiz", "kind": "quiz", "week": 3,
                "due_at": now + timedelta(days=4), "url": "https://lms.example.org/a/3"}
    ctx: dict[str, Any] = {
        "learner": {"id": "L-0001", "first_name": "Zoé", "last_name": "Lefèvre",
                    "name": "Zoé Lefèvre", "email": "zoe.lefevre@example.org",
                    "locale": locale, "timezone": campaign.timezone},
        "course": {"id": "course-1", "title": "Anglais professionnel B2",
                   "url": "https://lms.example.org/c/1", "forum_url": "https://lms.example.org/f/1",
                   "starts_on": date(2026, 9, 7), "ends_on": date(2027, 1, 25),
                   "week": 12, "weeks": 20},
        "progress": {"percent": 42.0, "inactive_days": 8, "enrolled_days": 77,
                     "stalled_days": 8, "overdue": 1, "started": True, "completed": False},
        "stage": next(iter(campaign.stages)),
        "campaign": {"id": campaign.id},
        "sender": {"name": campaign.sender.name, "email": campaign.sender.email},
        "unsubscribe_url": "https://relance.example.org/unsubscribe?t=sample",
        "as_of": now,
    }
    if msg.helpful:
        ctx["helpful_yes_url"] = "https://relance.example.org/helpful?m=sample&a=yes&t=sample"
        ctx["helpful_no_url"] = "https://relance.example.org/helpful?m=sample&a=no&t=sample"
    if msg.on_milestone:
        ctx["milestone"] = max(msg.on_milestone)
    if msg.on_activity:
        ctx["activity"] = activity
    sections = {
        "last_week": {"activities_done": 2, "active_days": 3, "cohort_active": 120,
                      "cohort_completed_activities": 340},
        "colleagues_contributions": [
            {"author": "Marc Dubois", "title": "Mes astuces pour l'oral", "kind": "forum_post",
             "url": "https://lms.example.org/f/1/p/9", "n_replies": 7,
             "posted_at": now - timedelta(days=2)}],
        "open_activities": [activity],
        "this_week": [activity],
    }
    for name in msg.include:
        ctx[name] = sections[name]
    return ctx


def check_message_templates(loaded: "LoadedCampaign") -> list["Problem"]:
    """Every template of every message in every locale exists, parses, uses only known
    variables and renders with a sample context."""
    campaign = loaded.campaign
    env = environment(loaded.campaigns_dir)
    problems: list[Problem] = []
    for key, msg, folder, variant in ((k, m, m.template_folder(k, v), v)
                                      for k, m in campaign.messages.items()
                                      for v in [None, *(m.variants or {})]):
        for locale in campaign.locales:
            context = message_sample_context(loaded, key, locale) | {"locale": locale}
            allowed = set(context) | set(env.globals)
            for fld in FIELDS:
                name = template_name(campaign.id, folder, locale, fld)
                path = loaded.campaigns_dir / name
                shown = display(path)
                if not path.exists():
                    # a variant's missing field falls back to the message's own
                    if fld in REQUIRED_FIELDS and variant is None:
                        problems.append(Problem(
                            display(loaded.path), loaded.line_of(("messages", key)),
                            f"messages.{key}",
                            f"template {shown} is missing: create it (one file per field: "
                            f"subject.txt, body.txt, optional body.html; one folder per locale "
                            f"in `locales`)"))
                    continue
                problems += check_template(env, path, name, context, hint=lambda var: (
                    f"; add `include: [{var}]` to message {key!r}"
                    if var in ("last_week", "colleagues_contributions", "open_activities",
                               "this_week")
                    else "; available: " + ", ".join(sorted(allowed - {
                        "range", "dict", "lipsum", "cycler", "joiner", "namespace"}))))
    return problems


# -- a manager's digest ----------------------------------------------------------------------

def digest_sample_context(loaded: "LoadedCampaign", locale: str) -> dict:
    campaign = loaded.campaign
    now = datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc)
    member = {"first_name": "Zoé", "last_name": "Lefèvre", "name": "Zoé Lefèvre",
              "course": "Anglais professionnel B2", "stage": next(iter(campaign.stages)),
              "progress": 42.0, "inactive_days": 3, "last_activity_at": now - timedelta(days=3)}
    return {
        "manager": {"email": "manager@example.org", "locale": locale,
                    "timezone": campaign.timezone},
        "team": {"listed": 1, "withheld": 1},
        "groups": {name: [dict(member)] for name in campaign.digest.groups},
        "counts": {name: 1 for name in campaign.digest.groups},
        "week": "2026-W48",
        "campaign": {"id": campaign.id},
        "sender": {"name": campaign.sender.name, "email": campaign.sender.email},
        "unsubscribe_url": "https://relance.example.org/unsubscribe?t=sample",
        "as_of": now,
        "locale": locale,
    }


def check_digest_templates(loaded: "LoadedCampaign") -> list["Problem"]:
    """The digest's templates exist in every locale and render with a sample team."""

    campaign = loaded.campaign
    if campaign.digest is None:
        return []
    env = environment(loaded.campaigns_dir)
    problems = []
    for locale in campaign.locales:
        for fld in FIELDS:
            name = template_name(campaign.id, campaign.digest.template, locale, fld)
            path = loaded.campaigns_dir / name
            if not path.exists():
                if fld in REQUIRED_FIELDS:
                    problems.append(Problem(
                        display(loaded.path), loaded.line_of(("digest",)), "digest",
                        f"template {display(path)} is missing: create it (subject.txt, "
                        "body.txt, optional body.html, one folder per locale in `locales`)"))
                continue
            context = digest_sample_context(loaded, locale)
            problems += check_template(
                env, path, name, context, attributes=False,
                hint=lambda var: f"; a digest has: {', '.join(sorted(context))}")
    return problems


# -- the team announcement ------------------------------------------------------------------

def locale_of(campaign) -> str:
    return campaign.team.locale or campaign.locale


def announcement_context(loaded: "LoadedCampaign", as_of: datetime, week: str, cohort: dict,
             messages: dict, courses: list[dict]) -> dict:
    campaign = loaded.campaign
    return {
        "campaign": {"id": campaign.id, "description": campaign.description},
        "channel": {"format": campaign.team.format, "locale": locale_of(campaign),
                    "timezone": campaign.timezone},
        "as_of": as_of,
        "week": week,
        "cohort": cohort,
        "messages": messages,
        "courses": courses,
        # the one course of most campaigns; the first (by id) of several
        "course": courses[0] if courses else None,
        "locale": locale_of(campaign),
    }


def announcement_sample_context(loaded: "LoadedCampaign") -> dict:
    """Every variable with made-up values, to check the templates before any run."""
    campaign = loaded.campaign
    now = datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc)
    course = {"id": "course-1", "title": "Anglais professionnel B2",
              "url": "https://lms.example.org/c/1", "forum_url": "https://lms.example.org/f/1",
              "starts_on": date(2026, 9, 7), "ends_on": date(2027, 1, 25), "week": 12,
              "weeks": 20, "learners": 120,
              "this_week": [{"id": "unit-12-quiz", "title": "Unit 12 quiz", "kind": "quiz",
                             "week": 12, "due_at": now + timedelta(days=4),
                             "url": "https://lms.example.org/a/12"}]}
    stages = {name: 10 * (i + 1) for i, name in enumerate(campaign.stages)}
    return announcement_context(loaded, now, "2026-W48", {
        "learners": sum(stages.values()), "control_group": 12, "stages": stages,
        "follow_ups": 4, "active_last_week": 80, "completed_activities_last_week": 210,
    }, {"sent": 95, "failed": 0, "deferred": 3, "suppressed": 7}, [course])


def check_announcement_templates(loaded: "LoadedCampaign") -> list["Problem"]:
    """The announcement's templates exist in the team's locale, use only its variables and
    render with a sample week, in the team's format."""
    campaign = loaded.campaign
    if campaign.team is None or campaign.team.announcement is None:
        return []
    env = environment(loaded.campaigns_dir, finalize=FINALIZE[campaign.team.format])
    ctx = announcement_sample_context(loaded)
    problems = []
    for fld in ANNOUNCEMENT_FIELDS:
        name = template_name(campaign.id, campaign.team.announcement, locale_of(campaign), fld)
        path = loaded.campaigns_dir / name
        shown = display(path)
        if not path.exists():
            problems.append(Problem(
                display(loaded.path), loaded.line_of(("team", "announcement")),
                "team.announcement",
                f"template {shown} is missing: create it (subject.txt: the post's title, "
                f"body.txt: its text, in the team's locale {locale_of(campaign)!r})"))
            continue
        problems += check_template(
            env, path, name, ctx, attributes=False,
            hint=lambda var: f"; an announcement has: {', '.join(sorted(ctx))}")
    return problems


def check_templates(loaded: "LoadedCampaign") -> list[Problem]:
    """Every template of the campaign: its messages', its digest's and its announcement's."""
    return (check_message_templates(loaded) + check_digest_templates(loaded)
            + check_announcement_templates(loaded))
