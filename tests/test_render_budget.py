"""Templates under a budget (issue 17, finding 4): a template that would loop for ever or
write a gigabyte is refused, fast, with its file and line, wherever it is rendered:
`validate`'s trial render, a preview, a delivery (where it fails alone)."""

from __future__ import annotations

import time
import pytest
from typer.testing import CliRunner

import warehouse
from relance.campaign.budget import MAX_CHARS, RenderBudgetExceeded
from relance.campaign.problems import CampaignError
from relance.campaign.templates import environment
from relance.channels.outbox import OutboxChannel
from relance.runs.steps import run_campaign
from tests.conftest import MONDAY, Cohort

# each would hang or fill the memory in Jinja2's plain sandbox
HOSTILE = {
    "nested ranges (the issue's)": "{% for i in range(100000) %}{% for j in range(100000) %}"
                                   "{% endfor %}{% endfor %}",
    "nested loops": "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
    "nested loops over a text": "{% set s = 'x' * 9000 %}{% for a in s %}{% for b in s %}"
                                "{% endfor %}{% endfor %}",
    "a gigabyte (the issue's)": "{{ 'A' * 10**9 }}",
    "a constant gigabyte": "{{ 'A' * 1000000000 }}",
    "output from a loop": "{% for i in range(10000) %}{{ 'A' * 1000 }}{% endfor %}",
    "a macro calling itself twice": "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}"
                                    "{% endif %}{% endmacro %}{{ f(40) }}",
    "a namespace doubling": "{% set ns = namespace(s='ab') %}{% for i in range(40) %}"
                            "{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
    "a list doubling": "{% set l = [1] %}{% for i in range(40) %}{{ l.extend(l) or '' }}{% endfor %}",
    "a number too large": "{{ 7 ** 100000000 }}",
    "a width in %": "{{ '%0999999999d' % 1 }}",
    "a width in format()": "{{ '{:>999999999}'.format(1) }}",
    "a width in |format": "{{ '%999999999s'|format('x') }}",
    "center": "{{ 'a'|center(999999999) }}",
    "ljust": "{{ 'a'.ljust(999999999) }}",
    "indent": "{{ 'x'|indent(999999999, true) }}",
    "replace": "{% set s = 'A' * 10000 %}{{ s|replace('A', s) }}",
    "join": "{% set s = 'A' * 900000 %}{{ ([s] * 2)|join }}",
    "a map of large texts": "{{ range(10000)|map('center', 900000)|join }}",
    "a block over budget": "{% macro m() %}{% for i in range(5000) %}{{ 'A' * 1000 }}{% endfor %}"
                           "{% endmacro %}{% set x = m() %}",
    "lipsum": "{{ lipsum(10**9) }}",
    "batch filled": "{{ [1]|batch(10**9, 0)|list }}",
    "wordwrap": "{{ ('a ' * 1000)|wordwrap(1, wrapstring='x' * 900000) }}",
    "urlize": "{{ ('http://a.example ' * 1000)|urlize(target='x' * 900000) }}",
    "sum of lists": "{% set l = range(9000)|list %}{{ ([l] * 1000)|sum(start=[])|length }}",
}


