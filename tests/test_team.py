"""The team file (campaigns/_team.yaml), who follows whom, each person's daily list, and what
the team records shaping the engine's next run (issue 18)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from typer.testing import CliRunner

import warehouse
from relance.cli.main import app
from relance.engine import evaluate
from relance.runs.steps import run_campaign
from relance.team import assign, lists, teamfile
from tests.conftest import MONDAY, Cohort
from tests.team_fixtures import FOLLOW_UP, TEAM, record, write_team


def _validate(campaigns, *extra):
    return CliRunner().invoke(app, ["validate", "--campaigns", str(campaigns.root), *extra])


# -- the file: located errors at validate ----------------------------------------------------

def test_validate_locates_each_team_file_problem(campaigns, tmp_path):
    campaigns.write(campaigns.base())
    write_team(campaigns.root, text="""\
        people:
          - name: Claire
            email: claire@example.org
            capacity: -2
          - name: Bob
            email: bob@@example.org
        assignment:
          rules:
            - course: c1
              to: [claire@example.org, karim@example.org]
        """)
    result = _validate(campaigns, "--warehouse", str(tmp_path / "none.duckdb"))
    assert result.exit_code == 1
    out = " ".join(result.output.split())
    assert "_team.yaml:4:15: people[0].capacity: capacity -2 is below zero" in out
    assert "_team.yaml:6:12: people[1].email: 'bob@@example.org' is not a plain address" in out


def test_validate_names_an_unknown_person_with_the_closest_one(campaigns, tmp_path):
    campaigns.write(campaigns.base())
    write_team(campaigns.root, text=TEAM.format(claire=3, karim=3).replace(
        "to: [claire@example.org, karim@example.org]", "to: [claire@example.org, karim@exemple.org]"))
    result = _validate(campaigns, "--warehouse", str(tmp_path / "none.duckdb"))
    assert result.exit_code == 1
    out = " ".join(result.output.split())
    assert ("_team.yaml:23:32: assignment.rules[0].to[1]: unknown person 'karim@exemple.org': "
            "no one in `people` has this address; did you mean 'karim@example.org'?") in out


def test_validate_counts_learners_the_rules_leave_unassigned(campaigns, tmp_path):
    path = tmp_path / "wh.duckdb"
    con = warehouse.connect(path)
    cohort = Cohort(con)
    for _ in range(3):
        cohort.learner()
    Cohort(con, course_id="c2").learner(learner_id="X1")
    con.close()
    campaigns.write(campaigns.base())
    write_team(campaigns.root)
    result = _validate(campaigns, "--warehouse", str(path), "--as-of", MONDAY.isoformat())
    assert result.exit_code == 1
    out = " ".join(result.output.split())
    assert ("_team.yaml:22:7: assignment.rules[0]: the rules leave 1 active learner "
            "unassigned: c2 cohort co (1)") in out
    # a last rule for everyone left: valid
    write_team(campaigns.root, text=TEAM.format(claire=3, karim=3).replace(
        "desk_url:", "    - to: karim@example.org\ndesk_url:"))
    result = _validate(campaigns, "--warehouse", str(path), "--as-of", MONDAY.isoformat())
    assert result.exit_code == 0, result.output
    assert "ok" in result.output and "_team.yaml: 3 people, 2 assignment rules" in result.output


def test_schema_file_is_current_and_every_field_is_documented():
    from relance.campaign.schema import undocumented
    assert teamfile.SCHEMA_PATH.read_text(encoding="utf-8") == teamfile.schema_text(), \
        "regenerate with `relance team schema -o relance/team/team.schema.json`"
    assert undocumented(teamfile.schema()) == []


# -- who follows whom ------------------------------------------------------------------------

def test_rules_share_learners_by_capacity_and_keep_them_week_to_week(wh, tmp_path):
    cohort = Cohort(wh)
    ids = [cohort.learner() for _ in range(12)]
    team = teamfile.load(write_team(tmp_path, claire=2, karim=1))
    counts = assign.assign(wh, team, MONDAY)
    assert counts == {"claire@example.org": 8, "karim@example.org": 4}
    before = dict(wh.execute("select learner_id, person_email from team_assignments").fetchall())
    # a week later, three newcomers: the others keep their person, the newcomers fill up
    for _ in range(3):
        ids.append(cohort.learner(as_of=MONDAY + timedelta(weeks=1), enrolled_days=1))
    counts = assign.assign(wh, team, MONDAY + timedelta(weeks=1))
    after = dict(wh.execute("select learner_id, person_email from team_assignments").fetchall())
    assert {k: after[k] for k in before} == before
    assert counts == {"claire@example.org": 10, "karim@example.org": 5}


def test_the_data_column_names_the_tutor_before_any_rule(wh, tmp_path):
    cohort = Cohort(wh)
    a, b = cohort.learner(), cohort.learner()
    wh.execute("insert into learner_tutors values (?, 'karim@example.org', 'test', now()), "
               "(?, 'someone.else@example.org', 'test', now())", [a, b]).fetchall()
    team = teamfile.load(write_team(tmp_path, claire=50, karim=1))
    assign.assign(wh, team, MONDAY)
    got = dict(wh.execute("select learner_id, person_email || ' ' || how from team_assignments").fetchall())
    # the column's person wins; an address of no one of the team falls to the rules
    assert got == {a: "karim@example.org column", b: "claire@example.org rule:1"}


def test_csv_sources_load_a_tutor_email_column(wh, tmp_path):
    from connectors import sync
    from connectors.csv_export import CsvConnector
    (tmp_path / "learners.csv").write_text(
        "id,mail,tutor\nA1,a1@example.org,Karim@Example.org\nA2,a2@example.org,\n"
        "A3,a3@example.org,karim@@example.org\n", encoding="utf-8")
    (tmp_path / "mapping.yaml").write_text(
        "name: t\ndirectory: .\nentities:\n  learners: {file: learners.csv, columns: "
        "{learner_id: id, email: mail, tutor_email: tutor}}\n", encoding="utf-8")
    sync(wh, CsvConnector.from_file(tmp_path / "mapping.yaml"))
    assert wh.execute("select learner_id, tutor_email from learner_tutors").fetchall() == [
        ("A1", "karim@example.org")]
    assert wh.execute("select reason from quarantine").fetchall() == [
        ("malformed tutor_email: karim@@example.org",)]


# -- the daily list and what the team records -----------------------------------------------

@pytest.fixture
def season(wh, campaigns, tmp_path):
    cohort = Cohort(wh)
    silent = {cohort.learner(inactive_days=d): d for d in (1, 2, 8, 9, 10, 22, 25, 30, 40)}
    campaigns.write(campaigns.base() + FOLLOW_UP)
    loaded = campaigns.load()
    team = teamfile.load(write_team(campaigns.root, claire=2, karim=2))
    return wh, cohort, loaded, team, silent, tmp_path / "outbox"


def _names(daily):
    return [r["learner_id"] for r in daily.rows]


def test_each_person_gets_their_silent_learners_most_silent_first_cut_at_capacity(season):
    con, cohort, loaded, team, silent, outbox = season
    run_campaign(con, loaded, as_of=MONDAY, outbox_dir=str(outbox))
    found = lists.compute(con, team, MONDAY)
    assert set(found) == {"claire@example.org", "karim@example.org"}       # support gets none
    mine = dict(con.execute("select learner_id, person_email from team_assignments").fetchall())
    for email, daily in found.items():
        waiting = sorted((lid for lid, d in silent.items() if d >= 7 and mine[lid] == email),
                         key=lambda lid: -silent[lid])
        assert _names(daily) == waiting[:2]
        assert daily.waiting == len(waiting)
        top = daily.rows[0]
        assert top["inactive_days"] == silent[top["learner_id"]]
        assert [m["message"] for m in top["recent_sent"]] in (["remobilisation"], ["relance"])
    # in each person's language, with their day
    subject, text = lists.render(found["claire@example.org"], team)
    assert subject == "2 apprenants à contacter aujourd'hui"
    assert "lundi 23 novembre 2026" in text and "Silencieux depuis trois semaines" in text
    subject, text = lists.render(found["karim@example.org"], team)
    assert subject == "2 learners to contact today" and "Monday, November 23, 2026" in text


def test_a_contact_pauses_automated_messages_and_the_list_and_stopping_is_a_withdrawal(season):
    con, cohort, loaded, team, silent, outbox = season
    run_campaign(con, loaded, as_of=MONDAY, outbox_dir=str(outbox))
    by_days = {d: lid for lid, d in silent.items()}
    called, stopping, unanswered = by_days[22], by_days[25], by_days[30]
    tuesday = MONDAY + timedelta(days=1)
    record(con, called, outcome="back_on_track", at=tuesday)
    record(con, stopping, outcome="stopping", at=tuesday)
    record(con, unanswered, outcome="no_answer", at=tuesday)
    # a week later all three would get this week's recap or a relance; a week and a day
    # after the call, quiet_after_contact_days (7) still holds for the one called
    later = MONDAY + timedelta(days=7, hours=1)
    ev = evaluate(con, loaded, later)
    decided = {r[0]: r[1:] for r in con.execute(
        "select learner_id, outcome, reason from eval_decisions").fetchall()}
    assert decided[called] == ("suppressed", "recently_contacted")
    assert stopping not in decided                          # out of the audience, as withdrawn
    assert decided[unanswered][1] != "recently_contacted"   # no answer is no contact
    assert ev.totals()["evaluated"] == len(silent) - 1
    # the lists leave the called and the stopping learner off; the unanswered stays
    found = lists.compute(con, team, later)
    listed = {lid for d in found.values() for lid in _names(d)}
    assert called not in listed and stopping not in listed
    # once the pause is over, automated messages may go again
    evaluate(con, loaded, tuesday + timedelta(days=8))
    assert con.execute("select reason from eval_decisions where learner_id = ?",
                       [called]).fetchall()[0][0] != "recently_contacted"


def test_will_resume_pauses_until_the_date_and_a_snooze_hides_from_the_list(season):
    con, cohort, loaded, team, silent, outbox = season
    run_campaign(con, loaded, as_of=MONDAY, outbox_dir=str(outbox))
    by_days = {d: lid for lid, d in silent.items()}
    resumes, snoozed = by_days[40], by_days[10]
    record(con, resumes, outcome="will_resume", resume_on=(MONDAY + timedelta(days=20)).date())
    record(con, snoozed, kind="snooze", snooze_until=(MONDAY + timedelta(days=3)).date())
    evaluate(con, loaded, MONDAY + timedelta(days=14))
    assert con.execute("select reason from eval_decisions where learner_id = ?",
                       [resumes]).fetchall()[0][0] == "recently_contacted"
    listed = {lid for d in lists.compute(con, team, MONDAY + timedelta(hours=2)).values()
              for lid in _names(d)}
    assert snoozed not in listed and resumes not in listed
    listed = {lid for d in lists.compute(con, team, MONDAY + timedelta(days=4)).values()
              for lid in _names(d)}
    assert snoozed in listed


def test_roi_shows_contacted_against_not_contacted_labelled_observational(season, campaigns,
                                                                          tmp_path):
    con, cohort, loaded, team, silent, outbox = season
    run_campaign(con, loaded, as_of=MONDAY, outbox_dir=str(outbox))
    by_days = {d: lid for lid, d in silent.items()}
    record(con, by_days[22], at=MONDAY + timedelta(hours=2))
    record(con, by_days[25], outcome="no_answer", at=MONDAY + timedelta(hours=2))
    cohort.event(by_days[22], None, "accessed", MONDAY + timedelta(days=2))
    con.execute("insert or replace into warehouse_meta values ('kpi_as_of', ?)",
                [(MONDAY + timedelta(days=20)).isoformat()]).fetchall()
    rows = con.execute("select grp, learners, active_within_14d, design from kpi_contacted "
                       "order by grp").fetchall()
    listed = sum(1 for d in silent.values() if d >= 7)
    assert rows == [("contacted", 1, 1, "observational, not randomised"),
                    ("not contacted", listed - 1, 0, "observational, not randomised")]
    from relance.roi.report import gather, render
    html = render(gather(con, campaign=loaded.id, locale="en"))
    assert "Contacted by the team, or not (observational)" in html
    assert 'data-kpi="contacted:contacted"' in html and "not randomised" in html
    html = render(gather(con, campaign=loaded.id, locale="fr"))
    assert "Contactés par l&#39;équipe, ou non (observationnel)" in html
    assert "<td>contactés</td>" in html and "non randomisé" in html


def test_lists_go_out_at_the_start_of_each_persons_day_once(season, tmp_path, monkeypatch):
    from email import message_from_bytes, policy

    from relance.team import send

    class Chat:
        def __init__(self):
            self.posts = []

        def post(self, title, lines, markup=False):
            self.posts.append((title, lines))

    monkeypatch.setenv("RELANCE_DESK_SECRET", "s" * 40)
    con, cohort, loaded, team, silent, outbox = season
    run_campaign(con, loaded, as_of=MONDAY - timedelta(hours=1), outbox_dir=str(outbox))
    team = team.model_copy(update={"lists": team.lists.model_copy(update={
        "by": ["mail", "chat"], "webhook_env": "X"})})
    chat, box = Chat(), tmp_path / "lists"
    # 07:00 in Paris: Claire starts at 08:30; Karim in Montréal is asleep
    from relance.desk.server import links_for
    report = send.send_due(con, team, now=MONDAY - timedelta(hours=1), outbox_dir=str(box),
                           poster=chat, link_for=links_for(team))
    assert report.sent == [] and sorted(report.not_due) == ["claire@example.org",
                                                            "karim@example.org"]
    # 09:00 in Paris: Claire's list, by mail and on the chat; twice called, sent once
    for _ in range(2):
        report = send.send_due(con, team, now=MONDAY, outbox_dir=str(box), poster=chat,
                               link_for=links_for(team))
    files = list((box / "_team").glob("*.eml"))
    assert len(files) == 1 and len(chat.posts) == 1
    mail = message_from_bytes(files[0].read_bytes(), policy=policy.default)
    assert mail["To"] == "Claire Martin <claire@example.org>"
    assert mail["Subject"] == "2 apprenants à contacter aujourd'hui"
    assert "List-Unsubscribe" not in mail
    body = mail.get_content()
    assert "Silencieux depuis trois semaines" in body and "http://127.0.0.1/desk/login?t=" in body
    assert chat.posts[0][0] == "Claire Martin: 2 apprenants à contacter aujourd'hui"
    assert con.execute("select message_key, status, to_email from messages where campaign_id = "
                       "'_team' order by 1").fetchall() == [
        ("daily_list", "sent", "claire@example.org"),
        ("daily_list_chat", "sent", "claire@example.org")]
    # 09:00 in Montréal: Karim's, in English
    send.send_due(con, team, now=MONDAY + timedelta(hours=6), outbox_dir=str(box), poster=chat)
    assert chat.posts[1][0] == "Karim Benali: 2 learners to contact today"
    assert len(list((box / "_team").glob("*.eml"))) == 2


def test_a_message_planned_before_the_call_is_cancelled_when_it_falls_due(season):
    from relance.channels import get_channel
    from relance.runs.steps import deliver, plan_step
    con, cohort, loaded, team, silent, outbox = season
    by_days = {d: lid for lid, d in silent.items()}
    # planned on Sunday night (quiet hours: due on Monday morning), called before then
    sunday = MONDAY - timedelta(hours=12)
    plan_step(con, loaded, sunday)
    record(con, by_days[22], outcome="back_on_track", at=sunday + timedelta(hours=1))
    record(con, by_days[25], outcome="stopping", at=sunday + timedelta(hours=1))
    deliver(con, loaded, get_channel("outbox", outbox_dir=str(outbox)), now=MONDAY)
    got = dict(con.execute("select learner_id, status || ' ' || coalesce(error, '') from messages "
                           "where learner_id in (?, ?)", [by_days[22], by_days[25]]).fetchall())
    assert got[by_days[22]] == "cancelled recently_contacted"
    assert got[by_days[25]] == "cancelled withdrawn"                # the withdrawal path


def test_the_desk_will_not_start_without_its_secret_and_links_are_signed(campaigns, tmp_path,
                                                                        monkeypatch):
    from relance.desk import auth
    campaigns.write(campaigns.base())
    write_team(campaigns.root)
    warehouse.connect(tmp_path / "wh.duckdb").close()
    monkeypatch.delenv("RELANCE_DESK_SECRET", raising=False)
    result = CliRunner().invoke(app, ["desk", "--campaigns", str(campaigns.root), "--warehouse",
                                      str(tmp_path / "wh.duckdb")])
    assert result.exit_code == 1
    assert "RELANCE_DESK_SECRET is not set: the desk is never open" in " ".join(result.output.split())
    monkeypatch.setenv("RELANCE_DESK_SECRET", "short")
    result = CliRunner().invoke(app, ["team", "link", "claire@example.org", "--campaigns",
                                      str(campaigns.root)])
    assert result.exit_code == 1 and "RELANCE_DESK_SECRET is too short" in result.output
    assert "short" not in result.output.replace("too short", "")       # never the secret
    monkeypatch.setenv("RELANCE_DESK_SECRET", "k" * 40)
    result = CliRunner().invoke(app, ["team", "link", "claire@example.org", "--campaigns",
                                      str(campaigns.root)])
    assert result.exit_code == 0
    link = result.output.strip()
    assert link.startswith("http://127.0.0.1/desk/login?t=")
    from urllib.parse import parse_qs, urlparse
    token = parse_qs(urlparse(link).query)["t"][0]
    assert auth.verify(b"k" * 40, token, "login").email == "claire@example.org"
    result = CliRunner().invoke(app, ["team", "link", "nobody@example.org", "--campaigns",
                                      str(campaigns.root)])
    assert result.exit_code == 1 and "is not in the team file" in result.output


def _reply(con, learner_id, at, text, routed_to="desk"):
    con.execute("insert into learner_replies (reply_id, source, received_at, from_address, "
                "subject, body_text, learner_id, course_id, category, routed_to, status) "
                "values (?, 'imap', ?, 'x@example.org', 'Re: relance', ?, ?, 'c1', 'other', ?, "
                "'routed')", [f"r-{learner_id}-{at.isoformat()}", at, text, learner_id,
                              routed_to]).fetchall()


def test_a_reply_routed_to_the_desk_puts_the_learner_first_until_answered(season):
    con, cohort, loaded, team, silent, outbox = season
    run_campaign(con, loaded, as_of=MONDAY - timedelta(days=1), outbox_dir=str(outbox))
    by_days = {d: lid for lid, d in silent.items()}
    active = by_days[1]                       # on no follow-up list
    _reply(con, active, MONDAY - timedelta(hours=3), "Je reprends la semaine prochaine, "
                                                     "pouvez-vous m'appeler ?")
    _reply(con, by_days[2], MONDAY - timedelta(hours=2), "Support please", routed_to="support")
    found = lists.compute(con, team, MONDAY)
    rows = [r for d in found.values() for r in d.rows]
    first = next(d.rows[0] for d in found.values() if active in _names(d))
    assert first["learner_id"] == active and first["reason"] == "replied" and first["wrote_since"]
    assert first["recent_replies"][0]["text"].startswith("Je reprends la semaine prochaine")
    assert by_days[2] not in {r["learner_id"] for r in rows}          # routed to support
    # answered by a call: off the list; a new reply: back on it
    record(con, active, at=MONDAY + timedelta(hours=1))
    assert active not in {lid for d in lists.compute(con, team, MONDAY + timedelta(hours=2)).values()
                          for lid in _names(d)}
    _reply(con, active, MONDAY + timedelta(hours=3), "Merci, encore une question")
    assert active in {lid for d in lists.compute(con, team, MONDAY + timedelta(hours=4)).values()
                      for lid in _names(d)}


def test_with_a_risk_model_the_riskiest_come_first(wh, campaigns, tmp_path):
    cohort = Cohort(wh)
    # the later they enrolled, the riskier (below); silence the other way round
    learners = {cohort.learner(inactive_days=14 - i, enrolled_days=40 - 5 * i): i for i in range(4)}
    campaigns.write(campaigns.base() + FOLLOW_UP)
    run_campaign(wh, campaigns.load(), as_of=MONDAY, outbox_dir=str(tmp_path / "out"))
    wh.execute("insert into risk_models (model_id, trained_on, n_rows, n_positive, created_at) "
               "values ('m1', 'test', 100, 10, now())").fetchall()
    wh.execute("insert into risk_coefficients values ('m1', '(intercept)', 0, 0, 1), "
               "('m1', 'registered_day', 1, 0, 10)").fetchall()
    team = teamfile.load(write_team(campaigns.root, claire=10, karim=0).parent / "_team.yaml")
    rows = lists.compute(wh, team, MONDAY)["claire@example.org"].rows
    assert [learners[r["learner_id"]] for r in rows] == [3, 2, 1, 0]       # not by silence
    assert all(0 < r["risk"] < 1 for r in rows)
    assert rows[0]["risk"] > rows[-1]["risk"]
