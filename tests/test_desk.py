"""`relance desk` in a real headless Chromium: the login refusals, today's list, recording a
call with the keyboard only, and the whole loop — a learner goes silent, appears on their
community manager's list, the manager records a call in the desk, and the next run
respects it (issue 18)."""

from __future__ import annotations

import threading
from datetime import timedelta
from urllib.parse import quote

import pytest

import warehouse
from relance.desk import auth, server
from relance.runs.steps import run_campaign
from relance.team import teamfile
from tests.conftest import MONDAY, CampaignFolder, Cohort
from tests.team_fixtures import FOLLOW_UP, write_team
from tests.test_roi_report import CHROMIUM, CHROMIUM_ARGS

SECRET = b"a-test-secret-that-is-long-enough-for-the-desk-0123456789"
OPEN_AT = MONDAY + timedelta(hours=1)          # 10:00 in Paris, the desk's "now"


@pytest.fixture
def desk(tmp_path):
    """A warehouse where a campaign ran on Monday morning, and the desk serving it."""
    path = tmp_path / "relance.duckdb"
    con = warehouse.connect(path)
    cohort = Cohort(con)
    learners = {
        "silent": cohort.learner(inactive_days=24, first_name="Inès", last_name="Moreau"),
        "quiet": cohort.learner(inactive_days=9, first_name="Hugo", last_name="Petit"),
        "active": cohort.learner(inactive_days=1, first_name="Léa", last_name="Roux"),
        "hostile": cohort.learner(inactive_days=12, first_name="<script>alert(1)</script>",
                                  last_name="<b>x</b>"),
    }
    camp = CampaignFolder(tmp_path / "campaigns")
    camp.root.mkdir()
    camp.write(camp.base() + FOLLOW_UP)
    loaded = camp.load()
    run_campaign(con, loaded, as_of=MONDAY, outbox_dir=str(tmp_path / "outbox"))
    # everyone with Claire, but one learner whom Karim follows (by the data's column)
    con.execute("insert into learner_tutors values (?, 'karim@example.org', 'test', now())",
                [learners["quiet"]]).fetchall()
    con.close()
    write_team(camp.root, claire=10, karim=10)
    team = teamfile.load(_only_claire_by_rule(camp.root))
    holder = {}
    thread = threading.Thread(target=server.serve, args=(path, team, "127.0.0.1", 0), kwargs={
        "now": OPEN_AT, "secret": SECRET, "ready_server": lambda s: holder.setdefault("s", s)},
        daemon=True)
    thread.start()
    while "s" not in holder:
        pass
    base = f"http://127.0.0.1:{holder['s'].server_address[1]}"
    yield base, path, loaded, learners, tmp_path
    holder["s"].shutdown()
    thread.join(5)


def _only_claire_by_rule(root):
    path = root / "_team.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace(
        "to: [claire@example.org, karim@example.org]", "to: [claire@example.org]"),
        encoding="utf-8")
    return path


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright
    pw = sync_playwright().start()
    chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()
    pw.stop()


def _page(browser):
    page = browser.new_page()
    problems = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
    return page, problems


def _link(base, email="claire@example.org", **kw):
    return server.login_link(base, SECRET, email, **kw)


def test_the_desk_is_never_open(desk, browser):
    base, *_ = desk
    page, problems = _page(browser)
    answer = page.goto(base + "/")
    assert answer.status == 401
    assert "Ouvrez le lien de connexion reçu avec votre liste du jour." in page.inner_text("main")
    # a forged token: right shape, another secret
    forged = auth.issue(b"another-secret-another-secret-another-secret", "login",
                        "claire@example.org", 10, now=OPEN_AT)
    answer = page.goto(f"{base}/login?t={quote(forged)}")
    assert answer.status == 401 and "altéré" in page.inner_text("main")
    # a session token is not a login link, and the reverse
    session = auth.issue(SECRET, "session", "claire@example.org", 10, now=OPEN_AT)
    assert page.goto(f"{base}/login?t={quote(session)}").status == 401
    # expired on the desk's clock (issued two days before, for a day)
    expired = auth.issue(SECRET, "login", "claire@example.org", 24, now=OPEN_AT - timedelta(days=2))
    answer = page.goto(f"{base}/login?t={quote(expired)}")
    assert answer.status == 401 and "a expiré" in page.inner_text("main")
    # a valid link for someone no longer in the team file
    answer = page.goto(_link(base, "gone@example.org"))
    assert answer.status == 403
    # a cookie that is not a session
    page.context.add_cookies([{"name": "relance_desk", "value": "x.y", "url": base}])
    assert page.goto(base + "/").status == 401
    assert problems == []


