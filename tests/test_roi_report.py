"""`relance report` in a real headless Chromium, `relance export`, and the cost model."""

from __future__ import annotations


import duckdb
import pytest
from typer.testing import CliRunner

import warehouse
from relance.cli.main import app
from tests.roi_fixtures import Builder, day
from tests.test_roi_control import groups

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]

COSTS = """\
currency: EUR
default:
  cost_per_seat: 500
  value_per_completion: 1000
  community_manager: {hours_per_learner: 0.5, hourly_cost: 40}
  cost_per_message: 0.01
campaigns:
  other: {value_per_completion: 10}
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory, request):
    root = tmp_path_factory.mktemp("report")
    path = root / "relance.duckdb"
    if request.config.getoption("--warehouse") == "shared":
        # the same report from a shared warehouse: a database of its own in PostgreSQL
        path = request.getfixturevalue("postgres_server").fresh_database()
    con = warehouse.connect(path)
    b = Builder(con)
    b.activity("exam", kind="exam")
    groups(b, "camp", 56, 70, 48, 80, message="relance")
    for i, lid in enumerate(["camp-t000", "camp-t001", "camp-t060", "camp-c000"]):
        b.message(f"m{i}", "camp", lid, not_before=day(3 + i), events=("delivered", "open"))
    b.decision("camp", "camp-t000", holdout=False, as_of=day(21, 8), stage="at_risk", inactive_days=9)
    con.close()
    campaigns = root / "campaigns"
    campaigns.mkdir()
    (campaigns / "_costs.yaml").write_text(COSTS, encoding="utf-8")
    out = root / "out" / "camp.html"
    result = CliRunner().invoke(app, ["report", "camp", "--warehouse", str(path), "--campaigns",
                                      str(campaigns), "--output", str(out), "--pdf"])
    assert result.exit_code == 0, result.output
    english = CliRunner().invoke(app, ["report", "camp", "--warehouse", str(path), "--campaigns",
                                       str(campaigns), "--output", str(root / "en" / "camp.html"),
                                       "--locale", "en", "--pdf"])
    assert english.exit_code == 0, english.output
    return root, path, out, result.output


def _browser_page(url: str):
    from playwright.sync_api import sync_playwright
    pw = sync_playwright().start()
    browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    page = browser.new_page()
    problems = []
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    # the page must need nothing from any network
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file:")
               else (problems.append(f"network request: {route.request.url}"), route.abort())[1])
    page.goto(url)
    return pw, browser, page, problems


@pytest.fixture(scope="module", params=["fr", "en"])
def page(built, request):
    root, _path, out, _ = built
    html = out if request.param == "fr" else root / "en" / "camp.html"
    pw, browser, page, problems = _browser_page(html.resolve().as_uri())
    yield page, problems
    browser.close()
    pw.stop()


# What the page says in each language (its learners are French: French by default).
WORDS = {"fr": {"higher": "plus élevé avec la campagne", "to": "à", "pct": lambda x: f"{x:.1f}\u00a0%".replace(".", ","),
                "pts": lambda x: f"{x:+.1f}\u00a0pts".replace(".", ",").replace("-", "\u2212"),
                "value": "valeur d'un parcours terminé : 1\u202f000\u00a0€",
                "cm": "animateur de communauté : 0,50 h par apprenant suivi à 40\u00a0€/h"},
         "en": {"higher": "higher with the campaign", "to": "to", "pct": lambda x: f"{x:.1f}%",
                "pts": lambda x: f"{x:+.1f}\u00a0pts".replace("-", "\u2212"),
                "value": "value of a completion: €1,000",
                "cm": "community manager: 0.50 h per treated learner at €40/h"}}


def _lang(page) -> str:
    return page.get_attribute("html", "lang")


def test_report_renders_offline_without_console_errors_and_every_chart(page, built):
    page, problems = page
    assert problems == []
    charts = page.eval_on_selector_all("figure[data-chart]", "els => els.map(e => [e.dataset.chart, "
                                       "e.querySelectorAll('svg path, svg rect').length])")
    assert [c[0] for c in charts] == ["weekly-active", "survival", "funnel", "messages"]
    assert all(n > 5 for _, n in charts)          # drawn, not empty placeholders
    _root, _path, out, _ = built
    for key, _ in charts:                          # and exported as PNG beside the page
        png = out.parent / f"camp-{key}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_numbers_on_the_page_equal_the_warehouse(page, built):
    page, _ = page
    _root, path, _out, _ = built
    con = warehouse.connect(path, read_only=True)
    [(enrolled, completion, dropout)] = con.execute(
        "select enrolled, completion_rate, dropout_rate from kpi_cohorts where campaign_id = 'camp'").fetchall()
    shown = dict(page.eval_on_selector_all(
        "[data-kpi]", "els => els.map(e => [e.dataset.kpi, e.dataset.value || null])"))
    assert int(shown["enrolled"]) == enrolled == 150
    assert round(float(shown["completion_rate"]), 4) == completion == round(104 / 150, 4)
    assert float(shown["dropout_rate"]) == dropout == 0
    w = WORDS[_lang(page)]
    assert page.inner_text("[data-kpi=completion_rate] .v") == w["pct"](100 * 104 / 150)
    [(diff, low, high)] = con.execute(
        "select difference, ci_low, ci_high from kpi_control where campaign_id = 'camp' "
        "and message_key = '(campaign)' and outcome = 'completion'").fetchall()
    row = page.locator("[data-kpi='control:(campaign):completion']")
    assert float(row.get_attribute("data-diff")) == pytest.approx(diff)
    assert float(row.get_attribute("data-low")) == pytest.approx(low)
    assert float(row.get_attribute("data-high")) == pytest.approx(high)
    assert f"{w['pts'](100 * low)} {w['to']} {w['pts'](100 * high)}" in row.inner_text()
    assert w["higher"] in row.inner_text()
    msg = page.locator("[data-kpi='control:relance:completion']")
    assert msg.count() == 1
    [(sent,)] = con.execute("select sum(sent) from kpi_messages where campaign_id = 'camp' "
                            "and message_key = 'relance'").fetchall()
    assert int(page.locator("[data-kpi='messages:relance']").get_attribute("data-sent")) == sent == 4
    # the pooled estimate, the planning figures and the survival curve's last week
    [(pooled, p_low, p_high)] = con.execute(
        "select pooled, ci_low, ci_high from kpi_pooled where campaign_id = 'camp' "
        "and outcome = 'completion'").fetchall()
    row = page.locator("[data-kpi='pooled:completion']")
    assert float(row.get_attribute("data-pooled")) == pytest.approx(pooled)
    assert (float(row.get_attribute("data-low")), float(row.get_attribute("data-high"))) == (
        pytest.approx(p_low), pytest.approx(p_high))
    from relance.roi import stats
    assert float(page.locator("[data-kpi='plan:completion']").get_attribute("data-mde")) == \
        pytest.approx(stats.mde(70, 80, 104 / 150))
    [(last_week,)] = con.execute("select max(course_week) from kpi_survival where campaign_id = "
                                 "'camp' and cohort = '(all)'").fetchall()
    assert int(page.get_attribute("#survival-note", "data-week")) == last_week
    [(e_diff,)] = con.execute("select difference from kpi_message_effects where campaign_id = "
                              "'camp' and message_key = 'relance' and stage = '(all)'").fetchall()
    shown = page.get_attribute("[data-kpi='effect:relance']", "data-diff")
    assert (shown == "None" and e_diff is None) or float(shown) == pytest.approx(e_diff)
    con.close()


def test_euro_estimate_is_printed_with_its_assumptions(built, page):
    _root, _path, _out, output = built
    page, _ = page
    # +0.2 x 70 treated = 14 extra completions x 1000 EUR, less 70 x 0.5 h x 40 EUR + 4 x 0.01;
    # the interval excludes zero, so euros appear, as a range only
    net = 14 * 1000 - (70 * 0.5 * 40 + 4 * 0.01)
    worth = page.locator("[data-kpi=net]")
    assert float(worth.get_attribute("data-value")) == pytest.approx(net)
    low, high = float(worth.get_attribute("data-low")), float(worth.get_attribute("data-high"))
    assert low < net < high
    text = page.inner_text("#euros")
    w = WORDS[_lang(page)]
    assert w["value"] in text and w["cm"] in text
    # the course has not ended (12 weeks from 5 January): no cost per completion yet
    assert page.get_attribute("#cost-per-completion", "class") == "sub"
    assert "value of a completion: 1,000 EUR" in output and "net" in output


def test_a_cohort_report_and_a_clear_error_for_an_unknown_campaign(built):
    root, path, _out, _ = built
    out = root / "out" / "cohort.html"
    result = CliRunner().invoke(app, ["report", "--cohort", "2026-01", "--warehouse", str(path),
                                      "--campaigns", str(root / "campaigns"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "Cohorte 2026-01" in out.read_text(encoding="utf-8")
    result = CliRunner().invoke(app, ["report", "nope", "--warehouse", str(path),
                                      "--campaigns", str(root / "campaigns"), "-o", str(out)])
    assert result.exit_code == 1
    assert "campaign 'nope' has no run or backtest in this warehouse; campaigns with some: camp" \
        in result.output


def test_a_mistake_in_the_cost_file_is_located(tmp_path):
    from relance.campaign.problems import CampaignError
    from relance.roi.costs import load_costs
    (tmp_path / "_costs.yaml").write_text(COSTS.replace("hourly_cost: 40", "hourly_cost: -4")
                                          .replace("other: {value_per_completion: 10}",
                                                   "other: {value_per_completon: 10}"))
    with pytest.raises(CampaignError) as info:
        load_costs(tmp_path)
    text = str(info.value)
    assert f"{tmp_path}/_costs.yaml:5: default.community_manager.hourly_cost: Input should be greater than or equal to 0" in text
    assert f"{tmp_path}/_costs.yaml:8: campaigns.other.value_per_completon: Extra inputs are not permitted" in text
    assert text.count("hourly_cost") == 1


def test_export_writes_every_kpi_view(built, tmp_path):
    _root, path, _out, _ = built
    result = CliRunner().invoke(app, ["export", str(tmp_path / "x"), "--format", "parquet",
                                      "--warehouse", str(path)])
    assert result.exit_code == 0, result.output
    con = duckdb.connect()
    files = sorted(p.name for p in (tmp_path / "x").iterdir())
    assert "kpi_control.parquet" in files and "kpi_cohorts.parquet" in files
    [(n,)] = con.execute(f"select count(*) from '{tmp_path}/x/kpi_control.parquet' "
                         "where campaign_id = 'camp'").fetchall()
    assert n == 4   # (campaign) and relance, completion and dropout
    result = CliRunner().invoke(app, ["export", str(tmp_path / "y"), "--format", "csv",
                                      "--view", "kpi_cohorts", "--view", "nope",
                                      "--warehouse", str(path)])
    assert result.exit_code == 1 and "not a KPI view: nope" in result.output


def test_the_pdf_of_each_language_is_printed_with_the_page_text(built):
    """--pdf prints the page with headless Chromium: an A4 PDF whose text is the report's."""
    from pypdf import PdfReader
    root, _path, out, _ = built
    for pdf, words in ((out.with_suffix(".pdf"), ("Effet mesuré contre le groupe témoin",
                                                  "Abandon au fil du cours")),
                       (root / "en" / "camp.pdf", ("Effect against the control group",
                                                   "Dropout over the course"))):
        reader = PdfReader(pdf)
        assert 2 <= len(reader.pages) <= 8, len(reader.pages)
        width, height = (float(x) for x in reader.pages[0].mediabox[2:])
        assert (round(width), round(height)) == (595, 842)          # A4 in points
        text = " ".join(p.extract_text() for p in reader.pages)
        import unicodedata                      # the PDF's text has ligatures (ﬀ, ﬁ)
        flat = " ".join(unicodedata.normalize("NFKC", text).split())
        for word in words:
            assert word in flat, word
        assert "1 / " in flat                                       # page numbers in the footer


