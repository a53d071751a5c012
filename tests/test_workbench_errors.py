"""The catalogue of mistakes a designer makes, with the exact message each one gets: file,
line and column, the field's path, what was expected and an example of a right value.

Each entry changes the base test campaign (tests/conftest.py, plus a `tests:` block) and
lists every problem the loader reports, in order. `test_campaign_format.py` holds more.
"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from relance.cli.main import app
from relance.campaign.problems import CampaignError

TESTS = """
tests:
  as_of: 2026-11-23T09:00
  cases:
    - name: silent for a week
      given: {inactive_days: 8, progress: 10%}
      expect: {stage: at_risk, message: relance}
"""

CATALOGUE = [
    ('misspelt top-level field',
     [('description: A test campaign.', 'descripton: A test campaign.')],
     ['test.yaml:1:1: description: required field is missing; for example `description: Five-month English path; at most one email a week.`', 'test.yaml:2:1: descripton: unknown field; did you mean `description`? expected one of: id, description, audience, locale, locales, timezone, sender, reply_to, channel, sendgrid, smtp, moodle, canvas, team, control_group, stages, messages, follow_up, limits, schedule, digest, replies, tests']),
    ('sender missing',
     [('sender: {name: "Julie, équipe formation", email: formation@example.org}\n', '')],
     ["test.yaml:1:1: sender: required field is missing; for example `sender: {name: 'Julie, équipe formation', email: formation@example.org}`"]),
    ('stages empty',
     [('stages:\n  completed: {completed: true}\n  dormant: {inactive_days: ">= 21"}\n  at_risk: {inactive_days: ">= 7"}\n  active: {}\n', 'stages: {}\n')],
     ["test.yaml:7:9: stages: dictionary should have at least 1 item after validation, not 0, got {}; for example `stages: {dormant: {inactive_days: '>= 21'}, at_risk: {inactive_days: '>= 7'}, active: {}}`"]),
    ('stage name with a capital',
     [('  dormant: {inactive_days', '  Dormant: {inactive_days')],
     ["test.yaml:9:3: stages.Dormant: use lower-case letters, digits, '-' and '_', for example 'dormant'"]),
    ('boolean measure given a comparison',
     [('completed: {completed: true}', 'completed: {completed: ">= 1"}')],
     ["test.yaml:8:26: stages.completed.completed: input should be a valid boolean, unable to interpret input, got '>= 1'; for example `completed: true`"]),
    ('between bounds reversed',
     [('at_risk: {inactive_days: ">= 7"}', 'at_risk: {inactive_days: "between 20 and 7"}')],
     ["test.yaml:10:28: stages.at_risk.inactive_days: 'between 20 and 7': the first bound must be the smaller; for example `inactive_days: '>= 7'`"]),
    ('follow-up without reason',
     [('limits:\n', 'follow_up:\n  call: {stage: dormant}\nlimits:\n')],
     ["test.yaml:23:3: follow_up.call.reason: required field is missing; for example `reason: 'Silent for three weeks: call them.'`"]),
    ('follow-up on unknown stage',
     [('limits:\n', 'follow_up:\n  call: {stage: dormant_, reason: call them}\nlimits:\n')],
     ["test.yaml:23:10: follow_up.call.stage[0]: unknown stage 'dormant_'; the stages are: completed, dormant, at_risk, active"]),
    ('message without trigger',
     [('    on_enter: at_risk\n', '    description: a nudge\n')],
     ['test.yaml:15:3: messages.relance: a message needs exactly one trigger among on_enter, while_in, every, on_milestone, on_activity; found none, for example `on_enter: at_risk`']),
    ('to without every',
     [('    on_enter: at_risk\n', '    on_enter: at_risk\n    to: [active]\n')],
     ['test.yaml:15:3: messages.relance: `to` goes with `every` (the weekly rhythm); for other triggers the stage is part of the trigger: remove `to`, or write for example `every: monday 08:30` and `to: [active]`']),
    ('unknown recap section',
     [('    to: [active, at_risk]\n', '    to: [active, at_risk]\n    include: [next_week]\n')],
     ["test.yaml:22:15: messages.recap.include[0]: input should be 'last_week', 'colleagues_contributions', 'open_activities' or 'this_week', got 'next_week'; for example `include: [last_week, this_week]`"]),
    ('include without weekly',
     [('    on_enter: at_risk\n', '    on_enter: at_risk\n    include: [last_week]\n')],
     ['test.yaml:17:14: messages.relance.include: recap sections go with a weekly message (`every` or `while_in`), for example `every: monday 08:30`']),
    ('bad send day',
     [('  per_learner_per_week: 2\n', '  per_learner_per_week: 2\n  send_days: [monday, fridy]\n')],
     ["test.yaml:24:23: limits.send_days[1]: expected a weekday such as 'monday' or 'mon', got 'fridy'"]),
    ('cap out of range',
     [('  per_learner_per_week: 2\n', '  per_learner_per_week: 0\n')],
     ['test.yaml:23:25: limits.per_learner_per_week: input should be greater than or equal to 1, got 0; for example `per_learner_per_week: 2`']),
    ('locale not among locales',
     [('control_group: 0%', 'control_group: 0%\nlocale: de')],
     ["test.yaml:7:9: locale: 'de' must be one of `locales` (fr, en), for example `locale: fr`"]),
    ('unknown locale',
     [('control_group: 0%', 'control_group: 0%\nlocales: [fr, xx-YY-ZZ]')],
     ["test.yaml:7:15: locales[1]: expected a locale such as 'fr' or 'en', got 'xx-YY-ZZ'"]),
    ('quiet hours start equals end',
     [('  per_learner_per_week: 2\n', '  per_learner_per_week: 2\n  quiet_hours: "08:00-08:00"\n')],
     ["test.yaml:24:16: limits.quiet_hours: quiet hours '08:00-08:00' start and end at the same time; for example `quiet_hours: '20:00-08:00'`"]),
    ('id not a slug',
     [('id: test', 'id: Test Campaign')],
     ["test.yaml:1:5: id: string should match pattern '^[a-z0-9][a-z0-9-]*$', got 'Test Campaign'; for example `id: parcours-anglais`"]),
    ('header injection in sender name',
     [('name: "Julie, équipe formation"', 'name: "Julie\\nBcc: x@example.org"')],
     ["test.yaml:5:16: sender.name: must be a single line (it goes into an e-mail header); for example `name: 'Julie, équipe formation'`"]),
    ('value with colon not quoted',
     [('  per_learner_per_week: 2\n', 'follow_up:\n  call:\n    stage: dormant\n    reason: Silent: call them\n')],
     ['test.yaml:26:19: not valid YAML: mapping values are not allowed here; a value containing \': \' must be quoted, for example `reason: "Silent: call them"`']),
    ('tab indentation',
     [('  per_learner_per_week: 2\n', '\tper_learner_per_week: 2\n')],
     ["test.yaml:23:1: not valid YAML: found character '\\t' that cannot start any token; indent with spaces, not tabs"]),
    ('tests: unknown message',
     [('message: relance}', 'message: relanse}')],
     ["test.yaml:30:41: tests.cases[0].expect.message: unknown message 'relanse'; did you mean 'relance'? the campaign's are: bravo, relance, remobilisation, recap (or none)"]),
    ('tests: reason without none',
     [('message: relance}', 'message: relance, reason: holdout}')],
     ['test.yaml:30:15: tests.cases[0].expect: `reason` goes with `message: none` (why no message is sent), for example {message: none, reason: holdout}']),
    ('tests: inactive beyond enrolment',
     [('given: {inactive_days: 8, progress: 10%}', 'given: {inactive_days: 40, progress: 10%}')],
     ['test.yaml:29:14: tests.cases[0].given: inactive_days (40) cannot exceed enrolled_days (28): there was no activity before enrolment; for example `given: {inactive_days: 8, progress: 30%}`']),
    ('tests: not started with progress',
     [('given: {inactive_days: 8, progress: 10%}', 'given: {started: false, progress: 10%}')],
     ['test.yaml:29:14: tests.cases[0].given: a learner who has not started has no progress, activities or completion: remove `started: false` or those fields; for example `given: {inactive_days: 8, progress: 30%}`']),
    ('tests: no expectation',
     [('expect: {stage: at_risk, message: relance}', 'expect: {}')],
     ['test.yaml:30:15: tests.cases[0].expect: expect at least one of stage, message, follow_up, for example {stage: at_risk, message: relance}']),
    ('tests: name missing',
     [('    - name: silent for a week\n      given', '    - given')],
     ['test.yaml:28:7: tests.cases[0].name: required field is missing; for example `name: silent for a week gets the relance`']),
    ('tests: unknown given field',
     [('given: {inactive_days: 8, progress: 10%}', 'given: {inactive: 8, progress: 10%}')],
     ['test.yaml:29:15: tests.cases[0].given.inactive: unknown field; did you mean `inactive_days`? expected one of: id, first_name, locale, timezone, email, course, cohort, enrolled_days, enrolled_at, started, inactive_days, last_active_at, progress, stalled_days, overdue, activities_done, completed, course_week, days_left, unsubscribed, control_group']),
    ('tests: bad timezone',
     [('given: {inactive_days: 8, progress: 10%}', 'given: {inactive_days: 8, timezone: Paris}')],
     ["test.yaml:29:43: tests.cases[0].given.timezone: expected an IANA timezone such as 'Europe/Paris', got 'Paris'"]),
    ('weekly message outside the send window',
     [('every: monday 08:30', 'every: sunday 21:00'), ('  per_learner_per_week: 2\n', '  per_learner_per_week: 2\n  quiet_hours: "20:00-08:00"\n')],
     ['test.yaml:20:12: messages.recap.every: sunday 21:00 is outside the send window (send_days, quiet_hours) and the next moment mail may go out is in the following week, so this weekly message would never be sent: choose a day and time inside the window, for example `every: monday 08:00`']),
]


def _write(campaigns, changes) -> None:
    text = campaigns.base() + TESTS
    for old, new in changes:
        assert old in text, old
        text = text.replace(old, new, 1)
    campaigns.write(text, name="test", templates=False)


@pytest.mark.parametrize("name,changes,expected", CATALOGUE, ids=[c[0] for c in CATALOGUE])
def test_mistake_gets_its_exact_message(campaigns, name, changes, expected):
    _write(campaigns, changes)
    with pytest.raises(CampaignError) as exc:
        campaigns.load()
    assert [str(p).split("campaigns/")[-1] for p in exc.value.problems] == expected


def test_the_catalogue_is_large_and_every_message_is_located_to_the_column():
    assert len(CATALOGUE) >= 20
    for _name, _changes, messages in CATALOGUE:
        for message in messages:
            where = message.split(": ")[0]
            assert where.count(":") == 2, message          # test.yaml:LINE:COLUMN


def test_validate_prints_the_catalogue_message(campaigns):
    name, changes, expected = next(c for c in CATALOGUE if c[0] == "tests: unknown message")
    _write(campaigns, changes)
    result = CliRunner().invoke(app, ["validate", "--campaigns", str(campaigns.root)],
                                env={"COLUMNS": "300"})
    assert result.exit_code == 1
    assert f"error {campaigns.root}/{expected[0]}" in result.output
