"""What lands in the outbox: real RFC 5322 messages, once each, never lost."""

from __future__ import annotations

import email
import re
from email import policy
from email.header import decode_header, make_header
from email.utils import parseaddr
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from relance.channels.outbox import OutboxChannel
from relance.delivery import deliver_due
from relance.runs.steps import run_campaign
from datetime import timedelta
from tests.conftest import MONDAY


def read_eml(path: Path):
    return email.message_from_bytes(path.read_bytes(), policy=policy.default)


def test_eml_is_rfc5322_with_text_html_accents_and_unsubscribe(wh, cohort, campaigns, tmp_path):
    campaigns.write(campaigns.base())
    lid = cohort.learner(inactive_days=8, first_name="Zoé", last_name="Lefèvre-Côté")
    run_campaign(wh, campaigns.load(), as_of=MONDAY, channel=OutboxChannel(tmp_path / "out"))
    (path,) = (tmp_path / "out" / "test").glob("*.eml")
    msg = read_eml(path)
    assert msg["Subject"] == "Bonjour Zoé — at_risk"
    assert msg["To"].addresses[0].display_name == "Zoé Lefèvre-Côté"
    assert msg["To"].addresses[0].addr_spec == f"{lid.lower()}@example.org"
    assert msg["From"].addresses[0].display_name == "Julie, équipe formation"
    assert msg["List-Unsubscribe"].startswith("<http") and "mailto:" in msg["List-Unsubscribe"]
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["X-Relance-Campaign"] == "test"
    assert msg["Message-ID"].endswith("@example.org>")
    assert msg["Date"].datetime == MONDAY                    # when it was due, not the wall clock
    raw_headers = path.read_bytes().split(b"\r\n\r\n", 1)[0].decode().replace("\r\n ", " ")
    unsubscribe = next(h for h in raw_headers.split("\r\n") if h.startswith("List-Unsubscribe:"))
    assert "<http://" in unsubscribe and "=?" not in unsubscribe   # plain, not an encoded word
    assert msg.get_content_type() == "multipart/alternative"
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert "Vous en êtes à 0 % de « Anglais B2 — démo »." in text.replace("\u202f", " ").replace("\xa0", " ")
    assert "<p>Zoé," in html
    # the ledger knows where it went
    status, subject = wh.execute("select status, subject from messages").fetchall()[0]
    assert (status, subject) == ("sent", "Bonjour Zoé — at_risk")


def test_learner_data_cannot_inject_headers(wh, cohort, campaigns, tmp_path):
    campaigns.write(campaigns.base())
    cohort.learner(inactive_days=8, first_name="Eve\r\nBcc: victim@example.org", last_name="X")
    run_campaign(wh, campaigns.load(), as_of=MONDAY, channel=OutboxChannel(tmp_path / "out"))
    (path,) = (tmp_path / "out" / "test").glob("*.eml")
    headers = path.read_bytes().split(b"\r\n\r\n", 1)[0]
    assert b"\nBcc:" not in headers
    msg = read_eml(path)
    assert msg["Bcc"] is None
    assert "\n" not in msg["Subject"] and "\r" not in msg["Subject"]


def test_the_learner_gets_their_own_locale_and_fallback(wh, cohort, campaigns, tmp_path):
    campaigns.write(campaigns.base())
    en = cohort.learner(inactive_days=8, locale="en-GB", first_name="Siobhán")
    de = cohort.learner(inactive_days=8, locale="de", first_name="Jürgen")
    run_campaign(wh, campaigns.load(), as_of=MONDAY, channel=OutboxChannel(tmp_path / "out"))
    subjects = dict(wh.execute("select learner_id, subject from messages").fetchall())
    assert subjects[en] == "Hello Siobhán — at_risk"
    assert subjects[de] == "Bonjour Jürgen — at_risk"      # not in `locales`: campaign default


