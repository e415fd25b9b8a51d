"""The ``abm-sla-undo`` flow: the typed form, then the same undo as the CLI's."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from abm_sla.errors import AbmSlaError
from abm_sla.infra.settings import database_url_env
from abm_sla.warehouse import Warehouse, schema
from flows.parameters import InvalidParameters, UndoParameters
from flows.pipeline import run_once, undo_run
from tasks.common import direct_calls

pytestmark = pytest.mark.flows


def test_the_undo_flow_undoes_a_run(prefect_harness, env_db: str, crm_export: Path) -> None:
    with database_url_env(env_db), direct_calls():
        first = run_once(env_db, "2026-01-20T12:00:00Z", "files", str(crm_export))
        second = run_once(env_db, "2026-01-30T12:00:00Z", "files", str(crm_export))
    with pytest.raises(AbmSlaError, match="followed by 1 run"):
        undo_run(UndoParameters(run_id=first["run_id"]))
    undone = undo_run(UndoParameters(run_id=first["run_id"], and_later=True))
    assert [summary["run_id"] for summary in undone] == [second["run_id"], first["run_id"]]
    runs = Warehouse(env_db).read_table(schema.runs)
    assert set(runs["status"]) == {"undone"}
    assert Warehouse(env_db).read_table(schema.mqas).empty and Warehouse(env_db).read_table(schema.sla_clocks).empty


def test_the_form_needs_a_run_id(prefect_harness, env_db: str) -> None:
    with pytest.raises(InvalidParameters, match="run_id is required"):
        undo_run({"run_id": " "})


def test_a_refusal_from_the_form_names_its_switch_not_a_cli_flag(prefect_harness, env_db: str,
                                                                 crm_export: Path) -> None:
    with database_url_env(env_db), direct_calls():
        first = run_once(env_db, "2026-01-20T12:00:00Z", "files", str(crm_export))
        run_once(env_db, "2026-01-30T12:00:00Z", "files", str(crm_export))
    with pytest.raises(AbmSlaError) as refused:
        undo_run(UndoParameters(run_id=first["run_id"]))
    assert "switch on 'And every later run'" in str(refused.value) and "--" not in str(refused.value)
    with pytest.raises(AbmSlaError) as unknown:
        undo_run(UndoParameters(run_id="no-such-run"))
    assert "Prefect flow run" in str(unknown.value) and "abm-sla runs" not in str(unknown.value)


def test_a_scheduled_run_names_its_warehouse_run_in_its_log_and_report(prefect_harness, env_db: str,
                                                                       crm_export: Path, caplog) -> None:
    from flows.parameters import MonitorParameters
    from flows.pipeline import sla_monitor
    from tests.flows.test_scheduled import artifacts

    with database_url_env(env_db), direct_calls():
        run_once(env_db, "2026-01-20T12:00:00Z", "files", str(crm_export))
    caplog.set_level(logging.INFO, logger="prefect.flow_runs")
    state = sla_monitor(MonitorParameters(as_of="2026-01-25T12:00:00Z"), return_state=True)
    runs = Warehouse(env_db).read_table(schema.runs)
    monitor = runs[runs["kind"] == "sla-monitor"].iloc[0]
    assert monitor["flow_run_id"] == str(state.state_details.flow_run_id)
    assert f"warehouse run {monitor['run_id']}" in caplog.text
    assert f"| warehouse run id (undo takes it) | {monitor['run_id']} |" in artifacts("sla-monitor")["sla-monitor"]


def test_a_backfill_is_listed_once_per_step_and_undone_by_its_flow_run_id(prefect_harness, env_db: str,
                                                                          crm_export: Path, capsys) -> None:
    from abm_sla import cli
    from flows.backfill import backfill

    state = backfill({"start": "2026-01-12T12:00:00Z", "end": "2026-01-14T12:00:00Z", "path": str(crm_export)},
                     return_state=True)
    flow_run_id = str(state.state_details.flow_run_id)
    assert cli.main(["runs", "--db", env_db]) == 0
    listed = capsys.readouterr().out
    assert listed.count("backfill-step") == 3 and listed.count(flow_run_id) == 3  # once per step

    undone = undo_run(UndoParameters(run_id=flow_run_id))  # the id the UI shows, not the warehouse's
    store = Warehouse(env_db)
    assert {summary["run_id"] for summary in undone} == set(store.read_table(schema.runs)["run_id"])
    assert set(store.read_table(schema.runs)["status"]) == {"undone"}
    assert store.read_table(schema.mqas).empty and store.read_table(schema.sla_clocks).empty
