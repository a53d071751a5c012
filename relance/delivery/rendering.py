"""Rendering messages to send: each campaign's templates compiled once in the campaign
format's sandbox (campaign/templates.py), rendered with a learner's context, the subject
made one safe header line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from jinja2 import BytecodeCache, TemplateNotFound

from relance.campaign.templates import REQUIRED_FIELDS, environment, template_name
from relance.channels.email import clean_text

if TYPE_CHECKING:
    from relance.campaign.loaded import LoadedCampaign


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str | None


class RenderError(Exception):
    pass


# -- locale-aware filters ---------------------------------------------------------------------


class _CompiledTemplates(BytecodeCache):
    """Templates compiled once per process, whatever the number of Renderers (a delivery
    makes one, and a simulated season or a scheduler process runs hundreds): Jinja's own
    bytecode cache, kept in memory, keyed by the template's name and file and checked
    against its source, so an edited template is compiled again. Only Renderers use it,
    all of whose environments are alike (environment() without finalize): the compiled
    code depends on the environment's options as well as on the source."""

    def __init__(self):
        self._code: dict[str, bytes] = {}

    def load_bytecode(self, bucket) -> None:
        code = self._code.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)     # ignored if the source's checksum differs

    def dump_bytecode(self, bucket) -> None:
        self._code[bucket.key] = bucket.bytecode_to_string()


_COMPILED = _CompiledTemplates()

# One environment per campaigns folder, for every Renderer of the process: a delivery
# makes a Renderer, and an environment of its own read and loaded each template again
# (1-2 % of a simulated season's samples, which delivers 300 times). Jinja's environment
# keeps the templates it loaded and, before using one, checks its file's modification
# time (auto_reload): a template edited, added or removed is read again, as it was by a
# new environment.
_ENVIRONMENTS: dict[str, object] = {}


def _environment(campaigns_dir):
    key = str(campaigns_dir)
    env = _ENVIRONMENTS.get(key)
    if env is None:
        env = environment(campaigns_dir)
        env.bytecode_cache = _COMPILED
        if len(_ENVIRONMENTS) >= 16:           # a test suite's many folders: the oldest goes
            del _ENVIRONMENTS[next(iter(_ENVIRONMENTS))]
        _ENVIRONMENTS[key] = env
    return env


class Renderer:
    """Renders the messages of one campaign; templates are compiled once per process and
    cached (_CompiledTemplates), and loaded once per campaigns folder (_environment)."""

    def __init__(self, loaded: "LoadedCampaign"):
        self.loaded = loaded
        self.env = _environment(loaded.campaigns_dir)

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
    # The subject goes into a header: one line, no control characters or bidi overrides,
    # whatever the learner's name or the course title holds; cleaned here once, the way
    # every channel cleans it, so the ledger records the subject that was sent.
    return Rendered(subject=clean_text(subject), text=text.strip() + "\n", html=html)



