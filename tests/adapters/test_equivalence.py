"""The same synthetic CRM through the files source, the Salesforce fake and the HubSpot fake: same scores and MQAs.

Each CRM carries a little less than the export folder (SPEC section 2), so the
synthetic CRM is first reduced to what all three can hold: marketing touches by a
contact (anonymous visits have no CRM record), no page URLs (a Salesforce campaign
member has none) and one intent signal per account (a CRM field, observed when the
account last changed). The fakes keep the ids they are seeded with, so the id
mapping back to the synthetic CRM is the identity (:func:`synthetic_id`). HubSpot owners
carry their role as a team, mapped back by ``team_roles``, so routing sees the same sales team.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from abm_sla.crm.sync import FilesSource, sync_source
from abm_sla.domain import frames
from abm_sla.domain.model import ScoringModel
from abm_sla.services import stages
from abm_sla.services.config_files import load_model, load_policy
from abm_sla.services.synthetic import generate_crm, write_export_folder
from abm_sla.warehouse import Warehouse, schema, score_history
from tests.adapters.test_crm_sync import NOW, app_config, source_for, start_fake

START = pd.Timestamp("2026-01-01", tz="UTC")
COMPARED = ["firmographic", "engagement", "intent", "total", "qualified"]
INTENT_FIELDS = {
    "salesforce": {"intent_score_field": "Intent_Score__c", "intent_topic_field": "Intent_Topic__c"},
    "hubspot": {"intent_score_property": "abm_intent_score", "intent_topic_property": "abm_intent_topic",
                "team_roles": {role: role for role in ("sales", "manager", "revops", "marketing", "cro")}},
}


def representable(data: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """``data`` reduced to what the export folder, Salesforce and HubSpot all carry (see the module doc)."""
    out = dict(data)
    acts = data["activities"]
    anonymous = acts["type"].isin(frames.MARKETING_TOUCHES) & acts["contact_id"].isna()
    out["activities"] = acts[~anonymous].assign(url=None).reset_index(drop=True)
    intent = data["intent_signals"].sort_values("observed_at", kind="stable").drop_duplicates("account_id", keep="last")
    accounts = data["accounts"].copy()
    observed = accounts["account_id"].map(intent.set_index("account_id")["observed_at"])
    accounts["updated_at"] = observed.where(observed.notna(), accounts["updated_at"]).astype("datetime64[ns, UTC]")
    out["accounts"] = accounts
    out["intent_signals"] = intent.assign(provider="crm").reset_index(drop=True)
    return out


def synthetic_id(crm: str, account_id: str) -> str:
    """The synthetic CRM's id of a CRM account (both fakes keep the ids they are seeded with)."""
    return account_id


@pytest.fixture(scope="module")
def crm_data() -> dict[str, pd.DataFrame]:
    return representable(generate_crm(n_accounts=150, start=START, days=30, seed=5))


def files_warehouse(data: dict[str, pd.DataFrame], folder: Path) -> Warehouse:
    warehouse = Warehouse(f"sqlite:///{folder / 'files.db'}")
    sync_source(warehouse, FilesSource(write_export_folder(data, folder / "export")), "eq", NOW)
    return warehouse


def crm_warehouse(crm: str, data: dict[str, pd.DataFrame], folder: Path) -> Warehouse:
    warehouse = Warehouse(f"sqlite:///{folder / f'{crm}.db'}")
    fake = start_fake(crm, data)
    try:
        sync_source(warehouse, source_for(crm, fake, app_config(**{crm: INTENT_FIELDS[crm]})), "eq", NOW)
    finally:
        fake.stop()
    return warehouse


def scores(warehouse: Warehouse, crm: str, as_of: pd.Timestamp) -> pd.DataFrame:
    stages.score(warehouse, as_of, load_model(), None, f"eq-{crm}")
    scored = score_history.current_scores(warehouse)
    scored = scored.assign(account_id=scored["account_id"].map(lambda a: synthetic_id(crm, a)))
    return scored.set_index("account_id").sort_index()[COMPARED]


def test_files_salesforce_and_hubspot_give_identical_scores(tmp_path, crm_data):
    warehouses = {
        "files": files_warehouse(crm_data, tmp_path),
        "salesforce": crm_warehouse("salesforce", crm_data, tmp_path),
        "hubspot": crm_warehouse("hubspot", crm_data, tmp_path),
    }
    for days in (8, 15, 22, 29):
        as_of = START + pd.Timedelta(days=days, hours=12)
        by_crm = {name: scores(warehouse, name, as_of) for name, warehouse in warehouses.items()}
        assert len(by_crm["files"]) == len(crm_data["accounts"])
        assert (by_crm["files"][["engagement", "intent"]] > 0).any().all(), "a non-trivial CRM"
        for name in ("salesforce", "hubspot"):
            pd.testing.assert_frame_equal(by_crm[name], by_crm["files"], check_dtype=False, obj=f"{name} @ {as_of}")


MQA_COLUMNS = ["account_id", "trigger_at", "total", "tier", "owner_id"]


def reachable_model() -> ScoringModel:
    """The default model with the intent gate at 10 points: what all three sources share carries one intent
    topic per account (10 points) and no page URLs, so the default 15 would fire nothing anywhere."""
    model = load_model()
    gates = model.gates.model_copy(update={"min_category": {**model.gates.min_category, "intent": 10}})
    return model.model_copy(update={"gates": gates})


def mqas(warehouse: Warehouse, crm: str) -> pd.DataFrame:
    """Every MQA fired by daily runs over the month (fire and route as of noon each day)."""
    model, policy = reachable_model(), load_policy()
    for days in range(1, 31):
        as_of = START + pd.Timedelta(days=days, hours=12)
        stages.fire_and_route(warehouse, as_of, model, policy, f"eq-{crm}")
    fired = warehouse.read_table(schema.mqas)[MQA_COLUMNS]
    return fired.sort_values(["account_id", "trigger_at"]).reset_index(drop=True)


def test_files_salesforce_and_hubspot_fire_the_same_mqas(tmp_path, crm_data):
    by_crm = {
        "files": mqas(files_warehouse(crm_data, tmp_path), "files"),
        "salesforce": mqas(crm_warehouse("salesforce", crm_data, tmp_path), "salesforce"),
        "hubspot": mqas(crm_warehouse("hubspot", crm_data, tmp_path), "hubspot"),
    }
    assert len(by_crm["files"]) >= 3, "a non-trivial comparison"
    for name in ("salesforce", "hubspot"):
        pd.testing.assert_frame_equal(by_crm[name], by_crm["files"], check_dtype=False, obj=name)


def test_the_comparison_can_fail(tmp_path, crm_data):
    """A CRM that lost its webinar touches scores differently (the equality above is not vacuous)."""
    webinars = crm_data["activities"]["type"] == "webinar"
    assert webinars.any()
    fewer = {**crm_data, "activities": crm_data["activities"][~webinars]}
    files = files_warehouse(crm_data, tmp_path)
    hubspot = crm_warehouse("hubspot", fewer, tmp_path)
    as_of = START + pd.Timedelta(days=29, hours=12)
    assert not scores(files, "files", as_of).equals(scores(hubspot, "hubspot", as_of))


