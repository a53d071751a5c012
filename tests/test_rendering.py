"""Templates: sandboxed, strict, and formatted for the learner's locale and timezone."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from jinja2.exceptions import SecurityError, UndefinedError

from relance.campaign.templates import environment


def render(source: str, **ctx) -> str:
    env = environment(__import__("pathlib").Path("."))
    return env.from_string(source).render(**ctx)


@pytest.mark.parametrize("locale,expected", [("fr", "75\xa0%"), ("en", "75%"), ("fr-CA", "75\xa0%")])
def test_percent_follows_the_locale(locale, expected):
    assert render("{{ 75 | percent }}", locale=locale) == expected


def test_dates_are_in_the_learners_language_and_timezone():
    due = datetime(2026, 11, 29, 22, 59, tzinfo=timezone.utc)       # Sunday 23:59 in Paris
    paris = {"timezone": "Europe/Paris"}
    montreal = {"timezone": "America/Montreal"}
    assert render('{{ d | date("EEEE d MMMM") }}', d=due, locale="fr", learner=paris) == "dimanche 29 novembre"
    assert render('{{ d | date("EEEE d MMMM") }}', d=due, locale="en", learner=montreal) == "Sunday 29 November"
    assert render('{{ d | datetime("HH:mm") }}', d=due, locale="fr", learner=montreal) == "17:59"


def test_numbers_use_the_locales_separators():
    assert render("{{ n | number }}", n=12345, locale="fr") == "12\u202f345"
    assert render("{{ n | number }}", n=12345, locale="en") == "12,345"


def test_the_sandbox_refuses_python_internals():
    with pytest.raises(SecurityError):
        render("{{ x.__class__.__mro__[1].__subclasses__() }}", x="")


def test_undefined_variables_are_errors_not_blanks():
    with pytest.raises(UndefinedError):
        render("Bonjour {{ learner.frist_name }}", learner={"first_name": "Zoé"}, locale="fr")


def test_html_is_escaped_text_is_not(tmp_path):
    (tmp_path / "t.html").write_text("<p>{{ name }}</p>", encoding="utf-8")
    (tmp_path / "t.txt").write_text("{{ name }}", encoding="utf-8")
    env = environment(tmp_path)
    assert env.get_template("t.html").render(name="<b>Zoé</b>") == "<p>&lt;b&gt;Zoé&lt;/b&gt;</p>"
    assert env.get_template("t.txt").render(name="<b>Zoé</b>") == "<b>Zoé</b>"
