"""What happens to a learner's reply (issue 18): the `replies:` block of a campaign.

Every message the campaign sends carries a Reply-To that names it (`address`, plus-addressed
with a signed token: relance/delivery/links.py). A reply read back (relance/replies/) is
sorted into the first category whose keywords or patterns it holds, in the learner's
language then the other, and routed where that category says: an address (the reply is
forwarded through the ledger), `team` (left for the team channel's notifier), or `desk`
(the learner's community manager's list). A reply asking to stop is an unsubscribe, always.

Patterns are regular expressions the designer writes: each is compiled here, its length
bounded, and nested repetitions (`(a+)+`, which can take exponential time on a hostile
mail) refused, so a reply is classified in time linear in its (capped) length.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from relance.campaign.types import Email, StrictModel

LANGUAGES = ("fr", "en")
# where a category may send its replies, besides an e-mail address
ROUTE_WORDS = ("desk", "team", "support", "trainer", "training_office")
MAX_PATTERN = 200
MAX_TERMS = 100

# The built-in categories (used when the campaign writes none), in the order tried.
DEFAULT_CATEGORIES: dict[str, dict] = {
    "technical": {
        "route": "support",
        "keywords": {
            "fr": ["connecter", "connexion", "mot de passe", "identifiant", "bug", "bogue",
                   "erreur", "ne fonctionne pas", "ne marche pas", "accès", "acceder", "accéder",
                   "page blanche", "plateforme", "vidéo ne", "bloqué", "bloquée"],
            "en": ["log in", "login", "sign in", "password", "cannot access", "can't access",
                   "error", "bug", "broken", "not working", "doesn't work", "platform",
                   "locked out"]}},
    "content": {
        "route": "trainer",
        "keywords": {
            "fr": ["exercice", "question sur", "cours", "module", "je ne comprends pas",
                   "correction", "devoir", "quiz", "leçon", "chapitre"],
            "en": ["exercise", "question about", "course", "module", "i don't understand",
                   "assignment", "quiz", "lesson", "chapter", "homework"]}},
    "administrative": {
        "route": "training_office",
        "keywords": {
            "fr": ["attestation", "certificat", "facture", "financement", "cpf", "inscription",
                   "convention", "absence", "report", "date limite", "diplôme"],
            "en": ["certificate", "invoice", "funding", "enrolment", "enrollment", "deadline",
                   "extension", "absence", "transcript", "diploma"]}},
}

# A reply holding one of these asks to stop (not configurable: an unsubscribe is a right).
STOP_WORDS = {
    "fr": ["stop", "désinscrire", "désinscrivez", "désinscription", "désabonner",
           "désabonnement", "ne plus recevoir", "arrêtez", "arrêter les messages"],
    "en": ["stop", "unsubscribe", "remove me", "opt out", "opt-out", "no more emails",
           "stop sending"],
}


def _nested_repeat(pattern: str) -> bool:
    """Whether a repetition holds another (catastrophic backtracking's usual shape)."""
    try:
        from re import _parser as sre_parse          # Python 3.11+
    except ImportError:                              # pragma: no cover
        import sre_parse                             # type: ignore
    repeats = {sre_parse.MAX_REPEAT, sre_parse.MIN_REPEAT, getattr(sre_parse, "POSSESSIVE_REPEAT", None)}

    def walk(items, inside: bool) -> bool:
        for op, arg in items:
            if op in repeats:
                lo, hi, sub = arg
                if inside and hi != 1:
                    return True
                if walk(sub, inside or hi != 1):
                    return True
            elif op is sre_parse.SUBPATTERN:
                if walk(arg[-1], inside):
                    return True
            elif op is sre_parse.BRANCH:
                if any(walk(b, inside) for b in arg[1]):
                    return True
        return False
    return walk(sre_parse.parse(pattern), False)


def _check_pattern(raw: str) -> str:
    if len(raw) > MAX_PATTERN:
        raise ValueError(f"a pattern is at most {MAX_PATTERN} characters, this one has "
                         f"{len(raw)}: split it, or use `keywords`")
    try:
        re.compile(raw)
    except re.error as exc:
        raise ValueError(f"{raw!r} is not a valid regular expression ({exc}); for example "
                         "'n.?arrive pas à (me )?connecter'") from None
    if _nested_repeat(raw):
        raise ValueError(f"{raw!r} repeats a repetition (like `(a+)+`), which can take "
                         "exponential time on some mails: write it without the outer "
                         "repetition")
    return raw


Pattern = Annotated[str, Field(min_length=1)]
Keyword = Annotated[str, Field(min_length=1, max_length=MAX_PATTERN)]


class PerLanguage(StrictModel):
    """Terms per language; a reply is checked against the learner's language first, then
    the others (learners write in either)."""

    fr: list[Keyword] = Field(default_factory=list, max_length=MAX_TERMS,
                              description="In French.", examples=[["connecter", "mot de passe"]])
    en: list[Keyword] = Field(default_factory=list, max_length=MAX_TERMS,
                              description="In English.", examples=[["log in", "password"]])

    def terms(self, first: str | None = None) -> list[str]:
        order = [first] + [x for x in LANGUAGES if x != first] if first in LANGUAGES else LANGUAGES
        return [t for lang in order for t in getattr(self, lang)]


class Patterns(PerLanguage):
    """Regular expressions per language (Python's syntax, matched case-insensitively)."""

    fr: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=list, max_length=MAX_TERMS, description="Matched on French replies first.",
        examples=[[r"n.?arrive pas .{0,20}connect"]])
    en: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=list, max_length=MAX_TERMS, description="Matched on English replies first.",
        examples=[[r"can.?t (log|sign) ?in"]])

    @field_validator("fr", "en")
    @classmethod
    def _valid(cls, v):
        return [_check_pattern(p) for p in v]


