"""The SLA stage against a real warehouse applies the regional appendix's windows by the account's country."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

from abm_sla.domain.policy import DEFAULT_PATH, parse_policy
from abm_sla.services import exports, stages, synthetic
from abm_sla.services.config_files import load_model, load_policy
from abm_sla.warehouse import Warehouse

START = pd.Timestamp("2026-01-01T00:00:00Z")


def test_the_sla_stage_reads_the_accounts_countries_and_runs_their_regions_windows(tmp_path: Path) -> None:
    crm = synthetic.generate_crm(n_accounts=150, start=START, days=40, seed=11)
    folder = synthetic.write_export_folder(crm, tmp_path / "export")
    store = Warehouse(f"sqlite:///{tmp_path / 'w.db'}")
    stages.extract_files(store, folder, "load", START.to_pydatetime())
    as_of = START + pd.Timedelta(days=39, hours=12)
    stages.score(store, as_of, load_model(), None, "r")
    stages.fire_and_route(store, as_of, load_model(), load_policy(), "r")
    countries = crm["accounts"].astype({"account_id": str}).set_index("account_id")["country"]
    fired = exports.mqas(store)["account_id"].map(countries)
    home = fired.dropna().iloc[0]  # the region: the first MQA's country
    assert fired.ne(home).any(), "the sample should fire MQAs of another country too"
    regional = parse_policy({**yaml.safe_load(DEFAULT_PATH.read_text(encoding="utf-8")),
                             "regions": {"R": {"countries": [home], "clocks": {"routing_time": {"hours": 48}}}}})
    stages.evaluate_sla(store, as_of, regional)
    clocks = exports.sla(store)
    routing = clocks[clocks["clock"].eq("routing_time")]
    hours = (pd.to_datetime(routing["due_at"]) - pd.to_datetime(routing["trigger_at"])) / pd.Timedelta(hours=1)
    inside = routing["account_id"].map(countries).eq(home)
    assert set(hours[inside]) == {48.0}
    assert set(hours[~inside & routing["account_id"].map(countries).notna()]) == {24.0}
