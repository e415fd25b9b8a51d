# Two commands: `make demo` and `make test`. Both create .venv from the committed lock file when missing.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv demo test lint unit bench docs lock clean

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-compile -r requirements.lock
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)

demo: venv
	$(BIN)/abm-sla demo

lint: venv
	$(BIN)/ruff check .

# Three workers on two cores: the Prefect server's file mostly waits (heartbeats, worker polls), so a third
# worker keeps both cores busy meanwhile. A file's tests stay on one worker (module-scoped servers start once),
# and files start in the order tests/conftest.py gives them (heaviest first), not by how many tests they have.
PYTEST_WORKERS ?= 3

test: lint
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=15

unit: venv
	$(BIN)/pytest tests/unit -q

bench: venv
	$(BIN)/python benchmarks/bench_scoring.py

# The documentation site (mkdocs.yml, docs/) into site/; `$(BIN)/mkdocs serve` previews it.
docs: venv
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# Re-resolve the lock after changing dependencies in pyproject.toml.
lock:
	rm -rf /tmp/abm-sla-lock && $(PYTHON) -m venv /tmp/abm-sla-lock
	/tmp/abm-sla-lock/bin/pip install -q -e '.[dev]'
	/tmp/abm-sla-lock/bin/pip freeze --exclude-editable | grep -v '^-e' > requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache site
