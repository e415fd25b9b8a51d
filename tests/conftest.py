"""Test-wide setup: Prefect kept inside a temp dir with telemetry off; warehouses on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path

import pytest

_PREFECT_HOME = tempfile.mkdtemp(prefix="abm-sla-prefect-")
os.environ["PREFECT_HOME"] = _PREFECT_HOME
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["DO_NOT_TRACK"] = "1"
os.environ["PREFECT_LOGGING_LEVEL"] = "WARNING"
os.environ.pop("PREFECT_API_URL", None)
os.environ.pop("ABM_SLA_DATABASE_URL", None)

POSTGRES_ENV = "ABM_SLA_TEST_POSTGRES_URL"

#: The files that cost the most (their tests' wall seconds summed, in a full run on 2026-12-07), heaviest first.
#: ``make test`` hands whole files to the workers in collection order (``--dist loadfile --no-loadscope-reorder``),
#: so these start first and the suite does not end waiting on one of them (the Prefect server's file mostly waits
#: on heartbeats: it overlaps the others' CPU work). A file missing here only runs later.
HEAVIEST_FIRST = (
    "tests/e2e/test_prefect_server.py",
    "tests/e2e/test_demo_numbers.py",
    "tests/adapters/test_crm_sync.py",
    "tests/adapters/test_incremental.py",
    "tests/flows/test_backfill.py",
    "tests/adapters/test_backfill_engine.py",
    "tests/adapters/test_reports.py",
    "tests/adapters/test_files_source.py",
    "tests/adapters/test_faults.py",
    "tests/unit/test_tier1_commitments.py",
    "tests/unit/test_owners_and_regions.py",
    "tests/e2e/test_cli.py",
    "tests/adapters/test_undo.py",
    "tests/adapters/test_tier_move_incremental.py",
    "tests/flows/test_dask.py",
    "tests/unit/test_metrics_properties.py",
    "tests/adapters/test_stages.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Heaviest files first (:data:`HEAVIEST_FIRST`), the rest in collection order; a file's tests stay in order."""
    rank = {path: number for number, path in enumerate(HEAVIEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))


@pytest.fixture(scope="session")
def prefect_harness():
    """One Prefect test harness for the whole session (it costs ~9 s to start)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'warehouse.db'}"


@pytest.fixture
def postgres_url() -> str:
    """A fresh PostgreSQL schema per test, dropped afterwards; skipped without the server's URL."""
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"{POSTGRES_ENV} is not set: PostgreSQL tests need a server (CI sets it)")
    import sqlalchemy as sa

    schema_name = f"abm_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(base)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema_name}"'))
    separator = "&" if "?" in base else "?"
    yield f"{base}{separator}options=-csearch_path%3D{schema_name}"
    with admin.begin() as connection:
        connection.execute(sa.text(f'DROP SCHEMA "{schema_name}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request) -> str:
    """Each warehouse test runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("postgres_url")


#: The small demo's size: enough MQAs, verdicts and escalations to cross-check, cheap enough to build once.
SMALL_DEMO_ACCOUNTS = 400
#: Its seed: 28 MQAs in the quarter, 8 with a verdict, 5 of them rejected (seed 7 has no rejection at this size).
SMALL_DEMO_SEED = 11
#: A folder ``abm-sla demo --accounts N --out DIR`` wrote, for the small-demo tests to read instead of building one.
SMALL_DEMO_ENV = "ABM_SLA_TEST_DEMO_DIR"


@pytest.fixture(scope="session")
def small_demo(tmp_path_factory) -> Path:
    """``abm-sla demo``'s folder (warehouse ``abm-sla.db``, ``exports/``, ``reports/`` with each report's
    metrics.csv) on a 400-account sample CRM (seed 11), its quarter run daily without a Prefect server; built once per
    session (its model proposal, a separate five-quarter CRM, is left out), or the folder ``$ABM_SLA_TEST_DEMO_DIR``
    names."""
    if os.environ.get(SMALL_DEMO_ENV):
        return Path(os.environ[SMALL_DEMO_ENV])
    from abm_sla.infra import settings
    from abm_sla.services import demo
    from tasks.common import direct_calls

    settings.configure_prefect_defaults()
    from flows import pipeline

    out = tmp_path_factory.mktemp("demo")
    with direct_calls():
        store, _, _ = demo.build_demo(out, SMALL_DEMO_ACCOUNTS, SMALL_DEMO_SEED, pipeline.run_steps.fn)
    demo.write_outputs(store, out)
    return out
