"""The pipeline stages against a real warehouse: exactly-once MQAs, clocks updated in place, idempotent runs."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pandas as pd
import pytest

from abm_sla import exports, stages, synthetic
from abm_sla.model import load_model
from abm_sla.policy import load_policy
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
    stages.score(store, as_of, model, f"run-{as_of.isoformat()}")
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
