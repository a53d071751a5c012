"""A campaign file is refused fast when it is too large or its aliases multiply it (issue
17, finding 5: a billion-laughs file hung `validate` for minutes, a 50 MB file took 87 s to
be refused), and whatever else a file holds gives a located problem, never a crash."""

from __future__ import annotations

import time

import pytest
from typer.testing import CliRunner

from relance.campaign.problems import CampaignError

# nine lines, each repeating the one before nine times: a billion values
BILLION_LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8))


def append(campaigns, text: str) -> None:
    """The base campaign with `text` at its end (line 24), written as it is."""
    campaigns.write(campaigns.base(), templates=False)
    with open(campaigns.root / "test.yaml", "a", encoding="utf-8") as f:
        f.write(text)


def problems_of(campaigns) -> list[str]:
    with pytest.raises(CampaignError) as exc:
        campaigns.load()
    return [str(p).split("campaigns/")[-1] for p in exc.value.problems]


def test_a_billion_laughs_is_refused_in_under_a_second_at_its_alias(campaigns):
    append(campaigns, BILLION_LAUGHS)
    started = time.monotonic()
    problems = problems_of(campaigns)
    assert time.monotonic() - started < 1
    assert problems == ["test.yaml:28:8: alias *d takes what aliases add to this file past "
                        "10,000 values (its alias budget): an anchor (&) may be repeated (*) to "
                        "share a block, not to multiply it"]


def test_a_50_mb_campaign_file_is_refused_in_under_a_second(campaigns):
    append(campaigns, "# " + "x" * 50_000_000 + "\n")
    size = (campaigns.root / "test.yaml").stat().st_size
    started = time.monotonic()
    problems = problems_of(campaigns)
    assert time.monotonic() - started < 1
    assert problems == [f"test.yaml: is {size:,} bytes; a campaign file holds at most 1,048,576 "
                        "bytes (1 MiB), and a campaign needs a few KB: is this the right file? "
                        "Shared fields go in _defaults.yaml"]


def test_anchors_may_share_a_block_not_multiply_it(campaigns):
    """Sharing a block is what anchors are for: a campaign whose stage and follow-up share a
    condition, and whose messages share a description, loads as if written out; the same
    file with a billion laughs at its end is refused at its alias."""
    text = campaigns.base().replace(
        'dormant: {inactive_days: ">= 21"}', 'dormant: &long {inactive_days: ">= 21"}').replace(
        "  relance:\n    on_enter: at_risk\n",
        "  relance:\n    description: &nudge A gentle nudge.\n    on_enter: at_risk\n").replace(
        "  remobilisation:\n    on_enter: dormant\n",
        "  remobilisation:\n    description: *nudge\n    on_enter: dormant\n") + (
        "follow_up:\n  call:\n    <<: *long\n    stage: dormant\n    reason: Call them.\n")
    campaigns.write(text)
    loaded = campaigns.load()
    messages = loaded.campaign.messages
    assert messages["relance"].description == messages["remobilisation"].description == (
        "A gentle nudge.")
    assert loaded.campaign.follow_up["call"].stage == ["dormant"]
    assert loaded.campaign.follow_up["call"].inactive_days is not None
    with open(campaigns.root / "test.yaml", "a", encoding="utf-8") as f:
        f.write(BILLION_LAUGHS)
    started = time.monotonic()
    problems = problems_of(campaigns)
    assert time.monotonic() - started < 1
    assert [p.split(": ")[0] for p in problems] == ["test.yaml:35:8"]


def test_validate_says_so_and_exits_non_zero(campaigns):
    append(campaigns, BILLION_LAUGHS)
    from relance.cli.main import app
    result = CliRunner().invoke(app, ["validate", "--campaigns", str(campaigns.root)],
                                env={"COLUMNS": "300"})
    assert result.exit_code == 1
    assert "test.yaml:28:8: alias *d takes what aliases add" in result.output


@pytest.mark.parametrize("added,expected", [
    ("loop: &a [1, *a]\n",
     "test.yaml:24:14: alias *a is inside the block it names (&a): a loop"),
    ("deep: " + "[" * 5000 + "]" * 5000 + "\n",
     "test.yaml:24:70: nested more than 64 levels deep"),
    ("note: ok\x00\n",
     "test.yaml:24:9: not valid YAML: character '\\x00' (#x0000) is not allowed in YAML text: "
     "remove it"),
    ("note: 2026-13-45\n",
     "test.yaml:24:7: not valid YAML: '2026-13-45' cannot be read as a date (month must be in "
     "1..12); write it in quotes to keep it as text"),
    ("note: " + "9" * 5000 + "\n",
     "test.yaml:24:7: not valid YAML: '99999999999999999999'... (5,000 characters) cannot be "
     "read as a number; write it in quotes to keep it as text"),
], ids=["alias loop", "deep nesting", "control character", "no such date", "huge number"])
def test_what_yaml_cannot_build_is_a_located_problem(campaigns, added, expected):
    append(campaigns, added)
    problems = problems_of(campaigns)
    assert any(p.startswith(expected) for p in problems), problems


@pytest.mark.parametrize("content,expected", [
    ("Bonjour \xff".encode("latin-1"), "body.txt: is not UTF-8 text (invalid start byte): save "
                                       "it as UTF-8"),
    (b"x" * (1 << 21), "body.txt: is 2,097,152 bytes; a template file holds at most 1,048,576 "
                       "(1 MiB)"),
], ids=["latin-1", "2 MiB"])
def test_a_template_file_that_is_not_text_or_too_large_is_a_located_problem(campaigns, content,
                                                                          expected):
    campaigns.write(campaigns.base())
    (campaigns.root / "test" / "relance" / "fr" / "body.txt").write_bytes(content)
    problems = problems_of(campaigns)
    assert any(p.startswith(f"test/relance/fr/{expected}") for p in problems), problems
