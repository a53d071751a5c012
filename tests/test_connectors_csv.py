"""The CSV connector: real exports in, typed rows in the warehouse, bad rows in quarantine.
A header naming a mapped column twice, and an empty file, are errors that say so."""

from __future__ import annotations

import textwrap

import pytest

from connectors import SourceError, sync
from connectors.csv_export import CsvConnector
from relance import demo
from tests.conftest import MONDAY


def export(tmp_path, files: dict[str, str], mapping: str, newline: str = "\n"):
    """Write an export's files and its mapping (mapping.yaml): the mapping's path."""
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8", newline=newline)
    path = tmp_path / "mapping.yaml"
    path.write_text(textwrap.dedent(mapping), encoding="utf-8")
    return path


def mapping(tmp_path, text: str):
    return CsvConnector.from_file(export(tmp_path, {}, text))


def _table(con, sql):
    return sorted(con.execute(sql).fetchall())


def test_demo_export_loads_with_its_bad_rows_quarantined(wh, tmp_path):
    source = CsvConnector.from_file(demo.generate(tmp_path, as_of=MONDAY))
    report = sync(wh, source)
    counts = {t: wh.execute(f"select count(*) from {t}").fetchall()[0][0]
              for t in ("learners", "courses", "enrolments", "activities", "progress_events")}
    assert counts["learners"] == 2000 and counts["courses"] == 2 and counts["enrolments"] == 2000
    assert counts["activities"] == 64 and counts["progress_events"] > 30000
    reasons = sorted(r[0] for r in wh.execute("select reason from quarantine").fetchall())
    assert reasons == [
        "malformed email: jean.dupont@@atelier-lumiere",
        "missing learner_id",
        "unknown course: cours-inconnu",
        "unknown enrolment: learner L99999 on course anglais-b2",
        "unreadable or missing occurred_at: 31/02/2026 10:00",
    ]
    assert report.n_quarantined == 5
    raw = wh.execute("select raw->>'learner_id', source_file, row_number from quarantine "
                     "where reason like 'malformed%'").fetchall()[0]
    assert raw[0] == "L99001" and raw[1].endswith("apprenants.csv") and raw[2] == 2001
    loads = wh.execute("select status, n_rows, n_quarantined from loads").fetchall()
    assert loads == [("succeeded", report.n_rows, 5)]


def test_demo_is_deterministic(tmp_path):
    a = demo.generate(tmp_path / "a", as_of=MONDAY).parent
    b = demo.generate(tmp_path / "b", as_of=MONDAY).parent
    for f in ("apprenants.csv", "traces.csv", "forum.csv"):
        assert (a / f).read_bytes() == (b / f).read_bytes()


def test_rerun_loads_nothing_twice(wh, tmp_path):
    source = CsvConnector.from_file(demo.generate(tmp_path, as_of=MONDAY))
    sync(wh, source)
    n = wh.execute("select count(*) from progress_events").fetchall()[0][0]
    again = sync(wh, source)
    assert again.rows == {}                 # every file unchanged: none is read again
    assert wh.execute("select count(*) from progress_events").fetchall()[0][0] == n


