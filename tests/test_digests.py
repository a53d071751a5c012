"""Managers' weekly digests: who gets one, listing whom, in which language, once a week."""

from __future__ import annotations

import csv
import email
import hashlib
from datetime import datetime, timedelta, timezone
from email import policy
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from typer.testing import CliRunner

import warehouse
from relance.delivery import links
from relance.feedback import unsubscribe
from relance.channels.outbox import OutboxChannel
from relance.cli.main import app
from relance.delivery import deliver_due
from relance.campaign.problems import CampaignError
from relance.runs.steps import run_campaign
from tests.conftest import MONDAY, Cohort

DIGEST = """
digest:
  every: monday 08:00
  groups:
    on_track: [active]
    stalled: [at_risk, dormant]
    finished: [completed]
"""
# one line per group: "[group] Name (progress, last activity); ..." then the withheld count
BODY = ("{% for g, people in groups.items() %}[{{ g }}]{% for p in people %} {{ p.name }} "
        "({{ p.progress | percent }}, {{ p.last_activity_at | date('d MMM') "
        "if p.last_activity_at else '-' }});{% endfor %}\n\n{% endfor %}withheld: {{ team.withheld }}")
TEMPLATES = {
    "digest/fr/subject.txt": "Équipe : {{ groups.on_track | length }} / "
                             "{{ groups.stalled | length }} / {{ groups.finished | length }}",
    "digest/en/subject.txt": "Team: {{ groups.on_track | length }} / "
                             "{{ groups.stalled | length }} / {{ groups.finished | length }}",
    "digest/fr/body.txt": "Bonjour,\n" + BODY,
    "digest/en/body.txt": "Hello,\n" + BODY,
    "digest/fr/body.html": "<p>{{ team.listed }} personnes</p>",
    "digest/en/body.html": "<p>{{ team.listed }} people</p>",
}


def write_campaign(campaigns, extra: str = "", **replace) -> None:
    campaigns.write(campaigns.base(**replace) + extra + DIGEST, template_overrides=TEMPLATES)


def managed(con, learner_id: str, manager: str | None) -> str:
    con.execute("update learners set manager_email = ? where learner_id = ?",
                [manager, learner_id]).fetchall()
    return learner_id


def digests_in(con, outbox: Path) -> dict[str, email.message.EmailMessage]:
    """The outbox's digests (files named after their ledger id), by recipient; the
    learners' own mail is left out."""
    ids = {r[0] for r in con.execute(
        "select message_id from messages where trigger = 'digest'").fetchall()}
    found = {}
    for path in sorted(outbox.rglob("*.eml")):
        if path.stem in ids:
            msg = email.message_from_bytes(path.read_bytes(), policy=policy.default)
            to = msg["To"].addresses[0].addr_spec
            assert to not in found, f"two digests for {to} in one outbox"
            found[to] = msg
    return found


def body(msg) -> str:
    return msg.get_body(("plain",)).get_content()


def ledger_digests(con) -> list[tuple]:
    return con.execute("select idempotency_key, locale, to_email, status from messages "
                       "where trigger = 'digest' order by idempotency_key").fetchall()


@pytest.fixture
def team(wh, cohort):
    """Manager A (French team of three, one per group), manager B (two English speakers and
    one French), a learner with no manager, and manager C whose only learner is on a course
    outside the audience."""
    a = "chef.a@example.org"
    b = "boss.b@example.org"
    ids = {
        "zoe": managed(wh, cohort.learner(inactive_days=1, done=1, first_name="Zoé",
                                          last_name="Active"), a),
        "marc": managed(wh, cohort.learner(inactive_days=10, done=2, first_name="Marc",
                                           last_name="Risque"), a),
        "lea": managed(wh, cohort.learner(inactive_days=1, done=4, completed=True,
                                          first_name="Léa", last_name="Finie"), a),
        "emma": managed(wh, cohort.learner(inactive_days=2, locale="en", first_name="Emma",
                                           last_name="Smith"), b),
        "noah": managed(wh, cohort.learner(inactive_days=30, locale="en-GB", first_name="Noah",
                                           last_name="Jones"), b),
        "ines": managed(wh, cohort.learner(inactive_days=1, first_name="Inès",
                                           last_name="Benali"), b),
        "paul": cohort.learner(inactive_days=1, first_name="Paul", last_name="Seul"),
    }
    other = Cohort(wh, course_id="c2")
    ids["hors"] = managed(wh, other.learner(learner_id="M00001", first_name="Hors",
                                            last_name="Audience"), "chef.c@example.org")
    return a, b, ids


