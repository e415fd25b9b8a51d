"""What a run's log says: readable stage lines, a warning once per flow run, bad parameters in one line,
and a stopped backfill's way to resume."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
import pytest

import flows.backfill as backfill_module
from abm_sla.services import synthetic
from abm_sla.warehouse import Warehouse, schema
from flows.backfill import backfill
from flows.parameters import BackfillParameters
from flows.pipeline import sla_monitor
from tests.flows.conftest import CRM_DAYS, CRM_START

pytestmark = [pytest.mark.flows, pytest.mark.usefixtures("prefect_harness")]

STEPS = {"start": "2026-01-12T12:00:00Z", "end": "2026-01-14T12:00:00Z", "step_hours": 24}


@pytest.fixture(scope="module")
def export_with_unmapped_status(tmp_path_factory) -> Path:
    """A small export whose status changes carry one value no policy maps ("callback later")."""
    crm = synthetic.generate_crm(n_accounts=40, start=CRM_START, days=CRM_DAYS, seed=5)
    account = crm["accounts"]["account_id"].iloc[0]
    odd = pd.DataFrame([{"status_change_id": "SC-odd", "account_id": account, "status": "callback later",
                         "changed_at": pd.Timestamp("2026-01-05T10:00:00Z"), "changed_by": None, "reason": None}])
    crm["status_changes"] = pd.concat([crm["status_changes"], odd], ignore_index=True)
    return synthetic.write_export_folder(crm, tmp_path_factory.mktemp("odd") / "export")


def messages(caplog, text: str) -> list[str]:
    return [record.getMessage() for record in caplog.records if text in record.getMessage()]


def test_a_backfill_logs_readable_stage_lines_and_an_unmapped_status_once(export_with_unmapped_status, env_db,
                                                                         caplog):
    caplog.set_level(logging.INFO, logger="prefect")
    summaries = backfill({**STEPS, "path": str(export_with_unmapped_status)})
    assert len(summaries) == 3 and "unknown_statuses" in summaries[0]["sla"]
    assert len(messages(caplog, "status values the policy does not map (kept): callback later")) == 1
    sla_lines = messages(caplog, "SLA as of")
    assert len(sla_lines) == 3 and all("{" not in line and "'" not in line for line in sla_lines)
    assert all("clocks" in line and "mqas evaluated" in line for line in sla_lines)


def test_bad_parameters_fail_in_one_log_line_without_a_traceback(env_db, caplog):
    caplog.set_level(logging.INFO, logger="prefect")
    with pytest.raises(Exception, match="as_of 'tomorrow' is not a date/time"):
        sla_monitor({"as_of": "tomorrow"})
    errors = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert len(errors) == 1 and "as_of 'tomorrow' is not a date/time" in errors[0].getMessage()
    assert not any(record.exc_info or record.exc_text for record in caplog.records)


def test_a_stopped_backfill_says_where_it_stopped_and_how_to_resume(crm_export, env_db, monkeypatch):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    real_run_once, calls = backfill_module.run_once, []

    def cancelled_at_the_second_step(*args, **kwargs):
        calls.append(args[1])
        if len(calls) == 2:
            raise KeyboardInterrupt  # a stop (Ctrl-C; a cancellation's SIGTERM takes the same path)
        return real_run_once(*args, **kwargs)

    monkeypatch.setattr(backfill_module, "run_once", cancelled_at_the_second_step)
    fields = {**STEPS, "path": str(crm_export)}
    with pytest.raises(KeyboardInterrupt):
        backfill(fields)

    key = backfill_module.backfill_key(BackfillParameters(**fields))
    with get_client(sync_client=True) as client:
        wanted = ArtifactFilter(key=ArtifactFilterKey(any_=[f"backfill-{key}"]))
        progress = client.read_artifacts(artifact_filter=wanted)
    # this run's artifact: the newest (the session's harness holds other backfills' artifacts of the same key)
    stopped = max(progress, key=lambda artifact: artifact.created)
    assert json.loads(json.dumps(stopped.data)) == pytest.approx(33.3)
    assert "stopped at step 2 of 3 (33.3% done" in stopped.description
    assert "resume with a new backfill run with the same parameters: its 1 completed steps are skipped" in \
        stopped.description
    steps = Warehouse(env_db).read_table(schema.runs, schema.runs.c.kind == "backfill-step")
    assert steps["status"].tolist() == ["completed"]  # the stopped step's claim is dropped: a re-run computes it