@pytest.mark.parametrize("source", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_template_over_its_budget_is_refused_fast_with_its_line(source, tmp_path):
    (tmp_path / "t.txt").write_text("Bonjour\n" + source, encoding="utf-8")
    started = time.monotonic()
    with pytest.raises(RenderBudgetExceeded) as exc:
        environment(tmp_path).get_template("t.txt").render()
    assert time.monotonic() - started < 5            # a 1 s budget, on a loaded machine
    assert exc.value.path.endswith("t.txt") and exc.value.line == 2, str(exc.value)
    assert "budget" in exc.value.reason


def test_what_stays_within_the_budget_renders_as_before(tmp_path):
    source = ("{% for i in range(300) %}{{ loop.length if loop.last }}{% endfor %} "
              "{{ 'ab' ~ 'cd' }} {{ 'x' * 3 }} {{ '%5.1f'|format(3.14159) }} {{ '{:,}'.format(1234567) }} "
              "{{ [1, 2] + [3] }} {{ 2 ** 10 }} {{ ('A' * (MAX - 1))|length }}")
    (tmp_path / "t.txt").write_text(source, encoding="utf-8")
    assert environment(tmp_path).get_template("t.txt").render(MAX=MAX_CHARS) == (
        f"300 abcd xxx   3.1 1,234,567 [1, 2, 3] 1024 {MAX_CHARS - 1}")
    with pytest.raises(RenderBudgetExceeded):       # one more character is over
        environment(tmp_path).from_string("{{ 'A' * (MAX + 1) }}").render(MAX=MAX_CHARS)


@pytest.mark.parametrize("body,expected", [
    ("Bonjour\n{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
     "test/relance/en/body.txt:2: range() of 100,000 items: a template may loop at most 10,000 "
     "times"),
    ("Bonjour\n{% for i in range(9000) %}{% for j in range(9000) %}{% endfor %}{% endfor %}",
     "test/relance/en/body.txt:2: rendering took more than 1 s, a template's time budget"),
    ("Bonjour\n\n{{ 'A' * 10**9 }}",
     "test/relance/en/body.txt:3: this repetition (`*`) would hold 1,000,000,000 characters, "
     "more than the 1,000,000 a template may build"),
], ids=["a range too large", "too long", "too large"])
def test_validate_refuses_a_template_over_budget_at_once(campaigns, body, expected):
    campaigns.write(campaigns.base(), template_overrides={"relance/en/body.txt": body})
    started = time.monotonic()
    with pytest.raises(CampaignError) as exc:
        campaigns.load()
    assert time.monotonic() - started < 10
    messages = [str(p) for p in exc.value.problems]
    assert any(expected in m for m in messages), messages


# Passes `validate` (its sample learner is "Zoé"), and is over budget for a long first name:
# the budget is met or not by each learner's own render.
OVER_FOR_LONG_NAMES = {
    "size": "{{ 'A' * (learner.first_name|length * 100000) }}",
    "time": "{% set n = 10000 if learner.first_name|length > 10 else 1 %}{% for i in range(n) %}"
            "{% for j in range(n) %}{% for k in range(n) %}{% endfor %}{% endfor %}{% endfor %}ok",
}


@pytest.mark.parametrize("kind", OVER_FOR_LONG_NAMES)
def test_a_message_over_budget_fails_alone_at_delivery(wh, cohort, campaigns, tmp_path, kind):
    campaigns.write(campaigns.base(),
                    template_overrides={"relance/fr/body.txt": OVER_FOR_LONG_NAMES[kind]})
    loaded = campaigns.load()
    long = cohort.learner(inactive_days=8, first_name="Marie-Alexandrine")
    others = [cohort.learner(inactive_days=8) for _ in range(3)]
    started = time.monotonic()
    summary = run_campaign(wh, loaded, as_of=MONDAY, channel=OutboxChannel(tmp_path / "out"))
    assert time.monotonic() - started < 60
    assert (summary.sent, summary.failed) == (3, 1)
    rows = dict(wh.execute("select learner_id, status from messages").fetchall())
    assert rows == {long: "failed"} | {lid: "sent" for lid in others}
    (error,) = wh.execute("select error from messages where status = 'failed'").fetchall()[0]
    assert error.startswith("render:") and "test/relance/fr/body.txt:1: " in error, error
    assert ("size budget" if kind == "size" else "time budget") in error
    assert len(list((tmp_path / "out" / "test").glob("*.eml"))) == 3


def test_a_preview_over_budget_says_why_and_writes_nothing(tmp_path, campaigns):
    db = tmp_path / "wh.duckdb"
    con = warehouse.connect(db)
    learner = Cohort(con).learner(inactive_days=8, first_name="Marie-Alexandrine")
    con.close()
    campaigns.write(campaigns.base(),
                    template_overrides={"relance/fr/body.txt": OVER_FOR_LONG_NAMES["size"]})
    from relance.cli.main import app
    html = tmp_path / "m.html"
    result = CliRunner().invoke(app, [
        "preview", "test", learner, "--message", "relance", "--html", str(html), "--warehouse",
        str(db), "--campaigns", str(campaigns.root), "--as-of", MONDAY.isoformat()],
        env={"COLUMNS": "300"})
    assert result.exit_code == 1, result.output
    assert "test/relance/fr/body.txt:1: this repetition" in result.output
    assert "size budget" in result.output and not html.exists()
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)



def test_the_time_budget_is_a_second_of_the_renders_own_cpu(tmp_path):
    """The budget's clock is read cheaply (the CPU clock only once a render has lasted a
    moment): a runaway loop is still stopped after a second of its own CPU, no sooner and
    not much later."""
    from relance.campaign.budget import FREE_WALL, MAX_SECONDS
    (tmp_path / "t.txt").write_text(HOSTILE["nested loops"], encoding="utf-8")
    template = environment(tmp_path).get_template("t.txt")
    cpu = time.thread_time()
    with pytest.raises(RenderBudgetExceeded, match="time budget"):
        template.render()
    spent = time.thread_time() - cpu
    assert MAX_SECONDS <= spent < MAX_SECONDS + FREE_WALL + 0.5, spent
    # and the next render on this thread has its own budget
    assert environment(tmp_path).from_string("{% for i in range(3) %}{{ i }}{% endfor %}"
                                             ).render() == "012"