def test_a_crash_after_writing_never_sends_twice(wh, cohort, campaigns, tmp_path):
    """The outbox file exists but the ledger still says planned (the process died between
    the two): the next delivery recognises it instead of writing a second message."""
    campaigns.write(campaigns.base())
    for _ in range(3):
        cohort.learner(inactive_days=8)
    loaded = campaigns.load()
    out = OutboxChannel(tmp_path / "out")
    run_campaign(wh, loaded, as_of=MONDAY, channel=out)
    files = sorted((tmp_path / "out" / "test").glob("*.eml"))
    before = [f.read_bytes() for f in files]
    wh.execute("update messages set status = 'planned', sent_at = null").fetchall()
    report = deliver_due(wh, loaded, out, now=MONDAY)
    assert report.sent == 3
    assert sorted((tmp_path / "out" / "test").glob("*.eml")) == files
    assert [f.read_bytes() for f in files] == before


def test_a_render_failure_is_recorded_not_dropped(wh, cohort, campaigns, tmp_path):
    campaigns.write(campaigns.base())
    cohort.learner(inactive_days=8)
    loaded = campaigns.load()
    # a template broken after validation (edited while a run was under way): fails at send time
    (campaigns.root / "test" / "relance" / "fr" / "body.txt").write_text("{{ 1 / 0 }}", encoding="utf-8")
    summary = run_campaign(wh, loaded, as_of=MONDAY, channel=OutboxChannel(tmp_path / "out"))
    assert summary.failed == 1 and summary.sent == 0
    status, error = wh.execute("select status, error from messages").fetchall()[0]
    assert status == "failed" and error.startswith("render:") and "division by zero" in error
    run_row = wh.execute("select n_failed, status from campaign_runs").fetchall()[0]
    assert run_row == (1, "succeeded")


def test_an_unsubscribe_stops_mail_already_queued(wh, cohort, campaigns, tmp_path):
    campaigns.write(campaigns.base().replace("  per_learner_per_week: 2\n",
                                             "  per_learner_per_week: 2\n  quiet_hours: \"08:00-10:00\"\n"))
    lid = cohort.learner(inactive_days=8)
    loaded = campaigns.load()
    out = OutboxChannel(tmp_path / "out")
    summary = run_campaign(wh, loaded, as_of=MONDAY, channel=out)      # 09:00 Paris: deferred
    assert summary.totals["deferred"] == 1 and summary.sent == 0
    wh.execute("insert into suppressions values (?, 'test', 'unsubscribe', 'test', now())",
               [f"{lid.lower()}@example.org"]).fetchall()
    report = deliver_due(wh, loaded, out, now=MONDAY.replace(hour=12))
    assert report.sent == 0 and report.cancelled == 1
    assert wh.execute("select status, error from messages").fetchall() == [("cancelled", "unsubscribed")]
    assert not (tmp_path / "out").exists()


def test_a_failed_message_is_retried_by_the_next_delivery_then_left_failed(wh, cohort, campaigns, tmp_path):
    campaigns.write(campaigns.base())
    cohort.learner(inactive_days=8)
    loaded = campaigns.load()
    body = campaigns.root / "test" / "relance" / "fr" / "body.txt"
    good = body.read_text(encoding="utf-8")
    body.write_text("{{ 1 / 0 }}", encoding="utf-8")
    out = OutboxChannel(tmp_path / "out")
    assert run_campaign(wh, loaded, as_of=MONDAY, channel=out).failed == 1
    assert deliver_due(wh, loaded, out, now=MONDAY).failed == 1          # attempt 2
    body.write_text(good, encoding="utf-8")                                # the designer fixes it
    report = deliver_due(wh, loaded, out, now=MONDAY)                     # attempt 3
    assert report.sent == 1
    assert wh.execute("select status, attempts from messages").fetchall() == [("sent", 3)]
    assert deliver_due(wh, loaded, out, now=MONDAY).sent == 0              # never twice
    assert len(list((tmp_path / "out").rglob("*.eml"))) == 1


