"""Recalculate / what-if: a dry run writes nothing and reports the diff; applying stores the new version."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
import yaml

from abm_sla.infra.settings import CONFIG_DIR
from abm_sla.warehouse import Warehouse, schema
from flows.backfill import backfill
from flows.parameters import RecalculateParameters
from flows.recalculate import recalculate

pytestmark = [pytest.mark.flows, pytest.mark.usefixtures("prefect_harness")]

AS_OF = "2026-01-14T12:00:00Z"


@pytest.fixture
def lenient_model(tmp_path: Path) -> Path:
    """The default model with a 35-point hand-off and no intent minimum: more accounts pass."""
    model = yaml.safe_load((CONFIG_DIR / "scoring.yaml").read_text())
    model["version"] = "lenient-1"
    model["gates"]["min_total"] = 35
    model["gates"]["min_category"]["intent"] = 0
    path = tmp_path / "lenient.yaml"
    path.write_text(yaml.safe_dump(model))
    return path


@pytest.fixture
def loaded(crm_export, env_db) -> str:
    backfill({"start": AS_OF, "end": AS_OF, "path": str(crm_export)})
    return env_db


def counts(db_url: str) -> dict[str, int]:
    with Warehouse(db_url).engine.connect() as connection:
        return {table.name: connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
                for table in (schema.score_history, schema.mqas, schema.sla_clocks, schema.escalations, schema.runs)}


def test_dry_run_reports_the_diff_and_writes_nothing(loaded, lenient_model, tmp_path):
    before = counts(loaded)

    preset = CONFIG_DIR / "presets" / "seven-commitments.yaml"  # and a policy what-if beside the model's
    summary = recalculate(RecalculateParameters(model_path=str(lenient_model), as_of=AS_OF, out_dir=str(tmp_path),
                                                policy_path=str(preset)))

    assert counts(loaded) == before
    policy = summary["policy"]
    assert (policy["policy_before"], policy["policy_after"]) == ("default", "seven-commitments")
    clocks = pd.read_csv(policy["csv"])
    assert policy["clocks"] == len(clocks) and policy["clocks_changed"] > 0
    assert set(clocks.loc[clocks["change"] == "new clock", "clock"]) <= {"quality_feedback", "status_recurring"}
    diff = pd.read_csv(summary["csv"])
    assert summary["model_after"] == "lenient-1" and summary["accounts"] == len(diff) == 150
    assert summary["newly_pass"] > 0 and summary["drop_below"] == 0
    newly = diff[diff["change"] == "newly passes the hand-off"]
    assert (newly["total_after"] >= 35).all() and not newly["qualified_before"].any()
    assert summary["mqas_would_fire"] == diff["would_fire_at"].notna().sum() > 0


def test_apply_stores_scores_under_the_new_version(loaded, lenient_model, tmp_path):
    accounts = Warehouse(loaded).read_kind("accounts")["account_id"].sort_values().head(5).tolist()
    before = counts(loaded)

    summary = recalculate(RecalculateParameters(model_path=str(lenient_model), as_of=AS_OF, accounts=accounts,
                                                dry_run=False, out_dir=str(tmp_path)))

    after = counts(loaded)
    assert after["score_history"] == before["score_history"] + 5
    assert {k: after[k] for k in ("mqas", "sla_clocks", "escalations")} == {
        k: before[k] for k in ("mqas", "sla_clocks", "escalations")}
    history = Warehouse(loaded).read_table(schema.score_history)
    new = history[history["model_version"] == "lenient-1"]
    assert sorted(new["account_id"]) == accounts and set(new["run_id"]) == {summary["run_id"]}
    run = Warehouse(loaded).read_table(schema.runs, schema.runs.c.run_id == summary["run_id"]).iloc[0]
    assert run["kind"] == "recalculate" and run["model_version"] == "lenient-1"


def test_applying_a_what_if_keeps_the_dry_runs_csv_beside_its_own(loaded, lenient_model, tmp_path):
    fields = {"model_path": str(lenient_model), "as_of": AS_OF, "out_dir": str(tmp_path)}
    dry = recalculate(RecalculateParameters(**fields))
    dry_csv = Path(dry["csv"]).read_bytes()
    stored = recalculate(RecalculateParameters(**fields, dry_run=False))
    assert stored["csv"] != dry["csv"] and Path(dry["csv"]).read_bytes() == dry_csv
    assert Path(dry["csv"]).name.endswith("-dry-run.csv") and Path(stored["csv"]).name.endswith("-stored.csv")


def test_unknown_accounts_are_rejected_before_any_work(loaded, tmp_path):
    before = counts(loaded)
    with pytest.raises(Exception, match="accounts not in the warehouse: NOPE-1"):
        recalculate(RecalculateParameters(accounts=["NOPE-1"], dry_run=False, out_dir=str(tmp_path)))
    assert counts(loaded) == before


def test_with_scoring_limited_to_the_list_only_listed_accounts_are_rescored(loaded, crm_export, lenient_model,
                                                                           tmp_path):
    """Issue 15: under a policy with ``only_listed`` and a target account list, the what-if scores the accounts
    on the list at its as-of only; applying it leaves the others without a score under the new model."""
    from abm_sla.services import exports, stages

    store = Warehouse(loaded)
    listed = sorted(store.read_kind("accounts")["account_id"])[:3]
    folder = tmp_path / "tal"
    folder.mkdir()
    shutil.copy(crm_export / "accounts.csv", folder / "accounts.csv")  # the required file, unchanged
    pd.DataFrame({"account_id": listed, "added_at": "2026-01-01T00:00:00Z"}).to_csv(folder / "target_accounts.csv",
                                                                                    index=False)
    stages.extract_files(store, folder, "tal", pd.Timestamp(AS_OF).to_pydatetime())
    abm = str(CONFIG_DIR / "presets" / "abm.yaml")
    summary = recalculate(RecalculateParameters(model_path=str(lenient_model), as_of=AS_OF, out_dir=str(tmp_path),
                                                policy_path=abm, dry_run=False))
    assert summary["accounts"] == 3 and sorted(pd.read_csv(summary["csv"])["account_id"]) == listed
    assert exports.scores(Warehouse(loaded))["account_id"].tolist() == listed  # the others: not scored


def test_a_what_if_over_a_period_compares_every_step_and_the_mqas_in_one_pass(crm_export, env_db, lenient_model,
                                                                                tmp_path):
    """The stored runs' MQAs of the period beside the candidate model's; with the live model as candidate they
    are the same MQAs and no score changes; applied, the lenient model's scores at every step are stored and
    equal a step-by-step scoring of that model."""
    days = ["2026-01-12T12:00:00Z", "2026-01-13T12:00:00Z", "2026-01-14T12:00:00Z"]
    backfill({"start": days[0], "end": days[-1], "path": str(crm_export)})
    before = counts(env_db)
    same = recalculate(RecalculateParameters(period_start=days[0], as_of=days[-1], out_dir=str(tmp_path)))
    steps = pd.read_csv(same["csv"])
    assert len(steps) == 3 and (steps["unchanged"] == steps["accounts"]).all()
    mqas = pd.read_csv(same["mqas_csv"])
    assert same["mqas_fired"] == same["mqas_would_fire"] == len(mqas) > 0 and mqas["fired"].all()
    assert counts(env_db) == before

    lenient = recalculate(RecalculateParameters(period_start=days[0], as_of=days[-1], out_dir=str(tmp_path),
                                                model_path=str(lenient_model), dry_run=False))
    assert lenient["mqas_would_fire"] > lenient["mqas_fired"]
    assert pd.read_csv(lenient["csv"])["newly_pass"].sum() > 0
    from abm_sla.services import stages
    from abm_sla.services.config_files import load_model
    from abm_sla.warehouse import score_history

    stored = Warehouse(env_db).read_table(schema.score_history)
    stored = stored[stored["model_version"] == "lenient-1"]
    reference = Warehouse(f"sqlite:///{tmp_path / 'reference.db'}")
    stages.extract_files(reference, crm_export, "load", stages.utc_now())
    for day in days:
        stages.score(reference, pd.Timestamp(day), load_model(lenient_model), None, "step")
    expected = reference.read_table(schema.score_history)
    columns = [*score_history.KEY_COLUMNS, *score_history.VALUE_COLUMNS]
    pd.testing.assert_frame_equal(stored[columns].sort_values(["account_id", "as_of"], ignore_index=True),
                                  expected[columns].sort_values(["account_id", "as_of"], ignore_index=True))
