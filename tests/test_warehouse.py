"""The warehouse: migrations recorded once, views an analyst can query."""

from __future__ import annotations

import pytest

import warehouse


def test_migrations_are_recorded_and_applied_once(tmp_path):
    path = tmp_path / "w.duckdb"
    con = warehouse.connect(path)
    names = [r[0] for r in con.execute("select name from schema_migrations order by version").fetchall()]
    assert names == [m.name for m in warehouse.migrations()]
    con.close()
    con = warehouse.connect(path)
    assert warehouse.migrate(con) == []
    tables = {r[0] for r in con.execute("select table_name from information_schema.tables").fetchall()}
    assert {"learners", "courses", "enrolments", "activities", "progress_events", "contributions",
            "campaign_runs", "decisions", "candidates", "messages", "stage_state", "follow_ups",
            "quarantine", "loads", "suppressions", "learner_stages", "campaign_funnel",
            "decision_reasons", "follow_up_list"} <= tables


def test_an_edited_migration_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "w.duckdb"
    warehouse.connect(path).close()
    first = warehouse.migrations()[0]
    monkeypatch.setattr(warehouse.Migration, "checksum", property(lambda self: "0" * 16))
    with pytest.raises(warehouse.MigrationError) as exc:
        warehouse.connect(path)
    assert f"warehouse/migrations/{first.path.name} was edited after it was applied" in str(exc.value)
    assert "add a new migration" in str(exc.value)


def test_a_failing_migration_leaves_no_trace(tmp_path, monkeypatch):
    bad = tmp_path / "9999_broken.sql"
    bad.write_text("create table ok_table (a int);\ncreate table broken (;", encoding="utf-8")
    real = warehouse.migrations
    monkeypatch.setattr(warehouse, "migrations", lambda: real() + [warehouse.Migration(9999, "broken", bad)])
    con = warehouse.duckdb.connect(str(tmp_path / "w.duckdb"))
    with pytest.raises(warehouse.duckdb.ParserException):
        warehouse.migrate(con)
    assert con.execute("select count(*) from schema_migrations where version = 9999").fetchall()[0][0] == 0
    assert con.execute("select count(*) from information_schema.tables where table_name = 'ok_table'").fetchall()[0][0] == 0


def test_every_table_and_view_documents_its_grain():
    for path in list(warehouse.MIGRATIONS.glob("*.sql")) + list(warehouse.VIEWS.glob("*.sql")):
        text = path.read_text(encoding="utf-8")
        for statement in warehouse.statements(text):
            if statement.lower().lstrip("- \n").startswith(("create table", "create or replace view")):
                assert statement.startswith("--") or "\n--" in statement.split("create")[0] or \
                    statement.lstrip().startswith("--"), f"{path.name}: a table or view without its grain comment"


def test_scripts_split_only_on_real_statement_ends():
    sql = ("-- a comment; with a semicolon\ncreate table a (x varchar);\n"
           "/* block; comment */ insert into a values ('x;\ny''s; -- not a comment');\n"
           "select \"odd;name\" from (select 1 as \"odd;name\")")
    parts = warehouse.statements(sql)
    assert len(parts) == 3
    assert parts[1].endswith("'x;\ny''s; -- not a comment')")


def test_views_are_remade_when_their_sql_changes_and_only_then(tmp_path, monkeypatch):
    """Opening the warehouse remakes the analyst views only when their SQL changed (it took
    a tenth of a second or more of every command): what someone added to a view since
    (a comment) stays, and an edited view file is the view queried next time."""
    import shutil
    path = tmp_path / "w.duckdb"
    con = warehouse.connect(path)
    con.execute("comment on view campaign_funnel is 'one row per run'")
    con.close()
    con = warehouse.connect(path)
    assert con.execute("select comment from duckdb_views() where view_name = 'campaign_funnel'"
                       ).fetchall() == [("one row per run",)]
    con.close()
    views = tmp_path / "views"
    shutil.copytree(warehouse.VIEWS, views)
    (views / "follow_up_list.sql").write_text(
        "-- follow_up_list: one row, edited\ncreate or replace view follow_up_list as "
        "select 'edited' as edited", encoding="utf-8")
    monkeypatch.setattr(warehouse, "VIEWS", views)
    con = warehouse.connect(path)
    assert con.execute("select edited from follow_up_list").fetchall() == [("edited",)]
    con.execute("drop view learner_stages")           # gone by hand: made again
    con.close()
    con = warehouse.connect(path)
    assert con.execute("select count(*) from learner_stages").fetchall() == [(0,)]
    con.close()
