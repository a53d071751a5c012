"""Posts to the team's Slack or Teams channel: the week in numbers and the follow-up list,
through a local incoming-webhook server; 429 waits what it asks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from datetime import timedelta

import pytest

from relance.team import notify
from relance.channels.webhook import WebhookPoster
from relance.channels.outbox import OutboxChannel
from relance.runs.steps import run_campaign
from tests.conftest import MONDAY, REPO


@pytest.fixture(scope="module")
def hook():
    proc = subprocess.Popen([sys.executable, "-m", "tests.fakes.webhook_server"], cwd=REPO,
                            stdout=subprocess.PIPE, text=True, start_new_session=True)
    url = f"http://127.0.0.1:{int(proc.stdout.readline().split()[-1])}"
    yield url
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=10)
    proc.stdout.close()


def posts(url: str) -> list:
    with urllib.request.urlopen(url + "/_control/posts") as r:
        return json.loads(r.read())


def script(url: str, *entries) -> None:
    urllib.request.urlopen(urllib.request.Request(
        url + "/_control/script", data=json.dumps(list(entries)).encode(), method="POST"))


def team_campaign(campaigns, fmt: str = "slack") -> None:
    campaigns.write(campaigns.base().replace("control_group: 0%\n", (
        "control_group: 0%\n"
        f"team: {{webhook_env: TEST_TEAM_WEBHOOK, format: {fmt}}}\n"
        "follow_up:\n  appeler: {stage: dormant, reason: \"Silencieux depuis trois semaines\"}\n")))


def test_the_follow_up_list_and_the_week_go_to_slack_after_429(wh, cohort, campaigns, hook, tmp_path, monkeypatch):
    team_campaign(campaigns)
    cohort.learner(inactive_days=1)
    silent = cohort.learner(inactive_days=30, first_name="Marty", last_name="McFly")
    loaded = campaigns.load()
    summary = run_campaign(wh, loaded, as_of=MONDAY, channel=OutboxChannel(tmp_path / "out"))
    monkeypatch.setenv("TEST_TEAM_WEBHOOK", hook + "/services/T000/B000/secret")
    sleeps: list[float] = []
    script(hook, {"status": 429, "retry_after": 4})
    before = len(posts(hook))
    report = notify.notify(wh, loaded, summary.run_id,
                         WebhookPoster(hook + "/services/T000/B000/secret", "slack",
                                       sleep=sleeps.append))
    assert len(report.posted) == 2 and report.errors == [] and sleeps == [4.0]
    week, follow = [p["body"]["text"] for p in posts(hook)[before:]]
    assert week.startswith("*test: week of 23 Nov 2026*") and "dormant 1" in week
    # plain text in mrkdwn: the address's brackets are escaped, not read as a Slack link
    assert follow.splitlines() == ["*test: 1 learners to contact*",
                                   f"Marty McFly &lt;{silent.lower()}@example.org&gt;: "
                                   "Silencieux depuis trois semaines"]


def test_teams_gets_an_adaptive_card_and_a_refusal_is_an_error(wh, cohort, campaigns, hook, tmp_path, monkeypatch):
    team_campaign(campaigns, "teams")
    cohort.learner(inactive_days=30)
    loaded = campaigns.load()
    summary = run_campaign(wh, loaded, as_of=MONDAY, channel=OutboxChannel(tmp_path / "out"))
    monkeypatch.setenv("TEST_TEAM_WEBHOOK", hook + "/teams")
    before = len(posts(hook))
    assert len(notify.notify(wh, loaded, summary.run_id).posted) == 2
    card = posts(hook)[before]["body"]["attachments"][0]
    assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert card["content"]["body"][0]["text"].startswith("test: week of")
    # a refused post is reported with the service's answer; the next one still goes
    script(hook, {"status": 400, "body": "invalid_payload"})
    report = notify.notify(wh, loaded, summary.run_id)
    assert report.posted == ["test: 1 learners to contact"]
    assert report.errors == [f"post 'test: week of 23 Nov 2026': teams webhook refused the post "
                             "(status_code=400): invalid_payload"]
    monkeypatch.delenv("TEST_TEAM_WEBHOOK")
    with pytest.raises(Exception, match="TEST_TEAM_WEBHOOK is not set"):
        notify.notify(wh, loaded, summary.run_id)


# -- the designer's weekly announcement -------------------------------------------------------

ANNOUNCEMENT = {
    "annonce/fr/subject.txt": "Semaine {{ week }} : {{ course.title }}",
    "annonce/fr/body.txt": (
        "Bonjour l'équipe ! Voici la semaine du {{ as_of | date('d MMMM') }}.\n"
        "\n"
        "{% for c in courses %}\n"
        "<{{ c.url }}|{{ c.title }}>, semaine {{ c.week }} sur {{ c.weeks }} :\n"
        "{% for a in c.this_week %}\n"
        "• {{ a.title }}, pour {{ a.due_at | weekday }}\n"
        "{% endfor %}\n"
        "{% endfor %}\n"
        "\n"
        "{{ cohort.stages.active }} actifs, {{ cohort.stages.at_risk }} en retard, "
        "{{ cohort.stages.dormant }} silencieux sur {{ cohort.learners }} ; "
        "{{ messages.sent }} messages envoyés, {{ cohort.follow_ups }} à appeler.\n"),
}


def announcing(campaigns, fmt: str = "slack", overrides: dict | None = None,
               extra: str = "") -> None:
    campaigns.write(campaigns.base().replace("control_group: 0%\n", (
        "control_group: 0%\n"
        f"team: {{webhook_env: TEST_TEAM_WEBHOOK, format: {fmt}, announcement: annonce{extra}}}\n"
        "follow_up:\n  appeler: {stage: dormant, reason: \"Silencieux depuis trois semaines\"}\n")),
        template_overrides={**ANNOUNCEMENT, **(overrides or {})})


def week_cohort(wh, cohort) -> None:
    """Three learners (active, at risk, dormant) in week 7 of a course whose title and
    activity hold what Slack would read as markup."""
    wh.execute("update courses set title = 'Anglais <B2> & co'").fetchall()
    cohort.add_activity("oral", week=7, due=MONDAY + timedelta(days=3))       # a Thursday
    cohort.add_activity("essai", week=8, due=MONDAY + timedelta(days=5))      # due this week too
    cohort.add_activity("plus-tard", week=9, due=MONDAY + timedelta(days=12))
    wh.execute("update activities set title = 'Oral <!channel>' where activity_id = 'oral'").fetchall()
    cohort.learner(inactive_days=1)
    cohort.learner(inactive_days=8)
    cohort.learner(inactive_days=30)


def test_the_designers_announcement_goes_first_with_the_weeks_numbers_and_whats_due(
        wh, cohort, campaigns, hook, tmp_path):
    announcing(campaigns)
    week_cohort(wh, cohort)
    loaded = campaigns.load()
    summary = run_campaign(wh, loaded, as_of=MONDAY, channel=OutboxChannel(tmp_path / "out"))
    sent = wh.execute("select count(*) from messages where status = 'sent'").fetchall()[0][0]
    assert sent == 3
    before = len(posts(hook))
    report = notify.notify(wh, loaded, summary.run_id, WebhookPoster(hook + "/services/T/B/x", "slack"))
    assert report.errors == []
    announcement, week, follow = [p["body"]["text"] for p in posts(hook)[before:]]
    assert week.startswith("*test: week of") and follow.startswith("*test: 1 learners")
    # the designer's words and link markup as written; the course's and the activity's titles
    # escaped, so `<!channel>` pings nobody and `<B2>` breaks no link
    assert announcement.splitlines() == [
        "*Semaine 2026-W48 : Anglais &lt;B2&gt; &amp; co*",
        "Bonjour l'équipe ! Voici la semaine du 23 novembre.",
        "",
        "<https://lms.example/c1|Anglais &lt;B2&gt; &amp; co>, semaine 7 sur 21 :",
        "• Oral &lt;!channel&gt;, pour jeudi",
        "• Activité essai, pour samedi",
        "",
        "1 actifs, 1 en retard, 1 silencieux sur 3 ; 3 messages envoyés, 1 à appeler.",
    ]


def test_teams_gets_the_announcement_as_an_adaptive_card(wh, cohort, campaigns, hook, tmp_path):
    announcing(campaigns, "teams")
    week_cohort(wh, cohort)
    loaded = campaigns.load()
    summary = run_campaign(wh, loaded, as_of=MONDAY, channel=OutboxChannel(tmp_path / "out"))
    before = len(posts(hook))
    report = notify.notify(wh, loaded, summary.run_id, WebhookPoster(hook + "/teams", "teams"))
    assert report.errors == [] and len(report.posted) == 3
    card = posts(hook)[before]["body"]["attachments"][0]["content"]
    # a JSON card: the titles travel as they are, the encoder escapes them; a blank line of
    # the template is space above the next block, never an empty block (Teams refuses those)
    assert [(b["text"], b.get("spacing")) for b in card["body"]] == [
        ("Semaine 2026-W48 : Anglais <B2> & co", None),
        ("Bonjour l'équipe ! Voici la semaine du 23 novembre.", None),
        ("<https://lms.example/c1|Anglais <B2> & co>, semaine 7 sur 21 :", "Medium"),
        ("• Oral <!channel>, pour jeudi", None),
        ("• Activité essai, pour samedi", None),
        ("1 actifs, 1 en retard, 1 silencieux sur 3 ; 3 messages envoyés, 1 à appeler.", "Medium"),
    ]


def test_an_announcement_that_fails_on_the_weeks_data_names_file_and_line_and_the_rest_goes(
        wh, cohort, campaigns, hook, tmp_path):
    # valid against the sample week (it has an activity due), broken on a week with none
    announcing(campaigns, overrides={"annonce/fr/body.txt": (
        "Cette semaine :\n"
        "\n"
        "À faire d'abord : {{ course.this_week[0].title }}\n")})
    cohort.learner(inactive_days=30)
    loaded = campaigns.load()
    summary = run_campaign(wh, loaded, as_of=MONDAY, channel=OutboxChannel(tmp_path / "out"))
    before = len(posts(hook))
    report = notify.notify(wh, loaded, summary.run_id, WebhookPoster(hook + "/services/T/B/x", "slack"))
    assert report.posted == ["test: week of 23 Nov 2026", "test: 1 learners to contact"]
    [error] = report.errors
    assert error.startswith("announcement not posted: ")
    assert error.endswith("test/annonce/fr/body.txt:3: UndefinedError: list object has no element 0")
    assert [p["body"]["text"].splitlines()[0] for p in posts(hook)[before:]] == [
        "*test: week of 23 Nov 2026*", "*test: 1 learners to contact*"]
    # the run went through; its report says what the team channel missed
    assert wh.execute("select status from campaign_runs where run_id = ?",
                      [summary.run_id]).fetchall() == [("succeeded",)]
    from flows.run_campaign import summary_markdown
    planned = {"run_id": summary.run_id, "totals": summary.totals, "stages": summary.stages,
               "outcomes": summary.outcomes}
    delivered = {"sent": summary.sent, "failed": 0, "cancelled": 0, "errors": {},
                 "cancel_reasons": {}}
    text = summary_markdown("test", MONDAY, planned, delivered, [], None, "\n".join(report.errors))
    assert "## Team channel" in text and f"- {error}" in text


def test_validate_checks_the_announcement_before_any_run(campaigns):
    from relance.campaign.problems import CampaignError
    announcing(campaigns, overrides={"annonce/fr/body.txt": "{{ cohort.stages.active }} actifs\n"
                                                            "{{ semaine }}\n"})
    with pytest.raises(CampaignError, match=r"annonce/fr/body.txt:2: undefined variable 'semaine'; "
                                            r"an announcement has: as_of, campaign, channel"):
        campaigns.load()
    # in the team's own locale: English templates are looked for, and missing
    announcing(campaigns, extra=", locale: en")
    with pytest.raises(CampaignError, match=r"test.yaml:\d+: team.announcement: template \S*"
                                            r"test/annonce/en/subject.txt is missing"):
        campaigns.load()
    announcing(campaigns, extra=", locale: de")
    with pytest.raises(CampaignError, match=r"team.locale: 'de' must be one of `locales` \(fr, en\)"):
        campaigns.load()


def test_preview_announcement_renders_the_latest_runs_post_without_posting(tmp_path, campaigns, hook):
    import warehouse
    from typer.testing import CliRunner
    from relance.cli.main import app
    from tests.conftest import Cohort
    announcing(campaigns)
    db = tmp_path / "w.duckdb"
    con = warehouse.connect(db)
    week_cohort(con, Cohort(con))
    run_campaign(con, campaigns.load(), as_of=MONDAY, channel=OutboxChannel(tmp_path / "out"))
    con.close()
    before = len(posts(hook))
    args = ["--warehouse", str(db), "--campaigns", str(campaigns.root)]
    result = CliRunner().invoke(app, ["preview-announcement", "test", *args])
    assert result.exit_code == 0, result.output
    assert "Semaine 2026-W48 : Anglais &lt;B2&gt; &amp; co" in result.output
    assert "• Oral &lt;!channel&gt;, pour jeudi" in result.output
    result = CliRunner().invoke(app, ["preview-announcement", "test", "--json", *args])
    assert json.loads(result.output)["text"].startswith("*Semaine 2026-W48")
    assert len(posts(hook)) == before
    result = CliRunner().invoke(app, ["preview-announcement", "test", "--run", "nope", *args])
    assert result.exit_code == 1 and "no run 'nope' of test" in result.output


def test_the_flows_team_step_returns_what_the_channel_missed_and_never_raises(
        tmp_path, campaigns, hook, monkeypatch):
    import warehouse
    from flows.run_campaign import notify_team
    from tests.conftest import Cohort
    announcing(campaigns, overrides={"annonce/fr/body.txt": "{{ course.this_week[0].title }}\n"})
    db = tmp_path / "w.duckdb"
    con = warehouse.connect(db)
    Cohort(con).learner(inactive_days=30)
    loaded = campaigns.load()
    run_id = run_campaign(con, loaded, as_of=MONDAY, channel=OutboxChannel(tmp_path / "out")).run_id
    con.close()
    paths = {"warehouse": str(db), "memory_limit": None}
    monkeypatch.setenv("TEST_TEAM_WEBHOOK", hook + "/services/T/B/x")
    before = len(posts(hook))
    team = notify_team.fn(loaded, run_id, paths)
    error = team["error"]
    assert error.startswith("announcement not posted: ") and "annonce/fr/body.txt:1:" in error
    assert team["posted"] == 2
    assert len(posts(hook)) == before + 2          # the week and the follow-up list went
    monkeypatch.delenv("TEST_TEAM_WEBHOOK")
    assert notify_team.fn(loaded, run_id, paths)["error"].startswith("TEST_TEAM_WEBHOOK is not set")


def test_a_post_whose_answer_never_came_is_not_posted_twice(wh, cohort, campaigns, hook, tmp_path):
    """The service took the post and closed the connection without answering: the post may
    be in the channel, so it is reported as such and not posted again (a second copy in
    the team's channel); the next post goes as usual."""
    team_campaign(campaigns)
    cohort.learner(inactive_days=30)
    loaded = campaigns.load()
    summary = run_campaign(wh, loaded, as_of=MONDAY, channel=OutboxChannel(tmp_path / "out"))
    script(hook, {"drop": True})
    before = len(posts(hook))
    report = notify.notify(wh, loaded, summary.run_id,
                           WebhookPoster(hook + "/services/T/B/x", "slack", sleep=lambda s: None))
    assert len(posts(hook)) == before + 2       # the week once, then the follow-up list
    assert report.posted == ["test: 1 learners to contact"]
    assert len(report.errors) == 1 and report.errors[0].startswith("post 'test: week of 23 Nov 2026': ")
    assert "it may have been posted, so it was not posted again" in report.errors[0]
