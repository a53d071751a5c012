"""The guide (docs/first-campaign.md) runs as written, and the designer's whole path works
through the CLI alone: new, edit, validate with a mistake, fix, test, preview, plan."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

import warehouse
from tests.conftest import REPO

GUIDE = REPO / "docs" / "first-campaign.md"
DEMO_AS_OF = datetime(2026, 11, 16, 8, 0, tzinfo=timezone.utc)
runner = CliRunner()


@pytest.fixture(scope="module")
def small_demo(tmp_path_factory) -> Path:
    """A warehouse like the demo's, smaller (5 %): its generated export, loaded by the CSV
    connector, marked with the demo's date."""
    from connectors import open_source, sync
    from relance import demo
    root = tmp_path_factory.mktemp("small-demo")
    mapping = demo.generate(root / "export", as_of=DEMO_AS_OF, scale=0.05)
    con = warehouse.connect(root / "relance.duckdb")
    try:
        sync(con, open_source(str(mapping)))
        warehouse.set_meta(con, "demo_as_of", DEMO_AS_OF.isoformat())
    finally:
        con.close()
    return root / "relance.duckdb"


@pytest.fixture
def project(tmp_path, small_demo, monkeypatch):
    """A project folder as a designer has it: campaigns/ and relance.duckdb, as cwd."""
    shutil.copytree(REPO / "campaigns", tmp_path / "campaigns")
    shutil.copyfile(small_demo, tmp_path / "relance.duckdb")
    monkeypatch.chdir(tmp_path)
    for name in ("RELANCE_WAREHOUSE", "RELANCE_CAMPAIGNS", "RELANCE_OUTBOX"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def relance(*args: str):
    from relance.cli.main import app
    return runner.invoke(app, list(args), env={"COLUMNS": "250"})


def _squash(text: str) -> str:
    return " ".join(text.split())


def guide_steps(text: str) -> list[tuple[str, str, str]]:
    """(kind, target, body) for every fenced block, in order; kind is what the comment line
    above it says to do with it (edit, append, excerpt), or `console`."""
    steps = []
    for m in re.finditer(r"(?:<!-- (\w+) (\S+) -->\n)?```(\w+)\n(.*?)```", text, re.S):
        action, target, lang, body = m.groups()
        steps.append((action or lang, target or "", body))
    return steps


def run_guide_step(kind: str, target: str, body: str) -> None:
    if kind == "console":
        commands = re.split(r"^\$ ", body, flags=re.M)[1:]
        for block in commands:
            line, *expected = block.splitlines()
            args = line.split()
            assert args[0] == "relance", line
            result = relance(*args[1:])
            fails = any(e.startswith("error") for e in expected)
            assert result.exit_code == (1 if fails else 0), (line, result.output)
            for fragment in expected:
                assert _squash(fragment) in _squash(result.output), (line, fragment, result.output)
    elif kind == "edit":
        path = Path(target)
        old = "\n".join(l[1:] for l in body.splitlines() if l.startswith("-")) + "\n"
        new = "\n".join(l[1:] for l in body.splitlines() if l.startswith("+")) + "\n"
        text = path.read_text(encoding="utf-8")
        assert text.count(old) == 1, f"the guide's edit does not apply to {target}: {old!r}"
        path.write_text(text.replace(old, new), encoding="utf-8")
    elif kind == "append":
        path = Path(target)
        path.write_text(path.read_text(encoding="utf-8") + body, encoding="utf-8")
    elif kind == "excerpt":
        assert body in Path(target).read_text(encoding="utf-8"), f"not in {target}: {body}"
    else:
        raise AssertionError(f"a ```{kind} block the guide's test does not run: give it an "
                             "action comment, or make it prose")


def test_the_guide_runs_as_written(project):
    steps = guide_steps(GUIDE.read_text(encoding="utf-8"))
    assert [k for k, _, _ in steps].count("console") >= 6
    for kind, target, body in steps:
        run_guide_step(kind, target, body)
    assert "<html" in (project / "relance.html").read_text(encoding="utf-8")


def test_the_designer_s_whole_path_through_the_cli(project):
    git = ["git", "-C", str(project)]
    # 1. new, from a model, and it is committed as it came
    result = relance("new", "climat-relance", "--from", "re-engagement", "--course",
                     "mooc-climat")
    assert result.exit_code == 0, result.output
    subprocess.run(git + ["init", "-q"], check=True)
    subprocess.run(git + ["add", "-A"], check=True)
    subprocess.run(git + ["-c", "user.name=d", "-c", "user.email=d@example.org", "commit",
                          "-qm", "new campaign"], check=True)
    campaign = project / "campaigns" / "climat-relance.yaml"
    text = campaign.read_text(encoding="utf-8")
    # 2. edit: the nudge after a week, not ten days; with a typo in a measure's name
    campaign.write_text(text.replace('    inactive_days: ">= 10"', '    inactiv_days: ">= 7"'),
                        encoding="utf-8")
    result = relance("validate", "climat-relance")
    assert result.exit_code == 1
    line = next(i for i, l in enumerate(campaign.read_text().splitlines(), 1) if "inactiv_days" in l)
    assert (f"error campaigns/climat-relance.yaml:{line}:5: stages.silent.inactiv_days: unknown "
            "field; did you mean `inactive_days`?") in result.output
    # 3. fix it
    campaign.write_text(text.replace('    inactive_days: ">= 10"', '    inactive_days: ">= 7"'),
                        encoding="utf-8")
    result = relance("validate", "climat-relance")
    assert result.exit_code == 0 and "ok campaigns/climat-relance.yaml" in result.output
    # 4. test: the examples still pass; one that says eight days is too early now fails
    assert relance("test", "climat-relance").exit_code == 0
    with campaign.open("a", encoding="utf-8") as f:
        f.write("    - name: eight days of silence is not yet worth a nudge\n"
                "      given: {inactive_days: 8, progress: 20%}\n"
                "      expect: {stage: active, message: none}\n")
    result = relance("test", "climat-relance")
    assert result.exit_code == 1
    assert "✗ eight days of silence is not yet worth a nudge" in result.output
    row = next(l for l in result.output.splitlines() if l.startswith("│ stage"))
    assert [c.strip() for c in row.split("│")[1:-1]] == ["stage", "active", "silent"]
    campaign.write_text(campaign.read_text().replace(
        "      expect: {stage: active, message: none}\n",
        "      expect: {stage: silent, message: on-vous-attend}\n").replace(
        "not yet worth a nudge", "worth a nudge now"), encoding="utf-8")
    result = relance("test", "climat-relance")
    assert result.exit_code == 0 and "5 examples passed." in result.output
    # 5. preview: who gets what, one learner's email, their weeks
    result = relance("plan", "climat-relance", "--show", "200")
    assert result.exit_code == 0, result.output
    learner = next(l.split("│")[1].strip() for l in result.output.splitlines()
                   if "on-vous-attend" in l and l.startswith("│ L"))
    result = relance("preview", "climat-relance", learner, "--html", "nudge.html")
    assert result.exit_code == 0, result.output
    assert "would get 'on-vous-attend'" in result.output
    assert "mooc-climat" in result.output or "Climat" in result.output
    assert "<a href=" in (project / "nudge.html").read_text(encoding="utf-8")
    result = relance("preview", "climat-relance", learner, "--week")
    assert result.exit_code == 0 and "on-vous-attend" in result.output
    # 6. plan: what the edit changes against the committed version, same moment
    result = relance("plan", "climat-relance", "--diff", "--against", "head")
    assert result.exit_code == 0, result.output
    assert "compared with the committed version of climat-relance.yaml" in result.output
    changed = [[c.strip() for c in l.split("│")[1:-1]] for l in result.output.splitlines()
               if l.startswith("│ L")]
    # those silent for 7 to 9 days: active before, silent now, and nudged
    assert changed and all(row[1:3] == ["active", "silent"] for row in changed)
    assert all(row[4] == "on-vous-attend" for row in changed)
