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

# The suite starts many Python processes (the workers, CLI runs, Prefect servers and workers, dask workers), and
# the venv installs without bytecode (--no-compile): with PYTHONDONTWRITEBYTECODE set in the environment (as on
# CI) each of them would compile pandas, SQLAlchemy, Prefect and the migrations again, ~3-4 s of CPU per process.
# The test run writes the bytecode on first import instead.
test: lint
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=15

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
