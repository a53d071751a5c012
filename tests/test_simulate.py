"""`relance simulate`: a whole season of the repo's campaigns on the demo cohort, with the
real connectors, engine, ledger and outbox, invariants checked at every tick."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from typer.testing import CliRunner

from relance.cli import app
from relance.workbench import simulate as sim
from tests.conftest import MONDAY, REPO


def test_the_clock_fires_syncs_runs_and_hourly_deliveries_as_prefect_yaml_does():
    start = sim.season_start(MONDAY)
    assert start == datetime(2026, 11, 22, 23, 0, tzinfo=timezone.utc)     # Monday 00:00 Paris
    syncs = sim.sync_moments(start, start + timedelta(weeks=1))
    assert len(syncs) == 7 and syncs[0] == datetime(2026, 11, 23, 6, 0, tzinfo=timezone.utc)
    from relance.campaign.loader import load_all
    runs = {c.id: sim.run_moments(c, start, start + timedelta(weeks=1))
            for c in load_all(REPO / "campaigns")}
    assert len(runs["onboarding"]) == 5                                     # weekdays 09:00
    assert runs["parcours-anglais"] == [datetime(2026, 11, 23, 7, 30, tzinfo=timezone.utc)]
    due = datetime(2026, 11, 23, 13, 0, tzinfo=timezone.utc)
    assert sim.delivery_moment(due) == due.replace(minute=5)
    assert sim.delivery_moment(due.replace(minute=6)) == due.replace(hour=14, minute=5)


def test_a_whole_demo_season_keeps_every_invariant(tmp_path):
    result = CliRunner().invoke(app, [
        "simulate", "--campaigns", str(REPO / "campaigns"), "--scale", "0.1",
        "--start", MONDAY.isoformat(), "--learner", "L00001", "--keep", str(tmp_path / "season")])
    out = result.output
    print(out)
    assert "20 weeks" in out and "Messages per learner and week" in out
    assert "Collisions" in out and "Invariants, checked at every tick" in out
    # the learner's season, across campaigns, in their own timezone
    assert "The learner's season" in out and "sent" in out and "onboarding" in out
    assert (tmp_path / "season" / "outbox").is_dir()
    assert result.exit_code == 0, "invariant violations (see the table above)"


def test_a_broken_limit_is_reported_with_an_example(monkeypatch):
    # The engine is made to ignore the per-person cap (as a bug in policies.sql would):
    # the simulator, which reads the cap from the campaigns, must say so.
    from relance.engine import evaluation
    params = evaluation._params
    monkeypatch.setattr(evaluation, "_params",
                        lambda campaign, as_of: params(campaign, as_of) | {"per_week": 99,
                                                                           "per_campaign": 99})
    season = sim.simulate(REPO / "campaigns", scale=0.05, weeks=2, start=MONDAY)
    assert not season.ok and season.violations["cap"] > 0
    example = season.examples["cap"]
    assert example.learner_id and example.message_id and example.campaign_id
    assert "limits.per_" in example.why and example.moment >= sim.season_start(MONDAY)


def test_the_scratch_folders_go_away_even_on_failure(tmp_path, monkeypatch):
    import tempfile
    disk, memory = tmp_path / "disk", tmp_path / "memory"
    disk.mkdir(), memory.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(disk))
    monkeypatch.setattr(sim, "SCRATCH_IN_MEMORY", memory)
    try:
        sim.simulate(REPO / "campaigns", cohort="nowhere.yaml", weeks=1)
    except sim.SimulationError as exc:
        assert "mapping.yaml" in str(exc) and "oulad:" in str(exc)
    else:
        raise AssertionError("an unknown cohort must fail")
    assert not list(disk.iterdir()) and not list(memory.iterdir())


def test_the_outbox_and_exports_go_to_memory_only_when_it_has_room(tmp_path, monkeypatch):
    monkeypatch.setattr(sim, "SCRATCH_IN_MEMORY", tmp_path)
    assert sim._scratch_root(scale=0.1, weeks=3) == str(tmp_path)
    # not room for four times what the season writes: the system's temporary folder
    monkeypatch.setattr(sim, "_BYTES_PER_SCALED_WEEK", 1 << 60)
    assert sim._scratch_root(scale=0.1, weeks=3) is None
    monkeypatch.setattr(sim, "_BYTES_PER_SCALED_WEEK", 1)
    monkeypatch.setattr(sim, "SCRATCH_IN_MEMORY", tmp_path / "no-such-folder")
    assert sim._scratch_root(scale=0.1, weeks=3) is None


def test_checking_only_after_runs_and_deliveries_changes_no_verdict(tmp_path, monkeypatch):
    # The season skips the checks after a tick of syncs alone (nothing writes the ledger
    # then). Played again with a check after every tick, the same cohort must give the same
    # ledger and the same verdicts, broken ones included: the per-person cap is made to be
    # ignored (as in the test above), so that there are violations to find.
    from relance.engine import evaluation
    params = evaluation._params
    monkeypatch.setattr(evaluation, "_params",
                        lambda campaign, as_of: params(campaign, as_of) | {"per_week": 99,
                                                                           "per_campaign": 99})
    import duckdb

    def play(name, **options):
        season = sim.simulate(REPO / "campaigns", scale=0.05, weeks=2, start=MONDAY,
                              keep=tmp_path / name, **options)
        con = duckdb.connect(str(tmp_path / name / "season.duckdb"), read_only=True)
        ledger = con.execute("select idempotency_key, status, not_before, attempts, error "
                             "from messages order by all").fetchall()
        decisions = con.execute("select campaign_id, learner_id, course_id, as_of, stage, "
                                "message_key, outcome from decisions order by all").fetchall()
        con.close()
        return season, ledger, decisions

    quick, ledger, decisions = play("quick")
    every, ledger_every, decisions_every = play("every", check_every_tick=True)
    assert ledger == ledger_every and decisions == decisions_every and ledger
    assert quick.ticks == every.ticks and quick.status == every.status
    assert quick.checked == every.checked and quick.checked["cap"] > 0
    assert quick.violations == every.violations and quick.violations["cap"] > 0
    assert quick.examples == every.examples
    assert (quick.load, quick.per_campaign, quick.collisions) == (
        every.load, every.per_campaign, every.collisions)
    # and the season says where its time went
    assert set(quick.timings) <= set(sim.PARTS) and quick.timings["runs"] > 0


# What a short demo season did on main before the season was made faster (issue 19, goal
# 5b): its ledger, its decisions and its report, as sha256 of their rows (_played). Making
# the season faster must change none of them. A change that means to change what a season
# does (a campaign file, the demo cohort, the engine's rules) recomputes them with
# `_played` on the code before and after, and says why in its commit.
PLAYED = {
    "ledger": "429f0a5c8a0f0b6a44632cee17148590c3aa69588158d225ec481dea1f45b1ea",
    "decisions": "10cf7dcdd1a687f33fdadf8c31743c9c60c1431974b94eaed69db7c47da8e5d7",
    "report": "c71b21671d09883f6fae6fcc6432b1f201c19e62e95fbab6454b7b7dc6cfa11f",
}


def _played(folder) -> dict[str, str]:
    import hashlib

    import duckdb
    season = sim.simulate(REPO / "campaigns", scale=0.05, weeks=3, start=MONDAY,
                          learner="L00001", keep=folder)
    con = duckdb.connect(str(folder / "season.duckdb"), read_only=True)
    ledger = con.execute(
        "select idempotency_key, campaign_id, learner_id, course_id, message_key, trigger, "
        "status, subject, to_email, not_before, planned_at, attempts, error "
        "from messages order by all").fetchall()
    decisions = con.execute("select campaign_id, learner_id, course_id, as_of, stage, "
                            "message_key, outcome from decisions order by all").fetchall()
    con.close()
    report = (season.ticks, season.syncs, season.runs, season.deliveries, season.learners,
              sorted(season.status.items()), sorted(season.checked.items()),
              sorted(season.violations.items()), season.load,
              sorted(season.per_campaign.items()), season.collisions, season.collision_total,
              season.timeline)
    return {name: hashlib.sha256(repr(rows).encode()).hexdigest()
            for name, rows in (("ledger", ledger), ("decisions", decisions),
                               ("report", report))}


def test_a_short_season_plays_exactly_as_it_did_before_it_was_made_faster(tmp_path):
    # (3 weeks: three weekends' syncs left to the Monday's, deliveries, late sends re-checked)
    assert _played(tmp_path / "season") == PLAYED
