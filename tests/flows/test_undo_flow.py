"""The ``abm-sla-undo`` flow: the typed form, then the same undo as the CLI's."""

from __future__ import annotations

from pathlib import Path

import pytest

from abm_sla.errors import AbmSlaError
from abm_sla.settings import database_url_env
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
