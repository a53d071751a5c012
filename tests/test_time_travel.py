"""No verdict depends on the day the suite runs: the time-sensitive tests pass again with the
machine's clock moved years ahead (libfaketime, Debian's `faketime`, moves it for Python
and for DuckDB's own `now()` alike)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import REPO

# the tests whose verdicts involve "now": runs and deliveries as of a moment, stale
# sources (what turned the deployment test red the day its fixed week passed: a load
# stamped by the wall clock), weekly windows, digests, the designer's tests
TIME_SENSITIVE = ["tests/test_delivery_send_time.py", "tests/test_delivery.py",
                  "tests/test_engine.py", "tests/test_deployments_freshness.py",
                  "tests/test_digests.py", "tests/test_workbench_campaign_tests.py"]
# Not listed, and why: tests/test_delivery_faults.py's kill-while-connecting test. Under
# Debian's libfaketime 0.9.10 a timed wait on a lock never times out in Python 3.11
# (`threading.Event().wait(0.005)` hangs; with FAKETIME_DONT_FAKE_MONOTONIC=1, `time.sleep`
# fails with EINVAL instead), and that test is about the sender's 5 ms wait for a request to
# leave. It fails the same way with the clock moved by +0d: the faking, not the date.
YEARS_AHEAD = "+1461d"          # four years and a day: another weekday, past a leap day


def faketime() -> str:
    found = shutil.which("faketime")
    if not found:
        pytest.fail("Debian's faketime is needed (`apt-get install faketime`; `make test` "
                    "installs it when run as root)")
    return found


def test_the_time_sensitive_tests_pass_years_from_now(tmp_path):
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    probe = subprocess.run([faketime(), "-f", YEARS_AHEAD, sys.executable, "-c",
                            "import datetime, duckdb; print(datetime.date.today().year, "
                            "duckdb.sql('select year(now())').fetchall()[0][0])"],
                           capture_output=True, text=True, env=env, timeout=120)
    assert probe.returncode == 0, probe.stderr[-2000:]
    python_year, duckdb_year = map(int, probe.stdout.split())
    from datetime import date
    assert python_year >= date.today().year + 4 and duckdb_year == python_year   # the clock moved
    done = subprocess.run(
        [faketime(), "-f", YEARS_AHEAD, sys.executable, "-m", "pytest", "-q", "-p",
         "no:cacheprovider", "--basetemp", str(tmp_path / "base"), *TIME_SENSITIVE],
        cwd=REPO, capture_output=True, text=True, env=env, timeout=1200)
    tail = done.stdout[-4000:] + done.stderr[-2000:]
    assert done.returncode == 0, tail
    assert " passed" in tail and " failed" not in tail