def test_attempts_are_bounded(wh, cohort, campaigns, tmp_path):
    campaigns.write(campaigns.base())
    cohort.learner(inactive_days=8)
    loaded = campaigns.load()
    (campaigns.root / "test" / "relance" / "fr" / "body.txt").write_text("{{ 1 / 0 }}", encoding="utf-8")
    out = OutboxChannel(tmp_path / "out")
    run_campaign(wh, loaded, as_of=MONDAY, channel=out)
    for _ in range(5):
        deliver_due(wh, loaded, out, now=MONDAY)
    status, attempts, error = wh.execute("select status, attempts, error from messages").fetchall()[0]
    assert (status, attempts) == ("failed", 3) and "ZeroDivisionError" in error


@pytest.mark.parametrize("window", [None, 1], ids=["one-window", "a-window-a-message"])
def test_deferred_messages_are_cancelled_if_the_learner_withdrew_or_came_back(
        wh, cohort, campaigns, tmp_path, monkeypatch, window):
    """Due messages are judged again before they go: one whose learner withdrew or came
    back is cancelled with its reason, one still wanted goes out. A delivery judges them a
    window at a time (memory that does not grow with the number due): with one message a
    window, the same verdicts, and no window's tables left behind."""
    from relance.delivery import deliver as deliver_module
    if window:
        monkeypatch.setattr(deliver_module, "CANCEL_WINDOW", window)
    campaigns.write(campaigns.base().replace(
        "  per_learner_per_week: 2\n", "  per_learner_per_week: 2\n  quiet_hours: \"20:00-08:00\"\n"))
    loaded = campaigns.load()
    left = cohort.learner(inactive_days=8, tz="America/Montreal")
    back = cohort.learner(inactive_days=8, tz="America/Montreal")
    stays = cohort.learner(inactive_days=8, tz="America/Montreal")
    out = OutboxChannel(tmp_path / "out")
    run_campaign(wh, loaded, as_of=MONDAY, channel=out)                 # 03:00 in Montréal: deferred
    wh.execute("update enrolments set status = 'withdrawn', withdrawn_at = ? where learner_id = ?",
               [MONDAY.replace(hour=10), left]).fetchall()
    cohort.event(back, None, "accessed", MONDAY.replace(hour=11))
    run_campaign(wh, loaded, as_of=MONDAY.replace(hour=12), channel=out)  # sees `back` active
    report = deliver_due(wh, loaded, out, now=MONDAY.replace(hour=14))
    assert report.sent == 1 and report.cancelled == 2
    assert dict(wh.execute("select learner_id, coalesce(error, status) from messages").fetchall()) == {
        left: "withdrawn", back: "stage_changed", stays: "sent"}
    assert wh.execute("select count(*) from duckdb_tables() where temporary "
                      "and table_name like 'cancel_%'").fetchall() == [(0,)]


def test_unicode_line_separators_in_names_cannot_break_a_message(wh, cohort, campaigns, tmp_path):
    campaigns.write(campaigns.base())
    cohort.learner(inactive_days=8, first_name="Zoé\u2028Bcc: x@example.org\u0085", last_name="L")
    summary = run_campaign(wh, campaigns.load(), as_of=MONDAY, channel=OutboxChannel(tmp_path / "out"))
    assert summary.sent == 1
    msg = read_eml(next((tmp_path / "out").rglob("*.eml")))
    assert msg["Bcc"] is None and "\u2028" not in msg["Subject"]


def test_the_ledger_keeps_the_subject_that_was_sent(wh, cohort, campaigns, tmp_path):
    """A bidi override (U+202E) is taken out of the subject sent: the ledger holds that
    subject, not the rendered one; a no-break space (French typography) stays in both."""
    campaigns.write(campaigns.base())
    cohort.learner(inactive_days=8, first_name="Zoé\u00a0Marie\u202e\u2028")
    run_campaign(wh, campaigns.load(), as_of=MONDAY, channel=OutboxChannel(tmp_path / "out"))
    msg = read_eml(next((tmp_path / "out").rglob("*.eml")))
    assert msg["Subject"] == "Bonjour Zoé\u00a0Marie — at_risk"
    assert wh.execute("select subject from messages").fetchall() == [(msg["Subject"],)]


