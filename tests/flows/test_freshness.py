"""A live run over a stale export evaluates its clocks but opens no escalations, and says so."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from abm_sla.domain.policy import DEFAULT_PATH
from abm_sla.warehouse import Warehouse, schema
from flows.parameters import MonitorParameters
from flows.pipeline import sla_monitor
from tests.flows.conftest import run_live
from tests.flows.test_scheduled import artifacts

pytestmark = [pytest.mark.flows, pytest.mark.usefixtures("prefect_harness")]


def escalations(db_url: str) -> int:
    return len(Warehouse(db_url).read_table(schema.escalations))


def test_a_live_run_over_stale_data_opens_no_escalations_and_says_so(crm_export, env_db, tmp_path: Path):
    # MQAs fired and escalated as of January (an explicit past as of: not checked, SPEC's results)
    past = run_live(env_db, as_of="2026-01-20T12:00:00Z", source="files", path=str(crm_export))
    assert past["freshness"]["status"] == "not checked" and past["handoff"]["mqas_fired"] > 0
    before = escalations(env_db)

    # the export ends in January 2026; "now" is months later: far past error_after, the ladders stay put
    summary = run_live(env_db, source="files", path=str(crm_export))
    assert summary["freshness"]["status"] == "error" and summary["freshness"]["escalate"] is False
    assert summary["sla"]["clocks"] > 0  # the clocks are still evaluated
    assert escalations(env_db) == before
    report = artifacts("abm-sla-run")["abm-sla-run"]
    assert "STALE DATA" in report and "NO escalations opened" in report
    assert "| freshness: activities | newest 2026-01-" in report
    monitored = sla_monitor(MonitorParameters())  # the scheduled monitor (empty as of = now) holds them too
    assert monitored["escalations"] == 0 and escalations(env_db) == before

    # a policy that allows it escalates over the same stale data
    policy = yaml.safe_load(DEFAULT_PATH.read_text())
    policy["freshness"]["escalate_when_stale"] = True
    path = tmp_path / "sla.yaml"
    path.write_text(yaml.safe_dump(policy))
    allowed = sla_monitor(MonitorParameters(policy_path=str(path)))
    assert allowed["escalations"] > 0 and escalations(env_db) > before
