# `make demo` and `make test` are the README's two Quick start commands: each sets up
# everything it needs (a virtualenv with the locked dependencies) before it runs.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test test-shared postgresql bench lock clean

$(BIN)/.installed: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -qq --disable-pip-version-check -r requirements.lock
	$(BIN)/pip install -qq --disable-pip-version-check --no-deps -e .
	touch $@

# Ralph, the xAPI LRS the connector tests run against, pins a fastapi that Prefect cannot
# share: it gets a virtualenv of its own.
RALPH := .venv-ralph/bin/uvicorn
$(RALPH): requirements-ralph.lock
	$(PYTHON) -m venv .venv-ralph
	.venv-ralph/bin/pip install -qq --disable-pip-version-check -r requirements-ralph.lock
	touch $@

# The report's tests open it in a real headless Chromium (Debian's; Playwright drives it,
# no browser download). Installing it needs root; elsewhere, install `chromium` yourself.
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else echo "The report tests need Chromium at $(CHROMIUM): install the chromium package" >&2; exit 1; fi

# The time-travel test runs the time-sensitive tests with the clock years ahead through
# Debian's libfaketime; installing it needs root, as Chromium does.
FAKETIME := /usr/bin/faketime
$(FAKETIME):
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq faketime >/dev/null; \
	else echo "The time-travel test needs $(FAKETIME): install the faketime package" >&2; exit 1; fi

# The replies' IMAP tests read a real mailbox: Debian's Dovecot, which the tests start on
# loopback with a configuration of their own; installing it needs root, as Chromium does.
DOVECOT := /usr/sbin/dovecot
$(DOVECOT):
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dovecot-imapd >/dev/null; \
	else echo "The replies tests need Dovecot at $(DOVECOT): install the dovecot-imapd package" >&2; exit 1; fi

# The shared-warehouse tests (warehouse/shared.py) run a real PostgreSQL 15 (Debian's; the
# tests start it themselves on loopback), and DuckDB 1.5.5 with its postgres extension,
# installed beside the venv and put ahead of it for those tests only (the extension has no
# wheel for DuckDB 2.0 yet).
POSTGRES := /usr/lib/postgresql/15/bin/postgres
$(POSTGRES):
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 >/dev/null; \
	else echo "The shared-warehouse tests need $(POSTGRES): install the postgresql-15 package" >&2; exit 1; fi
postgresql: $(POSTGRES)

SHARED := .venv-shared/.installed
$(SHARED): requirements-shared.lock $(BIN)/.installed
	rm -rf .venv-shared
	$(BIN)/pip install -qq --disable-pip-version-check --no-deps --target .venv-shared -r requirements-shared.lock
	touch $@

# The tests that also run on the shared warehouse (`--warehouse=shared`: the `wh` fixture's
# warehouse is a database of its own in PostgreSQL): docs/scheduling.md says which and why.
SHARED_TESTS := tests/test_shared_warehouse.py tests/test_engine.py tests/test_delivery.py \
	tests/test_delivery_send_time.py tests/test_connectors_csv.py tests/test_connectors_oulad.py \
	tests/test_roi_kpis.py tests/test_connectors_moodle.py tests/test_team.py \
	tests/test_digests.py tests/test_replies.py tests/test_delivery_team.py \
	tests/test_delivery_events.py tests/test_delivery_sendgrid.py tests/test_delivery_smtp.py \
	tests/test_campaign_exclude.py tests/test_connectors_canvas.py \
	tests/test_connectors_canvas_analytics.py tests/test_connectors_xapi.py \
	tests/test_connectors_xapi_voids.py tests/test_engine_summaries.py \
	tests/test_roi_report.py tests/test_audience_where_plan.py tests/test_backtest_measures.py \
	tests/test_campaign_format.py tests/test_channels_lms.py tests/test_connectors_files_excel.py \
	tests/test_connectors_files_formats.py tests/test_connectors_files_incremental.py \
	tests/test_connectors_files_large.py \
	tests/test_connectors_sources.py tests/test_fuzz_connectors.py tests/test_render_budget.py \
	tests/test_replies_imap.py tests/test_replies_sendgrid.py tests/test_roi_honest.py \
	tests/test_roi_variants.py tests/test_deployments_freshness.py \
	tests/test_flows_and_cli.py tests/test_workbench_preview.py tests/test_deployments_failure.py

demo: $(BIN)/.installed
	$(BIN)/relance demo

test: $(BIN)/.installed $(RALPH) $(CHROMIUM) $(FAKETIME) $(DOVECOT) $(POSTGRES) $(SHARED)
	$(BIN)/pytest -q
	PYTHONPATH=$(CURDIR)/.venv-shared RELANCE_REQUIRE_SHARED=1 $(BIN)/pytest -q --warehouse=shared $(SHARED_TESTS)

# The shared-warehouse tests alone.
test-shared: $(BIN)/.installed $(RALPH) $(POSTGRES) $(SHARED)
	PYTHONPATH=$(CURDIR)/.venv-shared RELANCE_REQUIRE_SHARED=1 $(BIN)/pytest -q --warehouse=shared $(SHARED_TESTS)

# Each script records what it measured against its goal (bench/results.py); a script that
# fails leaves its goals "not measured", and the last step prints every goal in one table.
bench: $(BIN)/.installed $(RALPH) $(POSTGRES) $(SHARED)
	rm -f bench/results/results.jsonl
	-$(BIN)/python bench/commands_bench.py
	-$(BIN)/python bench/engine_bench.py
	-$(BIN)/python bench/connectors_bench.py
	-$(BIN)/python bench/xapi_bench.py
	-$(BIN)/python bench/sendgrid_bench.py
	-$(BIN)/python bench/delivery_bench.py
	-$(BIN)/python bench/flow_bench.py --learners 30000
	-$(BIN)/python bench/flow_bench.py
	-$(BIN)/python bench/dask_bench.py
	-$(BIN)/python bench/digest_bench.py
	-$(BIN)/python bench/backtest_bench.py
	-$(BIN)/python bench/simulate_bench.py
	-PYTHONPATH=$(CURDIR)/.venv-shared $(BIN)/python bench/shared_bench.py
	$(BIN)/python bench/summary.py

# Regenerate the lock file after changing dependencies in pyproject.toml.
lock:
	rm -rf /tmp/relance-lock && $(PYTHON) -m venv /tmp/relance-lock
	/tmp/relance-lock/bin/pip install --quiet '.[test,analyst]'
	/tmp/relance-lock/bin/pip freeze --exclude relance > requirements.lock

clean:
	rm -rf $(VENV) .venv-ralph .venv-shared relance.duckdb relance.duckdb.wal relance.duckdb.*.delivery.lock outbox .relance reports