def test_templates_get_exactly_the_documented_context(wh, cohort, campaigns, tmp_path):
    """The sample context `validate` renders with and the real one (context.sql) are the
    same shape, so a template that validates renders for real."""
    from relance.delivery import context_rows
    from relance.campaign.templates import CONTEXT_FIELDS, LIST_ITEM_FIELDS
    campaigns.write(campaigns.base())
    cohort.add_activity("a7", week=7, due=MONDAY + timedelta(days=3))
    lid = cohort.learner(inactive_days=8, done=1)
    wh.execute("insert into contributions values ('k1', ?, 'c1', 'forum_post', 'Astuce', null, ?, 3, true, 't', now())",
               [cohort.learner(inactive_days=1), MONDAY - timedelta(days=1)]).fetchall()
    run_campaign(wh, campaigns.load(), as_of=MONDAY, channel=OutboxChannel(tmp_path / "out"))
    message_id = wh.execute("select message_id from messages where learner_id = ?", [lid]).fetchall()[0][0]
    row = context_rows(wh, [message_id], "Europe/Paris")[0]
    for name in ("learner", "course", "progress", "last_week"):
        assert tuple(row[name]) == CONTEXT_FIELDS[name], name
    for name, fields in LIST_ITEM_FIELDS.items():
        assert row[name], name
        assert tuple(row[name][0]) == fields, name


def test_headers_stay_within_the_rfcs_and_bodies_as_written(wh, cohort, campaigns, tmp_path):
    campaigns.write(campaigns.base(), template_overrides={
        "relance/fr/subject.txt": "{{ 'x' * 1400 }} {{ learner.first_name }}",
        "relance/fr/body.txt": "From now on, une activité par jour."})
    cohort.learner(inactive_days=8, first_name="=?utf-8?q?Admin?=")
    run_campaign(wh, campaigns.load(), as_of=MONDAY, channel=OutboxChannel(tmp_path / "out"))
    raw = next((tmp_path / "out").rglob("*.eml")).read_bytes()
    head = raw.split(b"\r\n\r\n", 1)[0].decode()
    assert max(len(line) for line in head.split("\r\n")) <= 998
    assert all(len(word) <= 75 for word in re.findall(r"=\?[^ ]*?\?=", head))
    msg = read_eml(next((tmp_path / "out").rglob("*.eml")))
    assert msg["To"].addresses[0].display_name == "=?utf-8?q?Admin?= Lefèvre"   # shown as written
    assert msg["Subject"].endswith(" =?utf-8?q?Admin?=")
    assert msg.get_body(("plain",)).get_content().startswith("From now on")


def _to_name(raw: bytes) -> tuple[str, str]:
    """The To header's display name and address as RFC 5322 and RFC 2047 read them
    (unfolded; adjacent encoded words joined, as mail clients join them)."""
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    unfolded = re.sub(r"\r\n(?=[ \t])", "", head)
    to = next(h for h in unfolded.split("\r\n") if h.startswith("To: "))[4:]
    name, addr = parseaddr(to)
    return str(make_header(decode_header(name))), addr


@pytest.mark.parametrize("first_name", [
    "A" * 5000,                                      # one ASCII word: no space to fold at
    " ".join(["Zoe"] * 1250),                        # ASCII words
    "Lefevre, Zoe " + "(dite Zazou) " * 400 + "x",   # specials: a quoted string, folded
    " ".join(["Zoé"] * 1250),                        # not ASCII: encoded words
], ids=["ascii-word", "ascii-words", "quoted", "accents"])
def test_a_very_long_name_is_folded_within_the_line_limits_and_reads_back_whole(
        wh, cohort, campaigns, tmp_path, first_name):
    campaigns.write(campaigns.base())
    lid = cohort.learner(inactive_days=8, first_name=first_name, last_name="L")
    run_campaign(wh, campaigns.load(), as_of=MONDAY, channel=OutboxChannel(tmp_path / "out"))
    raw = next((tmp_path / "out").rglob("*.eml")).read_bytes()
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    assert max(len(line) for line in head.split("\r\n")) <= 998      # RFC 5322's limit
    # and its advice, for the fields that hold the name (the others hold single tokens: the
    # unsubscribe link is not folded, some clients would keep a space in it)
    fields = re.findall(r"^(?:To|Subject): [^\r\n]*(?:\r\n[ \t][^\r\n]*)*", head, re.M)
    assert len(fields) == 2 and max(len(x) for f in fields for x in f.split("\r\n")) <= 78
    assert _to_name(raw) == (f"{first_name} L", f"{lid.lower()}@example.org")


