"""`abm-sla sync` and `abm-sla run --source hubspot` against the fake HubSpot, configured by abm-sla.yaml."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pandas as pd
import pytest

from abm_sla.cli import main
from abm_sla.services.synthetic import generate_crm
from abm_sla.warehouse import Warehouse, schema
from tests.adapters.test_crm_sync import created_tasks, start_fake

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def crm_data() -> dict[str, pd.DataFrame]:
    return generate_crm(n_accounts=60, start="2026-01-01", days=30, seed=11)


@pytest.fixture
def hubspot(crm_data, monkeypatch):
    fake = start_fake("hubspot", crm_data)
    monkeypatch.setenv("ABM_SLA_TEST_HUBSPOT_TOKEN", fake.token)
    yield fake
    fake.stop()


def write_config(folder: Path, host: str, writeback: bool) -> Path:
    path = folder / "abm-sla.yaml"
    path.write_text(textwrap.dedent(f"""
        sources:
          hubspot:
            host: {host}
            credentials: {{env: {{access_token: ABM_SLA_TEST_HUBSPOT_TOKEN}}}}
            webinar_event_type: pe999_webinar_attended
            retry: {{max_attempts: 3, base_delay: 0, max_delay: 0, timeout: 10}}
        system_of_record: {{owner: hubspot, tier: hubspot}}
        writeback:
          enabled: {str(writeback).lower()}
          max_age_hours: 1000000   # the fake CRM's MQAs are from early 2026
        """))
    return path


def counts(db: str) -> dict[str, int]:
    store = Warehouse(db)
    return {kind: len(store.read_kind(kind)) for kind in ("accounts", "contacts", "activities", "users")}


def test_sync_then_run_with_write_back_creates_each_task_once(hubspot, crm_data, tmp_path, prefect_harness, capsys):
    db = f"sqlite:///{tmp_path / 'w.db'}"
    config = write_config(tmp_path, hubspot.url, writeback=True)

    assert main(["sync", "--source", "hubspot", "--config", str(config), "--db", db]) == 0
    assert "Extract (hubspot)" in capsys.readouterr().out
    synced = counts(db)
    assert synced["accounts"] == len(crm_data["accounts"]) and synced["users"] == len(crm_data["users"])
    assert main(["sync", "--source", "hubspot", "--config", str(config), "--db", db]) == 0
    assert counts(db) == synced  # a second sync changes nothing

    as_of = "2026-01-31T12:00:00Z"
    assert main(["run", "--source", "hubspot", "--config", str(config), "--as-of", as_of, "--db", db]) == 0
    output = capsys.readouterr().out
    store = Warehouse(db)
    mqas = store.read_table(schema.mqas)
    assert len(mqas) > 0 and mqas["writeback_done_at"].notna().all()
    tasks = created_tasks("hubspot", hubspot)
    assert len(tasks) == len(mqas) and f"{len(mqas)} CRM tasks created" in output
    assert set(mqas["account_id"]) <= set(crm_data["accounts"]["account_id"])  # HubSpot's own company ids

    assert main(["run", "--source", "hubspot", "--config", str(config), "--as-of", as_of, "--db", db]) == 0
    assert len(created_tasks("hubspot", hubspot)) == len(tasks)  # a re-run writes nothing twice
    assert len(store.read_table(schema.mqas)) == len(mqas)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["sync", "--source", "pipedrive"], "unknown source 'pipedrive'"),
        (["sync", "--source", "files"], "--path is required"),
        (["sync", "--source", "files", "--path", "{empty}"], "has no accounts.csv (the one required file)"),
        (["run", "--source", "files", "--path", "{empty}", "--as-of", "2026-03-01T00:00:00Z"], "has no accounts.csv"),
        (["sync", "--source", "hubspot", "--config", "{missing}"], "cannot read config"),
        (["sync", "--source", "hubspot", "--config", "{bad}"], "sources.hubspot.page_size"),
    ],
)
def test_bad_sync_input_is_one_line(args, expected, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "bad.yaml"
    bad.write_text("sources: {hubspot: {page_size: 900}}\n")
    (tmp_path / "empty").mkdir()
    args = [a.format(missing=tmp_path / "nope.yaml", bad=bad, empty=tmp_path / "empty") for a in args]
    assert main([*args, "--db", f"sqlite:///{tmp_path / 'w.db'}"]) != 0
    err = capsys.readouterr().err.strip()
    assert expected in err and len(err.splitlines()) == 1


def test_missing_token_is_one_line_naming_the_variable(tmp_path, prefect_harness, monkeypatch, capsys):
    monkeypatch.delenv("ABM_SLA_TEST_HUBSPOT_TOKEN", raising=False)
    config = write_config(tmp_path, "http://127.0.0.1:9", writeback=False)
    assert main(["sync", "--source", "hubspot", "--config", str(config), "--db", f"sqlite:///{tmp_path / 'w.db'}"]) == 1
    err = capsys.readouterr().err.strip()
    assert "abm_sla/crm" not in err  # no traceback of the failure: Prefect logs the failed run in one line
    assert err.splitlines()[-1] == "error: no HubSpot access token: set ABM_SLA_TEST_HUBSPOT_TOKEN"