def test_the_page_says_the_same_in_french_and_english(built):
    root, _path, out, _ = built
    fr = out.read_text(encoding="utf-8")
    en = (root / "en" / "camp.html").read_text(encoding="utf-8")
    assert '<html lang="fr">' in fr and '<html lang="en">' in en
    # the same figures, marked for the same views, in both
    import re
    kpis = lambda html: sorted(re.findall(r'data-kpi="([^"]+)"', html))   # noqa: E731
    assert kpis(fr) == kpis(en)
    # the course's title, not its id, heads the page
    assert "<h1>Cours — cohorte 2026-01</h1>" in fr and "<h1>Cours — cohort 2026-01</h1>" in en


def test_an_unknown_locale_is_refused_with_the_ones_there_are(built):
    root, path, _out, _ = built
    result = CliRunner().invoke(app, ["report", "camp", "--warehouse", str(path), "--campaigns",
                                      str(root / "campaigns"), "--locale", "de"])
    assert result.exit_code == 1
    assert "--locale de: the report is written in fr and en" in result.output


def test_the_catalogues_have_the_same_keys_and_placeholders():
    import string
    from relance.roi.i18n import STRINGS
    assert STRINGS["fr"].keys() == STRINGS["en"].keys()
    fields = lambda s: {f for _, f, _, _ in string.Formatter().parse(s) if f}   # noqa: E731
    for key in STRINGS["en"]:
        assert fields(STRINGS["fr"][key]) == fields(STRINGS["en"][key]), key


