"""File sources as a training team uses them: what a review of the CSV and Excel
connectors found wrong, each as the user meets it (warehouse content, quarantine rows,
what `relance sync` prints)."""

from __future__ import annotations

import textwrap

import pytest
import typer

from connectors import SourceError, sync
from connectors.csv_export import CsvConnector
from flows.sync_progress import load_source
from relance import cli


def export(tmp_path, files: dict[str, str], mapping: str):
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    path = tmp_path / "mapping.yaml"
    path.write_text(textwrap.dedent(mapping), encoding="utf-8")
    return path


ROSTER = """
    name: review
    delimiter: ","
    entities:
      learners:        {file: learners.csv, columns: {learner_id: id, email: mail}}
      courses:         {file: courses.csv, columns: {course_id: code, title: title}}
      enrolments:      {file: enrolments.csv, columns: {learner_id: id, course_id: course, enrolled_at: date}}
      progress_events: {file: events.csv, columns: {learner_id: id, course_id: course, verb: verb, occurred_at: at}}
"""


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
    with cli.console.capture() as captured:
        cli._print_sync(result)
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
        CsvConnector.from_file(mapping).stage(__import__("warehouse").connect(":memory:"))

    with cli.err.capture() as captured, pytest.raises(typer.Exit):
        cli._main(body)
    text = captured.get()
    assert "column 'ident' (mapped to learners.learner_id) is not in the file" in text
    assert "its columns are: id, Note [/i]" in text
