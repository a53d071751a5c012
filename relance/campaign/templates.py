"""Templates as the campaign format defines them: Jinja2's sandbox, strict about undefined
variables, with dates and numbers formatted for the reader's locale by Babel, and the
check of one template file against the variables it may use.

Templates are found by convention, one file per rendered field and locale:
`campaigns/<campaign>/<message>/<locale>/subject.txt`, `body.txt` and (optional)
`body.html`. `campaigns/_layouts/` holds what templates share (`{% extends %}`).
"""

from __future__ import annotations

import re
from datetime import date, datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable
from zoneinfo import ZoneInfo

from babel import dates as babel_dates
from babel import numbers as babel_numbers
from jinja2 import (FileSystemLoader, StrictUndefined, TemplateError, TemplateSyntaxError,
                    Undefined, UndefinedError, meta, nodes, pass_context, select_autoescape)
from jinja2.sandbox import SandboxedEnvironment

from relance.campaign.budget import RenderBudgetExceeded
from relance.campaign.sandbox import BudgetedEnvironment

if TYPE_CHECKING:
    from relance.campaign.problems import Problem


FIELDS = ("subject.txt", "body.txt", "body.html")


REQUIRED_FIELDS = ("subject.txt", "body.txt")
# a team announcement is a post: a title and a text
ANNOUNCEMENT_FIELDS = ("subject.txt", "body.txt")


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
    """The sandbox every template renders in, under the render budget (campaign/budget.py, campaign/sandbox.py).
    `finalize` escapes each `{{ value }}` (not the designer's own text) for a format that
    is not HTML: a Slack post's mrkdwn, say."""
    return BudgetedEnvironment(
        finalize=finalize,
        loader=FileSystemLoader(str(campaigns_dir)),
        undefined=StrictUndefined,
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        filters=dict(date=format_date, datetime=format_datetime, weekday=format_weekday,
                     number=format_number, percent=format_percent),
    )


def template_name(campaign_id: str, folder: str, locale: str, field: str) -> str:
    return f"{campaign_id}/{folder}/{locale}/{field}"


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
    from relance.campaign.problems import Problem, display

    from relance.campaign.yamlfile import MAX_FILE_BYTES

    shown = display(path)
    if path.stat().st_size > MAX_FILE_BYTES:
        return [Problem(shown, None, "", f"is {path.stat().st_size:,} bytes; a template file "
                        f"holds at most {MAX_FILE_BYTES:,} (1 MiB): is this the right file?")]
    try:
        source = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        return [Problem(shown, None, "", f"is not UTF-8 text ({exc.reason}): save it as UTF-8")]
    try:
        ast = env.parse(source, name=name, filename=str(path))
    except TemplateSyntaxError as exc:
        return [Problem(shown, exc.lineno, "", f"template syntax: {exc.message}")]
    except Exception as exc:        # a number of 5,000 digits: Python will not read it
        return [Problem(shown, None, "", "template syntax: " + str(exc).split("; use sys.")[0])]
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
    except RenderBudgetExceeded as exc:
        return [Problem(exc.path or shown, exc.line, "", exc.reason)]
    except UndefinedError as exc:
        return [Problem(shown, _template_line(exc, name), "", f"undefined variable: {exc.message}")]
    except TemplateError as exc:
        return [Problem(shown, _template_line(exc, name), "", f"template error: {exc}")]
    except Exception as exc:  # a filter given a wrong value, a bad format ...
        return [Problem(shown, _template_line(exc, name), "",
                        f"template error: {type(exc).__name__}: {exc}")]
    return []


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


def slack_escape(value: Any) -> str:
    # Slack reads only these three as markup in text: `<` opens a link or a mention
    # (<!channel> pings everyone), `&` an entity
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _as_text(value: Any) -> str:
    # Teams: the JSON encoder escapes the payload; the value is shown as it is
    return str(value)


FINALIZE = {"slack": slack_escape, "teams": _as_text}
