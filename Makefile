# The two commands: `make demo` (dashboard on an embedded PostgreSQL with demo data)
# and `make test` (the whole suite). Both run `make setup` first, and install as root the
# Debian packages they need (scripts/ensure-tools.sh). `make demo PORT=8060` serves elsewhere.
PYTHON ?= python3
PORT ?= 8050
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo demo-tools test test-tools lint typecheck format bench bench-load bench-browser clean

setup: $(STAMP)

$(STAMP): pyproject.toml uv.lock scripts/make-venv.sh scripts/fetch_plotly_basic.py
	@PYTHON=$(PYTHON) bash scripts/make-venv.sh
	@$(BIN)/python scripts/fetch_plotly_basic.py
	@touch $(STAMP)

demo: setup demo-tools
	$(BIN)/taskmaster-dash demo --port $(PORT)

demo-tools:
	@bash scripts/ensure-tools.sh demo

test-tools:
	@bash scripts/ensure-tools.sh test

test: setup test-tools
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# mypy's file list and settings are in pyproject.toml ([tool.mypy]).
typecheck: setup
	$(BIN)/mypy

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: setup
	$(BIN)/python bench/analytics.py

# Speed under load and in the browser (README "Benchmarks under load"):
# `make bench-load SCALE=large PGDATA=/tmp/bench-large` keeps the seeded data for the next run.
SCALE ?= medium
BENCH_DATA = $(if $(PGDATA),--pgdata $(PGDATA))
bench-load: setup
	$(BIN)/python bench/load.py --scale $(SCALE) $(BENCH_DATA)

bench-browser: setup test-tools
	$(BIN)/python bench/browser.py --scale $(SCALE) $(BENCH_DATA)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