def test_one_number_format_per_locale():
    from relance.roi.i18n import Fmt
    fr, en = Fmt("fr"), Fmt("en")
    assert fr.money(-15622) == "\u221215\u202f622\u00a0€" and en.money(-15622) == "\u2212€15,622"
    assert fr.money(1500) == "1\u202f500\u00a0€" and en.money(1500) == "€1,500"
    assert (fr.pct(0.316), en.pct(0.316)) == ("31,6\u00a0%", "31.6%")
    assert (fr.int(1092), en.int(1092)) == ("1\u202f092", "1,092")
    assert (fr.points(-0.0216), en.points(0.02)) == ("\u22122,2\u00a0pts", "+2.0\u00a0pts")


def test_the_programme_page_pools_every_campaign(built, tmp_path):
    _root, path, _out, _ = built
    out = tmp_path / "programme.html"
    result = CliRunner().invoke(app, ["report", "--programme", "--warehouse", str(path),
                                      "--locale", "en", "-o", str(out), "--pdf"])
    assert result.exit_code == 0, result.output
    html = out.read_text(encoding="utf-8")
    assert 'data-kpi="programme:camp:c1:2026-01"' in html
    con = warehouse.connect(path, read_only=True)
    [(pooled,)] = con.execute("select pooled from kpi_pooled where campaign_id = 'camp' "
                              "and outcome = 'completion'").fetchall()
    con.close()
    assert f'data-kpi="pooled:camp:completion" data-pooled="{pooled}"' in html
    assert 'data-chart="forest"' in html
    from pypdf import PdfReader
    text = " ".join(p.extract_text() for p in PdfReader(out.with_suffix(".pdf")).pages)
    assert "Programme: every campaign and cohort" in " ".join(text.split())