class Category(StrictModel):
    """A kind of reply and where it goes."""

    keywords: PerLanguage = Field(
        default_factory=PerLanguage,
        description="Words or phrases (any case, accents optional) that put a reply in this "
                    "category, per language.",
        examples=[{"fr": ["connecter", "mot de passe"], "en": ["log in", "password"]}])
    patterns: Patterns = Field(
        default_factory=Patterns,
        description=f"Regular expressions (case-insensitive, at most {MAX_PATTERN} "
                    "characters, no repetition of a repetition), per language.",
        examples=[{"fr": [r"n.?arrive pas .{0,20}connect"]}])
    route: str = Field(
        description="Where its replies go: an e-mail address (forwarded), `support`, "
                    "`trainer` or `training_office` (the addresses of this block), `team` "
                    "(the team channel) or `desk` (the learner's community manager's list).",
        examples=["support", "aide@example.org", "desk"])

    @field_validator("route")
    @classmethod
    def _route(cls, v):
        if v in ROUTE_WORDS:
            return v
        from relance.campaign.types import _email
        try:
            return _email(v)
        except ValueError:
            raise ValueError(f"expected an e-mail address or one of {', '.join(ROUTE_WORDS)}, "
                             f"got {v!r}") from None

    @model_validator(mode="after")
    def _something(self):
        if not (self.keywords.terms() or self.patterns.terms()):
            raise ValueError("a category needs `keywords` or `patterns`, for example "
                             "`keywords: {fr: [connecter], en: [log in]}`")
        return self


