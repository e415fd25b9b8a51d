"""The pipeline stages against a real warehouse: exactly-once MQAs, clocks updated in place, idempotent runs."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pandas as pd
import pytest

from abm_sla.services import exports, stages, synthetic
from abm_sla.services.config_files import load_model, load_policy
from abm_sla.warehouse import Warehouse

START = pd.Timestamp("2026-01-01T00:00:00Z")
NOW = START.to_pydatetime()


@pytest.fixture(scope="module")
def crm_folder(tmp_path_factory) -> Path:
    crm = synthetic.generate_crm(n_accounts=150, start=START, days=60, seed=11)
    return synthetic.write_export_folder(crm, tmp_path_factory.mktemp("crm") / "export")


def loaded(db_url: str, folder: Path) -> Warehouse:
    store = Warehouse(db_url)
    stages.extract_files(store, folder, "load", NOW)
    return store


def run_at(store: Warehouse, as_of: pd.Timestamp) -> None:
    model, policy = load_model(), load_policy()
    stages.score(store, as_of, model, None, f"run-{as_of.isoformat()}")
    stages.fire_and_route(store, as_of, model, policy, f"run-{as_of.isoformat()}")
    stages.evaluate_sla(store, as_of, policy)


def snapshot(store: Warehouse) -> dict[str, pd.DataFrame]:
    return {kind: exports.EXPORTS[kind](store).reset_index(drop=True) for kind in ("mqas", "sla", "escalations")}


def test_daily_and_weekly_runs_fire_the_same_mqas(crm_folder: Path, tmp_path: Path) -> None:
    daily = loaded(f"sqlite:///{tmp_path / 'daily.db'}", crm_folder)
    weekly = loaded(f"sqlite:///{tmp_path / 'weekly.db'}", crm_folder)
    model, policy = load_model(), load_policy()
    for day in range(1, 57):
        as_of = START + pd.Timedelta(days=day, hours=12)
        stages.fire_and_route(daily, as_of, model, policy, "d")
        if day % 7 == 0:
            stages.fire_and_route(weekly, as_of, model, policy, "w")
    keys = ["account_id", "trigger_at", "total"]
    daily_mqas = exports.mqas(daily)[keys].reset_index(drop=True)
    assert len(daily_mqas) > 5, "the synthetic quarter should fire MQAs"
    pd.testing.assert_frame_equal(daily_mqas, exports.mqas(weekly)[keys].reset_index(drop=True))


def test_rerunning_a_run_changes_no_export(crm_folder: Path, db_url: str) -> None:
    store = loaded(db_url, crm_folder)
    first, second = START + pd.Timedelta(days=20, hours=12), START + pd.Timedelta(days=27, hours=12)
    run_at(store, first)
    run_at(store, second)
    before = snapshot(store)
    assert len(before["mqas"]) > 0 and len(before["sla"]) == 4 * len(before["mqas"])
    stages.extract_files(store, crm_folder, "reload", NOW)
    run_at(store, second)
    after = snapshot(store)
    for kind in before:
        pd.testing.assert_frame_equal(before[kind], after[kind])


def test_a_later_run_updates_clocks_in_place(crm_folder: Path, tmp_path: Path) -> None:
    store = loaded(f"sqlite:///{tmp_path / 'w.db'}", crm_folder)
    early = START + pd.Timedelta(days=20, hours=12)
    run_at(store, early)
    clocks_early = exports.sla(store)
    pending = clocks_early[clocks_early["status"] == "pending"]
    assert len(pending) > 0
    run_at(store, early + pd.Timedelta(days=20))
    clocks_late = exports.sla(store)
    assert not clocks_late.duplicated(["account_id", "trigger_at", "clock"]).any()
    merged = pending.merge(clocks_late, on=["account_id", "trigger_at", "clock"], suffixes=("_early", "_late"))
    assert len(merged) == len(pending)
    assert (merged["status_late"] != "pending").any()


def _race(db_url: str, as_of: str, barrier, fired_counts) -> None:
    store = Warehouse(db_url)
    barrier.wait()
    racer = multiprocessing.current_process().name
    fired = stages.fire_and_route(store, pd.Timestamp(as_of), load_model(), load_policy(), f"racer-{racer}")
    fired_counts.put(len(fired))


def test_two_processes_racing_fire_each_mqa_once(crm_folder: Path, postgres_url: str, tmp_path: Path) -> None:
    raced = loaded(postgres_url, crm_folder)
    alone = loaded(f"sqlite:///{tmp_path / 'alone.db'}", crm_folder)
    as_of = START + pd.Timedelta(days=30, hours=12)
    context = multiprocessing.get_context("spawn")
    barrier, fired_counts = context.Barrier(2), context.Queue()
    racers = [
        context.Process(target=_race, args=(postgres_url, as_of.isoformat(), barrier, fired_counts)) for _ in range(2)
    ]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(timeout=300)
    assert [racer.exitcode for racer in racers] == [0, 0]
    stages.fire_and_route(alone, as_of, load_model(), load_policy(), "alone")
    raced_mqas, alone_mqas = exports.mqas(raced).reset_index(drop=True), exports.mqas(alone).reset_index(drop=True)
    assert len(raced_mqas) > 0
    assert sorted(fired_counts.get(timeout=10) for _ in racers) == [0, len(raced_mqas)]
    # exactly the MQAs (and round-robin turns) of a single run: the loser fired and routed nothing
    pd.testing.assert_frame_equal(raced_mqas, alone_mqas)


def write_folder(folder: Path, tables: dict[str, list[dict]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in tables.items():
        pd.DataFrame(rows).to_csv(folder / f"{name}.csv", index=False)
    return folder


LATE_ROUTED = {
    "accounts": [
        {"id": account, "name": account, "industry": "Software", "employees": 1000, "country": "US",
         "owner_id": owner, "tier": 3}
        for account, owner in (("TOKYO", "u-tokyo"), ("NEWYORK", "u-ny"))
    ],
    "contacts": [{"id": f"c-{a}", "account_id": a, "title": "VP of Marketing"} for a in ("TOKYO", "NEWYORK")],
    "activities": [
        row
        for a in ("TOKYO", "NEWYORK")
        for row in (
            {"id": f"f-{a}", "account_id": a, "type": "form_submit", "occurred_at": "2026-03-28T23:00:00Z",
             "contact_id": f"c-{a}", "owner_id": "", "url": ""},
            {"id": f"p-{a}", "account_id": a, "type": "web_visit", "occurred_at": "2026-03-29T01:00:00Z",
             "contact_id": f"c-{a}", "owner_id": "", "url": "https://x.test/pricing"},
        )
    ] + [{"id": "late-call", "account_id": "NEWYORK", "type": "call", "occurred_at": "2026-05-19T12:00:00Z",
          "contact_id": "", "owner_id": "u-ny", "url": ""}],
    "users": [
        {"id": "u-tokyo", "role": "sales", "manager_id": "m-tokyo", "time_zone": "Asia/Tokyo", "country": "JP"},
        {"id": "u-ny", "role": "sales", "manager_id": "m-ny", "time_zone": "America/New_York", "country": "US"},
        {"id": "m-tokyo", "role": "manager", "manager_id": "", "time_zone": "Asia/Tokyo", "country": "JP"},
        {"id": "m-ny", "role": "manager", "manager_id": "", "time_zone": "America/New_York", "country": "US"},
        {"id": "r1", "role": "revops", "manager_id": "", "time_zone": "UTC", "country": ""},
        {"id": "cro", "role": "cro", "manager_id": "", "time_zone": "UTC", "country": ""},
    ],
}


def test_old_mqas_are_evaluated_until_nothing_can_change(tmp_path: Path) -> None:
    """Routed 30 days after the trigger: level 3 (across Golden Week) and a late first touch come 7 weeks on."""
    store = loaded(f"sqlite:///{tmp_path / 'w.db'}", write_folder(tmp_path / "export", LATE_ROUTED))
    for as_of in ("2026-04-27T23:00Z", "2026-05-12T00:00Z", "2026-05-20T00:00Z"):
        run_at(store, pd.Timestamp(as_of))
    escalated = exports.escalations(store)
    tokyo = escalated[escalated["account_id"] == "TOKYO"].set_index("level")["opened_at"]
    # due Fri 1 May 17:00 JST; business days skip Golden Week (4-6 May): +24 h Mon 11 May, +48 h Thu 14 May
    assert tokyo.to_dict() == {level: pd.Timestamp(at) for level, at in
                               ((1, "2026-05-01T08:00Z"), (2, "2026-05-11T08:00Z"), (3, "2026-05-14T08:00Z"))}
    clocks = exports.sla(store).set_index(["account_id", "clock"])
    assert clocks.loc[("NEWYORK", "first_touch"), "status"] == "missed"
    assert clocks.loc[("NEWYORK", "first_touch"), "met_at"] == pd.Timestamp("2026-05-19T12:00Z")


def test_a_run_behind_the_live_runs_turns_no_clock_back(crm_folder: Path, tmp_path: Path) -> None:
    store = loaded(f"sqlite:///{tmp_path / 'w.db'}", crm_folder)
    run_at(store, START + pd.Timedelta(days=40, hours=12))  # live
    live = snapshot(store)
    assert (live["sla"]["status"] == "missed").any() and (live["sla"]["status"] == "met").any()
    run_at(store, START + pd.Timedelta(days=25, hours=12))  # a backfill step behind it
    after = snapshot(store)
    keys = ["account_id", "trigger_at", "clock"]
    kept = live["sla"].merge(after["sla"], on=keys, suffixes=("", "_after"))
    assert len(kept) == len(live["sla"])
    pd.testing.assert_series_equal(kept["status"], kept["status_after"], check_names=False)
    pd.testing.assert_series_equal(kept["met_at"], kept["met_at_after"], check_names=False)
