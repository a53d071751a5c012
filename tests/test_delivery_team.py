"""Posts to the team's Slack or Teams channel: the week in numbers and the follow-up list,
through a local incoming-webhook server; 429 waits what it asks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request

import pytest

from relance import team
from relance.channels.webhook import WebhookError, WebhookPoster
from relance.channels.outbox import OutboxChannel
from relance.runs import run_campaign
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
    n = team.notify(wh, loaded, summary.run_id,
                    WebhookPoster(hook + "/services/T000/B000/secret", "slack", sleep=sleeps.append))
    assert n == 2 and sleeps == [4.0]
    week, follow = [p["body"]["text"] for p in posts(hook)[before:]]
    assert week.startswith("*test: week of 23 Nov 2026*") and "dormant 1" in week
    assert follow.splitlines() == ["*test: 1 learners to contact*",
                                   f"Marty McFly <{silent.lower()}@example.org>: Silencieux depuis trois semaines"]


def test_teams_gets_an_adaptive_card_and_a_refusal_is_an_error(wh, cohort, campaigns, hook, tmp_path, monkeypatch):
    team_campaign(campaigns, "teams")
    cohort.learner(inactive_days=30)
    loaded = campaigns.load()
    summary = run_campaign(wh, loaded, as_of=MONDAY, channel=OutboxChannel(tmp_path / "out"))
    monkeypatch.setenv("TEST_TEAM_WEBHOOK", hook + "/teams")
    before = len(posts(hook))
    assert team.notify(wh, loaded, summary.run_id) == 2
    card = posts(hook)[before]["body"]["attachments"][0]
    assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert card["content"]["body"][0]["text"].startswith("test: week of")
    script(hook, {"status": 400, "body": "invalid_payload"})
    with pytest.raises(WebhookError, match=r"teams webhook refused the post \(status_code=400\): invalid_payload"):
        team.notify(wh, loaded, summary.run_id)
    monkeypatch.delenv("TEST_TEAM_WEBHOOK")
    with pytest.raises(Exception, match="TEST_TEAM_WEBHOOK is not set"):
        team.notify(wh, loaded, summary.run_id)