def test_one_colour_per_stage_whatever_the_campaign_and_no_empty_series():
    from datetime import date

    from relance.roi import charts
    rows = [(date(2026, 1, 5), "active", 30), (date(2026, 1, 5), "at_risk", 10),
            (date(2026, 1, 5), "relancer", 5)]
    one = charts.weekly_active_by_stage(rows, ["active", "at_risk", "relancer"]).svg
    other = charts.weekly_active_by_stage(rows, ["relancer", "at_risk", "active"]).svg
    for stage in ("active", "at_risk", "relancer"):
        colour = charts.stage_colour(stage)
        assert f"fill: {colour}" in one and f"fill: {colour}" in other, stage
    assert charts.stage_colour("at_risk") == "#f2b134"     # fixed, in every report
    # a channel that reports no provider events: no delivered, opened or clicked series
    svg = charts.messages_by_outcome([("relance", {"sent": 12, "delivered": 0, "opened": 0,
                                                   "clicked": 0, "active_after": 4})]).svg
    assert ">sent<" in svg and ">active_after<" in svg
    assert ">delivered<" not in svg and ">opened<" not in svg and ">clicked<" not in svg


def test_without_chromium_the_pdf_says_what_to_install(built, monkeypatch):
    root, path, _out, _ = built
    monkeypatch.setenv("RELANCE_CHROMIUM", str(root / "no-chromium"))
    result = CliRunner().invoke(app, ["report", "camp", "--warehouse", str(path), "--campaigns",
                                      str(root / "campaigns"), "-o", str(root / "x" / "camp.html"),
                                      "--pdf"])
    assert result.exit_code == 1
    assert f"no Chromium at {root / 'no-chromium'}: install the chromium package" in result.output
    assert (root / "x" / "camp.html").exists()          # the page itself was written
