"""Property-based fuzzing of the campaign loader (issue 17, "widen the net"): whatever a
campaign file holds (any text or bytes, any structure written as YAML, a real campaign
with lines or values changed), `relance validate` gives a campaign or problems located in
a file, fast, never a crash and never a write.

Deterministic (`derandomize`, no example database) so CI does not flake; seeded with the
issue's cases (a billion laughs, a 50 MB file) and the ones fuzzing found.
"""

from __future__ import annotations

import copy
import hashlib
import shutil
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from relance.campaign.loader import load
from relance.campaign.problems import CampaignError
from tests.conftest import REPO
from tests.test_campaign_file_limits import BILLION_LAUGHS

FUZZ = settings(derandomize=True, database=None, deadline=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow,
                                       HealthCheck.function_scoped_fixture])
REAL = "parcours-anglais"
# What one file may take to load or be refused: 5 s of this process's CPU (the renders'
# budget is a second of CPU each; CPU, so that a machine busy with other work does not fail
# the test: one at load 7.6 took 6 s of wall time), and a minute of wall time for a wait
# that spends none
BUDGET_SECONDS = 5
WALL_SECONDS = 60


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """A copy of the repository's campaigns (templates, layouts, defaults)."""
    root = tmp_path_factory.mktemp("fuzz") / "campaigns"
    shutil.copytree(REPO / "campaigns", root)
    return root


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(root.rglob("*")):
        if f.is_file() and f.name != f"{REAL}.yaml":
            h.update(str(f).encode() + f.read_bytes())
    return h.hexdigest()


def loads_or_says_why(root: Path, content: bytes | str):
    """Write the campaign file, load it: a campaign, or problems each located in a file
    (a CampaignError); in bounded time; nothing else in the folder changed."""
    path = root / f"{REAL}.yaml"
    if isinstance(content, str):
        content = content.encode("utf-8", "surrogatepass")
    path.write_bytes(content)
    before = _digest(root)
    started, cpu = time.monotonic(), time.process_time()
    try:
        loaded = load(path, campaigns_dir=root)
    except CampaignError as exc:
        assert exc.problems
        for problem in exc.problems:
            assert problem.path and problem.message, problem
        loaded = None
    assert time.process_time() - cpu < BUDGET_SECONDS
    assert time.monotonic() - started < WALL_SECONDS
    assert _digest(root) == before                          # never a write
    return loaded


YAML_ALPHABET = st.sampled_from(list("abcdefg_-:,.[]{}&*!|>'\"#%@?`~ \n\n\t01239") +
                                ["\r\n", "  ", "    ", "id: ", "- ", "\ufeff", "\x00", "é", "<<: "])


@settings(FUZZ, max_examples=200)
@given(text=st.one_of(st.lists(YAML_ALPHABET, max_size=120).map("".join),
                      st.text(max_size=200),
                      st.deferred(lambda: STRUCTURE).map(
                          lambda data: yaml.safe_dump(data, allow_unicode=True))),
       raw=st.booleans())
@example(text=BILLION_LAUGHS, raw=False)
@example(text="a: &a [1, *a]\n", raw=False)
@example(text="a: " + "[" * 5000 + "]" * 5000, raw=False)
@example(text="id: parcours-anglais\nnote: 2026-13-45\n", raw=False)
@example(text="id: " + "9" * 5000, raw=False)
@example(text="id: parcours-anglais\x00", raw=False)
@example(text="? [a, b]\n: c\n", raw=False)
@example(text="<<: 5\n", raw=False)
@example(text="!!python/object:os.system x\n", raw=False)
@example(text="\xff\xfe", raw=True)
def test_any_text_or_structure_gives_a_campaign_or_located_problems(folder, text, raw):
    """Any text (or bytes, `raw`), and any structure written as YAML."""
    loads_or_says_why(folder, text.encode("latin-1", "replace") if raw else text)


def test_a_50_mb_file_is_refused_within_the_budget(folder):
    loads_or_says_why(folder, b"id: x\n# " + b"x" * 50_000_000)


# -- any structure, as YAML -----------------------------------------------------------------

SCALAR = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20),
                   st.floats(allow_nan=True), st.text(max_size=20),
                   st.sampled_from(["", ">= 7", "between 3 and 1", "25%", "monday 08:30",
                                    "fr", "Europe/Paris", "a@b.org", "true", "dormant",
                                    "at_risk", "relance", "2026-09-07", "-1", "1e400"]))
STRUCTURE = st.recursive(SCALAR, lambda inner: st.one_of(
    st.lists(inner, max_size=4),
    st.dictionaries(st.one_of(st.text(max_size=12), st.sampled_from(
        ["id", "description", "stages", "messages", "on_enter", "every", "to", "include",
         "inactive_days", "any_of", "all_of", "course", "where", "limits", "locales"])),
        inner, max_size=4)), max_leaves=12)


# -- a real campaign, changed ----------------------------------------------------------------

