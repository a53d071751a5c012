"""Test and learn: message variants drawn stably per learner, sent with their own
templates, and compared on opens, clicks, re-engagement and completion."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

import pytest

from relance.channels.outbox import OutboxChannel
from relance.campaign.problems import CampaignError
from relance.runs.steps import run_campaign
from tests.conftest import MONDAY
from tests.roi_fixtures import Builder, day

VARIANTS = """\
  relance:
    on_enter: at_risk
    variants:
      court: {share: 30%}
      long: {share: 70%}
"""


def variant_campaign(campaigns):
    text = campaigns.base(**{"  relance:\n    on_enter: at_risk\n": VARIANTS})
    return campaigns.write(text, template_overrides={
        "relance/variants/court/fr/subject.txt": "Court : {{ learner.first_name }}",
        "relance/variants/court/en/subject.txt": "Short: {{ learner.first_name }}"})


def test_each_learner_gets_a_stable_variant_with_its_own_subject(wh, cohort, campaigns, tmp_path):
    variant_campaign(campaigns)
    for _ in range(200):
        cohort.learner(inactive_days=8)
    run_campaign(wh, campaigns.load(), as_of=MONDAY, channel=OutboxChannel(tmp_path / "out"))
    rows = wh.execute("select learner_id, variant, subject from messages "
                      "where message_key = 'relance'").fetchall()
    assert len(rows) == 200
    short = [r for r in rows if r[1] == "court"]
    assert 40 <= len(short) <= 80                   # 30% of 200, give or take the draw
    assert {r[1] for r in rows} == {"court", "long"}
    # the short variant overrides the subject only; the long one is the message's own
    assert all(s.startswith("Court : ") for _, v, s in rows if v == "court")
    assert all(s.startswith("Bonjour ") for _, v, s in rows if v == "long")
    # the draw is stable: the same learner and message get the same variant next time
    import hashlib
    for lid, variant, _ in rows[:20]:
        draw = int(hashlib.md5(f"test:relance:{lid}".encode()).hexdigest()[:8], 16) / 2**32 * 100
        assert variant == ("court" if draw < 30 else "long")


def test_shares_must_sum_to_100_percent(campaigns):
    text = campaigns.base(**{"  relance:\n    on_enter: at_risk\n": VARIANTS.replace("70%", "60%")})
    campaigns.write(text)
    with pytest.raises(CampaignError, match="shares sum to 100% .found 2, summing to 90%"):
        campaigns.load()


def test_variants_are_compared_with_the_others():
    b = Builder()
    # 60 messages of each variant; A opened 45 times, B 24; A's learners came back 40
    # times within 7 days, B's 38 times
    for v, opened, back in (("a", 45, 40), ("b", 24, 38)):
        for i in range(60):
            lid = b.learner(f"{v}{i:02d}", events=(day(9),) if i < back else (day(1),))
            b.message(f"m{v}{i}", "camp", lid, not_before=day(8), key="relance",
                      events=("delivered", "open") if i < opened else ("delivered",))
            b.rows("update messages set variant = ? where message_id = ?", [v, f"m{v}{i}"])
    rows = {(r[0], r[1]): r[2:] for r in b.rows(
        "select variant, metric, n, k, n_rest, k_rest, ci_low, ci_high, verdict "
        "from kpi_variants where campaign_id = 'camp'")}
    from tests.test_roi_control import newcombe
    n, k, n_rest, k_rest, low, high, verdict = rows[("a", "opened")]
    assert (n, k, n_rest, k_rest) == (60, 45, 60, 24)
    assert (low, high) == pytest.approx(newcombe(45, 60, 24, 60))
    assert verdict == "winner" and rows[("b", "opened")][-1] == "behind"
    assert rows[("a", "reengaged_7d")][-1] == "no_clear_difference"
    assert rows[("a", "clicked")][-1] == "too_early"     # nobody clicked: too early to tell


def test_the_report_says_which_variant_wins(tmp_path):
    from relance.roi import report
    b = Builder()
    for v, opened in (("a", 45), ("b", 24)):
        for i in range(60):
            lid = b.learner(f"{v}{i:02d}", events=(day(9),))
            b.decision("camp", lid, holdout=False)
            b.message(f"m{v}{i}", "camp", lid, not_before=day(8), key="relance",
                      events=("delivered", "open") if i < opened else ("delivered",))
            b.rows("update messages set variant = ? where message_id = ?", [v, f"m{v}{i}"])
    html = report.render(report.gather(b.con, campaign="camp", locale="en"))
    assert "a wins on opened" in html
    assert 'data-kpi="variant:relance:b:opened"' in html and "behind the others" in html
    # the learners are French: so is the page by default, verdicts and headers included
    fr = unescape(report.render(report.gather(b.con, campaign="camp")))
    assert "a l'emporte en ouverture" in fr and "derrière les autres" in fr
    assert "<th>variante</th><th>mesure</th>" in fr
    section = fr[fr.index('<section id="variants"'):]
    section = section[:section.index("</section>")]
    text = re.sub(r"<[^>]+>", " ", section)          # what the reader sees
    assert not [w for w in ("wins", "winner", "behind", "variant", "metric", "others", "opened",
                            "rate", "too early", "no clear") if re.search(rf"\b{w}\b", text)]


def _race(opened_a: int, opened_b: int):
    """Two variants, 60 learners each: a opened `opened_a` times, b `opened_b`, both 12
    clicks, both 30 learners back within 7 days: three comparisons read at once."""
    b = Builder()
    for v, opened in (("a", opened_a), ("b", opened_b)):
        for i in range(60):
            lid = b.learner(f"{v}{i:02d}", events=(day(9),) if i < 30 else (day(1),))
            b.decision("camp", lid, holdout=False)
            events = ("delivered",) + (("open",) if i < opened else ()) + (("click",) if i < 12 else ())
            b.message(f"m{v}{i}", "camp", lid, not_before=day(8), key="relance", events=events)
            b.rows("update messages set variant = ? where message_id = ?", [v, f"m{v}{i}"])
    return b


def test_a_lead_that_does_not_survive_holm_is_no_winner():
    from relance.roi import report, stats
    b = _race(36, 24)                               # p = 0.028 alone
    [(verdict,)] = b.rows("select verdict from kpi_variants where campaign_id = 'camp' "
                          "and variant = 'a' and metric = 'opened'")
    assert verdict == "winner"                      # alone, the interval excludes zero
    r = report.gather(b.con, campaign="camp", locale="en")
    rows = {(v["variant"], v["metric"]): v for v in r.variants}
    p = stats.p_value(36, 60, 24, 60)
    assert p == pytest.approx(0.0277, abs=1e-3)
    # three comparisons (a against b is b against a: counted once; completion too early)
    assert r.extra["variants_holm_m"] == 3
    assert rows[("a", "opened")]["p_holm"] == pytest.approx(3 * p)
    assert rows[("b", "opened")]["p_holm"] == pytest.approx(3 * p)
    assert rows[("a", "opened")]["verdict"] == "no_clear_difference"
    assert rows[("b", "opened")]["verdict"] == "no_clear_difference"
    html = report.render(r)
    assert "a wins on opened" not in html and "no winner yet." in html
    assert 'data-kpi="variant:relance:a:opened"' in html and f"{3 * p:.3f}" in html
    assert "3 comparisons of variants are read at once" in html


def test_a_clear_winner_survives_holm():
    from relance.roi import report
    b = _race(45, 20)
    r = report.gather(b.con, campaign="camp", locale="fr")
    rows = {(v["variant"], v["metric"]): v for v in r.variants}
    assert rows[("a", "opened")]["p_holm"] < 0.05 and rows[("a", "opened")]["verdict"] == "winner"
    html = unescape(report.render(r))
    assert "a l'emporte en ouverture" in html and "derrière les autres" in html
