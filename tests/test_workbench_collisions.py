"""Campaigns that would write to the same learner in the same week are flagged by
`relance validate` before any run: from the files alone, with counts from the warehouse
when there is one, and with the ways out (cap, priority by exclusion, audiences apart)."""

from __future__ import annotations

import re

import warehouse
from tests import test_workbench_guide as guide
from tests.test_workbench_guide import relance

# the guide's fixtures: a small demo warehouse and a project folder around it
small_demo, project = guide.small_demo, guide.project

NEW = "campaigns/anglais-relance.yaml"


def _new_campaign_on_the_demo_course(project):
    """docs/first-campaign.md's step 1: a second campaign on parcours-anglais' course."""
    result = relance("new", "anglais-relance", "--from", "weekly-relance", "--course", "anglais-b2")
    assert result.exit_code == 0, result.output
    return project / NEW


def _warnings(output: str) -> list[str]:
    return [l for l in output.splitlines() if l.startswith("warning ")]


def _counts(output: str) -> tuple[int, int]:
    m = re.search(r"as of 2026-11-16 08:00 UTC: (\d+) learners? would get messages from both "
                  r"in that week, (\d+) of them more than the weekly cap \((\d)\) allows", output)
    assert m, output
    return int(m[1]), int(m[2])


def test_a_second_campaign_on_the_same_course_is_flagged_with_counts(project):
    path = _new_campaign_on_the_demo_course(project)
    line = next(i for i, l in enumerate(path.read_text().splitlines(), 1) if l == "audience:")
    result = relance("validate", "anglais-relance")
    assert result.exit_code == 0, result.output
    (warning,) = _warnings(result.output)
    assert warning.startswith(
        f"warning {NEW}:{line}: audience: anglais-relance (bravo, remobilisation, relance, "
        "recap) and parcours-anglais (felicitations, bravo, remobilisation, relance, "
        "recap-hebdo) can both write to the same learner in the same week (course anglais-b2 "
        "and cohort 2026-09), and the weekly cap (2 per learner) lets both through.")
    for fix in ("`per_learner_per_week: 1` under `limits:` in both files or in _defaults.yaml",
                "`exclude: [parcours-anglais]` under `audience:` here"):
        assert fix in warning
    both, over = _counts(result.output)
    con = warehouse.connect(project / "relance.duckdb", read_only=True)
    learners = con.execute("select count(*) from enrolments where course_id = 'anglais-b2'"
                           ).fetchall()[0][0]
    # nothing was written: counting evaluates in a transaction rolled back
    assert con.execute("select count(*) from messages").fetchall()[0][0] == 0
    assert con.execute("select count(*) from decisions").fetchall()[0][0] == 0
    con.close()
    assert 0 < both < learners and over == 0
    assert "ok campaigns/anglais-relance.yaml" in result.output
    # --strict turns the warning into a failure (for CI)
    result = relance("validate", "anglais-relance", "--strict")
    assert result.exit_code == 1 and "1 warning and --strict" in result.output
    # a cap of one on the new campaign alone: those learners would get more than it allows
    text = path.read_text()
    path.write_text(text.replace("control_group: 10%", "control_group: 10%\nlimits:\n"
                                 "  per_learner_per_week: 1"), encoding="utf-8")
    result = relance("validate", "anglais-relance")
    assert "the weekly cap (1 per learner) lets both through" in result.output
    assert _counts(result.output) == (both, both)


def test_each_way_out_the_warning_gives_silences_it(project):
    path = _new_campaign_on_the_demo_course(project)
    text = path.read_text()
    # a priority: the new campaign leaves parcours-anglais' learners to it
    path.write_text(text.replace("  course: anglais-b2\n",
                                 "  course: anglais-b2\n  exclude: [parcours-anglais]\n"))
    result = relance("validate")
    assert result.exit_code == 0 and not _warnings(result.output), result.output
    # a cap of one message a week for both
    path.write_text(text)
    defaults = project / "campaigns" / "_defaults.yaml"
    defaults.write_text(defaults.read_text().replace("per_learner_per_week: 2",
                                                     "per_learner_per_week: 1"))
    result = relance("validate", "anglais-relance")
    assert result.exit_code == 0 and not _warnings(result.output), result.output


def test_disjoint_audiences_print_no_warning(project):
    # the shipped campaigns share anglais-b2, but onboarding writes only to those who have
    # not started and the others only to those who have
    result = relance("validate")
    assert result.exit_code == 0 and not _warnings(result.output), result.output
    path = _new_campaign_on_the_demo_course(project)
    path.write_text(path.read_text().replace("  course: anglais-b2\n",
                                             "  course: anglais-b2\n  cohort: \"2027-01\"\n"))
    result = relance("validate", "--strict")
    assert result.exit_code == 0 and not _warnings(result.output), result.output


def test_without_a_warehouse_the_warning_comes_from_the_files_alone(project):
    _new_campaign_on_the_demo_course(project)
    (project / "relance.duckdb").unlink()
    result = relance("validate", "anglais-relance")
    assert result.exit_code == 0, result.output
    assert len(_warnings(result.output)) == 1 and "would get messages" not in result.output


def test_a_warehouse_an_older_relance_wrote_gets_its_counts_once_migrated(project):
    """`relance validate` opens the warehouse read-only, so does not migrate it: on a file
    an older version wrote (here: before migration 0090's views of the events), it says the
    counts wait for the next command that writes, instead of a missing view's error."""
    _new_campaign_on_the_demo_course(project)
    con = warehouse.connect(project / "relance.duckdb")
    con.execute("drop view progress_reports; drop view completion_events; "
                "delete from schema_migrations where version = 90")
    con.close()
    result = relance("validate", "anglais-relance")
    assert result.exit_code == 0, result.output
    assert len(_warnings(result.output)) == 1
    text = " ".join(result.output.split())
    assert ("it predates this version's schema (1 migration to apply, 0090_event_scan_views "
            "first); the next command that writes to it (`relance sync`, `run` or `deliver`) "
            "applies them") in text
    assert "does not exist" not in text
    warehouse.connect(project / "relance.duckdb").close()          # a command that writes
    both, _ = _counts(relance("validate", "anglais-relance").output)
    assert both > 0