REAL_TEXT = (REPO / "campaigns" / f"{REAL}.yaml").read_text(encoding="utf-8")
REAL_DATA = yaml.safe_load(REAL_TEXT)


def _paths(value, prefix=()):
    """Every place in a structure: (path, value)."""
    yield prefix, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, prefix + (key,))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _paths(item, prefix + (i,))


PLACES = [p for p, _ in _paths(REAL_DATA) if p]


@st.composite
def changed_structure(draw):
    """The real campaign's data with one to three places replaced, removed or added to."""
    data = copy.deepcopy(REAL_DATA)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(PLACES))
        parent = data
        try:
            for part in path[:-1]:
                parent = parent[part]
            action = draw(st.sampled_from(["replace", "remove", "add"]))
            if action == "replace":
                parent[path[-1]] = draw(STRUCTURE)
            elif action == "remove":
                del parent[path[-1]]
            elif isinstance(parent[path[-1]], dict):
                parent[path[-1]][draw(st.text(max_size=10))] = draw(STRUCTURE)
            elif isinstance(parent[path[-1]], list):
                parent[path[-1]].append(draw(STRUCTURE))
        except (KeyError, IndexError, TypeError):
            pass                            # an earlier change took that place away
    return data


@st.composite
def changed_text(draw):
    """The real campaign's text with lines removed, repeated, swapped, re-indented, or
    a value replaced by another token."""
    lines = REAL_TEXT.splitlines(keepends=True)
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(lines) - 1))
        action = draw(st.sampled_from(["remove", "repeat", "swap", "indent", "dedent",
                                       "value", "insert"]))
        if action == "remove":
            del lines[i]
        elif action == "repeat":
            lines.insert(i, lines[i])
        elif action == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif action == "indent":
            lines[i] = "  " + lines[i]
        elif action == "dedent":
            lines[i] = lines[i][2:] if lines[i].startswith("  ") else lines[i]
        elif action == "value" and ":" in lines[i]:
            key = lines[i].split(":", 1)[0]
            lines[i] = f"{key}: {draw(st.one_of(st.text(max_size=12), YAML_ALPHABET))}\n"
        else:
            lines.insert(i, draw(st.lists(YAML_ALPHABET, max_size=20).map("".join)) + "\n")
        if not lines:
            break
    return "".join(lines)


@settings(FUZZ, max_examples=70)
@given(text=st.one_of(changed_text(), changed_structure().map(
    lambda data: yaml.safe_dump(data, allow_unicode=True, sort_keys=False))))
@example(text=REAL_TEXT)
@example(text=REAL_TEXT + BILLION_LAUGHS)
def test_a_real_campaign_changed_loads_or_says_why(folder, text):
    """The repository's parcours-anglais with lines removed, repeated, swapped,
    re-indented or changed, or with values replaced, removed or added."""
    loads_or_says_why(folder, text)


# -- a template, changed ---------------------------------------------------------------------

TEMPLATE = Path(REAL) / "relance" / "fr" / "body.txt"
JINJA = st.sampled_from([
    "{{ ", " }}", "{% ", " %}", "{# ", " #}", "for x in ", "range(", ")", "endfor", "if ",
    "endif", "set ns = namespace(s='a')", "ns.s", " ~ ", " * ", " + ", " % ", "**", "|",
    "length", "upper", "center(", "join", "replace(", "format", "list", "batch(", "map(",
    "learner.first_name", "course.title", "progress.percent", "percent", "date", "'A'",
    "10", "9", "1000000", "(", ",", "loop.index", "macro m(n)", "endmacro", "m(", "'%s'",
    "include '_layouts/footer_fr.txt'", "extends '_layouts/email.txt'", "block b", "endblock",
    "lipsum(", "self", "caller()", "\n", " ", "x", "é", "{", "}", "%", "#", "-"])


@settings(FUZZ, max_examples=40)
@given(source=st.one_of(st.lists(JINJA, max_size=30).map("".join), st.text(max_size=80)))
@example(source="{{ " + "9" * 5000 + " }}")
@example(source="{% raw %}")
def test_any_template_gives_a_campaign_or_located_problems(folder, source):
    target = folder / TEMPLATE
    original = (REPO / "campaigns" / TEMPLATE).read_bytes()
    try:
        target.write_text(source, encoding="utf-8", errors="surrogatepass")
        loads_or_says_why(folder, REAL_TEXT)
    finally:
        target.write_bytes(original)


def test_the_issues_templates_are_located_problems(folder):
    """Seeds: the issue's templates, and one over the time budget (the sandbox refuses
    more: tests/test_render_budget.py)."""
    from tests.test_render_budget import HOSTILE
    target = folder / TEMPLATE
    original = (REPO / "campaigns" / TEMPLATE).read_bytes()
    try:
        for name in ("nested ranges (the issue's)", "a gigabyte (the issue's)",
                     "a macro calling itself twice"):
            source = HOSTILE[name]
            target.write_text(source, encoding="utf-8")
            assert loads_or_says_why(folder, REAL_TEXT) is None, name
    finally:
        target.write_bytes(original)
