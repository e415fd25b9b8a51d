"""`abm-sla propose model` on a warehouse holding a generated CRM with a known signal→outcome relation."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from abm_sla.cli import main
from abm_sla.services import synthetic
from abm_sla.warehouse import Warehouse

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('propose') / 'abm.db'}"
    crm = synthetic.generate_crm(n_accounts=1000, days=450, seed=2, outcome_truth=True)
    store = Warehouse(url)
    with store.engine.begin() as connection:
        for kind in ("users", "accounts", "contacts", "activities", "intent_signals", "opportunities"):
            store.store_frames(connection, "files", kind, crm[kind])
    return url


def test_propose_model_writes_the_diff_and_the_card(warehouse: str, tmp_path: Path, capsys) -> None:
    until = (synthetic.DEFAULT_START + pd.Timedelta(days=270)).date().isoformat()
    code = main(["propose", "model", "--train-until", until, "--out", str(tmp_path), "--db", warehouse])
    out = capsys.readouterr().out

    assert code == 0 and out.startswith("the proposal finds")
    diff = (tmp_path / "scoring.yaml.diff").read_text(encoding="utf-8")
    assert diff.startswith("--- a/config/scoring.yaml") and "demo_page_visit" in diff
    card = json.loads((tmp_path / "model-card.json").read_text(encoding="utf-8"))
    assert card["proposed"] and set(card["holdout_comparison"]) == {"current", "proposed"}
    markdown = (tmp_path / "model-card.md").read_text(encoding="utf-8")
    assert "| AUC |" in markdown and "Lift in the top decile" in markdown and "## What-if" in markdown


def test_too_short_a_history_says_not_enough_outcomes(warehouse: str, tmp_path: Path, capsys) -> None:
    code = main(["propose", "model", "--train-until", "2026-03-01", "--out", str(tmp_path), "--db", warehouse,
                 "--horizon-days", "60"])

    assert code == 0 and capsys.readouterr().out.startswith("not enough outcomes to propose anything")
    assert (tmp_path / "scoring.yaml.diff").read_text(encoding="utf-8") == ""


@pytest.mark.parametrize(("args", "expected"), [
    (["--train-until", "someday"], "error: --train-until 'someday' is not an ISO 8601 date"),
    (["--train-until", "2030-01-01"], "must be before the end of the data"),
    (["--train-until", "2026-06-01", "--outcome", "revenue"], "--outcome must be one of won, opportunity"),
])
def test_bad_options_are_one_line(warehouse: str, tmp_path: Path, capsys, args, expected) -> None:
    code = main(["propose", "model", "--out", str(tmp_path), "--db", warehouse, *args])
    err = capsys.readouterr().err

    assert code == 1 and expected in err and len(err.strip().splitlines()) == 1
