"""Bad campaign files: each mistake is reported with file, line and field, and nothing is sent."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from relance.cli.main import app
from relance.campaign.loader import load_all
from relance.campaign.problems import CampaignError

MISTAKES = [
    ("unknown key",
     "  per_learner_per_week: 2\n", "  per_learner_per_week: 2\n  quiet_hour: \"20:00-08:00\"\n",
     "test.yaml:24:3: limits.quiet_hour: unknown field; did you mean `quiet_hours`? expected one "
     "of: per_learner_per_week, per_campaign_per_week, quiet_hours, send_days, "
     "quiet_after_contact_days"),
    ("unknown measure in a stage",
     'at_risk: {inactive_days: ">= 7"}', 'at_risk: {inactiv_days: ">= 7"}',
     "test.yaml:10:13: stages.at_risk.inactiv_days: unknown field; did you mean `inactive_days`?"),
    ("wrong type",
     "  per_learner_per_week: 2\n", "  per_learner_per_week: often\n",
     "test.yaml:23:25: limits.per_learner_per_week: input should be a valid integer, unable to parse "
     "string as an integer, got 'often'"),
    ("message naming an unknown stage",
     "    on_enter: at_risk\n", "    on_enter: at_rsik\n",
     "test.yaml:16:15: messages.relance.on_enter: unknown stage 'at_rsik'; the stages are: "
     "completed, dormant, at_risk, active"),
    ("recap to an unknown stage",
     "    to: [active, at_risk]", "    to: [active, atrisk]",
     "test.yaml:21:18: messages.recap.to[1]: unknown stage 'atrisk'"),
    ("bad weekday",
     "every: monday 08:30", "every: mondy 08:30",
     "test.yaml:20:12: messages.recap.every: expected a weekday such as 'monday' or 'mon', got 'mondy'"),
    ("bad weekday and hour",
     "every: monday 08:30", "every: mondy 25:30",
     "test.yaml:20:12: messages.recap.every: expected a weekday such as 'monday' or 'mon', got "
     "'mondy'; expected a time of day 'HH:MM' from 00:00 to 23:59, got '25:30'"),
    ("bad hour",
     "every: monday 08:30", "every: monday 25:30",
     "test.yaml:20:12: messages.recap.every: expected a time of day 'HH:MM' from 00:00 to 23:59, got '25:30'"),
    ("holdout share above 50%",
     "control_group: 0%", "control_group: 60%",
     "test.yaml:6:16: control_group: a control group share must be between 0% and 50%, got '60%'"),
    ("holdout share negative",
     "control_group: 0%", "control_group: -5%",
     "test.yaml:6:16: control_group: expected a percentage such as '10%', got '-5%'"),
    ("unreadable comparison",
     'at_risk: {inactive_days: ">= 7"}', 'at_risk: {inactive_days: "seven"}',
     "test.yaml:10:28: stages.at_risk.inactive_days: expected a comparison such as \">= 7\""),
    ("number too large for a measure",
     'at_risk: {inactive_days: ">= 7"}', 'at_risk: {inactive_days: ">= ' + "9" * 400 + '"}',
     "test.yaml:10:28: stages.at_risk.inactive_days: 99999999999999999999... is too large for a "
     "measure: at most 1,000,000,000"),
    ("percent on a measure in days",
     'at_risk: {inactive_days: ">= 7"}', 'at_risk: {inactive_days: ">= 7%"}',
     "test.yaml:10:28: stages.at_risk.inactive_days: '%' only applies to progress"),
    ("two triggers",
     "    on_enter: at_risk\n", "    on_enter: at_risk\n    while_in: dormant\n",
     "test.yaml:15:3: messages.relance: a message needs exactly one trigger among on_enter, "
     "while_in, every, on_milestone, on_activity; found on_enter, while_in"),
    ("bad quiet hours",
     "  per_learner_per_week: 2\n", "  per_learner_per_week: 2\n  quiet_hours: 8pm\n",
     "test.yaml:24:16: limits.quiet_hours: expected \"HH:MM-HH:MM\", got '8pm'"),
    ("bad sender address",
     "email: formation@example.org", "email: formation-at-example",
     "test.yaml:5:50: sender.email: expected an e-mail address such as 'team@example.org', got "
     "'formation-at-example'"),
    ("sender address no channel can send from",
     "email: formation@example.org", "email: formation-équipe@example.org",
     "test.yaml:5:50: sender.email: expected an e-mail address such as 'team@example.org', got "
     "'formation-équipe@example.org' (not ASCII: a non-ASCII name before the @ needs SMTPUTF8"),
    ("unknown timezone",
     "control_group: 0%", "control_group: 0%\ntimezone: Europe/Pariss",
     "test.yaml:7:11: timezone: expected an IANA timezone such as 'Europe/Paris', got 'Europe/Pariss'"),
    ("milestone above 100%",
     "on_milestone: [25%, 50%, 75%]", "on_milestone: [25%, 150%]",
     "test.yaml:14:25: messages.bravo.on_milestone[1]: a progress milestone must be above 0% and at "
     "most 100%, got '150%'"),
    ("catch-all stage not last",
     "  active: {}\n", "  active: {}\n  late: {inactive_days: \">= 60\"}\n",
     "test.yaml:11:11: stages.active: stage 'active' has no condition, so the stages after it can "
     "never match: move it last"),
    ("id differs from the file name",
     "id: test", "id: other-name",
     "test.yaml:1:5: id: 'other-name' must equal the file name ('test'): rename the file or the id"),
    ("key twice",
     "  per_learner_per_week: 2\n", "  per_learner_per_week: 2\n  per_learner_per_week: 3\n",
     "test.yaml:24:3: limits.per_learner_per_week: appears twice; keep one"),
    ("YAML syntax",
     "  per_learner_per_week: 2\n", "  per_learner_per_week: [2\n",
     "test.yaml:24:1: not valid YAML"),
]


@pytest.mark.parametrize("name,old,new,expected", MISTAKES, ids=[m[0] for m in MISTAKES])
def test_mistake_is_reported_with_file_line_and_field(campaigns, name, old, new, expected):
    text = campaigns.base()
    assert old in text
    campaigns.write(text.replace(old, new), name="test")
    with pytest.raises(CampaignError) as exc:
        campaigns.load()
    messages = [str(p).split("campaigns/")[-1] for p in exc.value.problems]
    assert any(m.startswith(expected) for m in messages), messages


def test_missing_template_names_the_file_to_create(campaigns):
    campaigns.write(campaigns.base())
    (campaigns.root / "test" / "recap" / "fr" / "subject.txt").unlink()
    with pytest.raises(CampaignError) as exc:
        campaigns.load()
    (problem,) = exc.value.problems
    assert problem.line == 19 and problem.field == "messages.recap"
    assert "test/recap/fr/subject.txt is missing: create it" in problem.message


@pytest.mark.parametrize("body,expected", [
    ("Bonjour {{ prenom }}", "body.txt:1: undefined variable 'prenom'; available: as_of, campaign, "
                             "course, learner, locale, progress, sender, stage, unsubscribe_url"),
    ("Bonjour\n{{ learner.frist_name }}", "body.txt:2: 'learner' has no attribute 'frist_name'; "
                                          "it has: id, first_name, last_name, name, email"),
    ("{% if progress.overdue > 99 %}{{ course.titel }}{% endif %}",
     "body.txt:1: 'course' has no attribute 'titel'"),
    ("{{ learner.nickname | default('x') }}", "body.txt:1: 'learner' has no attribute 'nickname'"),
    ("Bonjour {{ unknown | date }}", "body.txt:1: undefined variable 'unknown'"),
    ("{{ this_week }}", "body.txt:1: undefined variable 'this_week'; add `include: [this_week]` "
                        "to message 'relance'"),
    ("{{ as_of | date('EEEE d MMMM y') }} {{ course.ends_on | datetime }}", None),
    ("{% for x in %}", "body.txt:1: template syntax:"),
    ("{{ milestone }}", "body.txt:1: undefined variable 'milestone'"),
    ("{{ " + "9" * 5000 + " }}", "body.txt: template syntax: Exceeds the limit (4300 digits) for "
                               "integer string conversion: value has 5000 digits"),
])
def test_template_mistakes_are_reported_with_their_line(campaigns, body, expected):
    campaigns.write(campaigns.base(), template_overrides={"relance/en/body.txt": body})
    if expected is None:                      # a correct template, for contrast
        campaigns.load()
        return
    with pytest.raises(CampaignError) as exc:
        campaigns.load()
    messages = [str(p) for p in exc.value.problems]
    assert any(f"test/relance/en/{expected}" in m for m in messages), messages


@pytest.mark.parametrize("condition,expected", [
    ("langue = 'fr'", "unknown column 'langue'; the audience has: learner_id, course_id, cohort"),
    ("read_text('/etc/hostname') is not null", "function 'read_text' is not allowed in an audience condition"),
    ("learner_id in (select learner_id from learners)", "subquery is not allowed"),
    ("cohort = ", "not a valid SQL condition"),
])
def test_audience_condition_is_checked_before_anything_runs(campaigns, condition, expected):
    campaigns.write(campaigns.base().replace("  course: c1\n", f"  course: c1\n  where: \"{condition}\"\n"))
    with pytest.raises(CampaignError) as exc:
        campaigns.load()
    (problem,) = exc.value.problems
    assert (problem.line, problem.field) == (5, "audience.where")
    assert expected in problem.message


def test_audience_condition_selects_learners(campaigns, wh, cohort):
    from relance import engine
    campaigns.write(campaigns.base().replace("  course: c1\n", "  course: c1\n  where: \"locale like 'en%'\"\n"))
    english = cohort.learner(locale="en-GB")
    cohort.learner(locale="fr")
    engine.evaluate(wh, campaigns.load())
    assert [r[0] for r in wh.execute("select learner_id from eval_state").fetchall()] == [english]


def test_a_defaults_mistake_points_at_the_defaults_file(campaigns):
    (campaigns.root / "_defaults.yaml").write_text(
        "locale: fr\nlimits:\n  quiet_hours: 8pm\n", encoding="utf-8")
    campaigns.write(campaigns.base())
    with pytest.raises(CampaignError) as exc:
        campaigns.load()
    (problem,) = exc.value.problems
    assert problem.path.endswith("_defaults.yaml") and problem.line == 3
    assert problem.field == "limits.quiet_hours"


def test_all_problems_of_all_files_are_listed_together(campaigns):
    campaigns.write(campaigns.base("one").replace("control_group: 0%", "control_group: 60%"))
    campaigns.write(campaigns.base("two").replace("every: monday 08:30", "every: someday 08:30"))
    with pytest.raises(CampaignError) as exc:
        load_all(campaigns.root)
    assert [p.path.split("/")[-1] for p in exc.value.problems] == ["one.yaml", "two.yaml"]


def test_validate_and_run_exit_non_zero_and_send_nothing(campaigns, tmp_path):
    campaigns.write(campaigns.base().replace("    on_enter: at_risk\n", "    on_enter: at_rsik\n"))
    runner = CliRunner()
    result = runner.invoke(app, ["validate", "--campaigns", str(campaigns.root)])
    assert result.exit_code == 1
    assert "test.yaml:16:15: messages.relance.on_enter: unknown stage 'at_rsik'" in result.output
    assert "nothing was evaluated or sent" in result.output
    wh = tmp_path / "wh.duckdb"
    import warehouse
    warehouse.connect(wh).close()
    outbox = tmp_path / "outbox"
    result = runner.invoke(app, ["run", "--campaigns", str(campaigns.root), "--warehouse",
                                 str(wh), "--outbox", str(outbox)])
    assert result.exit_code == 1
    assert "unknown stage 'at_rsik'" in result.output
    assert not outbox.exists()
    con = warehouse.connect(wh)
    assert con.execute("select count(*) from campaign_runs").fetchall()[0][0] == 0
    assert con.execute("select count(*) from messages").fetchall()[0][0] == 0


def test_sample_campaigns_are_valid():
    from tests.conftest import REPO
    loaded = load_all(REPO / "campaigns")
    assert {c.id for c in loaded} == {"parcours-anglais", "mooc-climat", "onboarding"}
    for c in loaded:
        assert set(c.campaign.locales) == {"fr", "en"}


def test_committed_json_schema_matches_the_models():
    import json

    from relance.campaign.schema import SCHEMA_PATH, campaign_schema
    assert json.loads(SCHEMA_PATH.read_text(encoding="utf-8")) == campaign_schema(), (
        "relance/campaign/campaign.schema.json is stale: run "
        "`relance schema -o relance/campaign/campaign.schema.json`")


def test_a_course_or_activity_missing_from_the_warehouse_stops_the_run(campaigns, wh, cohort):
    from relance import engine
    campaigns.write(campaigns.base().replace("  course: c1\n", "  course: c9\n"))
    with pytest.raises(engine.EvaluationError) as exc:
        engine.evaluate(wh, campaigns.load())
    assert "test.yaml:4: audience.course: course 'c9' is not in the warehouse; its courses are: c1" in str(exc.value)
    campaigns.write(campaigns.base().replace("  bravo:\n    on_milestone: [25%, 50%, 75%]\n",
                                             "  quiz:\n    on_activity: a2x\n"))
    with pytest.raises(engine.EvaluationError) as exc:
        engine.evaluate(wh, campaigns.load())
    assert "messages.quiz.on_activity: activity 'a2x' is not in the calendar of c1" in str(exc.value)


RUN_REFUSES = [
    ("unknown key", "  per_learner_per_week: 2\n", "  per_learner_per_week: 2\n  quiet_hour: x\n",
     "limits.quiet_hour: unknown field"),
    ("wrong type", "  per_learner_per_week: 2\n", "  per_learner_per_week: often\n",
     "limits.per_learner_per_week: input should be a valid integer"),
    ("unknown stage", "    on_enter: at_risk\n", "    on_enter: at_rsik\n", "unknown stage 'at_rsik'"),
    ("bad weekday", "every: monday 08:30", "every: mondy 08:30", "expected a weekday"),
    ("bad hour", "every: monday 08:30", "every: monday 25:30", "expected a time of day"),
    ("holdout share", "control_group: 0%", "control_group: 60%", "between 0% and 50%"),
]


@pytest.mark.parametrize("name,old,new,expected", RUN_REFUSES, ids=[r[0] for r in RUN_REFUSES])
def test_run_refuses_a_bad_campaign_and_sends_nothing(campaigns, tmp_path, name, old, new, expected):
    import warehouse
    campaigns.write(campaigns.base().replace(old, new))
    db = tmp_path / "wh.duckdb"
    warehouse.connect(db).close()
    result = CliRunner().invoke(app, ["run", "test", "--campaigns", str(campaigns.root),
                                      "--warehouse", str(db), "--outbox", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "test.yaml:" in result.output and expected in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("body,expected", [
    (None, "test/recap/fr/subject.txt is missing"),
    ("Bonjour {{ prenom }}", "undefined variable 'prenom'"),
])
def test_run_refuses_missing_or_broken_templates(campaigns, tmp_path, body, expected):
    import warehouse
    campaigns.write(campaigns.base(), template_overrides={"relance/fr/body.txt": body} if body else None)
    if body is None:
        (campaigns.root / "test" / "recap" / "fr" / "subject.txt").unlink()
    db = tmp_path / "wh.duckdb"
    warehouse.connect(db).close()
    result = CliRunner().invoke(app, ["run", "--campaigns", str(campaigns.root),
                                      "--warehouse", str(db), "--outbox", str(tmp_path / "out")])
    assert result.exit_code == 1 and expected in result.output
    assert not (tmp_path / "out").exists()
