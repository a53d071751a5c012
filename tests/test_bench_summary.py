"""`make bench` ends with one table of issue 19's goals (bench/summary.py), from the figures
the bench scripts recorded (bench/results.py): each goal met or not, and honest about
those no script measured or measured at another size."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


def summary(tmp_path, monkeypatch, *figures) -> str:
    from bench.results import record
    results = tmp_path / "results.jsonl"
    monkeypatch.setenv("RELANCE_BENCH_RESULTS", str(results))
    for args, kwargs in figures:
        record(*args, **kwargs)
    done = subprocess.run([sys.executable, str(REPO / "bench" / "summary.py"), "--results",
                           str(results)], capture_output=True, text=True, cwd=REPO, check=True)
    return done.stdout


def line(output: str, start: str, at: str = "") -> str:
    [found] = [x for x in output.splitlines() if x.startswith(start) and at in x]
    return found


def test_every_goal_has_a_row_with_its_verdict(tmp_path, monkeypatch):
    out = summary(
        tmp_path, monkeypatch,
        (("5.backtest", 8.4, 10, "<="), {"unit": "s", "scale": "OULAD 2013J, 39 Mondays"}),
        (("4.30k", 1.55, 1.3, "<="), {"scale": "30,000 learners"}),
        # a later run of the same script wins
        (("1.plan", 4.0, 3, "<="), {"scale": "demo warehouse"}),
        (("1.plan", 2.1, 3, "<="), {"scale": "demo warehouse"}),
        (("3.ratio", 1.4, 2, "<="), {"scale": "20,000 learners, 200,000 events"}),
    )
    assert line(out, "5 `relance backtest`").split()[-1] == "met"
    assert "8.40 s" in line(out, "5 `relance backtest`")
    assert line(out, "4 weekly flows", "30,000 learners").endswith("NOT MET")
    assert line(out, "4 weekly flows", "100,000 learners").endswith("not measured")
    assert "2.10" in line(out, "1 `relance plan`") and line(out, "1 `relance plan`").endswith("met")
    # measured on a small warehouse: not a verdict on the 1M-learner goal
    assert line(out, "3 full evaluation").endswith("not at the goal's size")
    assert line(out, "5 `relance simulate`").endswith("not measured")
    assert line(out, "2 weekly job to the outbox").endswith("not measured")
    assert out.strip().splitlines()[-1] == ("2 met, 1 not met, 12 not measured, "
                                            "1 not at the goal's size")


def test_without_any_figure_every_goal_says_not_measured(tmp_path, monkeypatch):
    out = summary(tmp_path, monkeypatch)
    assert out.strip().splitlines()[-1] == "16 not measured"
