"""Before a scheduled run: are the campaign's sources fresh? What is stale, in words."""

from __future__ import annotations

from datetime import timedelta

import pytest

from relance.runs import freshness
from tests.conftest import MONDAY


def load(wh, source: str, finished, status: str = "succeeded") -> None:
    wh.execute("insert into loads (load_id, source, started_at, finished_at, status) "
               "values (?, ?, ?, ?, ?)", [f"{source}-{finished}", source, finished, finished, status])


def test_only_the_sources_feeding_the_campaign_count_and_stale_ones_are_named(cohort, campaigns):
    wh = cohort.con
    cohort.learner()                                   # enrolled on c1 by source 'test'
    campaign = campaigns.load(campaigns.write(campaigns.base()).stem).campaign
    day = timedelta(hours=26)
    assert freshness.stale_sources(wh, campaign, MONDAY, day) == [
        "source 'test' has no successful load"]
    load(wh, "test", MONDAY - timedelta(hours=30))
    load(wh, "test", MONDAY - timedelta(hours=2), status="failed")   # a failed load is no news
    load(wh, "other-lms", MONDAY - timedelta(days=60))               # feeds no enrolment here
    assert freshness.stale_sources(wh, campaign, MONDAY, day) == [
        "source 'test' was last loaded at 2026-11-22 02:00 UTC, more than 26 h before "
        "2026-11-23 08:00 UTC"]
    load(wh, "test", MONDAY - timedelta(hours=3))
    assert freshness.stale_sources(wh, campaign, MONDAY, day) == []
    freshness.check(wh, campaign, MONDAY, day)


def test_a_campaign_with_nothing_loaded_is_told_to_sync_first(wh, campaigns):
    campaign = campaigns.load(campaigns.write(campaigns.base()).stem).campaign
    with pytest.raises(freshness.StaleSources, match=r"no enrolment of c1 has been loaded: run the sync"):
        freshness.check(wh, campaign, MONDAY, timedelta(hours=26))


def test_a_stale_run_names_the_source_and_how_to_refresh_it(cohort, campaigns):
    """A run does not sync itself (docs/scheduling.md): it fails saying what to run."""
    cohort.learner()
    campaign = campaigns.load(campaigns.write(campaigns.base()).stem).campaign
    load(cohort.con, "test", MONDAY - timedelta(days=3))
    with pytest.raises(freshness.StaleSources) as caught:
        freshness.check(cohort.con, campaign, MONDAY, timedelta(hours=26))
    assert str(caught.value) == (
        "campaign test not run, its sources are stale: source 'test' was last loaded at "
        "2026-11-20 08:00 UTC, more than 26 h before 2026-11-23 08:00 UTC. Run the sync "
        "(`prefect deployment run sync-progress/sync-progress`, or `relance sync`), then this "
        "run again; `from loads order by started_at desc` shows each load and its error")
