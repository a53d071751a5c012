"""What a person reads after a sync of file sources: the `loads` row, the Prefect
artifact's markdown and the CLI's table all carry the quarantine counts and reasons; a value
or a column name in brackets is printed as written."""

from __future__ import annotations

import pytest
import typer

import warehouse
from connectors.csv_export import CsvConnector
from flows.sync_progress import load_source, summary_markdown
from relance.cli import main, sources
from tests.conftest import OULAD
from tests.test_connectors_csv import export
from tests.test_connectors_oulad import corrupted


@pytest.fixture
def sources_file(tmp_path):
    data = corrupted(tmp_path)
    path = tmp_path / "sources.yaml"
    path.write_text(f"sources:\n  ou: {{kind: oulad, directory: {data}}}\n", encoding="utf-8")
    return path


@pytest.mark.skipif(not OULAD.is_dir(), reason="the corrupted copy borrows OULAD's layout")
def test_quarantine_counts_reach_the_run_log_the_artifact_and_the_cli(tmp_path, sources_file):
    db = tmp_path / "w.duckdb"
    result = load_source.fn("ou", str(sources_file), str(db), "flow-run-1")

    con = warehouse.connect(db)
    assert con.execute("select source, status, n_quarantined, flow_run_id from loads").fetchall() == [
        ("ou", "succeeded", 14, "flow-run-1")]    # studentInfo's unknown enrolment: twice,
    # as an outcome and as study history (the risk model's), each set aside with its reason
    con.close()

    markdown = summary_markdown([result])
    assert "| ou | progress_events | 6 | 1 | 5 |" in markdown
    assert "| ou | courses | 3 | 1 | 2 |" in markdown
    assert "- progress_events: is_banked must be 0 or 1: 2 (1)" in markdown

    with main.console.capture() as captured:
        sources._print_sync(result)
    text = captured.get()
    assert f"ou: load {result['load_id']}" in text
    row = next(line for line in text.splitlines() if "progress_events" in line and "│" in line)
    assert [cell.strip() for cell in row.split("│")[1:-1]] == ["progress_events", "6", "1", "5"]
    assert "quarantined outcomes: unknown final_result: Maybe (expected Pass, Distinction, Fail or Withdrawn) (1)" in text

    # a second sync: nothing changed, and both say so
    again = load_source.fn("ou", str(sources_file), str(db), "flow-run-2")
    assert "| ou | nothing new since the last sync | 0 | 0 | 0 |" in summary_markdown([again])
    with main.console.capture() as captured:
        sources._print_sync(again)
    assert "nothing new since the last sync" in captured.get()


def test_a_load_with_many_reasons_lists_the_most_frequent_and_counts_the_rest(tmp_path):
    """Reasons quote the row's value: an export naming 25 unknown learners has 25 of them.
    The report lists the 20 most frequent and says how many more, for how many rows."""
    (tmp_path / "events.csv").write_text(
        "id,course,verb,at\n"
        + "".join(f"X{i:02},C1,progressed,2026-09-15 10:00\n" for i in range(25))
        + "".join(f"X00,C1,completed,2026-09-1{d} 10:00\n" for d in range(6, 9)),
        encoding="utf-8")
    (tmp_path / "courses.csv").write_text("code,title\nC1,Anglais\n", encoding="utf-8")
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(
        "name: many\ndelimiter: \",\"\nentities:\n"
        "  courses: {file: courses.csv, columns: {course_id: code, title: title}}\n"
        "  progress_events: {file: events.csv, columns: {learner_id: id, course_id: course, "
        "verb: verb, occurred_at: at}}\n", encoding="utf-8")
    result = load_source.fn(str(mapping), str(tmp_path / "sources.yaml"),
                            str(tmp_path / "w.duckdb"), None)

    assert result["quarantined"] == {"courses": 0, "progress_events": 28}
    assert len(result["quarantine_reasons"]) == 20
    # the most frequent first: X00 is named by four rows
    assert result["quarantine_reasons"][0] == [
        "progress_events", "unknown enrolment: learner X00 on course C1", 4]
    assert result["more_reasons"] == [5, 5]
    more = f"… and 5 more reasons for 5 rows: select * from quarantine where load_id = '{result['load_id']}'"
    assert f"- {more}" in summary_markdown([result])
    with main.console.capture() as captured:
        sources._print_sync(result)
    text = captured.get()
    assert sum("quarantined progress_events: unknown enrolment" in line
               for line in text.splitlines()) == 20
    assert more in " ".join(text.split())


def test_cli_prints_a_quarantine_reason_holding_brackets_as_written(tmp_path):
    # a value of the export is printed in the reason: rich must not read it as markup
    # (a closing tag crashed the CLI after the load had committed; `[bold]` vanished)
    mapping = export(tmp_path, {"learners.csv": "id,mail\nA1,[/b]@example\nA2,[bold]x\n"}, """
        name: review
        entities:
          learners: {file: learners.csv, columns: {learner_id: id, email: mail}}
    """)
    result = load_source.fn(str(mapping), str(tmp_path / "sources.yaml"),
                            str(tmp_path / "w.duckdb"), None)
    with main.console.capture() as captured:
        sources._print_sync(result)
    text = captured.get()
    assert "quarantined learners: malformed email: [/b]@example (1)" in text
    assert "quarantined learners: malformed email: [bold]x (1)" in text


def test_cli_error_naming_a_column_with_brackets_is_printed_as_written(tmp_path):
    mapping = export(tmp_path, {"learners.csv": "id,Note [/i]\nA1,x\n"}, """
        name: review
        entities:
          learners: {file: learners.csv, columns: {learner_id: ident}}
    """)

    def body():
        CsvConnector.from_file(mapping).stage(warehouse.connect(":memory:"))

    with main.err.capture() as captured, pytest.raises(typer.Exit):
        main._main(body)
    text = captured.get()
    assert "column 'ident' (mapped to learners.learner_id) is not in the file" in text
    assert "its columns are: id, Note [/i]" in text
