"""The propose-model deployment's flow: a warehouse with a known signal→outcome relation in, the files and the
model card artifact out; a bad form is one line before any work."""

from __future__ import annotations

from pathlib import Path

import pytest

from abm_sla.services import synthetic
from abm_sla.warehouse import Warehouse
from flows.parameters import InvalidParameters
from tests.flows.test_scheduled import artifacts

pytestmark = [pytest.mark.flows, pytest.mark.usefixtures("prefect_harness")]


def test_the_flow_writes_the_proposal_and_publishes_the_card(env_db: str, tmp_path: Path) -> None:
    from flows.propose import propose_model

    crm = synthetic.generate_crm(n_accounts=1000, days=450, seed=2, outcome_truth=True)
    store = Warehouse(env_db)
    with store.engine.begin() as connection:
        for kind in ("users", "accounts", "contacts", "activities", "intent_signals", "opportunities"):
            store.store_frames(connection, "files", kind, crm[kind])

    result = propose_model({"train_until": "2026-09-28", "out_dir": str(tmp_path)})

    assert result["proposed"] and result["verdict"].startswith("the proposal finds")
    assert Path(result["files"]["diff"]).read_text(encoding="utf-8").startswith("--- a/config/scoring.yaml")
    card = artifacts("model-proposal")
    assert "does the score predict pipeline?" in card["model-proposal"] and "| AUC |" in card["model-proposal"]


def test_a_bad_form_fails_in_one_line(env_db: str) -> None:
    from flows.propose import propose_model

    with pytest.raises(InvalidParameters, match="train_until 'soon' is not a date"):
        propose_model({"train_until": "soon"})