def test_each_manager_gets_their_own_team_grouped_in_the_teams_language(
        wh, team, campaigns, tmp_path):
    a, b, _ = team
    write_campaign(campaigns)
    outbox = tmp_path / "out"
    run_campaign(wh, campaigns.load(), as_of=MONDAY, channel=OutboxChannel(outbox))

    digests = digests_in(wh, outbox)
    assert sorted(digests) == [b, a]          # not chef.c: no learner of theirs in the audience
    mail_a, mail_b = digests[a], digests[b]
    assert mail_a["Subject"] == "Équipe : 1 / 1 / 1"
    lines_a = body(mail_a).splitlines()
    assert lines_a[0] == "Bonjour,"
    assert lines_a[1] == "[on_track] Zoé Active (25\u00a0%, 22 nov.);"
    assert lines_a[2] == "[stalled] Marc Risque (50\u00a0%, 13 nov.);"
    assert lines_a[3].startswith("[finished] Léa Finie (100\u00a0%")
    assert lines_a[4] == "withheld: 0"
    # the team's language: two of B's three speak English
    assert mail_b["Subject"] == "Team: 2 / 1 / 0"
    lines_b = body(mail_b).splitlines()
    assert lines_b[0] == "Hello,"
    assert lines_b[1] == "[on_track] Inès Benali (0%, 22 Nov); Emma Smith (0%, 21 Nov);"
    assert lines_b[2] == "[stalled] Noah Jones (0%, 24 Oct);"
    assert lines_b[3] == "[finished]"
    # privacy: nobody appears in another manager's digest, nor the learner with no manager
    for name in ("Emma", "Noah", "Inès", "Paul", "Hors"):
        assert name not in mail_a.as_string()
    for name in ("Zoé", "Marc", "Léa", "Paul", "Hors"):
        assert name not in mail_b.as_string()
    # a proper e-mail: From the campaign's sender, HTML alternative, one-click unsubscribe
    assert mail_a["From"].addresses[0].addr_spec == "formation@example.org"
    assert mail_a.get_content_type() == "multipart/alternative"
    assert mail_a.get_body(("html",)).get_content().strip() == "<p>3 personnes</p>"
    assert mail_a["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert mail_a["Date"].datetime == MONDAY
    # in the ledger like any message, keyed per campaign, manager and ISO week
    assert ledger_digests(wh) == [
        (f"test/digest/manager:{b}/week:2026-W48", "en", b, "sent"),
        (f"test/digest/manager:{a}/week:2026-W48", "fr", a, "sent")]


def test_a_rerun_the_same_week_sends_no_second_digest_and_next_week_sends_the_next(
        wh, team, campaigns, tmp_path):
    a, b, _ = team
    write_campaign(campaigns)
    outbox = tmp_path / "out"
    run_campaign(wh, campaigns.load(), as_of=MONDAY, channel=OutboxChannel(outbox))
    run_campaign(wh, campaigns.load(), as_of=MONDAY + timedelta(hours=3),
                 channel=OutboxChannel(tmp_path / "again"))
    assert digests_in(wh, tmp_path / "again") == {}
    assert wh.execute("select manager_email, outcome, reason from eval_digests "
                      "order by manager_email").fetchall() == [
        (b, "suppressed", "already_sent"), (a, "suppressed", "already_sent")]
    run_campaign(wh, campaigns.load(), as_of=MONDAY + timedelta(days=7),
                 channel=OutboxChannel(tmp_path / "next"))
    assert sorted(digests_in(wh, tmp_path / "next")) == [b, a]
    assert [k for k, *_ in ledger_digests(wh)] == [
        f"test/digest/manager:{b}/week:2026-W48", f"test/digest/manager:{b}/week:2026-W49",
        f"test/digest/manager:{a}/week:2026-W48", f"test/digest/manager:{a}/week:2026-W49"]


def test_the_unsubscribe_link_of_a_digest_stops_that_managers_digests(
        wh, team, campaigns, tmp_path):
    a, b, _ = team
    write_campaign(campaigns)
    run_campaign(wh, campaigns.load(), as_of=MONDAY, channel=OutboxChannel(tmp_path / "out"))
    link = digests_in(wh, tmp_path / "out")[a]["List-Unsubscribe"].split(",")[0].strip("<> ")
    query = parse_qs(urlparse(link).query)
    lid, cid, token = query["l"][0], query["c"][0], query["t"][0]
    assert links.verify(lid, cid, token)           # what the receiver checks first
    assert unsubscribe.record(wh, lid, cid, source="link") == a
    run_campaign(wh, campaigns.load(), as_of=MONDAY + timedelta(days=7),
                 channel=OutboxChannel(tmp_path / "next"))
    assert sorted(digests_in(wh, tmp_path / "next")) == [b]
    assert wh.execute("select reason from eval_digests where manager_email = ?",
                      [a]).fetchall() == [("unsubscribed",)]


def test_the_send_window_holds_in_the_managers_timezone_and_an_unsubscribe_cancels_a_planned_digest(
        wh, cohort, campaigns, tmp_path):
    a, b = "chef.a@example.org", "boss.b@example.org"
    managed(wh, cohort.learner(inactive_days=1), a)
    for _ in range(2):       # B's team works from Montreal
        managed(wh, cohort.learner(inactive_days=1, tz="America/Montreal", locale="fr-CA"), b)
    managed(wh, cohort.learner(inactive_days=1), b)
    write_campaign(campaigns, "  quiet_hours: \"20:00-08:00\"\n"
                              "  send_days: [monday, tuesday, wednesday, thursday, friday]\n")
    loaded = campaigns.load()
    sunday_night = datetime(2026, 11, 29, 21, 0, tzinfo=timezone.utc)     # 22:00 in Paris
    run_campaign(wh, loaded, as_of=sunday_night, channel=OutboxChannel(tmp_path / "out"))
    assert wh.execute("select manager_email, tz, outcome, not_before, idempotency_key "
                      "from eval_digests order by manager_email").fetchall() == [
        (b, "America/Montreal", "deferred", datetime(2026, 11, 30, 13, 0, tzinfo=timezone.utc),
         f"test/digest/manager:{b}/week:2026-W49"),
        (a, "Europe/Paris", "deferred", datetime(2026, 11, 30, 7, 0, tzinfo=timezone.utc),
         f"test/digest/manager:{a}/week:2026-W49")]
    assert digests_in(wh, tmp_path / "out") == {}
    unsubscribe.record(wh, f"manager:{a}", None, source="test")
    report = deliver_due(wh, loaded, OutboxChannel(tmp_path / "out"),
                         now=datetime(2026, 11, 30, 14, 0, tzinfo=timezone.utc))
    assert report.cancel_reasons["unsubscribed"] == 1
    assert sorted(digests_in(wh, tmp_path / "out")) == [b]
    assert wh.execute("select to_email, status, error from messages where trigger = 'digest' "
                      "order by to_email").fetchall() == [(b, "sent", None),
                                                          (a, "cancelled", "unsubscribed")]


def holdout(campaign_id: str, learner_id: str, share: float) -> bool:
    """The engine's control-group draw (stages.sql), to pick test learners on either side."""
    return int(hashlib.md5(f"{campaign_id}:{learner_id}".encode()).hexdigest()[:8], 16) \
        / 4294967296.0 * 100 < share


def test_control_group_learners_are_counted_but_never_named_and_an_all_control_team_gets_nothing(
        wh, cohort, campaigns, tmp_path):
    a, d = "chef.a@example.org", "chef.d@example.org"
    ids = [f"L{i:05d}" for i in range(1, 40)]
    treated = [i for i in ids if not holdout("test", i, 50)][:3]
    held = [i for i in ids if holdout("test", i, 50)][:3]
    for k, lid in enumerate(treated + held[:2]):
        managed(wh, cohort.learner(learner_id=lid, first_name=f"Prénom{k}", last_name=lid), a)
    managed(wh, cohort.learner(learner_id=held[2], first_name="Seul", last_name=held[2]), d)
    write_campaign(campaigns, **{"control_group: 0%": "control_group: 50%"})
    run_campaign(wh, campaigns.load(), as_of=MONDAY, channel=OutboxChannel(tmp_path / "out"))
    digests = digests_in(wh, tmp_path / "out")
    assert list(digests) == [a]
    text = body(digests[a])
    assert all(lid in text for lid in treated)
    assert not any(lid in text for lid in held)
    assert text.rstrip().endswith("withheld: 2")
    assert wh.execute("select reason from eval_digests where manager_email = ?",
                      [d]).fetchall() == [("empty_team",)]
    assert wh.execute("select learner_id, listed from digest_members order by learner_id"
                      ).fetchall() == sorted([(i, True) for i in treated]
                                             + [(i, False) for i in held[:2]])


def test_user_data_never_reaches_digest_headers_unchecked(wh, cohort, campaigns, tmp_path):
    evil = "chef@example.org\r\nBcc: everyone@example.org"
    managed(wh, cohort.learner(inactive_days=1), evil)
    managed(wh, cohort.learner(inactive_days=1, first_name="Zoé\r\nBcc: x@evil.example"),
            "chef.a@example.org")
    templates = TEMPLATES | {"digest/fr/subject.txt": "{{ groups.on_track[0].name }} cette semaine"}
    campaigns.write(campaigns.base() + DIGEST, template_overrides=templates)
    run_campaign(wh, campaigns.load(), as_of=MONDAY, channel=OutboxChannel(tmp_path / "out"))
    assert wh.execute("select manager_email, reason from eval_digests order by 1").fetchall() == [
        ("chef.a@example.org", None), (evil.lower(), "invalid_address")]
    (mail,) = digests_in(wh, tmp_path / "out").values()
    assert mail["Subject"] == "Zoé Bcc: x@evil.example Lefèvre cette semaine"
    assert mail["Bcc"] is None
    assert [m["To"] for m in digests_in(wh, tmp_path / "out").values()] == ["chef.a@example.org"]


def test_relance_plan_shows_the_digests_it_would_send(tmp_path, campaigns):
    db = tmp_path / "w.duckdb"
    con = warehouse.connect(db)
    cohort = Cohort(con)
    managed(con, cohort.learner(inactive_days=1), "chef.a@example.org")
    managed(con, cohort.learner(inactive_days=1, locale="en"), "boss.b@example.org")
    con.execute("insert into suppressions values ('boss.b@example.org', null, 'unsubscribe', "
                "'test', now())").fetchall()
    con.close()
    write_campaign(campaigns)
    result = CliRunner().invoke(app, ["plan", "test", "--as-of", MONDAY.isoformat(),
                                      "--warehouse", str(db), "--campaigns", str(campaigns.root)],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Managers' digests (2 managers)" in result.output
    line_a = next(x for x in result.output.splitlines() if "chef.a@example.org" in x)
    assert "fr" in line_a and "2026-W48" in line_a and "send now" in line_a
    line_b = next(x for x in result.output.splitlines() if "boss.b@example.org" in x)
    assert "suppressed" in line_b and "unsubscribed" in line_b
    con = warehouse.connect(db)
    assert con.execute("select count(*) from messages").fetchall() == [(0,)]   # a dry run
    con.close()


def test_a_digest_naming_an_unknown_stage_or_missing_its_template_is_refused(campaigns):
    campaigns.write(campaigns.base() + DIGEST.replace("[at_risk, dormant]", "[at_rsik]"),
                    template_overrides=TEMPLATES)
    with pytest.raises(CampaignError) as exc:
        campaigns.load()
    line = next(i for i, text in enumerate(
        (campaigns.root / "test.yaml").read_text().splitlines(), 1) if "at_rsik" in text)
    assert f"test.yaml:{line}:15: digest.groups.stalled[0]: unknown stage 'at_rsik'; the " \
           "stages are: completed, dormant, at_risk, active" in str(exc.value)
    campaigns.write(campaigns.base("other") + DIGEST)     # no digest templates
    with pytest.raises(CampaignError, match=r"template .*other/digest/fr/subject.txt is missing"):
        campaigns.load("other")


def test_a_digest_template_naming_an_unknown_variable_is_refused_with_its_line(campaigns):
    """Even in a branch the sample team never takes: the variable is unknown, wherever."""
    body = "Bonjour,\n{% if team.listed > 1000 %}{{ managr.email }}{% endif %}\n" + BODY
    campaigns.write(campaigns.base() + DIGEST,
                    template_overrides=TEMPLATES | {"digest/fr/body.txt": body})
    with pytest.raises(CampaignError) as exc:
        campaigns.load()
    assert "digest/fr/body.txt:2: undefined variable 'managr'; a digest has: " in str(exc.value)
    assert "manager" in str(exc.value).split("a digest has: ")[1]


def test_the_demo_gives_corporate_learners_a_handful_of_managers(tmp_path):
    from relance import demo
    mapping = demo.generate(tmp_path, as_of=MONDAY, scale=0.1)
    assert "manager_email: Manager" in mapping.read_text(encoding="utf-8")
    with (tmp_path / "apprenants.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    with (tmp_path / "inscriptions.csv").open(encoding="utf-8") as fh:
        course = {r["learner"]: r["course"] for r in csv.DictReader(fh)}
    corporate = [r for r in rows if course.get(r["Identifiant"]) == "anglais-b2"]
    managers = {r["Manager"] for r in corporate if r["Manager"]}
    assert 3 <= len(managers) <= 9
    assert all(r["Manager"].split("@")[1] == r["Courriel"].split("@")[1]
               for r in corporate if r["Manager"])      # a manager of their own company
    assert not any(r["Manager"] for r in rows if course.get(r["Identifiant"]) == "mooc-climat")
    again = tmp_path / "again"
    demo.generate(again, as_of=MONDAY, scale=0.1)
    assert (again / "apprenants.csv").read_bytes() == (tmp_path / "apprenants.csv").read_bytes()


def test_the_sample_campaign_sends_its_managers_digests_from_the_demo_export(wh, tmp_path):
    """The demo's flow without Prefect, on a small cohort: CSV export through the connector,
    the real parcours-anglais campaign and its fr/en templates, the outbox."""
    from connectors import sync
    from connectors.csv_export import CsvConnector
    from relance import demo
    from relance.campaign.loader import load
    from tests.conftest import REPO
    sync(wh, CsvConnector.from_file(demo.generate(tmp_path / "export", as_of=MONDAY, scale=0.1)))
    loaded = load(REPO / "campaigns" / "parcours-anglais.yaml", campaigns_dir=REPO / "campaigns")
    run_campaign(wh, loaded, as_of=MONDAY, channel=OutboxChannel(tmp_path / "out"))
    digests = digests_in(wh, tmp_path / "out")
    teams = dict(wh.execute(
        "select manager_email, count(*) from learners join enrolments using (learner_id) "
        "where course_id = 'anglais-b2' and manager_email is not null group by all").fetchall())
    assert sorted(digests) == sorted(teams) and len(teams) == 9
    english = {m for m in digests if m.startswith("sarah.collins@")}
    for manager, mail in digests.items():
        text = body(mail)
        if manager in english:
            assert mail["Subject"].startswith("Your team's English this week:")
            assert text.startswith("Hello,") and "Unsubscribe: http" in text
        else:
            assert mail["Subject"].startswith("Votre équipe en anglais cette semaine :")
            assert text.startswith("Bonjour,") and "Ne plus le recevoir : http" in text
        # every listed learner is one of this manager's team (names can repeat in the demo)
        listed = wh.execute(
            "select count(*) filter (where listed), count(*) filter (where not listed), "
            "count(*) filter (where l.manager_email <> ?) from digest_members d "
            "join messages m using (message_id) join learners l on l.learner_id = d.learner_id "
            "where m.to_email = ?", [manager, manager]).fetchall()[0]
        assert listed[2] == 0
        assert listed[0] + listed[1] <= teams[manager]
        assert text.count("\n- ") == listed[0]


def test_preview_digest_renders_a_managers_digest_and_writes_nothing(tmp_path, campaigns):
    db = tmp_path / "w.duckdb"
    con = warehouse.connect(db)
    cohort = Cohort(con)
    managed(con, cohort.learner(inactive_days=1, first_name="Zoé", last_name="Active"),
            "chef.a@example.org")
    managed(con, cohort.learner(inactive_days=9, first_name="Marc", last_name="Risque"),
            "chef.a@example.org")
    con.close()
    write_campaign(campaigns)
    args = ["--as-of", MONDAY.isoformat(), "--warehouse", str(db), "--campaigns",
            str(campaigns.root)]
    result = CliRunner().invoke(app, ["preview-digest", "test", "Chef.A@example.org",
                                      "--html", str(tmp_path / "d.html"), *args],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "chef.a@example.org: 2 learners listed; the engine would send it now." in result.output
    assert "Subject: Équipe : 1 / 1 / 0" in result.output
    assert "[on_track] Zoé Active (0\u00a0%, 22 nov.);" in result.output
    assert "[stalled] Marc Risque (0\u00a0%, 14 nov.);" in result.output
    assert (tmp_path / "d.html").read_text(encoding="utf-8") == "<p>2 personnes</p>"
    result = CliRunner().invoke(app, ["preview-digest", "test", "nobody@example.org", *args],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 1
    assert "nobody@example.org manages no learner of test's digest groups" in result.output
    assert "managers with the largest teams: chef.a@example.org" in result.output
    con = warehouse.connect(db)
    assert con.execute("select count(*) from messages").fetchall() == [(0,)]
    assert con.execute("select count(*) from campaign_runs").fetchall() == [(0,)]
    con.close()


def test_a_digest_due_in_its_managers_week_is_not_cancelled_by_the_campaigns_calendar(
        wh, cohort, campaigns, tmp_path):
    # Monday 08:00 in Auckland is Sunday evening in Paris, the campaign's timezone
    c = "lead.c@example.org"
    for _ in range(2):
        managed(wh, cohort.learner(inactive_days=1, tz="Pacific/Auckland", locale="en"), c)
    write_campaign(campaigns)
    loaded = campaigns.load()
    run_campaign(wh, loaded, as_of=datetime(2026, 11, 29, 18, 0, tzinfo=timezone.utc),
                 channel=OutboxChannel(tmp_path / "out"))
    assert wh.execute("select tz, outcome, not_before from eval_digests").fetchall() == [
        ("Pacific/Auckland", "deferred", datetime(2026, 11, 29, 19, 0, tzinfo=timezone.utc))]
    # delivered just after midnight in Paris: a new week there, still Monday in Auckland
    deliver_due(wh, loaded, OutboxChannel(tmp_path / "out"),
                now=datetime(2026, 11, 29, 23, 30, tzinfo=timezone.utc))
    assert wh.execute("select status, error from messages where trigger = 'digest'"
                      ).fetchall() == [("sent", None)]


def test_a_large_team_s_digest_lists_the_first_of_each_group_and_counts_the_rest(
        wh, tmp_path, monkeypatch):
    """A digest does not grow with the team: each group lists its first PER_GROUP learners
    (best progress first) and says how many more it has; the headings count them all."""
    import re

    from connectors import sync
    from connectors.csv_export import CsvConnector
    from relance import demo
    from relance.campaign.loader import load
    from relance.delivery import digests as delivery_digests
    from tests.conftest import REPO
    monkeypatch.setattr(delivery_digests, "PER_GROUP", 2)
    sync(wh, CsvConnector.from_file(demo.generate(tmp_path / "export", as_of=MONDAY, scale=0.1)))
    loaded = load(REPO / "campaigns" / "parcours-anglais.yaml", campaigns_dir=REPO / "campaigns")
    run_campaign(wh, loaded, as_of=MONDAY, channel=OutboxChannel(tmp_path / "out"))
    cut = 0
    for manager, mail in digests_in(wh, tmp_path / "out").items():
        text = body(mail)
        groups = dict(wh.execute(
            "select d.group_name, count(*) from digest_members d join messages m "
            "using (message_id) where m.to_email = ? and d.listed group by all",
            [manager]).fetchall())
        listed = text.count("\n- ")
        assert listed == sum(min(n, 2) for n in groups.values())
        more = [int(n) for n in re.findall(r"… (?:and|et) (\d+) (?:more|de plus)", text)]
        assert sorted(more) == sorted(n - 2 for n in groups.values() if n > 2)
        for n in groups.values():           # the headings count the whole group
            assert f"({n})" in text
        cut += len(more)
    assert cut, "no group over the limit: the test checks nothing"