class Replies(StrictModel):
    """Learners' replies: where they come back, how they are sorted and where each kind goes."""

    address: Email = Field(
        description="The mailbox replies come back to. Each message's Reply-To is this address "
                    "plus-addressed with a signed token naming the message "
                    "(replies+<token>@example.org): the mailbox (or SendGrid Inbound Parse) must "
                    "accept plus-addressed mail.",
        examples=["replies@example.org"])
    support: Email | None = Field(None, description="Where technical questions go (`support`).",
                                  examples=["support@example.org"])
    trainer: Email | None = Field(None, description="Where questions on the content go (`trainer`).",
                                  examples=["formateur@example.org"])
    training_office: Email | None = Field(
        None, description="Where administrative questions go (`training_office`).",
        examples=["scolarite@example.org"])
    categories: dict[str, Category] | None = Field(
        None, description="Categories tried in order, first match wins. Default: technical -> "
                          "support, content -> trainer, administrative -> training_office "
                          "(built-in French and English keywords; docs/replies.md).",
        examples=[{"technical": {"keywords": {"fr": ["connecter"], "en": ["log in"]},
                                 "route": "support"}}])
    otherwise: str = Field(
        "desk", description="Where a reply that matches no category goes (same values as a "
                            "category's `route`).", examples=["desk"])
    counts_as_activity: bool = Field(
        True, description="A learner's reply is a sign of life: it counts as activity for "
                          "`inactive_days` from the next run on.", examples=[False])
    acknowledgement: str | None = Field(
        None, pattern=r"^[a-z0-9][a-z0-9_-]*$",
        description="Template folder under campaigns/<id>/ of the thank-you sent once per "
                    "reply (subject.txt, body.txt per locale; variables in docs/replies.md). "
                    "None: no acknowledgement.", examples=["accuse-reception"])
    stop_scope: Literal["campaign", "all"] = Field(
        "campaign", description="A reply asking to stop unsubscribes the learner from this "
                                "campaign, or from all.", examples=["all"])

    @field_validator("categories")
    @classmethod
    def _keys(cls, v):
        for key in v or {}:
            if not re.match(r"^[a-z][a-z0-9_]*$", key) or key in ("stop", "other"):
                raise ValueError(f"category {key!r}: use lower-case letters, digits and '_' "
                                 "(not `stop` or `other`, which relance uses), for example "
                                 "'technical'")
        return v

    @field_validator("otherwise")
    @classmethod
    def _otherwise(cls, v):
        return Category._route(v)

    def effective_categories(self) -> dict[str, Category]:
        if self.categories is not None:
            return self.categories
        return {name: Category.model_validate(spec) for name, spec in DEFAULT_CATEGORIES.items()}

    def resolve(self, route: str) -> str:
        """A route as stored: an address, 'desk' or 'team' (a named contact not given
        falls back to the desk, so a reply is never lost)."""
        if route in ("support", "trainer", "training_office"):
            return getattr(self, route) or "desk"
        return route

    def problems(self) -> list[tuple[tuple, str]]:
        found = []
        local = self.address.partition("@")[0]
        if len(local) + 1 + TOKEN_LENGTH > 64:
            found.append((("replies", "address"),
                          f"{self.address!r}: the part before @ is too long to add a reply "
                          f"token (at most {63 - TOKEN_LENGTH} characters), for example "
                          "'replies@example.org'"))
        if "+" in local:
            found.append((("replies", "address"),
                          "write the mailbox without a `+` part: relance adds its own token"))
        for key, cat in (self.categories or {}).items():
            if cat.route in ("support", "trainer", "training_office") and getattr(self, cat.route) is None:
                found.append((("replies", "categories", key, "route"),
                              f"routes to `{cat.route}`, but `replies.{cat.route}` is not set: "
                              f"add `{cat.route}: someone@example.org` to `replies:`"))
        return found


# the token a reply address carries: the message id (24 hex) and 16 hex of signature
TOKEN_LENGTH = 24 + 1 + 16


def template_problems(loaded) -> list:
    """The acknowledgement's templates: subject.txt and body.txt in each of the campaign's
    locales, each one that parses (rendered in the same sandbox as messages)."""
    from relance.campaign.problems import Problem, display
    from relance.campaign.templates import REQUIRED_FIELDS
    campaign = loaded.campaign
    if campaign.replies is None or not campaign.replies.acknowledgement:
        return []
    folder = loaded.campaigns_dir / campaign.id / campaign.replies.acknowledgement
    where, line = display(loaded.path), loaded.line_of(("replies", "acknowledgement"))
    problems = []
    for locale in campaign.locales:
        for name in REQUIRED_FIELDS:
            path = folder / locale / name
            if not path.is_file():
                problems.append(Problem(where, line, "replies.acknowledgement",
                                        f"missing template {display(path)}: write the "
                                        f"acknowledgement's {name} in {locale}"))
    return problems
