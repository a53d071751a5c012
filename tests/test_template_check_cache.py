"""A campaign whose files passed the template check is not checked again until a byte of
what was checked changes (relance/campaign/checked.py): a template broken since, a layout
it extends, the defaults file, are all reported at the next load; a problem is reported at
every load, never remembered."""

from __future__ import annotations

import pytest

from relance.campaign import checked, contexts
from relance.campaign.problems import CampaignError


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RELANCE_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "template-checks"


@pytest.fixture
def counted(monkeypatch):
    """How many times the campaign's templates were really checked."""
    calls = []
    real = contexts.check_templates

    def check(loaded):
        calls.append(loaded.id)
        return real(loaded)
    monkeypatch.setattr(contexts, "check_templates", check)
    return calls


def test_a_passed_check_is_not_run_again_on_the_same_files(campaigns, cache, counted):
    campaigns.write(campaigns.base())
    campaigns.load()
    campaigns.load()
    assert counted == ["test"]
    assert len(list(cache.iterdir())) == 1


def test_a_template_broken_after_a_passed_check_is_reported(campaigns, cache, counted):
    campaigns.write(campaigns.base())
    campaigns.load()
    (campaigns.root / "test" / "relance" / "fr" / "body.txt").write_text(
        "Bonjour {{ learner.frist_name }}", encoding="utf-8")
    with pytest.raises(CampaignError, match="frist_name"):
        campaigns.load()
    with pytest.raises(CampaignError, match="frist_name"):       # every time
        campaigns.load()
    assert counted == ["test"] * 3


def test_a_layout_or_the_defaults_changed_check_again(campaigns, cache, counted):
    layouts = campaigns.root / "_layouts"
    layouts.mkdir()
    (layouts / "base.txt").write_text("{% block body %}{% endblock %}\n-- Julie", encoding="utf-8")
    campaigns.write(campaigns.base(), template_overrides={
        "relance/fr/body.txt": "{% extends '_layouts/base.txt' %}"
                               "{% block body %}Bonjour {{ learner.first_name }}{% endblock %}"})
    campaigns.load()
    (layouts / "base.txt").write_text("{% block body %}{% endblock %}\n-- {{ signature }}",
                                      encoding="utf-8")
    with pytest.raises(CampaignError, match="signature"):
        campaigns.load()
    (layouts / "base.txt").write_text("{% block body %}{% endblock %}\n-- Julie", encoding="utf-8")
    campaigns.load()                         # the files checked before: remembered
    (campaigns.root / "_defaults.yaml").write_text("locales: [fr, en]\n", encoding="utf-8")
    campaigns.load()
    assert counted == ["test"] * 3


def test_a_cache_that_cannot_be_written_only_means_checking_again(campaigns, tmp_path,
                                                                   monkeypatch, counted):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("", encoding="utf-8")
    monkeypatch.setenv("RELANCE_CACHE_DIR", str(blocker))
    campaigns.write(campaigns.base())
    campaigns.load()
    campaigns.load()
    assert counted == ["test"] * 2
    assert not checked.passed(checked.fingerprint(campaigns.root / "test.yaml", campaigns.root))
