"""Rendering messages: Jinja2's sandbox, strict about undefined variables, with dates and
numbers formatted for the learner's locale by Babel.

Templates are found by convention, one file per rendered field and locale:
`campaigns/<campaign>/<message>/<locale>/subject.txt`, `body.txt` and (optional)
`body.html`. `campaigns/_layouts/` holds what templates share (`{% extends %}`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable
from zoneinfo import ZoneInfo

from babel import dates as babel_dates
from babel import numbers as babel_numbers
from jinja2 import (FileSystemLoader, StrictUndefined, TemplateError, TemplateNotFound,
                    TemplateSyntaxError, Undefined, UndefinedError, meta, nodes, pass_context,
                    select_autoescape)
from jinja2.sandbox import SandboxedEnvironment

if TYPE_CHECKING:
    from relance.campaign.loader import LoadedCampaign, Problem

FIELDS = ("subject.txt", "body.txt", "body.html")
REQUIRED_FIELDS = ("subject.txt", "body.txt")
# What templates can use: the one definition the sample context (for `validate`) and the
# real one (delivery/context.sql) must both follow; a test holds them to it.
ACTIVITY = ("id", "title", "kind", "week", "due_at", "url")
CONTEXT_FIELDS: dict[str, tuple[str, ...]] = {
    "learner": ("id", "first_name", "last_name", "name", "email", "locale", "timezone"),
    "course": ("id", "title", "url", "forum_url", "starts_on", "ends_on", "week", "weeks"),
    "progress": ("percent", "inactive_days", "enrolled_days", "stalled_days", "overdue",
                 "started", "completed"),
    "campaign": ("id",),
    "sender": ("name", "email"),
    "activity": ACTIVITY,
    "last_week": ("activities_done", "active_days", "cohort_active", "cohort_completed_activities"),
}
LIST_ITEM_FIELDS: dict[str, tuple[str, ...]] = {
    "open_activities": ACTIVITY,
    "this_week": ACTIVITY,
    "colleagues_contributions": ("author", "title", "kind", "url", "n_replies", "posted_at"),
}


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str | None


class RenderError(Exception):
    pass


# -- locale-aware filters ---------------------------------------------------------------------

def _babel_locale(ctx) -> str:
    return str(ctx.get("locale", "en")).replace("-", "_")


def _tz(ctx) -> ZoneInfo:
    # the reader's timezone: the learner's, the manager's in a digest, the team channel's in
    # an announcement
    learner = ctx.get("learner") or ctx.get("manager") or ctx.get("channel") or {}
    name = learner.get("timezone") if isinstance(learner, dict) else None
    return ZoneInfo(name or "UTC")


def _defined(value: Any) -> Any:
    # An undefined variable passed to a filter is an error, said plainly (not an assertion
    # deep inside Babel).
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()
    return value


def _local(value: Any, tz: ZoneInfo) -> Any:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).astimezone(tz)
    return value


@pass_context
def format_date(ctx, value: date | datetime | None, fmt: str = "long") -> str:
    _defined(value)
    if value is None:
        return ""
    value = _local(value, _tz(ctx))
    if isinstance(value, datetime):
        value = value.date()
    return babel_dates.format_date(value, format=fmt, locale=_babel_locale(ctx))


@pass_context
def format_datetime(ctx, value: datetime | None, fmt: str = "medium") -> str:
    _defined(value)
    if value is None:
        return ""
    return babel_dates.format_datetime(_local(value, _tz(ctx)), format=fmt,
                                       locale=_babel_locale(ctx))


@pass_context
def format_weekday(ctx, value: date | datetime | None) -> str:
    _defined(value)
    if value is None:
        return ""
    return babel_dates.format_date(_local(value, _tz(ctx)), format="EEEE",
                                   locale=_babel_locale(ctx))


@pass_context
def format_number(ctx, value: float | int | None, digits: int = 0) -> str:
    _defined(value)
    if value is None:
        return ""
    return babel_numbers.format_decimal(round(value, digits), locale=_babel_locale(ctx))


@pass_context
def format_percent(ctx, value: float | int | None) -> str:
    """`progress.percent | percent` -> '75 %' in French, '75%' in English (value in 0..100)."""
    _defined(value)
    if value is None:
        return ""
    return babel_numbers.format_percent(value / 100, locale=_babel_locale(ctx))


def environment(campaigns_dir: Path, finalize=None) -> SandboxedEnvironment:
    """The sandbox every template renders in. `finalize` escapes each `{{ value }}` (not the
    designer's own text) for a format that is not HTML: a Slack post's mrkdwn, say."""
    env = SandboxedEnvironment(
        finalize=finalize,
        loader=FileSystemLoader(str(campaigns_dir)),
        undefined=StrictUndefined,
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters.update(date=format_date, datetime=format_datetime, weekday=format_weekday,
                       number=format_number, percent=format_percent)
    return env


def template_name(campaign_id: str, folder: str, locale: str, field: str) -> str:
    return f"{campaign_id}/{folder}/{locale}/{field}"


class Renderer:
    """Renders the messages of one campaign; templates are compiled once and cached."""

    def __init__(self, loaded: "LoadedCampaign"):
        self.loaded = loaded
        self.env = environment(loaded.campaigns_dir)

    def _template(self, message_key: str, locale: str, field: str, variant: str | None = None):
        msg = self.loaded.campaign.messages[message_key]
        name = template_name(self.loaded.id, msg.template_folder(message_key, variant), locale, field)
        base = template_name(self.loaded.id, msg.template_folder(message_key), locale, field)
        try:
            # a variant overrides the fields it has files for (the subject, say), not others
            return (self.env.get_template(name) if name == base
                    else self.env.select_template([name, base]))
        except TemplateNotFound:
            if field in REQUIRED_FIELDS:
                raise
            return None

    def render(self, message_key: str, locale: str, context: dict,
               variant: str | None = None) -> Rendered:
        context = {**context, "locale": locale}
        try:
            subject = self._template(message_key, locale, "subject.txt", variant).render(context)
            text = self._template(message_key, locale, "body.txt", variant).render(context)
            html_template = self._template(message_key, locale, "body.html", variant)
            html = html_template.render(context) if html_template else None
        except Exception as exc:  # a template error, or a filter or expression that failed
            raise RenderError(f"{self.loaded.id}/{message_key}/{locale}: "
                              f"{type(exc).__name__}: {exc}") from exc
        return _rendered(subject, text, html)

    def render_folder(self, folder: str, locale: str, context: dict) -> Rendered:
        """Render the templates of `folder` (a managers' digest, say), not a message's."""
        context = {**context, "locale": locale}

        def get(field: str):
            try:
                return self.env.get_template(template_name(self.loaded.id, folder, locale, field))
            except TemplateNotFound:
                if field in REQUIRED_FIELDS:
                    raise
                return None
        try:
            subject = get("subject.txt").render(context)
            text = get("body.txt").render(context)
            html_template = get("body.html")
            html = html_template.render(context) if html_template else None
        except Exception as exc:
            raise RenderError(f"{self.loaded.id}/{folder}/{locale}: "
                              f"{type(exc).__name__}: {exc}") from exc
        return _rendered(subject, text, html)


def _rendered(subject: str, text: str, html: str | None) -> Rendered:
    # The subject goes into a header: one line, no control characters, whatever the
    # learner's name or the course title holds.
    subject = re.sub(r"[\x00-\x1f\x7f\x85\u2028\u2029]+", " ", subject).strip()
    subject = re.sub(r"\s{2,}", " ", subject)
    return Rendered(subject=subject, text=text.strip() + "\n", html=html)


# -- checking templates before anything is sent ------------------------------------------------

def sample_context(loaded: "LoadedCampaign", message_key: str, locale: str) -> dict:
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


def _template_line(exc: BaseException, filename: str) -> int | None:
    tb = exc.__traceback__
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.endswith(filename):
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def check_template(env: SandboxedEnvironment, path: Path, name: str, context: dict, *,
                   hint: Callable[[str], str] = lambda var: "",
                   attributes: bool = True) -> list["Problem"]:
    """One template file (it exists): it parses, uses only the variables `context` and the
    environment give it (`hint(var)` says what to do about another), makes no attribute
    typo on the message context's known structures (`attributes`), and renders with
    `context`. Each problem names the file and, where Jinja knows it, the line."""
    from relance.campaign.loader import Problem, _display

    shown = _display(path)
    source = path.read_text(encoding="utf-8")
    try:
        ast = env.parse(source, name=name, filename=str(path))
    except TemplateSyntaxError as exc:
        return [Problem(shown, exc.lineno, "", f"template syntax: {exc.message}")]
    unknown = sorted(meta.find_undeclared_variables(ast) - set(context) - set(env.globals))
    if unknown:
        return [Problem(shown, next((i + 1 for i, text in enumerate(source.splitlines())
                                     if re.search(rf"\b{re.escape(var)}\b", text)), None),
                        "", f"undefined variable {var!r}{hint(var)}") for var in unknown]
    typos = _unknown_attributes(ast, set(context)) if attributes else []
    if typos:
        return [Problem(shown, line, "", message) for line, message in typos]
    try:
        env.get_template(name).render(context)
    except UndefinedError as exc:
        return [Problem(shown, _template_line(exc, name), "", f"undefined variable: {exc.message}")]
    except TemplateError as exc:
        return [Problem(shown, _template_line(exc, name), "", f"template error: {exc}")]
    except Exception as exc:  # a filter given a wrong value, a bad format ...
        return [Problem(shown, _template_line(exc, name), "",
                        f"template error: {type(exc).__name__}: {exc}")]
    return []


def check_templates(loaded: "LoadedCampaign") -> list["Problem"]:
    """Every template of every message in every locale exists, parses, uses only known
    variables and renders with a sample context."""
    from relance.campaign.loader import Problem, _display

    campaign = loaded.campaign
    env = environment(loaded.campaigns_dir)
    problems: list[Problem] = []
    for key, msg, folder, variant in ((k, m, m.template_folder(k, v), v)
                                      for k, m in campaign.messages.items()
                                      for v in [None, *(m.variants or {})]):
        for locale in campaign.locales:
            context = sample_context(loaded, key, locale) | {"locale": locale}
            allowed = set(context) | set(env.globals)
            for fld in FIELDS:
                name = template_name(campaign.id, folder, locale, fld)
                path = loaded.campaigns_dir / name
                shown = _display(path)
                if not path.exists():
                    # a variant's missing field falls back to the message's own
                    if fld in REQUIRED_FIELDS and variant is None:
                        problems.append(Problem(
                            _display(loaded.path), loaded.line_of(("messages", key)),
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
    from relance.team import announcement
    from relance import digests
    return problems + digests.check_templates(loaded) + announcement.check_templates(loaded)


def _unknown_attributes(ast: nodes.Template, available: set[str]) -> list[tuple[int, str]]:
    """`learner.frist_name`, `a.titel` in `{% for a in this_week %}`: attribute typos on the
    context's known structures, found in every branch, not only the one a sample takes."""
    fields = {k: v for k, v in CONTEXT_FIELDS.items() if k in available}
    for loop in ast.find_all(nodes.For):
        source = loop.iter
        while isinstance(source, (nodes.Getitem, nodes.Filter)):
            source = source.node
        if (isinstance(source, nodes.Name) and source.name in LIST_ITEM_FIELDS
                and isinstance(loop.target, nodes.Name)):
            fields[loop.target.name] = LIST_ITEM_FIELDS[source.name]
    found = []
    for node in ast.find_all(nodes.Getattr):
        if isinstance(node.node, nodes.Name) and node.node.name in fields:
            known = fields[node.node.name]
            if node.attr not in known:
                found.append((node.lineno, f"{node.node.name!r} has no attribute {node.attr!r}; "
                                           f"it has: {', '.join(known)}"))
    return found
