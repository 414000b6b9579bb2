# The two commands a new user needs: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)

# Small enough for CI (about a minute); the README's figures: bench/alloy_both_ways_bench.py --items 1000,10000.
ALLOY_BENCH_ARGS ?= --items 1000 --poll-edits 5 --poll-interval 2 --webhook-edits 10 --write-runs 200
# CI size (seconds); the README's figures: bench/admin_pages_bench.py --size full (100,000 jobs, 5,000,000 runs).
ADMIN_BENCH_ARGS ?= --jobs 2000 --runs 50000
# CI size; the README's figures: bench/retention_bench.py --runs 300000 --batch-size 500,2000,5000.
RETENTION_BENCH_ARGS ?= --runs 20000 --batch-size 2000
# CI size, measured at 200 / 5,000 and 2,000 / 50,000; the README's figures: bench/api_metrics_bench.py --size full.
API_BENCH_ARGS ?= --size ci --requests 20

.PHONY: install demo test lint bench clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

demo: install
	$(BIN)/python manage.py demo $(DEMO_ARGS)

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: install
	$(BIN)/python bench/runner_overhead.py $(RUNNER_BENCH_ARGS)
	$(BIN)/python bench/cron_bench.py $(CRON_BENCH_ARGS)
	$(BIN)/python bench/sync_bench.py $(SYNC_BENCH_ARGS)
	$(BIN)/python bench/beat_bench.py $(BEAT_BENCH_ARGS)
	$(BIN)/python bench/load_bench.py $(LOAD_BENCH_ARGS)
	$(BIN)/python bench/alloy_both_ways_bench.py $(ALLOY_BENCH_ARGS)
	$(BIN)/python bench/admin_pages_bench.py $(ADMIN_BENCH_ARGS)
	$(BIN)/python bench/retention_bench.py $(RETENTION_BENCH_ARGS)
	$(BIN)/python bench/api_metrics_bench.py $(API_BENCH_ARGS)

clean:
	rm -rf $(VENV) var db.sqlite3 db.sqlite3-wal db.sqlite3-shm