_NAME_CHARS = st.sampled_from('aZ09 ,;."\\()<>@:=?-\'é😀\u202e\t\u00a0')


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(alphabet=_NAME_CHARS, max_size=400),
                 st.builds(lambda head, n, tail: head + "A" * n + tail,
                           st.text(alphabet=_NAME_CHARS, max_size=20), st.integers(0, 3000),
                           st.text(alphabet=_NAME_CHARS, max_size=20))))
def test_any_name_or_subject_gives_lines_within_998_that_read_back_as_written(text):
    """Whatever a learner's name or a subject holds, every header line of the message
    stays within RFC 5322's limit and a mail client reads the name and subject back."""
    from datetime import datetime, timezone
    from relance.channels import OutgoingMessage
    from relance.channels.email import build, clean_text, to_bytes
    msg = OutgoingMessage("m1", "test", "zoe@example.org", text, "formation@example.org",
                          "Julie", None, text, "Bonjour\n", None, "https://relance.example/u",
                          "mailto:formation@example.org")
    raw = to_bytes(build(msg, date=datetime(2026, 11, 23, tzinfo=timezone.utc)))
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    assert max(len(line) for line in head.split("\r\n")) <= 998
    assert _to_name(raw) == (clean_text(text), "zoe@example.org")
    subject = re.search(r"^Subject: ([^\r\n]*(?:\r\n[ \t][^\r\n]*)*)", head, re.M).group(1)
    assert str(make_header(decode_header(re.sub(r"\r\n(?=[ \t])", "", subject)))) == clean_text(text)


def test_a_recap_shows_the_weeks_three_best_colleague_posts_never_the_learners_own(
        wh, cohort, campaigns, tmp_path):
    campaigns.write(campaigns.base(**{"to: [active, at_risk]":
                                      "to: [active, at_risk]\n    include: [colleagues_contributions]"}),
                    template_overrides={
                        f"recap/{loc}/body.txt": "{% for c in colleagues_contributions %}"
                                                 "{{ c.title }}|{% endfor %}"
                        for loc in ("fr", "en")})
    ana = cohort.learner(inactive_days=1, first_name="Ana")
    ben = cohort.learner(inactive_days=1, first_name="Ben")
    posts = [  # (author, title, replies, notable, days ago)
        (ana, "ana-notable", 1, True, 2), (ben, "ben-busy", 9, False, 1),
        (ben, "ben-quiet", 0, False, 3), (ana, "ana-busy", 5, False, 2),
        (ben, "ben-old-notable", 50, True, 9),          # last week's, not this one's
    ]
    for i, (author, title, replies, notable, ago) in enumerate(posts):
        wh.execute("insert into contributions (contribution_id, learner_id, course_id, title, "
                   "posted_at, n_replies, is_notable, source) values (?, ?, 'c1', ?, ?, ?, ?, 't')",
                   [f"k{i}", author, title, MONDAY - timedelta(days=ago), replies, notable]).fetchall()
    run_campaign(wh, campaigns.load(), as_of=MONDAY + timedelta(minutes=30),
                 channel=OutboxChannel(tmp_path / "out"))
    bodies = {}
    for path in (tmp_path / "out" / "test").glob("*.eml"):
        msg = read_eml(path)
        bodies[msg["To"].addresses[0].display_name.split()[0]] = \
            msg.get_body(("plain",)).get_content().strip()
    # notable first, then the most discussed; the learner's own posts left out
    assert bodies["Ana"].startswith("ben-busy|ben-quiet|")
    assert bodies["Ben"].startswith("ana-notable|ana-busy|")


