"""What the report says first, on hand-built cohorts: too early to tell (with the smallest
difference the groups could see), a clear gain, a clear loss; euros only as a range and
only once the interval excludes zero; cost per completion only once the course has ended.
Dropout as a Kaplan–Meier curve censored where it cannot be known yet, and each message's
effect against the control group, circular rows left out."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest

from relance.roi import report, stats
from relance.roi.costs import CostModel, Costs, CommunityManager
from tests.roi_fixtures import T0, Builder, day
from tests.test_roi_control import groups

COSTS = CostModel("EUR", Costs(cost_per_seat=500, value_per_completion=1000,
                               community_manager=CommunityManager(hours_per_learner=0.5,
                                                                  hourly_cost=40)),
                  {}, "test")


def page(b, campaign, locale="en"):
    import html
    rep = report.gather(b.con, campaign=campaign, costs=COSTS, locale=locale)
    return rep, html.unescape(report.render(rep))


def first_sentence(html: str) -> str:
    start = html.index('id="verdict">') + len('id="verdict">')
    import re
    return re.sub(r"[ \n\t]+", " ", html[start:html.index("</p>", start)]).strip()


def test_too_early_to_tell_says_how_small_a_difference_cannot_be_seen():
    b = Builder()
    groups(b, "camp", 40, 100, 38, 100)           # 40% against 38%: the interval holds zero
    rep, html = page(b, "camp")
    assert rep.verdict["case"] == "too_early"
    mde_completion = stats.mde(100, 100, 78 / 200)
    mde_dropout = stats.mde(100, 100, 0.0)        # nobody dropped out yet: one in 200
    assert first_sentence(html) == (
        "Too early to tell: with 100 learners treated and 100 in the control group, a "
        f"difference in completion smaller than {100 * mde_completion:.1f}\u00a0pts or in "
        f"dropout smaller than {100 * mde_dropout:.1f}\u00a0pts cannot be seen yet.")
    assert round(100 * mde_completion, 1) == 19.3
    # no euros while the interval contains zero, and no cost per completion mid-course
    assert 'data-kpi="net"' not in html and 'id="euros"' not in html
    assert "euros are shown, as a range, once the completion interval excludes zero" in html
    assert "Cost per completion: once the course has ended (March 30, 2026)" in html
    _, fr = page(b, "camp", "fr")
    assert first_sentence(fr).startswith(
        "Trop tôt pour conclure : avec 100 apprenants suivis et 100 dans le groupe témoin, une "
        "différence de complétion inférieure à 19,3\u00a0pts")


def test_a_clear_gain_comes_with_euros_as_a_range():
    b = Builder()
    groups(b, "camp", 56, 70, 48, 80)             # Newcombe's example: +5.2 to +33.4 points
    rep, html = page(b, "camp")
    assert rep.verdict["case"] == "clear_gain"
    assert first_sentence(html) == (
        "The campaign helps: completion is +20.0\u00a0pts with the campaign (95% interval "
        "+5.2\u00a0pts to +33.4\u00a0pts), 70 learners treated, 80 in the control group.")
    e = rep.estimate
    # 70 x (0.0524..0.3339) extra completions x 1000, less 70 x 0.5 h x 40
    assert e.net_low == pytest.approx(70 * e.extra_completions_low / 70 * 1000 - 1400)
    worth = html[html.index('id="worth"'):]
    worth = worth[:worth.index("</p>")]
    assert f"Worth between {rep.fmt.money(e.net_low)} and {rep.fmt.money(e.net_high)} net" in worth
    assert rep.fmt.money(e.net) not in html       # the point estimate alone is never shown
    assert 'id="euros"' in html


def test_a_clear_loss_is_said_as_plainly():
    b = Builder()
    groups(b, "camp", 30, 100, 60, 100)
    rep, html = page(b, "camp")
    assert rep.verdict["case"] == "clear_loss"
    assert first_sentence(html).startswith(
        "The campaign does harm: completion is \u221230.0\u00a0pts with the campaign")
    assert rep.estimate.net_high < 0 and "Worth between \u2212$" not in html
    assert f"Worth between {rep.fmt.money(rep.estimate.net_low)}" in html


def test_cost_per_completion_once_the_course_has_ended():
    b = Builder(clock=T0 + timedelta(weeks=13))    # the course ended after 12 weeks
    groups(b, "camp", 56, 70, 48, 80)
    rep, html = page(b, "camp")
    assert rep.course_ended
    e = rep.estimate
    assert (f"Cost per completion: {rep.fmt.money(e.cost_per_completion_treated)} with the "
            f"campaign, {rep.fmt.money(e.cost_per_completion_control)} without.") in html


def test_no_control_group_says_the_effect_cannot_be_measured():
    b = Builder()
    for i in range(40):
        b.decision("camp", b.learner(f"L{i}", events=(day(27),)), holdout=False)
    rep, html = page(b, "camp")
    assert rep.verdict["case"] == "no_control"
    assert first_sentence(html).startswith("No control group to compare with")


# -- dropout as a survival curve -------------------------------------------------------------

@pytest.fixture()
def followed():
    """Eight learners, the clock at course day 70 (16 March 2026, 09:00): dropouts are
    known up to day 49, so up to course week 7 (days 42-48).

    A withdrew day 10 (week 2)      B last seen day 3, silent since (week 1)
    C seen day 60: censored         D completed day 40: censored
    E last seen day 30 (week 5)     F enrolled day 22 (enters week 4), last seen day 45 (week 7)
    G enrolled day 50: after week 7, not followed yet
    H seen day 52, silent 18 days: not known to have dropped out, censored
    """
    b = Builder(clock=T0 + timedelta(days=70, hours=9))
    b.learner("A", status="withdrawn", withdrawn_at=day(10), events=(day(1),))
    b.learner("B", events=(day(3),))
    b.learner("C", events=(day(2), day(60)))
    b.learner("D", status="completed", completed_at=day(40), events=(day(1), day(39)))
    b.learner("E", events=(day(30),))
    b.learner("F", enrolled=day(22, 0), events=(day(45),))
    b.learner("G", enrolled=day(50, 0))
    b.learner("H", events=(day(1), day(52)))
    return b


def test_kaplan_meier_by_hand(followed):
    rows = {r[0]: r[1:] for r in followed.rows(
        "select course_week, at_risk, dropped_out, censored, survival, se from kpi_survival "
        "where campaign_id = '(all)' and cohort = '(all)' order by course_week")}
    assert sorted(rows) == list(range(1, 8))       # not drawn past the last known week
    assert {w: r[:3] for w, r in rows.items()} == {
        1: (6, 1, 0), 2: (5, 1, 0), 3: (4, 0, 0), 4: (5, 0, 0), 5: (5, 1, 0), 6: (4, 0, 0),
        7: (4, 1, 3)}
    s = {w: r[3] for w, r in rows.items()}
    assert s[1] == pytest.approx(5 / 6) and s[2] == pytest.approx(4 / 6)
    assert s[5] == pytest.approx(4 / 6 * 4 / 5) and s[7] == pytest.approx(4 / 6 * 4 / 5 * 3 / 4)
    # Greenwood: S(2)^2 x (1/(6x5) + 1/(5x4))
    assert rows[2][4] == pytest.approx(4 / 6 * math.sqrt(1 / 30 + 1 / 20))
    # the naive share (dropped out / enrolled) reads lower and flattens: H, C and G count as
    # staying though nothing can be known of them yet
    [(naive,)] = followed.rows("select dropout_share from kpi_dropout_curve where campaign_id = "
                               "'(all)' and course_week = 7")
    assert naive == 0.5 and 1 - s[7] == pytest.approx(0.6)


def test_the_page_states_where_the_curve_stops_and_one_definition(followed):
    b = followed
    for lid in "ABCDEFGH":
        b.decision("camp", lid, holdout=lid in "GH", as_of=day(70, 8),
                   stage="dormant" if lid in "BEF" else "active")
        b.con.execute("insert into stage_state values ('camp', ?, 'c1', ?, ?, ?, 0, ?)",
                      [lid, "dormant" if lid in "BEF" else ("withdrawn" if lid == "A" else "active"),
                       day(1), day(1), "camp-20260316"]).fetchall()
    rep, html = page(b, "camp")
    assert rep.survival_week == 7
    assert "the curve stops at course week 7" in html
    assert "no activity for 21 days or more — the stages' rule (inactive_days ≥ 21)" in html
    # the 4 dropouts, by the stage each is in: 3 dormant, 1 who withdrew
    assert "The 4 who dropped out are 3 in stage dormant, 1 who withdrew" in html


# -- each message against the control group -------------------------------------------------

@pytest.fixture(scope="module")
def messages():
    """At a run on day 14, 'recap' is proposed to 60 active treated learners (45 come back
    within 7 days) and 40 of the control group (12 do); 'remobilisation' to 30 and 10 learners
    silent for 25 days (all dropped out when proposed), of whom 3 and 1 come back."""
    b = Builder()
    run = day(14, 8)
    for group, n, back in (("t", 60, 45), ("c", 40, 12)):
        for i in range(n):
            lid = b.learner(f"r{group}{i:02d}", events=(day(13),) + ((day(16),) if i < back else ()))
            b.decision("camp", lid, holdout=group == "c", as_of=run, stage="active", inactive_days=1)
            b.candidate("camp", lid, "recap", holdout=group == "c", as_of=run)
    for group, n, back in (("t", 30, 3), ("c", 10, 1)):
        for i in range(n):
            lid = b.learner(f"d{group}{i:02d}", enrolled=day(-20, 0),
                            events=((day(-11),) + ((day(15),) if i < back else ())))
            b.decision("camp", lid, holdout=group == "c", as_of=run, stage="dormant",
                       inactive_days=25)
            b.candidate("camp", lid, "remobilisation", holdout=group == "c", as_of=run)
    b.message("m1", "camp", "rt00", not_before=day(14, 9), key="recap")
    return b


def test_reengagement_is_compared_with_the_control_group_in_the_same_stage(messages):
    rows = {(r[0], r[1]): r[2:] for r in messages.rows(
        "select message_key, stage, n_treated, k_treated, n_control, k_control, verdict, "
        "all_dropped_out from kpi_message_effects where campaign_id = 'camp'")}
    assert rows[("recap", "active")] == (60, 45, 40, 12, "higher_with_campaign", False)
    assert rows[("remobilisation", "(all)")][:4] == (30, 3, 10, 1)
    assert rows[("remobilisation", "(all)")][-1] is True
    from tests.test_roi_control import newcombe
    [(low, high)] = messages.rows("select ci_low, ci_high from kpi_message_effects where "
                                  "message_key = 'recap' and stage = '(all)'")
    assert (low, high) == pytest.approx(newcombe(45, 60, 12, 40))


def test_circular_rows_are_left_out_with_their_reason_and_many_rows_get_holm(messages):
    rep, html = page(messages, "camp")
    assert rep.left_out == [{"message_key": "remobilisation", "reason": "circular_dropout"}]
    assert ('remobilisation: dropout, because every learner it was proposed to had already '
            'dropped out') in html
    assert 'data-kpi="control:remobilisation:dropout"' not in html
    assert 'data-kpi="control:remobilisation:completion"' in html
    effects = {e["message_key"]: e for e in rep.message_effects}
    recap = effects["recap"]
    assert recap["verdict"] == "higher_with_campaign"
    # p of 45/60 against 12/40, Holm-adjusted over the comparisons read on the page
    # the only comparison with enough learners: no correction to make, none announced
    assert rep.extra["holm_m"] == 1 and recap["p_holm"] == recap["p_value"]
    assert "Holm" not in html
    # the description of activity after a message is labelled as no comparison
    assert "active within 7 days (no comparison)" in html


def test_a_lone_better_among_many_is_not_taken_for_an_effect():
    """Ten messages with no effect and one with p = 0.02: uncorrected it reads "better";
    after Holm (0.02 x 11 = 0.22) it does not."""
    b = Builder()
    run = day(14, 8)
    b.decision("camp", b.learner("seed"), holdout=False, as_of=run)     # the run itself
    # 2,200 learners in one statement per table: msg00's treated come back 56 in 100, every
    # other group 40 in 100
    b.rows("""
        create temp table crowd as
        select 'msg' || lpad(m::varchar, 2, '0') as message_key, g = 'c' as holdout,
               'm' || m || g || lpad(i::varchar, 3, '0') as learner_id,
               i < case when m = 0 and g = 't' then 56 else 40 end as back
        from range(11) r(m), (values ('t'), ('c')) v(g), range(100) s(i)""")
    b.rows("insert into learners select learner_id, learner_id || '@example.org', 'Zoé', "
           "'Lefèvre', 'fr', 'Europe/Paris', null, 'test', now() from crowd")
    b.rows("insert into enrolments select learner_id, 'c1', '2026-01', ?, 'enrolled', null, null, "
           "'test', now() from crowd", [day(0, 0)])
    b.rows("insert into progress_events select learner_id || '-a', learner_id, 'c1', null, "
           "'accessed', ?, null, 'test', now() from crowd", [day(13)])
    b.rows("insert into progress_events select learner_id || '-b', learner_id, 'c1', null, "
           "'accessed', ?, null, 'test', now() from crowd where back", [day(16)])
    b.rows("insert into decisions (run_id, campaign_id, learner_id, course_id, as_of, stage, "
           "inactive_days, is_holdout, outcome) select 'camp-20260119', 'camp', learner_id, "
           "'c1', ?, 'active', 1, holdout, 'no_message' from crowd", [run])
    b.rows("insert into candidates select 'camp-20260119', 'camp', learner_id, 'c1', message_key, "
           "'every', 'camp/' || message_key || '/' || learner_id, null, "
           "case when holdout then 'suppressed' else 'planned' end, "
           "case when holdout then 'holdout' end from crowd")
    rep, html = page(b, "camp")
    first = next(e for e in rep.message_effects if e["message_key"] == "msg00")
    assert first["p_value"] < 0.05 and first["verdict_uncorrected"] == "higher_with_campaign"
    assert first["verdict"] == "no_clear_difference" and first["p_holm"] > 0.05
    assert rep.extra["holm_m"] >= 11
    assert f"{rep.extra['holm_m']} comparisons are read at once: their verdicts use Holm's" in html
    row = html[html.index('data-kpi="effect:msg00"'):]
    assert 'data-verdict="no_clear_difference"' in row[:row.index(">")]


def test_the_reader_language_by_default():
    b = Builder()
    for i in range(3):
        b.decision("camp", b.learner(f"F{i}"), holdout=False)          # French learners
    b.con.execute("insert into learners values ('E0', 'e0@example.org', 'Ann', 'Lee', 'en-GB', "
                  "'Europe/London', null, 'test', now())").fetchall()
    # the team's locale first (what managers and tutors read), then the learners' majority
    assert report.default_locale(b.con, campaign="camp", team_locale="en") == "en"
    assert report.default_locale(b.con, campaign="camp") == "fr"
    b.rows("update learners set locale = 'en-GB'")
    assert report.default_locale(b.con, campaign="camp") == "en"
    # a locale the report has no words for falls back to the learners' majority
    assert report.default_locale(b.con, campaign="camp", team_locale="de") == "en"


def test_reengagement_is_timed_from_when_the_message_could_first_go_out():
    """Proposed by Monday's run (day 14, 08:00) but held by the send window until
    Wednesday 09:00 (day 16): activity on Tuesday came before any message could have, and
    does not count; activity the next Monday (day 22: 8 days after the run, 6 after the
    window) does. Both groups are timed alike (a control learner keeps the moment it
    would have gone)."""
    b = Builder()
    run, window = day(14, 8), day(16, 9)
    for group, tuesday, monday in (("t", 10, 30), ("c", 8, 12)):
        for i in range(tuesday + monday):
            when = day(15) if i < tuesday else day(22)
            lid = b.learner(f"w{group}{i:02d}", events=(day(13), when))
            b.decision("camp", lid, holdout=group == "c", as_of=run, stage="at_risk",
                       inactive_days=8)
            b.candidate("camp", lid, "relance", holdout=group == "c", as_of=run,
                        not_before=window)
    [row] = b.rows("select n_treated, k_treated, n_control, k_control from kpi_message_effects "
                   "where campaign_id = 'camp' and stage = '(all)'")
    assert row == (40, 30, 20, 12)          # from the run it would have been 10 and 8
    # a candidate without a moment of its own (refused for another reason) is timed from
    # its run: day 15 is then within 7 days
    b.rows("update candidates set not_before = null")
    [row] = b.rows("select k_treated, k_control from kpi_message_effects "
                   "where campaign_id = 'camp' and stage = '(all)'")
    assert row == (10, 8)


def test_a_control_learner_keeps_the_moment_its_message_would_have_gone(wh, cohort, campaigns,
                                                                        tmp_path):
    from relance.channels.outbox import OutboxChannel
    from relance.runs.steps import run_campaign
    from tests.conftest import MONDAY
    campaigns.write(campaigns.base(**{"control_group: 0%": "control_group: 50%"}))
    for _ in range(60):
        cohort.learner(inactive_days=8)
    run_campaign(wh, campaigns.load(), as_of=MONDAY, channel=OutboxChannel(tmp_path / "out"))
    held = wh.execute("select count(*), count(not_before), min(not_before), max(not_before) "
                      "from candidates where message_key = 'relance' and reason = 'holdout'"
                      ).fetchall()[0]
    going = wh.execute("select count(*), count(not_before), min(not_before), max(not_before) "
                       "from candidates where message_key = 'relance' "
                       "and outcome in ('planned', 'deferred')").fetchall()[0]
    assert held[0] > 10 and going[0] > 10
    assert held[1] == held[0] and going[1] == going[0]
    assert held[2:] == going[2:]            # the same moment for both groups
