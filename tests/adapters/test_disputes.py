"""Disputes through the command line on a SQLite warehouse: open, note, close, reopen, list, errors, reports."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from abm_sla.cli import main
from abm_sla.domain import metrics
from abm_sla.services import stages
from abm_sla.services.config_files import load_policy
from abm_sla.services.reporting import build_weekly, load_data
from abm_sla.services.reporting.sections import _breaches_section
from abm_sla.warehouse import Warehouse, disputes
from tests.adapters.test_reassign import NOW
from tests.adapters.test_stages import write_folder


def test_a_dispute_opened_closed_reopened_and_reported(tmp_path: Path, capsys) -> None:
    db = f"sqlite:///{tmp_path / 'w.db'}"
    store = Warehouse(db)
    folder = write_folder(tmp_path / "export", {"accounts": [{"id": "ACME", "name": "Acme Corp"}]})
    stages.extract_files(store, folder, "load", NOW)
    base = ["--db", db]
    assert main(["dispute", "open", "--account", "ACME", "--disagreement", "MQAs are not ready to buy",
                 "--raised-by", "head of sales", "--requested", "raise the threshold to 60",
                 "--at", "2026-03-02T10:00Z", *base]) == 0
    assert "opened dispute 1 on ACME" in capsys.readouterr().out
    assert main(["dispute", "note", "1", "--text", "owners met", "--by", "u1", "--at", "2026-03-06T10:00Z",
                 *base]) == 0
    assert main(["dispute", "close", "1", "--resolution", "keep 50", "--outcome", "upheld", "--by", "cmo",
                 "--at", "2026-03-10T10:00Z", *base]) == 0
    capsys.readouterr()
    assert main(["dispute", "close", "1", "--resolution", "again", "--by", "cmo", *base]) == 1
    assert capsys.readouterr().err.strip() == "error: dispute 1 is closed already (reopen it first)"
    assert main(["dispute", "reopen", "1", "--reason", "new evidence", "--by", "sales",
                 "--at", "2026-03-20T10:00Z", *base]) == 0
    assert main(["dispute", "open", "--account", "NOPE", "--disagreement", "x", "--raised-by", "y",
                 "--requested", "z", *base]) == 1
    assert "no account 'NOPE'" in capsys.readouterr().err
    assert main(["dispute", "list", "--at", "2026-03-25T00:00Z", *base]) == 0
    listed = capsys.readouterr().out
    assert "ACME" in listed and "owners meet" in listed and "2026-03-27" in listed

    rows, notes = disputes.read_disputes(store)
    assert rows.iloc[0]["status"] == "open" and rows.iloc[0]["times_reopened"] == 1
    assert notes["kind"].tolist() == ["opened", "note", "closed", "reopened"]
    policy = load_policy()
    weekly = build_weekly(store, "2026-W13", policy, as_of=pd.Timestamp("2026-03-25T00:00Z"))
    shown = weekly.tables["open_disputes"].frame
    assert shown[["dispute_id", "account_name", "step_name"]].values.tolist() == [[1, "Acme Corp", "owners meet"]]
    assert "Escalations, reassignments and disputes" in weekly.markdown()
    span = (pd.Timestamp("2026-01-01T00:00Z"), pd.Timestamp("2026-04-01T00:00Z"))
    data = load_data(store)
    quarter = _breaches_section(data, policy, *span, span[1], weekly=False,
                                table=metrics.compute(data, *span, span[1], policy))
    counts = {table.name: table for table in quarter.tables}["dispute_counts"].frame.iloc[0]
    assert (counts["opened"], counts["closed"], counts["reopened"], counts["open_at_end"]) == (1, 1, 1, 1)
    assert counts["outcome_upheld"] == 1 and counts["median_days_to_close"] == 8.0


def test_the_dispute_form_opens_and_refuses_an_incomplete_action(tmp_path: Path, monkeypatch) -> None:
    import pytest

    from flows.disputes import dispute
    from flows.parameters import InvalidParameters

    db = f"sqlite:///{tmp_path / 'w.db'}"
    store = Warehouse(db)
    stages.extract_files(store, write_folder(tmp_path / "export", {"accounts": [{"id": "ACME", "name": "A"}]}),
                         "load", NOW)
    monkeypatch.setenv("ABM_SLA_DATABASE_URL", db)
    form = {"action": "open", "account_id": "ACME", "disagreement": "too early", "raised_by": "sales",
            "requested_resolution": "wait for a meeting"}
    assert dispute.fn(form) == {"dispute_id": 1, "action": "open"}
    with pytest.raises(InvalidParameters, match="close needs dispute_id, text"):
        dispute.fn({"action": "close", "raised_by": "cmo", "text": ""})
    assert disputes.read_disputes(store)[0]["status"].tolist() == ["open"]
