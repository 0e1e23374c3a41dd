# The two targets a user needs: `make demo` and `make test`. Both set up .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test test-any-day lint clean assets catalogs

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	bash .ci/system-packages
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/lienwatch demo

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests bench

# The suite spread over the cores (pytest-xdist; a file's tests stay together, so that a module's
# fixtures are built once), the files with slow tests first (tests/conftest.py) rather than
# most tests first. Every test process has its own databases (named by pid), NATS streams
# (random names) and ports.
test: lint
	$(BIN)/pytest -n auto --dist loadfile --no-loadscope-reorder

# The suite again with the machine's clock years ahead and before the fixtures' dates
# (libfaketime, both at once), so that no test can depend on the day it runs; tests marked slow
# (long idle spells, no dates) are left out. CI runs it beside `make test` (.ci/run).
test-any-day: $(VENV)/.installed-dev
	bash .ci/any-day $(BIN)/pytest "2029-02-28 23:30:00" "2025-06-01 03:00:00"

# The console's front-end assets from the npm registry (committed in src/lienwatch/web/static/
# vendor/, so neither npm nor the network is needed to run or test lienwatch), and its gettext
# catalogs after a template changed (docs/console.md).
assets:
	bash scripts/build-assets.sh

catalogs: $(VENV)/.installed-dev
	bash scripts/catalog.sh

clean:
	rm -rf $(VENV) lienwatch-demo lienwatch-reports .pytest_cache .ruff_cache .hypothesis