def test_today_list_timeline_and_refusals_once_signed_in(desk, browser):
    base, path, loaded, learners, _ = desk
    page, problems = _page(browser)
    answer = page.goto(_link(base))
    assert answer.status == 200 and page.url == base + "/"
    main = page.inner_text("main")
    assert "Votre liste du lundi 23 novembre 2026" in main
    # most silent first; Karim's learner is not on Claire's list; the active one neither
    order = [main.index(n) for n in ("Inès Moreau", "<script>alert(1)</script> <b>x</b>")]
    assert order == sorted(order)
    assert "Hugo" not in main and "Léa" not in main
    assert "Silencieux depuis trois semaines : l'appeler." in main
    assert "remobilisation" in main                          # what relance already sent
    # hostile names are text, never markup
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.content()
    page.click("text=Ouvrir et noter un contact — Inès")
    assert "Historique" in page.inner_text("main") and "remobilisation" in page.inner_text("table")
    # another person's learner, and a form without its CSRF token
    assert page.goto(f"{base}/learner/{learners['quiet']}/c1").status == 403
    answer = page.request.post(f"{base}/learner/{learners['silent']}/c1/contact",
                               form={"channel": "phone", "outcome": "back_on_track"})
    assert answer.status == 403 and "Formulaire expiré" in answer.text()
    con = warehouse.connect(path)
    assert con.execute("select count(*) from follow_up_actions").fetchall()[0][0] == 0
    con.close()
    assert problems == []


def test_the_whole_loop_with_the_keyboard_only(desk, browser):
    """Silent learner -> on Claire's list -> Claire records a call (keyboard only) -> the
    next run sends them nothing, and says why."""
    base, path, loaded, learners, tmp_path = desk
    silent = learners["silent"]
    page, problems = _page(browser)
    page.goto(_link(base))
    target = "Ouvrir et noter un contact — Inès"
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent.trim()") == target:
            break
    else:
        pytest.fail("the learner's link cannot be reached with Tab")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/learner/{silent}/c1")
    focused = lambda: page.evaluate("document.activeElement.id || document.activeElement.tagName")
    while focused() != "channel":
        page.keyboard.press("Tab")
    page.keyboard.press("ArrowDown")                        # téléphone -> courriel
    page.keyboard.press("ArrowUp")                          # back to téléphone
    page.keyboard.press("Tab")
    assert focused() == "outcome"                           # reparti is the first outcome
    page.keyboard.press("Tab")
    assert focused() == "resume_on"
    for _ in range(6):                                      # a date input: its fields, its picker
        page.keyboard.press("Tab")
        if focused() == "note":
            break
    assert focused() == "note"
    page.keyboard.type("Appelée : reprend cette semaine <ok>")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/?done=recorded*")
    assert "Contact enregistré pour Inès Moreau." in page.inner_text("[role=status]")
    assert "Inès" not in page.inner_text("ol.list")       # off her list once called
    page.goto(f"{base}/learner/{silent}/c1")
    assert "Appelée : reprend cette semaine <ok> (claire@example.org)" in page.inner_text("table")
    assert problems == []

    con = warehouse.connect(path)
    assert con.execute("select actor_email, kind, channel, outcome, occurred_at, campaign_id "
                       "from follow_up_actions").fetchall() == [
        ("claire@example.org", "contact", "phone", "back_on_track", OPEN_AT, loaded.id)]
    # next Monday the campaign would write to her (still silent); it does not, and says why
    summary = run_campaign(con, loaded, as_of=MONDAY + timedelta(days=7),
                           outbox_dir=str(tmp_path / "outbox"))
    assert con.execute("select outcome, reason from decisions where run_id = ? and learner_id = ?",
                       [summary.run_id, silent]).fetchall() == [("suppressed", "recently_contacted")]
    assert con.execute("select count(*) from messages where learner_id = ? and planned_at > ?",
                       [silent, MONDAY]).fetchall()[0][0] == 0
    con.close()


def test_a_bad_form_is_refused_with_its_reason_and_a_snooze_is_recorded(desk, browser):
    base, path, loaded, learners, _ = desk
    page, problems = _page(browser)
    page.goto(_link(base))
    page.goto(f"{base}/learner/{learners['silent']}/c1")
    page.select_option("#outcome", "will_resume")
    page.click("text=Enregistrer")
    assert "Indiquez la date de reprise" in page.inner_text("[role=alert]")
    page.fill("#until", "2026-11-30")
    page.click("button:has-text('Mettre en attente')")
    assert "Inès Moreau en attente jusqu'au 2026-11-30." in page.inner_text("[role=status]")
    assert "Inès" not in page.inner_text("main").split("en attente")[1]
    con = warehouse.connect(path)
    assert con.execute("select kind, snooze_until::varchar from follow_up_actions").fetchall() == [
        ("snooze", "2026-11-30")]
    con.close()
    assert problems == []
