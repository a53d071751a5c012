"""What an operator reads when the sync cannot find its sources: each error names the file
actually missing, where it was looked for, and the setting that pointed there."""

from __future__ import annotations

import pytest

from connectors import SourceError, open_source, read_sources
from relance import demo
from tests.conftest import MONDAY


@pytest.fixture
def cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RELANCE_SOURCES", raising=False)
    return tmp_path


def test_a_missing_mapping_path_is_named_not_the_sources_file(cwd):
    with pytest.raises(SourceError) as caught:
        open_source("exports/mapping.yaml")
    message = str(caught.value)
    assert message.startswith(f"exports/mapping.yaml ({cwd / 'exports' / 'mapping.yaml'}): "
                              "CSV mapping file not found")
    assert "sources file not found" not in message


def test_the_default_sources_file_says_where_it_was_looked_for_and_what_sets_it(cwd):
    with pytest.raises(SourceError) as caught:
        read_sources()
    assert str(caught.value).startswith(
        f"sources.yaml ({cwd / 'sources.yaml'}): sources file not found (the default, "
        f"sources.yaml in the working directory {cwd}, as RELANCE_SOURCES is not set); create it")


def test_a_sources_file_named_by_relance_sources_says_so(cwd, monkeypatch):
    missing = cwd / "conf" / "sources.yaml"
    monkeypatch.setenv("RELANCE_SOURCES", str(missing))
    with pytest.raises(SourceError, match=r"sources file not found \(named by RELANCE_SOURCES\)"):
        read_sources(missing)


def test_a_mapping_the_sources_file_names_is_named_with_its_source(cwd):
    (cwd / "sources.yaml").write_text("sources:\n  lms: {kind: csv, mapping: exports/m.yaml}\n",
                                      encoding="utf-8")
    with pytest.raises(SourceError) as caught:
        open_source("lms")
    assert str(caught.value).startswith(
        f"source lms: mapping: exports/m.yaml ({cwd / 'exports' / 'm.yaml'}): mapping file "
        "not found; `mapping:` is relative to the sources file's folder")


def test_the_demo_writes_a_sources_file_naming_its_export_and_leaves_an_operators_alone(cwd):
    mapping = demo.generate(cwd / ".relance" / "demo-export", as_of=MONDAY, scale=0.01)
    assert demo.write_sources(cwd / "sources.yaml", mapping) == (
        f"{cwd / 'sources.yaml'} names the demo's export (source demo, "
        ".relance/demo-export/mapping.yaml)")
    assert read_sources() == {"demo": {"kind": "csv",
                                       "mapping": ".relance/demo-export/mapping.yaml"}}
    assert open_source("demo").name == "demo"       # as the demo's own sync names it
    # written again by the next demo; an operator's own file is never touched
    assert demo.write_sources(cwd / "sources.yaml", mapping)
    (cwd / "sources.yaml").write_text("sources:\n  lms: {kind: csv, mapping: m.yaml}\n",
                                      encoding="utf-8")
    assert demo.write_sources(cwd / "sources.yaml", mapping) is None
    assert list(read_sources()) == ["lms"]