def test_french_export_semicolons_latin1_and_day_first_dates(wh, tmp_path):
    (tmp_path / "apprenants.csv").write_bytes(
        "id;mail;prénom;nom\nA1;zoe@example.org;Zoé;Lefèvre\nA2;bad-address;Éric;Noël\n".encode("latin-1"))
    (tmp_path / "cours.csv").write_bytes("code;titre;debut;fin\nC1;Anglais;07/09/2026;25/01/2027\n".encode("latin-1"))
    (tmp_path / "inscriptions.csv").write_bytes(
        "id;cours;date;statut\nA1;C1;01/09/2026 08:30;Inscrit\nA1;C2;01/09/2026;Inscrit\n".encode("latin-1"))
    (tmp_path / "traces.csv").write_bytes(
        "id;cours;quand;avancement\nA1;C1;15/09/2026 18:45;42,5%\nA1;C1;16/09/2026 18:45;0,5\nA1;C1;hier;\n".encode("latin-1"))
    source = mapping(tmp_path, """
        name: lms-fr
        delimiter: ";"
        encoding: latin-1
        entities:
          learners: {file: apprenants.csv, columns: {learner_id: id, email: mail, first_name: prénom, last_name: nom}}
          courses: {file: cours.csv, columns: {course_id: code, title: titre, starts_on: debut, ends_on: fin}}
          enrolments: {file: inscriptions.csv, columns: {learner_id: id, course_id: cours, enrolled_at: date, status: statut}}
          progress_events: {file: traces.csv, columns: {learner_id: id, course_id: cours, occurred_at: quand, progress: avancement}}
    """)
    wh.execute("insert into courses values ('C0', 'x', null, null, null, null, 't', now())").fetchall()
    # events need a verb; this export has none, so every row says which
    report = sync(wh, source)
    assert wh.execute("select first_name, last_name from learners").fetchall() == [("Zoé", "Lefèvre")]
    assert wh.execute("select starts_on::varchar, ends_on::varchar from courses where course_id = 'C1'").fetchall() == [
        ("2026-09-07", "2027-01-25")]
    enrolled = wh.execute("select enrolled_at from enrolments").fetchall()[0][0]
    assert enrolled.isoformat() == "2026-09-01T06:30:00+00:00"          # 08:30 in Paris
    reasons = sorted(r[0] for r in wh.execute("select reason from quarantine").fetchall())
    assert reasons == ["malformed email: bad-address", "missing verb", "missing verb", "missing verb",
                       "unknown course: C2"]
    assert report.quarantined == {"learners": 1, "courses": 0, "enrolments": 1, "progress_events": 3}


def test_addresses_relance_cannot_send_to_are_quarantined_with_what_is_wrong(wh, tmp_path):
    """The channels' rule, at load: an address that needs SMTPUTF8 no longer loads to
    fail at send; a manager's address is held to it too."""
    source = CsvConnector.from_file(export(tmp_path, {"learners.csv": (
        "id,mail,manager\n"
        "A1,Zoe.Lefevre@Example.org,chef@example.org\n"
        "A2,élodie@example.org,\n"
        "A3,zoe@example,\n"
        "A4,zoe..l@example.org,\n"
        "A5,ok@example.org,chef@exämple.org\n"
        "A6,,\n")}, """
        name: roster
        entities:
          learners: {file: learners.csv, columns: {learner_id: id, email: mail, manager_email: manager}}
    """))
    report = sync(wh, source)
    assert _table(wh, "select learner_id, email, manager_email from learners") == [
        ("A1", "zoe.lefevre@example.org", "chef@example.org"), ("A6", None, None)]
    assert _table(wh, "select raw->>'learner_id', reason from quarantine") == [
        ("A2", "non-ASCII email: élodie@example.org"), ("A3", "malformed email: zoe@example"),
        ("A4", "malformed email: zoe..l@example.org"),
        ("A5", "non-ASCII manager_email: chef@exämple.org")]
    assert report.quarantined == {"learners": 4}


def tiny_export(tmp_path, *, enrolled_at: str, events: str, options: str = ""):
    """One learner (with Excel's BOM in the learners file), one course, one enrolment, and
    the progress events given as CSV rows (learner,course,verb,at,progress)."""
    (tmp_path / "l.csv").write_text("id\nA1\n", encoding="utf-8-sig")
    (tmp_path / "c.csv").write_text("id,title\nC1,Course\n", encoding="utf-8")
    (tmp_path / "e.csv").write_text(f"id,c,at\nA1,C1,{enrolled_at}\n", encoding="utf-8")
    (tmp_path / "t.csv").write_text("id,c,verb,at,p\n" + events, encoding="utf-8")
    return mapping(tmp_path, f"""
        name: lms{options}
        entities:
          learners: {{file: l.csv, columns: {{learner_id: id}}}}
          courses: {{file: c.csv, columns: {{course_id: id, title: title}}}}
          enrolments: {{file: e.csv, columns: {{learner_id: id, course_id: c, enrolled_at: at}}}}
          progress_events: {{file: t.csv, columns: {{learner_id: id, course_id: c, verb: verb, occurred_at: at, progress: p}}}}
    """)


