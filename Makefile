# The two commands: `make demo` (dashboard on an embedded PostgreSQL with demo data)
# and `make test` (the whole suite). Both run `make setup` first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-tools lint format bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check uv
	$(BIN)/uv pip install --python $(BIN)/python --quiet -e '.[dev]'
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
