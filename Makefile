# The two commands: `make demo` (dashboard on an embedded PostgreSQL with demo data)
# and `make test` (the whole suite). Both run `make setup` first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-tools lint format bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml scripts/make-venv.sh
	@PYTHON=$(PYTHON) bash scripts/make-venv.sh
	@touch $(STAMP)

demo: setup
	$(BIN)/taskmaster-dash demo

test-tools:
	@bash scripts/ensure-test-tools.sh

test: setup test-tools
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: setup
	$(BIN)/python bench/analytics.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
