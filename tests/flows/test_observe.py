"""Observability helpers: SLA change detection, events per account, the run report artifact."""

from __future__ import annotations

import pandas as pd
import pytest

import tasks.observe as observe

pytestmark = [pytest.mark.flows]

T = pd.Timestamp("2026-01-05T10:00:00Z")


def clocks(statuses: dict[tuple[str, str], str]) -> pd.DataFrame:
    rows = [{"account_id": a, "trigger_at": T, "clock": c, "status": s, "due_at": T, "owner_id": "U1", "tier": 1}
            for (a, c), s in statuses.items()]
    return pd.DataFrame(rows)


def escalations(keys: list[tuple[str, int, str]]) -> pd.DataFrame:
    rows = [{"account_id": a, "trigger_at": T, "level": lvl, "to_user_id": u, "opened_at": T, "clock": "first_touch",
             "owner_id": "U1"} for a, lvl, u in keys]
    return pd.DataFrame(rows, columns=["account_id", "trigger_at", "level", "to_user_id", "opened_at", "clock",
                                       "owner_id"])


BEFORE = {"clocks": clocks({("A", "first_touch"): "pending", ("B", "first_touch"): "missed"}),
          "escalations": escalations([("B", 1, "R1")])}
AFTER = {"clocks": clocks({("A", "first_touch"): "missed", ("B", "first_touch"): "missed",
                           ("C", "routing_time"): "met"}),
         "escalations": escalations([("B", 1, "R1"), ("A", 1, "R1"), ("A", 1, "R2"), ("B", 2, "M1")])}


def test_sla_changes_finds_new_breaches_and_escalations_only():
    changes = observe.sla_changes(BEFORE, AFTER)

    assert sorted(changes["changed"]["account_id"]) == ["A", "C"]
    assert list(changes["breached"]["account_id"]) == ["A"]
    assert sorted(zip(changes["opened"]["account_id"], changes["opened"]["level"], strict=True)) == [
        ("A", 1), ("A", 1), ("B", 2)]


def test_events_name_the_account_and_carry_no_urls(monkeypatch):
    sent = []
    monkeypatch.setattr(observe, "emit_event", lambda **kwargs: sent.append(kwargs))
    fired = pd.DataFrame({"account_id": ["A", "B"], "trigger_at": [T, T], "routed_at": [T, T], "tier": [1, 3],
                          "owner_id": ["U1", "U2"], "total": [60, 55], "model_version": ["2026.1"] * 2})

    assert observe.emit_mqas_fired(fired) == 2

    assert [e["event"] for e in sent] == ["abm.mqa.fired"] * 2
    assert [e["resource"]["prefect.resource.id"] for e in sent] == ["abm.account.A", "abm.account.B"]
    assert sent[0]["payload"] == {"trigger_at": T.isoformat(), "routed_at": T.isoformat(), "tier": 1,
                                  "owner_id": "U1", "total": 60, "model_version": "2026.1"}
    assert "sqlite" not in repr(sent) and "postgres" not in repr(sent)


def test_run_report_rows_cover_every_stage():
    summary = {"as_of": T.isoformat(), "extract": {"files": {"accounts.csv": {"loaded": 10, "quarantined": 2}}},
               "scoring": {"accounts_scored": 10}, "handoff": {"mqas_fired": 3},
               "sla": {"clocks_changed": 4, "clocks_breached": 1, "escalations_opened": 2},
               "durations": {"crm-sync": 0.5, "score-and-route": 1.25}}
    rows = {row["what"]: row["value"] for row in observe.run_report_rows(summary)}

    assert rows == {"accounts.csv: rows synced": 10, "accounts.csv: rows quarantined": 2, "accounts scored": 10,
                    "MQAs fired": 3, "clocks changed": 4, "clocks breached": 1, "escalations opened": 2,
                    "crm-sync: seconds": 0.5, "score-and-route: seconds": 1.25}


@pytest.mark.usefixtures("prefect_harness")
def test_publish_run_report_creates_markdown_and_table_artifacts():
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
    from prefect.runtime import flow_run

    @flow
    def report() -> str:
        observe.publish_run_report({"as_of": T.isoformat(), "handoff": {"mqas_fired": 1}})
        return flow_run.id

    run_id = report()
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[run_id])))
    assert sorted(a.type for a in artifacts) == ["markdown", "table"]
    assert any("| MQAs fired | 1 |" in str(a.data) for a in artifacts)