def test_a_message_removed_from_the_file_after_planning_fails_alone_with_why(
        wh, cohort, campaigns, tmp_path):
    from relance.runs.steps import plan_step
    campaigns.write(campaigns.base())
    at_risk = cohort.learner(inactive_days=8)
    dormant = cohort.learner(inactive_days=30)
    plan_step(wh, campaigns.load(), MONDAY)
    # the designer deletes the dormant message before the deferred delivery goes out
    campaigns.write(campaigns.base(**{"  remobilisation:\n    on_enter: dormant\n": ""}))
    report = deliver_due(wh, campaigns.load(), OutboxChannel(tmp_path / "out"), now=MONDAY)
    rows = dict((r[0], r[1:]) for r in wh.execute(
        "select learner_id, status, error from messages").fetchall())
    assert rows[at_risk] == ("sent", None)
    assert rows[dormant][0] == "failed"
    assert "not in the campaign file any more: 'remobilisation'" in rows[dormant][1]
    assert report.sent == 1


def test_a_write_cut_short_never_leaves_a_file_that_looks_like_mail(
        wh, cohort, campaigns, tmp_path, monkeypatch):
    import os as _os
    import pytest
    campaigns.write(campaigns.base())
    cohort.learner(inactive_days=8)

    class Killed(BaseException):    # the process dies between writing and renaming
        pass

    def killed(src, dst):
        raise Killed()
    monkeypatch.setattr(_os, "replace", killed)
    with pytest.raises(Killed):
        run_campaign(wh, campaigns.load(), as_of=MONDAY, channel=OutboxChannel(tmp_path / "out"))
    assert list((tmp_path / "out").rglob("*.eml")) == []          # a mail reader sees nothing
    assert len(list((tmp_path / "out").rglob(".tmp-*.part"))) == 1  # the half-written file


def test_messages_showing_no_recap_section_get_the_same_context_without_those_tables(
        wh, cohort, campaigns, tmp_path):
    """A delivery's scope none of whose messages includes a recap section does not read
    what only those sections show (messages.scope): its messages' context is the whole
    context's but for those sections, none missing; one message that includes a section
    makes its tables again."""
    from relance.delivery.messages import context_rows, scope
    from relance.runs.steps import plan_step
    campaigns.write(campaigns.base())
    cohort.add_activity("a7", week=7, due=MONDAY + timedelta(days=3))
    cohort.learner(inactive_days=8, done=1)
    cohort.learner(inactive_days=30)
    cohort.learner(inactive_days=1)
    plan_step(wh, campaigns.load(), MONDAY)
    ids = [r[0] for r in wh.execute("select message_id from messages order by 1").fetchall()]
    assert len(ids) >= 2
    whole = context_rows(wh, ids, "Europe/Paris")           # every table made
    sections = {"last_week", "open_activities", "this_week", "colleagues_contributions"}
    skipped = scope(wh, "select message_id from messages", None, campaigns.load())
    assert skipped == {"ctx_messages", "ctx_weeks", "ctx_cohort_last_week",
                       "ctx_week_contributions", "ctx_course_contributions", "ctx_events"}
    narrow = context_rows(wh, ids, "Europe/Paris", scoped=True, skipped=skipped)
    assert [r["message_id"] for r in narrow] == ids
    assert [{k: v for k, v in r.items() if k not in sections} for r in narrow] == \
        [{k: v for k, v in r.items() if k not in sections} for r in whole]
    # a message that shows one of them: its tables are made
    campaigns.write(campaigns.base(**{"to: [active, at_risk]":
                                      "to: [active, at_risk]\n    include: [this_week]"}))
    assert scope(wh, "select message_id from messages", None, campaigns.load()) == {
        "ctx_messages", "ctx_cohort_last_week", "ctx_week_contributions",
        "ctx_course_contributions", "ctx_events"}
