"""xAPI voiding statements against a real Ralph LRS: a statement voided after it was
loaded stops counting (warehouse and campaign stages), and the void is kept for an
analyst and for a target that arrives after it.

Ralph 5.1 does not void anything itself (its file-system backend returns voided
statements with the others, and ignores `voidedStatementId`): relance applies the voids.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest

import warehouse
from connectors import sync
from relance import engine
from tests.lms_fixtures import ADL, COURSE_IRI, T0, lrs_source, statement, two_ralphs
from tests.test_connectors_xapi import lrs_env, rows  # noqa: F401  (fixtures)

VOIDED = ADL + "voided"
ZOE_DONE = statement(1, "zoe@example.org", "completed", at=T0 + timedelta(days=2), obj=COURSE_IRI)
MARC_POST = statement(11, "marc@example.org", "commented", at=T0 + timedelta(days=3),
                      obj=f"{COURSE_IRI}/forum/1", response="Bonjour à tous")
# stored by the LRS after the void that names it (xAPI lets an LRS take them in either order)
INES_LATE = statement(22, "ines@example.org", "completed", at=T0 + timedelta(days=8, hours=2),
                      obj=f"{COURSE_IRI}/activity/1")
INES_SEEN = statement(23, "ines@example.org", "experienced", at=T0 + timedelta(days=8, hours=3))


def void(n: int, target: str | dict, at, who: str = "admin@example.org") -> dict:
    """A statement voiding `target` (an id, or a whole object for a malformed one)."""
    obj = target if isinstance(target, dict) else {"objectType": "StatementRef", "id": target}
    return {"id": str(uuid.UUID(int=1000 + n)),
            "actor": {"objectType": "Agent", "name": "Admin", "mbox": f"mailto:{who}"},
            "verb": {"id": VOIDED, "display": {"en-US": "voided"}},
            "object": obj, "timestamp": at.isoformat()}


def week1() -> list[dict]:
    return [
        statement(0, "zoe@example.org", "registered", at=T0, obj=COURSE_IRI),
        ZOE_DONE,
        statement(10, "marc@example.org", "registered", at=T0 + timedelta(hours=1), obj=COURSE_IRI),
        statement(12, "marc@example.org", "experienced", at=T0 + timedelta(days=1)),
        MARC_POST,
        statement(20, "ines@example.org", "registered", at=T0 + timedelta(hours=2), obj=COURSE_IRI),
        # voids a statement the LRS does not have (yet): kept, pending
        void(1, INES_LATE["id"], T0 + timedelta(days=3, hours=1)),
        # not a StatementRef: quarantined
        void(2, {"objectType": "Activity", "id": f"{COURSE_IRI}/activity/1"},
             T0 + timedelta(days=3, hours=2)),
    ]


def week2() -> list[dict]:
    at = T0 + timedelta(days=8)
    return [
        void(3, ZOE_DONE["id"], at),                                # loaded last week
        void(4, MARC_POST["id"], at + timedelta(hours=1)),          # a contribution
        INES_LATE,                                                  # its void came first
        INES_SEEN, void(5, INES_SEEN["id"], at + timedelta(hours=4)),   # both in this load
        void(6, str(uuid.UUID(int=1003)), at + timedelta(hours=5)),     # voids a void
        void(7, ZOE_DONE["id"], at + timedelta(hours=6)),               # voided already
    ]


@pytest.fixture(scope="module")
def ralphs(tmp_path_factory):
    yield from two_ralphs(tmp_path_factory.mktemp("ralph-voids"), week1(), week2())


def stages(wh, campaigns, as_of) -> dict[str, str]:
    engine.evaluate(wh, campaigns.load(), as_of)
    return dict(rows(wh, "select learner_id, stage from eval_state"))


def test_a_voided_statement_stops_counting_and_the_void_is_kept(wh, tmp_path, ralphs, lrs_env,
                                                                 campaigns):
    first, both = ralphs
    campaigns.write(campaigns.base(**{"course: c1": "course: anglais-b2"}))
    as_of = T0 + timedelta(days=9)

    report = sync(wh, lrs_source(tmp_path, first.url))
    assert report.rows["voids"] == 2 and report.quarantined["voids"] == 1
    # zoe completed the course; marc posted; the void of a statement not loaded waits
    assert rows(wh, "select learner_id, status from enrolments order by 1") == [
        ("ines@example.org", "enrolled"), ("marc@example.org", "enrolled"),
        ("zoe@example.org", "completed")]
    assert rows(wh, "select contribution_id from contributions") == [(MARC_POST["id"],)]
    assert rows(wh, "select voided_id, applied_at from voids") == [(INES_LATE["id"], None)]
    # set aside with its reason, where it was read and the whole statement (on either
    # warehouse: the shared one moves such rows out of the staging before the load), and
    # nowhere else
    assert rows(wh, "select reason, source_file like '%/xAPI/statements%', row_number > 0, "
                    "raw->>'$.id' from quarantine where entity = 'voids'") == [
        ("a voiding statement needs a StatementRef object naming the statement it voids, "
         "not Activity", True, True, str(uuid.UUID(int=1002)))]
    assert rows(wh, "select count(*) from voids where voiding_id = "
                    f"'{uuid.UUID(int=1002)}'") == [(0,)]
    # the voiding admin is nobody's learner
    assert rows(wh, "select count(*) from learners where learner_id = 'admin@example.org'") == [(0,)]
    before = stages(wh, campaigns, as_of)
    assert before["zoe@example.org"] == "completed"

    # Ralph does not hide voided statements: relance must
    second = sync(wh, lrs_source(tmp_path, both.url))
    assert second.rows["voids"] == 5 and second.quarantined["voids"] == 2
    # zoe's completion, marc's post (its event and its contribution), ines's late
    # completion and the statement voided in the same load: none is left
    taken_back = [ZOE_DONE["id"], MARC_POST["id"], INES_LATE["id"], INES_SEEN["id"]]
    assert wh.execute("select count(*) from progress_events where list_contains(?, event_id)",
                      [taken_back]).fetchall() == [(0,)]
    assert rows(wh, "select count(*) from contributions") == [(0,)]
    assert rows(wh, "select learner_id, verb from progress_events order by 1") == [
        ("marc@example.org", "accessed")]
    # zoe's enrolment is open again: no other completion of the course remains
    assert rows(wh, "select status, completed_at from enrolments "
                    "where learner_id = 'zoe@example.org'") == [("enrolled", None)]
    # each void, what it removed and when
    voids = rows(wh, "select voided_id, voiding_id, applied_at is not null, "
                     "json_array_length(removed->'$.progress_events'), "
                     "json_array_length(removed->'$.contributions') from voids order by voided_at")
    assert voids == [
        (INES_LATE["id"], str(uuid.UUID(int=1001)), True, 1, 0),
        (ZOE_DONE["id"], str(uuid.UUID(int=1003)), True, 1, 0),
        (MARC_POST["id"], str(uuid.UUID(int=1004)), True, 1, 1),
        (INES_SEEN["id"], str(uuid.UUID(int=1005)), True, 1, 0)]
    # a void applied later is still the one its first load read
    assert rows(wh, "select load_id, applied_load_id from voids where voided_id = "
                    f"'{INES_LATE['id']}'") == [(report.load_id, second.load_id)]
    removed = json.loads(wh.execute("select removed from voids where voided_id = ?",
                                    [ZOE_DONE["id"]]).fetchall()[0][0])
    assert removed["progress_events"][0]["verb"] == "completed"
    assert removed["progress_events"][0]["learner_id"] == "zoe@example.org"
    assert sorted(r[0] for r in rows(
        wh, f"select reason from quarantine where load_id = '{second.load_id}'")) == [
        f"already voided by {uuid.UUID(int=1003)}",
        f"voids a void ({uuid.UUID(int=1003)}), which cannot be undone"]
    # the campaign no longer counts zoe's completion: nine days without a trace, at risk
    after = stages(wh, campaigns, as_of)
    assert after["zoe@example.org"] == "at_risk"

    # read again from the start (a lost cursor, a resumed sync): the voided statements
    # come back from Ralph and are removed again; the voids are not written twice
    wh.execute("delete from source_cursors").fetchall()
    sync(wh, lrs_source(tmp_path, both.url))
    assert rows(wh, "select learner_id, verb from progress_events order by 1") == [
        ("marc@example.org", "accessed")]
    assert rows(wh, "select count(*) from contributions") == [(0,)]
    assert rows(wh, "select count(*), count(applied_at) from voids") == [(4, 4)]
    assert rows(wh, "select status from enrolments where learner_id = 'zoe@example.org'") == [
        ("enrolled",)]


def test_the_same_loads_keep_and_set_aside_the_same_rows_on_a_warehouse_file(
        wh, tmp_path, ralphs, lrs_env):
    # what a load keeps, removes and sets aside (with its reason, file, row and raw row)
    # does not depend on the warehouse: `wh` (a PostgreSQL database under
    # --warehouse=shared) and a DuckDB file, given the same two syncs
    first, both = ralphs
    file = warehouse.connect(tmp_path / "file.duckdb")
    try:
        seen = []
        for con in (wh, file):
            for lrs in (first, both):
                sync(con, lrs_source(tmp_path, lrs.url))
            seen.append({
                "quarantine": rows(con, "select entity, source_file, row_number, reason, "
                                        "raw::varchar from quarantine order by all"),
                "voids": rows(con, "select voided_id, voiding_id, voided_at, applied_at is null, "
                                   "removed->'$.progress_events[*].event_id', "
                                   "removed->'$.contributions[*].contribution_id' "
                                   "from voids order by all"),
                "events": rows(con, "select event_id, learner_id, verb, occurred_at "
                                    "from progress_events order by all"),
                "enrolments": rows(con, "select learner_id, status, completed_at "
                                        "from enrolments order by all")})
    finally:
        file.close()
    shared, on_file = seen
    assert sorted(row[3] for row in shared["quarantine"]) == [
        "a voiding statement needs a StatementRef object naming the statement it voids, "
        "not Activity",
        f"already voided by {uuid.UUID(int=1003)}",
        f"voids a void ({uuid.UUID(int=1003)}), which cannot be undone"]
    assert len(shared["voids"]) == 4 and shared["events"]
    for what in shared:
        assert shared[what] == on_file[what], what
