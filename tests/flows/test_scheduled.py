"""The three scheduled flows run from their typed forms, leave a run report, and never take the database URL."""

from __future__ import annotations

import pytest

from flows.backfill import backfill
from flows.parameters import InvalidParameters, MonitorParameters, ScoreParameters, SyncParameters
from flows.pipeline import crm_sync, score_and_route, sla_monitor
from tests.flows.conftest import run_live

pytestmark = [pytest.mark.flows, pytest.mark.usefixtures("prefect_harness")]


def artifacts(*keys: str) -> dict[str, str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=list(keys))))
    return {artifact.key: str(artifact.data) for artifact in sorted(found, key=lambda a: a.created)}  # newest wins


def test_sync_score_and_monitor_from_their_forms_each_leave_a_report(crm_export, env_db):
    synced = crm_sync(SyncParameters(path=str(crm_export)))
    assert synced["files"]["accounts.csv"]["loaded"] == 150
    routed = score_and_route(ScoreParameters(as_of="2026-01-20T12:00:00Z"))
    assert routed["scoring"]["accounts_scored"] == 150 and routed["handoff"]["mqas_fired"] > 0
    measured = sla_monitor(MonitorParameters(as_of="2026-01-25T12:00:00Z"))
    assert measured["clocks"] == 4 * routed["handoff"]["mqas_fired"]

    reports = artifacts("crm-sync", "crm-sync-table", "score-and-route", "score-and-route-table",
                        "sla-monitor", "sla-monitor-table")
    assert len(reports) == 6
    assert "| accounts.csv: rows synced | 150 |" in reports["crm-sync"]
    assert f"| MQAs fired | {routed['handoff']['mqas_fired']} |" in reports["score-and-route"]
    assert "| clocks changed |" in reports["sla-monitor"] and "MQAs fired" not in reports["sla-monitor"]


@pytest.mark.parametrize(("flow", "form", "message"), [
    (crm_sync, {"source": "dynamics"}, "invalid parameters: source: unknown source 'dynamics'"),
    (crm_sync, {"path": "/no/such/export"}, "CRM export folder /no/such/export does not exist"),
    (score_and_route, {"as_of": "tomorrow"}, "invalid parameters: as_of: as_of 'tomorrow' is not a date/time"),
    (sla_monitor, {"policy_path": "/no/sla.yaml"}, "SLA policy file /no/sla.yaml does not exist"),
])
def test_a_bad_form_fails_in_one_readable_line(flow, form, message, env_db):
    with pytest.raises(InvalidParameters) as raised:
        flow(form)
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_no_flow_run_records_the_database_url(crm_export, env_db):
    from prefect.client.orchestration import get_client

    run_live(env_db, as_of="2026-01-10T12:00:00Z", source="files", path=str(crm_export))
    backfill({"start": "2026-01-11T12:00:00Z", "end": "2026-01-11T12:00:00Z", "path": str(crm_export)})
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs()
    assert runs and all(env_db not in repr(run.parameters) and "sqlite:" not in repr(run.parameters) for run in runs)


def test_the_weekly_dashboard_is_published_as_keyed_artifacts(crm_export, env_db, tmp_path):
    from flows.reports import weekly_sla_dashboard

    run_live(env_db, as_of="2026-01-20T12:00:00Z", source="files", path=str(crm_export))
    result = weekly_sla_dashboard({"period": "2026-W03", "out_dir": str(tmp_path)})
    assert (tmp_path / "weekly-2026-W03.html").is_file() and result["period"] == "2026-W03"
    published = artifacts("weekly-report", "weekly-four-numbers", "weekly-misses")
    assert set(published) == {"weekly-report", "weekly-four-numbers", "weekly-misses"}
    assert "SLA weekly dashboard 2026-W03" in published["weekly-report"]
    assert "weekly-2026-W03.html" in published["weekly-report"] and "data:image" not in published["weekly-report"]
