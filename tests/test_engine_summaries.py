"""The loaders' per-learner summaries (migration 0055, connectors/sql/summarize.sql) give
the engine the decisions a full scan of the events gives: on the demo, and on a cohort
built load by load to be awkward (events arriving late, events after the moment
evaluated, the same event twice in a load and again in the next, ties on the best
progress figure, xAPI-style voids of a learner's last activity, best figure and
completion, and a void that arrives before its target). A past date, or events written
around the loaders, are scanned."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from connectors import summaries
from connectors.base import DEFAULT_DATE_FORMATS, DEFAULT_DATETIME_FORMATS, ENTITIES, sync
from connectors.csv_export import CsvConnector
from relance import demo, engine
from relance.campaign.loader import campaign_paths, load
from tests.conftest import MONDAY, REPO

COMPARED = {
    "eval_state": "select * exclude (previous_stage) from eval_state",
    "eval_decisions": "select * from eval_decisions",
    "eval_candidates": "select * from eval_candidates",
    "eval_follow_ups": "select * from eval_follow_ups",
}


def outcome(con, loaded, as_of, *, full_scan: bool) -> tuple[bool, dict[str, list]]:
    """Every row of the evaluation's tables (sorted), and whether it read the summaries."""
    evaluation = engine.evaluate(con, loaded, as_of, full_scan=full_scan)
    tables = {name: sorted(con.execute(sql).fetchall(), key=repr) for name, sql in COMPARED.items()}
    return evaluation.summaries, tables


def assert_same_decisions(con, loaded, as_of, *, summarized: bool = True) -> dict[str, list]:
    used, from_summaries = outcome(con, loaded, as_of, full_scan=False)
    assert used is summarized
    scanned, from_events = outcome(con, loaded, as_of, full_scan=True)
    assert scanned is False
    for name in COMPARED:
        assert from_summaries[name] == from_events[name], name
    return from_events


def assert_summaries_are_a_rebuild(con) -> None:
    """What the loads left in the summaries is what aggregating every event again gives."""
    kept = {t: sorted(con.execute(f"select * from {t}").fetchall(), key=repr)
            for t in ("progress_summaries", "activity_completions")}
    summaries.rebuild(con)
    for table, rows in kept.items():
        assert rows == sorted(con.execute(f"select * from {table}").fetchall(), key=repr), table


# -- the demo ----------------------------------------------------------------------------------

def test_the_demo_gets_the_same_decisions_from_summaries_as_from_its_events(wh, tmp_path):
    sync(wh, CsvConnector.from_file(demo.generate(tmp_path, as_of=MONDAY, scale=0.1)),
         now=MONDAY)
    for path in campaign_paths(REPO / "campaigns"):
        loaded = load(path)
        tables = assert_same_decisions(wh, loaded, MONDAY)
        assert tables["eval_decisions"], path.stem          # the demo has learners to decide on
    # a week back is a replay: events after it exist, so it is scanned
    loaded = load(REPO / "campaigns" / "parcours-anglais.yaml")
    assert_same_decisions(wh, loaded, MONDAY - timedelta(days=7), summarized=False)
    assert_summaries_are_a_rebuild(wh)


# -- an awkward cohort, load by load --------------------------------------------------------------

class Hand:
    """A source whose loads are the rows a test gives, staged as tables like any connector's
    (xAPI-like: it stages voids with every load)."""

    kind = "hand"
    name = "hand"
    timezone = "UTC"
    datetime_formats = DEFAULT_DATETIME_FORMATS
    date_formats = DEFAULT_DATE_FORMATS
    progress_scale = "share"

    def __init__(self, rows: dict[str, list[tuple]]):
        self.rows = {"voids": [], **rows}

    def stage(self, con, state) -> dict[str, int]:
        for entity, rows in self.rows.items():
            columns = ENTITIES[entity]
            table = f"stg_hand__{entity}"
            con.execute(f"create or replace table {table} ("
                        + ", ".join(f"{c} varchar" for c in columns)
                        + ", _file varchar, _row bigint)")
            if rows:
                con.executemany(f"insert into {table} values ({', '.join('?' * len(columns))}, "
                                "'hand.json', ?)",
                                # (columns a row leaves out, like a learner's
                                # tutor_email, are empty, as in an export without them)
                                [[None if v is None else str(v) for v in row]
                                 + [None] * (len(columns) - len(row)) + [i + 1]
                                 for i, row in enumerate(rows)])
        return {entity: len(rows) for entity, rows in self.rows.items()}


T0 = datetime(2026, 10, 5, 8, 0, tzinfo=timezone.utc)
AS_OF = datetime(2026, 11, 9, 8, 0, tzinfo=timezone.utc)       # a Monday


def at(days: float) -> str:
    return (T0 + timedelta(days=days)).isoformat()


def ev(event_id, learner, verb, days, activity=None, progress=None) -> tuple:
    return (event_id, learner, "c1", activity, verb, at(days), progress)


CAMPAIGN = """\
id: tricky
description: Every measure the summaries feed.
audience: {course: c1}
sender: {name: "Équipe formation", email: formation@example.org}
control_group: 0%
stages:
  completed: {completed: true}
  not_started: {started: false}
  dormant: {inactive_days: ">= 21"}
  stuck: {stalled_days: ">= 10"}
  at_risk: {any_of: [{inactive_days: ">= 7"}, {overdue: ">= 2"}]}
  active: {}
messages:
  bravo: {on_milestone: [25%, 50%, 75%]}
  merci: {on_activity: [a2]}
  relance: {on_enter: at_risk}
  recap: {every: monday 08:30, to: [active, at_risk, stuck]}
follow_up:
  call: {stage: dormant, reason: Silent for three weeks}
  late: {stage: [at_risk, stuck], late_days: ">= 3", reason: Late with coursework}
limits: {per_learner_per_week: 2}
"""