def test_progress_values_and_verbs(wh, tmp_path):
    source = tiny_export(tmp_path, enrolled_at="2026-09-01", events=(
        "A1,C1,progressed,2026-09-15T18:45:00+02:00,\"42,5%\"\n"
        "A1,C1,progressed,2026-09-16 10:00,0.5\nA1,C1,jumped,2026-09-16 10:00,\n"
        "A1,C1,progressed,2026-09-17 10:00,150%\n"))
    sync(wh, source)
    assert sorted(r[0] for r in wh.execute("select progress from progress_events").fetchall()) == [0.425, 0.5]
    reasons = sorted(r[0] for r in wh.execute("select reason from quarantine").fetchall())
    assert reasons[0].startswith("progress must be a share 0-1 or a percentage: 150%")
    assert reasons[1].startswith("unknown verb: jumped")


def test_a_mapped_column_missing_from_the_file_names_both(wh, tmp_path):
    (tmp_path / "l.csv").write_text("ident,courriel\nA1,a@example.org\n", encoding="utf-8")
    source = mapping(tmp_path, """
        name: lms
        entities:
          learners: {file: l.csv, columns: {learner_id: id, email: courriel}}
    """)
    with pytest.raises(SourceError) as exc:
        sync(wh, source)
    assert "l.csv: column 'id' (mapped to learners.learner_id) is not in the file; its columns are: ident, courriel" in str(exc.value)
    assert wh.execute("select status from loads").fetchall() == [("failed",)]
    assert wh.execute("select count(*) from learners").fetchall()[0][0] == 0


@pytest.mark.parametrize("header, named", [
    ("id,mail,mail", "mail"),          # read as mail, mail_1: the first was taken silently
    ("id,Mail,mail", "Mail, mail"),    # read as Mail, mail_1: "mail is not in the file"
])
def test_a_mapped_column_named_twice_in_a_csv_header_is_an_error_naming_it(wh, tmp_path, header, named):
    mapping = export(tmp_path, {"learners.csv": f"{header}\nA1,old@example.org,new@example.org\n"}, """
        name: review
        entities:
          learners: {file: learners.csv, columns: {learner_id: id, email: mail}}
    """)
    with pytest.raises(SourceError) as caught:
        sync(wh, CsvConnector.from_file(mapping))
    assert str(caught.value) == (f"source review: learners.csv: the header names {named} more "
                                 f"than once (names are compared regardless of case); rename them")
    assert wh.execute("select count(*) from learners").fetchall() == [(0,)]


def test_a_column_named_twice_that_the_mapping_does_not_read_is_no_error(wh, tmp_path):
    mapping = export(tmp_path, {"learners.csv": "id,mail,note,Note\nA1,a@example.org,x,y\n"}, """
        name: review
        entities:
          learners: {file: learners.csv, columns: {learner_id: id, email: mail}}
    """)
    sync(wh, CsvConnector.from_file(mapping))
    assert wh.execute("select learner_id, email from learners").fetchall() == [("A1", "a@example.org")]


def test_an_empty_csv_file_is_an_error_saying_so(wh, tmp_path):
    mapping = export(tmp_path, {"learners.csv": ""}, """
        name: review
        entities:
          learners: {file: learners.csv, columns: {learner_id: id, email: mail}}
    """)
    with pytest.raises(SourceError, match=r"learners.csv: the file is empty: expected a header "
                                          r"row naming its columns \(id, mail\)"):
        sync(wh, CsvConnector.from_file(mapping))


def test_an_unknown_warehouse_column_in_the_mapping_is_refused(tmp_path):
    with pytest.raises(SourceError) as exc:
        mapping(tmp_path, """
            name: lms
            entities:
              learners: {file: l.csv, columns: {learner: id}}
        """)
    assert "entities.learners.columns: unknown warehouse column(s) learner" in str(exc.value)


