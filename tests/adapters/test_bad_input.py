"""Missing input is an error, not an empty success; one user's unknown time zone never stops the clocks."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from abm_sla.cli import main
from abm_sla.errors import SourceError
from abm_sla.services import exports, stages, synthetic
from abm_sla.services.config_files import load_model, load_policy
from abm_sla.warehouse import Warehouse, schema

NOW = pd.Timestamp("2026-12-01T00:00:00Z").to_pydatetime()
AS_OF = pd.Timestamp("2026-01-28T12:00:00Z")


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    crm = synthetic.generate_crm(n_accounts=60, start=pd.Timestamp("2026-01-01T00:00:00Z"), days=28, seed=3)
    return synthetic.write_export_folder(crm, tmp_path_factory.mktemp("bad") / "crm", dirty=False)


def copy(folder: Path, tmp_path: Path) -> Path:
    out = tmp_path / "crm"
    shutil.copytree(folder, out)
    return out


@pytest.mark.parametrize("accounts", ["", "id,name,domain\n", "\ufeffid,name,domain\r\n\r\n  \n"])
def test_an_accounts_file_without_rows_in_a_fresh_warehouse_is_refused(
    folder: Path, tmp_path: Path, accounts: str
) -> None:
    crm = copy(folder, tmp_path)
    (crm / "accounts.csv").write_text(accounts, encoding="utf-8")
    store = Warehouse(f"sqlite:///{tmp_path / 'w.db'}")
    with pytest.raises(SourceError, match=r"accounts\.csv has no rows and the warehouse has no accounts yet"):
        stages.extract_files(store, crm, "run", NOW)
    assert store.read_table(schema.quarantine).empty  # refused before anything was loaded


def test_a_header_only_accounts_file_is_fine_once_accounts_are_known(folder: Path, tmp_path: Path) -> None:
    store = Warehouse(f"sqlite:///{tmp_path / 'w.db'}")
    stages.extract_files(store, folder, "first", NOW)
    crm = copy(folder, tmp_path)
    (crm / "accounts.csv").write_text("id,name,domain\n", encoding="utf-8")  # an incremental export: no new accounts
    stages.extract_files(store, crm, "second", NOW)


def test_a_folder_named_like_a_csv_file_is_refused(folder: Path, tmp_path: Path) -> None:
    crm = copy(folder, tmp_path)
    (crm / "activities.csv").unlink()
    (crm / "activities.csv").mkdir()
    with pytest.raises(SourceError, match=r"activities.csv is a folder, not a CSV file"):
        stages.extract_files(Warehouse(f"sqlite:///{tmp_path / 'w.db'}"), crm, "run", NOW)


def test_export_from_a_mistyped_sqlite_path_creates_nothing(tmp_path: Path, capsys) -> None:
    missing = tmp_path / "typo.db"
    assert main(["export", "scores", "--out", str(tmp_path / "s.csv"), "--db", f"sqlite:///{missing}"]) == 1
    error = capsys.readouterr().err.strip()
    assert error == f"error: no warehouse at {missing}: check --db (`abm-sla run` creates one)"
    assert not missing.exists() and not (tmp_path / "s.csv").exists()


@pytest.mark.parametrize("zone", ["posixrules", "Factory", "localtime"])
def test_one_users_unknown_zone_falls_back_to_utc_without_stopping_the_clocks(
    folder: Path, tmp_path: Path, zone: str
) -> None:
    """The user's clocks are measured in UTC (as for a blank zone) and the run names the user."""
    model, policy = load_model(), load_policy()
    results = {}
    for name, stored_zone in (("bad", zone), ("utc", "UTC")):
        store = Warehouse(f"sqlite:///{tmp_path / f'{name}.db'}")
        stages.extract_files(store, folder, "load", NOW)
        with store.engine.begin() as connection:  # a zone the loader let through (older warehouse, another CRM)
            owner = connection.execute(schema.users.select().where(schema.users.c.role == "sales")).first()
            connection.execute(schema.users.update().where(schema.users.c.source_id == owner.source_id)
                               .values(time_zone=stored_zone))
        stages.score(store, AS_OF, model, None, "run")
        stages.fire_and_route(store, AS_OF, model, policy, "run")
        summary = stages.evaluate_sla(store, AS_OF, policy, run_id="run")
        results[name] = (summary, exports.sla(store), owner.source_id)
    summary, clocks, owner = results["bad"]
    assert summary["users_on_utc"] == [f"{owner} ({zone!r})"]
    assert summary["clocks"] > 0
    pd.testing.assert_frame_equal(clocks, results["utc"][1])
    assert "users_on_utc" not in results["utc"][0]