@pytest.fixture
def tricky(campaigns):
    campaigns.write(CAMPAIGN)
    return campaigns.load("tricky")


def first_load() -> dict[str, list[tuple]]:
    learners = [(f"L{i}", f"l{i}@example.org", "Zoé", "Lefèvre", "fr", "Europe/Paris", None)
                for i in range(1, 9)]
    return {
        "learners": learners,
        "courses": [("c1", "Cours", None, None, "2026-10-05", "2027-02-01")],
        "enrolments": [(f"L{i}", "c1", "co", at(-1), "enrolled", None, None) for i in range(1, 9)],
        "activities": [("c1", f"a{w}", f"Activité {w}", "quiz", w, None, at(7 * w), 1, "true", None)
                       for w in range(1, 5)],
        "progress_events": [
            ev("e1", "L1", "accessed", 3), ev("e2", "L1", "completed", 4, "a1"),
            ev("e3", "L1", "progressed", 5, progress=0.30),
            ev("e3", "L1", "progressed", 5, progress=0.30),           # twice in one load
            ev("e4", "L2", "progressed", 6, progress=0.50),
            ev("e5", "L2", "progressed", 9, progress=0.50),           # a tie: the first counts
            ev("e6", "L3", "completed", 10, "a2"), ev("e7", "L3", "accessed", 30),
            ev(None, "L4", "accessed", 12), ev(None, "L4", "accessed", 12),   # no id, twice
            ev("e8", "L5", "completed", 14, "a1"), ev("e9", "L5", "completed", 15, "a2"),
            ev("e10", "L6", "progressed", 20, progress=0.80),
            ev("e11", "L7", "accessed", 33),
            # L8 has nothing yet
        ],
    }


def second_load() -> dict[str, list[tuple]]:
    return {"progress_events": [
        ev("e3", "L1", "progressed", 5, progress=0.30),               # loaded already
        ev("e12", "L1", "progressed", 2, progress=0.40),              # late, and better
        ev("e13", "L2", "progressed", 4, progress=0.50),              # late tie: earlier now
        ev("e14", "L3", "completed", 8, "a2"),                        # an earlier completion
        ev("e22", "L1", "completed", 6, "a1"),                        # a1 again, later
        ev("e15", "L5", "completed", 16, "a3"),
        ev("e16", "L8", "accessed", 20), ev("e17", "L8", "completed", 21, "a2"),
        ev(None, "L4", "accessed", 12),                               # no id, loaded already
    ]}


def voids_load() -> dict[str, list[tuple]]:
    return {"progress_events": [ev("e18", "L7", "accessed", 34)],
            "voids": [
                ("e7", "v1", at(31)),        # L3's last activity
                ("e12", "v2", at(31)),       # L1's best progress figure
                ("e9", "v3", at(31)),        # L5's completion of a2
                ("e16", "v4", at(31)), ("e17", "v5", at(31)),    # all of L8's events
                ("e20", "v6", at(31)),       # a target not loaded yet
            ]}


def target_after_its_void() -> dict[str, list[tuple]]:
    return {"progress_events": [ev("e19", "L6", "accessed", 32), ev("e20", "L6", "completed", 32, "a2"),
                                ev("e21", "L2", "accessed", 34)]}


def test_an_awkward_cohort_gets_the_same_decisions_after_every_load(wh, tricky):
    loads = [first_load(), second_load(), voids_load(), target_after_its_void()]
    moments = [AS_OF - timedelta(days=2), AS_OF - timedelta(days=1), AS_OF, AS_OF]
    for rows, now in zip(loads, moments):
        sync(wh, Hand(rows), now=now)
        assert_same_decisions(wh, tricky, AS_OF)
        # a moment before the last events: replayed from the events, the same answer
        assert_same_decisions(wh, tricky, T0 + timedelta(days=12), summarized=False)
    assert wh.execute("select count(*) from progress_events where event_id in "
                      "('e7', 'e12', 'e9', 'e16', 'e17', 'e20')").fetchall()[0][0] == 0
    state = dict(wh.execute("select learner_id, stage from eval_state").fetchall())
    assert state["L8"] == "not_started"              # every event of theirs taken back
    assert_summaries_are_a_rebuild(wh)


def test_events_written_around_the_loaders_are_scanned(wh, tricky):
    sync(wh, Hand(first_load()), now=AS_OF)
    assert_same_decisions(wh, tricky, AS_OF)
    wh.execute("insert into progress_events values ('x1', 'L8', 'c1', null, 'accessed', ?, null, "
               "'by-hand', now())", [AS_OF - timedelta(days=1)]).fetchall()
    tables = assert_same_decisions(wh, tricky, AS_OF, summarized=False)
    assert ("L8", "c1") in {(r[0], r[1]) for r in tables["eval_state"]}
    # a load after them keeps them scanned (the summaries never saw that row) ...
    sync(wh, Hand(second_load()), now=AS_OF)
    assert_same_decisions(wh, tricky, AS_OF, summarized=False)
    # ... until the summaries are rebuilt from the events
    summaries.rebuild(wh)
    assert_same_decisions(wh, tricky, AS_OF)
