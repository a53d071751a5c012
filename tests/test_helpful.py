""""Was this helpful?": a message option that puts two signed one-click links in it, answered
through `relance serve` (a page to confirm, a POST that records, once per message, forged
links refused, a comment capped), counted per message in kpi_helpful and the report, whose
comments show only above a minimum number of answers."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

import warehouse
from relance.campaign.problems import CampaignError
from relance.channels.outbox import OutboxChannel
from relance.delivery import deliver_due, links
from relance.feedback import helpful
from relance.runs import steps
from tests.conftest import MONDAY, Cohort
from tests.delivery_fixtures import Receiver

SECRET = {"RELANCE_SECRET_KEY": "a-key-for-the-helpful-tests",
          "RELANCE_UNSUBSCRIBE_URL": "https://relance.example.org/unsubscribe"}


@pytest.fixture(autouse=True)
def secret(monkeypatch):
    for key, value in SECRET.items():
        monkeypatch.setenv(key, value)


def helpful_campaign(campaigns, overrides: dict | None = None, helpful_option: bool = True):
    text = campaigns.base().replace("  relance:\n    on_enter: at_risk\n",
                                    "  relance:\n    on_enter: at_risk\n"
                                    + ("    helpful: true\n" if helpful_option else ""))
    campaigns.write(text, template_overrides=overrides)


def sent_mails(tmp_path, campaigns, n: int = 2, **kwargs):
    """A file warehouse where n silent learners got the campaign's `relance` in the outbox:
    (warehouse path, learner ids, their mails by learner)."""
    db = tmp_path / "w.duckdb"
    con = warehouse.connect(db)
    cohort = Cohort(con)
    learners = [cohort.learner(inactive_days=8, locale="fr" if i % 2 == 0 else "en")
                for i in range(n)]
    loaded = campaigns.load()
    steps.plan_step(con, loaded, MONDAY)
    outbox = tmp_path / "outbox"
    deliver_due(con, loaded, OutboxChannel(outbox), now=MONDAY)
    ids = dict(con.execute("select learner_id, message_id from messages").fetchall())
    con.close()
    mails = {lid: email.message_from_bytes((outbox / "test" / f"{ids[lid]}.eml").read_bytes(),
                                           policy=email.policy.default) for lid in learners}
    return db, learners, mails, ids


def parts(mail) -> tuple[str, str]:
    return (mail.get_body(("plain",)).get_content().replace("\r\n", "\n"),
            mail.get_body(("html",)).get_content())


def path_of(url: str) -> str:
    u = urlparse(url)
    return f"{u.path}?{u.query}"


def test_a_helpful_message_ends_with_two_signed_links_in_its_language(tmp_path, campaigns):
    helpful_campaign(campaigns)
    db, (fr, en), mails, ids = sent_mails(tmp_path, campaigns)
    text, html = parts(mails[fr])
    yes, no = links.helpful_url(ids[fr], "yes"), links.helpful_url(ids[fr], "no")
    assert text.endswith(f"Ce message vous a-t-il été utile ?\nOui : {yes}\nNon : {no}\n")
    assert yes.startswith("https://relance.example.org/helpful?m=")
    assert f'<a href="{yes.replace("&", "&amp;")}">Oui</a>' in html
    text_en, _ = parts(mails[en])
    assert "Was this message helpful?\nYes: " in text_en
    # the links are signed for that message: another message's id with this token fails
    query = parse_qs(urlparse(yes).query)
    assert links.verify_helpful(ids[fr], query["t"][0])
    assert not links.verify_helpful(ids[en], query["t"][0])


def test_templates_may_place_the_links_and_only_when_the_option_is_on(tmp_path, campaigns):
    placed = {f"relance/{loc}/body.txt": "Utile ? {{ helpful_yes_url }} / {{ helpful_no_url }}"
              for loc in ("fr", "en")}
    helpful_campaign(campaigns, placed)
    db, (fr, en), mails, ids = sent_mails(tmp_path, campaigns)
    text, _ = parts(mails[fr])
    assert text.count(links.helpful_url(ids[fr], "yes")) == 1     # not appended a second time
    assert "Ce message vous a-t-il été utile ?" not in text
    # without `helpful: true` the variables do not exist: a located error before any run
    helpful_campaign(campaigns, placed, helpful_option=False)
    with pytest.raises(CampaignError, match=r"relance/fr/body.txt.*helpful_yes_url"):
        campaigns.load()


def test_messages_without_the_option_carry_no_links(tmp_path, campaigns):
    helpful_campaign(campaigns, helpful_option=False)
    db, (fr, _), mails, ids = sent_mails(tmp_path, campaigns)
    text, html = parts(mails[fr])
    assert "/helpful?" not in text and "/helpful?" not in html


def answers(db) -> list[tuple]:
    con = warehouse.connect(db)
    try:
        return con.execute("select learner_id, answer, comment, n_answers from helpful_answers "
                           "order by learner_id").fetchall()
    finally:
        con.close()


def test_serve_confirms_then_records_once_per_message_and_refuses_forged_links(tmp_path, campaigns):
    helpful_campaign(campaigns)
    db, (a, b), mails, ids = sent_mails(tmp_path, campaigns)
    receiver = Receiver(db, SECRET)
    try:
        yes = path_of(links.helpful_url(ids[a], "yes"))
        # the GET (what a mail scanner or a click does) shows the question, records nothing
        status, page = receiver.get(yes)
        assert status == 200 and 'value="yes" checked' in page and 'maxlength="300"' in page
        assert answers(db) == []
        # the page's form records the answer and the comment
        status, page = receiver.post(yes, "answer=yes&comment=Tr%C3%A8s+clair%2C+merci".encode(),
                                     {"Content-Type": "application/x-www-form-urlencoded"})
        assert status == 200 and "Your answer is recorded" in page
        assert answers(db) == [(a, "yes", "Très clair, merci", 1)]
        # a second answer replaces the first (one per message); no comment keeps the earlier
        assert receiver.post(yes, b"answer=no")[0] == 200
        assert answers(db) == [(a, "no", "Très clair, merci", 2)]
        # forged: b's message with a's token, a token altered, an answer that is not one
        forged = yes.replace(f"m={ids[a]}", f"m={ids[b]}")
        altered = yes[:-4] + "0000"
        for path in (forged, altered, yes.replace("a=yes", "a=maybe")):
            assert receiver.get(path)[0] == 400
            status, page = receiver.post(path, b"answer=yes")
            assert status == 400 and "Invalid link" in page
        # a comment is capped at 300 characters; a body past the form cap is refused unread
        no_b = path_of(links.helpful_url(ids[b], "no"))
        assert receiver.post(no_b, b"comment=" + b"x" * 400)[0] == 200
        status, body = receiver.post(no_b, b"comment=" + b"x" * 5000)
        assert status == 413 and "RELANCE_SERVE_MAX_FORM_BYTES" in body
    finally:
        receiver.stop()
    rows = answers(db)
    assert rows[1][:2] == (b, "no") and rows[1][2] == "x" * 300


def test_an_answer_while_a_delivery_holds_the_warehouse_waits_in_a_spool(tmp_path, campaigns):
    from relance.feedback.receiver import import_spool
    helpful_campaign(campaigns)
    db, (a, _), mails, ids = sent_mails(tmp_path, campaigns)
    receiver = Receiver(db, SECRET, busy_wait=0.2)
    holder = warehouse.connect(db)            # a delivery, say
    try:
        status, _ = receiver.post(path_of(links.helpful_url(ids[a], "yes")), b"answer=yes")
        assert status == 200
        assert holder.execute("select count(*) from helpful_answers").fetchall() == [(0,)]
        import_spool(holder, db)              # what the next delivery does first
        assert holder.execute("select learner_id, answer from helpful_answers").fetchall() == [
            (a, "yes")]
        assert not helpful.spool_path(db).exists()
    finally:
        holder.close()
        receiver.stop()


def test_kpi_helpful_relays_comments_only_above_the_minimum(tmp_path, campaigns, monkeypatch):
    helpful_campaign(campaigns)
    db, learners, mails, ids = sent_mails(tmp_path, campaigns, n=6)
    con = warehouse.connect(db)
    for i, lid in enumerate(learners[:4]):
        helpful.record(con, ids[lid], "yes" if i < 3 else "no", f"comment {i}" if i < 2 else None,
                       at=MONDAY)
    row = con.execute("select sent, answers, yes, no, yes_rate, comments, comments_withheld "
                      "from kpi_helpful where message_key = 'relance'").fetchall()
    assert row == [(6, 4, 3, 1, 0.75, None, 2)]         # 4 answers: below 5, withheld
    helpful.record(con, ids[learners[4]], "yes", "comment 4", at=MONDAY)
    assert con.execute("select answers, list_sort(comments), comments_withheld from kpi_helpful"
                       ).fetchall() == [(5, ["comment 0", "comment 1", "comment 4"], 0)]
    con.execute("set variable helpful_min_answers = 6")
    assert con.execute("select comments from kpi_helpful").fetchall() == [(None,)]

    # the report shows the table, with the comments under the setting's minimum
    from relance.roi.report import gather, render
    monkeypatch.setenv("RELANCE_HELPFUL_MIN_ANSWERS", "5")
    report = gather(con, campaign="test")
    assert [(h["message_key"], h["yes"], h["no"]) for h in report.helpful] == [("relance", 4, 1)]
    page = render(report)
    assert 'data-kpi="helpful:relance" data-yes="4" data-no="1"' in page
    assert "<q>comment 4</q>" in page
    monkeypatch.setenv("RELANCE_HELPFUL_MIN_ANSWERS", "10")
    assert "3 withheld: fewer than 10 answers" in render(gather(con, campaign="test", locale="en"))
    assert "3 non montrés : moins de 10 réponses" in render(gather(con, campaign="test",
                                                                   locale="fr"))
    con.close()