def test_progress_scale_and_day_first_dates_are_explicit(wh, tmp_path):
    source = tiny_export(tmp_path, enrolled_at="09/12/2026", options="\n        progress_scale: percent",
                         events="A1,C1,progressed,13/12/2026 10:00,1\nA1,C1,progressed,09/13/2026 10:00,2\n")
    sync(wh, source)
    assert wh.execute("select timezone('Europe/Paris', enrolled_at)::date::varchar from enrolments"
                      ).fetchall() == [("2026-12-09",)]
    assert wh.execute("select progress from progress_events").fetchall() == [(0.01,)]
    assert [r[0] for r in wh.execute("select reason from quarantine").fetchall()] == [
        "unreadable or missing occurred_at: 09/13/2026 10:00"]


ROSTER = {
    "learners.csv": "id,email\nL1,l1@example.org\nL2,l2@example.org\nL3,l3@example.org\nL2,other@example.org\n",
    "courses.csv": "code,title\nC1,Anglais\nC2,Allemand\nC2,Allemand bis\n",
    "enrolments.csv": "id,course,at\nL1,C1,2026-09-01\nL3,C1,2026-09-01\nL9,C1,2026-09-01\nL3,C1,2026-09-02\n",
    "calendar.csv": "course,activity,due\nC1,quiz-1,2026-09-14\nC1,quiz-1,2026-09-15\nC1,quiz-2,2026-09-21\nC9,quiz-1,2026-09-21\n",
}


def test_rows_set_aside_by_a_check_across_rows_keep_their_raw_row(wh, tmp_path):
    """Duplicates and unknown references are found after the typing pass, which keeps no
    copy of the rows: each such row is read again from its file for its raw row."""
    for name, text in ROSTER.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    report = sync(wh, mapping(tmp_path, """
        name: roster
        delimiter: ","
        entities:
          learners: {file: learners.csv, columns: {learner_id: id, email: email}}
          courses: {file: courses.csv, columns: {course_id: code, title: title}}
          enrolments: {file: enrolments.csv, columns: {learner_id: id, course_id: course, enrolled_at: at}}
          activities: {file: calendar.csv, columns: {course_id: course, activity_id: activity, due_at: due}}
    """))
    quarantined = wh.execute(
        "select entity, row_number, reason, raw->>'learner_id', raw->>'course_id', "
        "raw->>'email', raw->>'activity_id', cast(raw->>'_row' as integer) "
        "from quarantine order by entity, row_number").fetchall()
    assert quarantined == [
        ("activities", 1, "course and activity appear more than once in this load", None, "C1", None, "quiz-1", 1),
        ("activities", 2, "course and activity appear more than once in this load", None, "C1", None, "quiz-1", 2),
        ("activities", 4, "unknown course: C9", None, "C9", None, "quiz-1", 4),
        ("courses", 2, "course_id appears more than once in this load", None, "C2", None, None, 2),
        ("courses", 3, "course_id appears more than once in this load", None, "C2", None, None, 3),
        ("enrolments", 2, "learner and course appear more than once in this load", "L3", "C1", None, None, 2),
        ("enrolments", 3, "unknown learner: L9", "L9", "C1", None, None, 3),
        ("enrolments", 4, "learner and course appear more than once in this load", "L3", "C1", None, None, 4),
        ("learners", 2, "learner_id appears more than once in this load", "L2", None, "l2@example.org", None, 2),
        ("learners", 4, "learner_id appears more than once in this load", "L2", None, "other@example.org", None, 4),
    ]
    assert report.quarantined == {"learners": 2, "courses": 2, "enrolments": 3, "activities": 3}
    assert wh.execute("select learner_id from learners order by 1").fetchall() == [("L1",), ("L3",)]
    assert wh.execute("select course_id from courses").fetchall() == [("C1",)]
    assert wh.execute("select learner_id, course_id from enrolments").fetchall() == [("L1", "C1")]
    assert wh.execute("select activity_id from activities").fetchall() == [("quiz-2",)]
