"""The sources file, credentials by reference, and cursors that move only with their rows;
a sync of every source loads the others when one of them fails."""

from __future__ import annotations

import textwrap

import pytest

from connectors import SourceError, open_source, read_sources, sync
from connectors.secrets import resolve_secret
from connectors.state import SourceState
from tests.lms_fixtures import RALPH_USER
from tests.test_connectors_moodle import moodle, site  # noqa: F401  (fixtures)


def sources_file(tmp_path, text: str):
    path = tmp_path / "sources.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_a_csv_source_by_name_with_its_mapping_file(tmp_path):
    (tmp_path / "exports").mkdir()
    (tmp_path / "exports" / "mapping.yaml").write_text(
        "name: ignored\nentities:\n  learners: {file: l.csv, columns: {learner_id: id}}\n")
    path = sources_file(tmp_path, """
        sources:
          lms-export: {kind: csv, mapping: exports/mapping.yaml}
    """)
    connector = open_source("lms-export", path)
    assert connector.name == "lms-export"   # the sources file names it, not the mapping
    assert connector.directory == (tmp_path / "exports").resolve()


@pytest.mark.parametrize("text, message", [
    ("sources: {}\n", "expected a `sources:` mapping of source names"),
    ("sources:\n  a: {mapping: m.yaml}\n", "sources.a: missing `kind` (one of csv, excel"),
    ("sources:\n  a: {kind: blackboard}\n",
     "sources.a.kind: unknown kind 'blackboard'; expected one of csv, excel, oulad, xapi, moodle, canvas"),
])
def test_a_bad_sources_file_says_where_and_what_is_expected(tmp_path, text, message):
    path = sources_file(tmp_path, text)
    with pytest.raises(SourceError) as exc:
        read_sources(path)
    assert str(exc.value).startswith(f"{path}: ") and message in str(exc.value)


def test_an_unknown_source_name_lists_the_known_ones(tmp_path):
    path = sources_file(tmp_path, "sources:\n  lms: {kind: csv, mapping: m.yaml}\n")
    with pytest.raises(SourceError, match="no source named 'moodle'; the sources are: lms"):
        open_source("moodle", path)


def test_secrets_are_references_and_their_values_never_appear_in_errors(monkeypatch):
    monkeypatch.setenv("MOODLE_TOKEN", "s3cr3t-value")
    assert resolve_secret({"env": "MOODLE_TOKEN"}, "source m: token") == "s3cr3t-value"
    with pytest.raises(SourceError, match="write credentials as a reference"):
        resolve_secret("s3cr3t-value", "source m: token")
    monkeypatch.delenv("MOODLE_TOKEN")
    with pytest.raises(SourceError, match="MOODLE_TOKEN is not set"):
        resolve_secret({"env": "MOODLE_TOKEN"}, "source m: token")


class Pages:
    """A source that delivers learners page by page past a cursor, and can fail mid-way."""

    kind = "pages"
    timezone = "UTC"
    datetime_formats = ["%Y-%m-%d %H:%M"]
    date_formats = ["%Y-%m-%d"]
    progress_scale = "share"

    def __init__(self, name, rows, fail_after=None):
        self.name, self.rows, self.fail_after = name, rows, fail_after

    def stage(self, con, state):
        start = int(state.get("learners", "0"))
        new = self.rows[start:]
        con.execute("create or replace table stg_pages__learners (learner_id varchar, "
                    "email varchar, first_name varchar, last_name varchar, locale varchar, "
                    "timezone varchar, manager_email varchar, _file varchar, _row bigint)")
        for i, learner_id in enumerate(new):
            con.execute("insert into stg_pages__learners (learner_id, email, _file, _row) "
                        "values (?, ?, 'api', ?)", [learner_id, f"{learner_id}@example.org", i])
        if self.fail_after is not None and len(new) > self.fail_after:
            raise ConnectionError("connection reset by peer")
        state.advance("learners", str(start + len(new)))
        return {"learners": len(new)}


def test_a_cursor_moves_only_with_the_rows_it_covers(wh):
    rows = [f"L{i}" for i in range(5)]
    with pytest.raises(ConnectionError):
        sync(wh, Pages("api", rows, fail_after=2))
    # the failed sync loaded nothing and left no cursor: the next one starts over
    assert wh.execute("select count(*) from learners").fetchall() == [(0,)]
    assert SourceState.read(wh, "api").get("learners") is None
    assert wh.execute("select status from loads").fetchall() == [("failed",)]

    first = sync(wh, Pages("api", rows[:3]))
    assert first.loaded == {"learners": 3}
    assert SourceState.read(wh, "api").get("learners") == "3"
    second = sync(wh, Pages("api", rows))          # two new rows since
    assert second.rows == {"learners": 2}
    again = sync(wh, Pages("api", rows))           # nothing new
    assert again.rows == {"learners": 0}
    assert sorted(r[0] for r in wh.execute("select learner_id from learners").fetchall()) == rows


def test_a_secret_loses_the_line_break_it_was_stored_with_and_keeps_its_spaces(monkeypatch):
    # an env file or a mounted secret ends with a newline, which servers refuse as wrong
    # credentials; a password may end with a space
    monkeypatch.setenv("LRS_PASSWORD", "pass word \r\n")
    assert resolve_secret({"env": "LRS_PASSWORD"}, "source lrs: password") == "pass word "
    monkeypatch.setenv("LRS_PASSWORD", "\n")
    with pytest.raises(SourceError, match="the environment variable LRS_PASSWORD is not set"):
        resolve_secret({"env": "LRS_PASSWORD"}, "source lrs: password")


def test_relance_sync_of_every_source_loads_the_others_when_one_fails(tmp_path, moodle, site,
                                                                        monkeypatch):
    # the LRS, listed first, cannot be read (its password's variable is not set here): a
    # failure the flow does not retry, so that the test does not wait for Prefect's retries
    from typer.testing import CliRunner

    import warehouse
    from relance.cli.main import app
    monkeypatch.setenv("LRS_USER", RALPH_USER)
    monkeypatch.delenv("LRS_PASSWORD", raising=False)
    sources = tmp_path / "sources.yaml"
    sources.write_text(textwrap.dedent(f"""\
        sources:
          lrs:
            kind: xapi
            url: http://127.0.0.1:9
            username: {{env: LRS_USER}}
            password: {{env: LRS_PASSWORD}}
          moodle-prod: {{kind: moodle, url: '{moodle.url}', token: {{env: MOODLE_TOKEN}}}}
        """), encoding="utf-8")
    path = tmp_path / "w.duckdb"
    result = CliRunner().invoke(app, ["sync", "--sources", str(sources), "--warehouse", str(path)],
                                env={"COLUMNS": "400"})
    assert result.exit_code == 1
    assert "error source lrs: password: the environment variable LRS_PASSWORD is not set" in result.output
    # the Moodle site was still loaded, and the error says so
    assert "moodle-prod was loaded" in result.output
    con = warehouse.connect(str(path))
    try:
        assert con.execute("select source, status from loads order by 1").fetchall() == [
            ("lrs", "failed"), ("moodle-prod", "succeeded")]
        assert con.execute("select count(*) from courses").fetchall() == [(2,)]
    finally:
        con.close()
