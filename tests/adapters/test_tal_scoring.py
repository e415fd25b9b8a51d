"""Scoring limited to the target account list (policy ``target_account_list.only_listed``), at its boundaries.

On the list at t when ``added_at <= t < removed_at``; the switch only matters when a list exists; an
account that leaves the list gets a not-scored row, so no reader shows its earlier score; switching the
setting never lets an incremental run reuse a reference computed under the other one.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from abm_sla.domain.policy.target_accounts import TargetAccountList
from abm_sla.services import exports, reporting, stages
from abm_sla.warehouse import Warehouse, schema, score_history
from tests.adapters.test_incremental import MODEL, NOW, POLICY, START, Crm

OFF = POLICY.model_copy(update={"target_account_list": TargetAccountList(only_listed=False)})
AT = 24 * 3  # hours after START: the moment scored
SIGNALS = [(kind, account, 40, True) for account in ("A1", "A2", "A3", "A4") for kind in ("pricing", "webinar")]


def loaded(tmp_path: Path, name: str, listed: list[tuple]) -> Warehouse:
    store = Warehouse(f"sqlite:///{tmp_path / f'{name}.db'}")
    stages.extract_files(store, Crm(tmp_path / name).arrive([*SIGNALS, *listed], None), "load", NOW)
    return store


def scored(store: Warehouse) -> list[str]:
    return exports.scores(store)["account_id"].tolist()


BOUNDARIES = [("listed", "A1", AT, True),  # added exactly at the moment: on the list
              ("unlisted", "A2", AT, True),  # removed exactly at the moment: off it
              ("listed", "A3", AT + 1, True)]  # added an hour later: off it (A4: never listed)


def test_only_accounts_on_the_list_at_the_moment_are_scored(tmp_path: Path) -> None:
    store = loaded(tmp_path, "on", BOUNDARIES)
    summary = stages.score(store, START + pd.Timedelta(hours=AT), MODEL, POLICY, "on")
    assert scored(store) == ["A1"]
    assert summary["accounts_scored"] == 1 and summary["accounts_recomputed"] == 4  # A5 is created later
    later = stages.score(store, START + pd.Timedelta(hours=AT + 1), MODEL, POLICY, "later")
    assert scored(store) == ["A1", "A3"] and later["accounts_recomputed"] == 1  # only A3 joined in between


def test_the_switch_off_or_no_list_scores_every_account_as_before(tmp_path: Path) -> None:
    moment = START + pd.Timedelta(hours=AT)
    listed, unlisted, plain = (loaded(tmp_path, "off", BOUNDARIES), loaded(tmp_path, "no-list", []),
                               loaded(tmp_path, "spec", []))
    stages.score(listed, moment, MODEL, OFF, "off")
    stages.score(unlisted, moment, MODEL, POLICY, "on-without-list")
    stages.score(plain, moment, MODEL, None, "spec")
    expected = exports.scores(plain)
    assert expected["account_id"].tolist() == ["A1", "A2", "A3", "A4"]
    for store in (listed, unlisted):
        pd.testing.assert_frame_equal(exports.scores(store), expected)
        history = store.read_table(schema.score_history)
        assert not history["score_hash"].eq(score_history.NOT_SCORED).any()


def test_an_account_leaving_the_list_loses_its_score_in_every_reader(tmp_path: Path) -> None:
    store = loaded(tmp_path, "leaves", [("unlisted", "A2", AT + 2, True), ("listed", "A1", 0, True)])
    stages.score(store, START + pd.Timedelta(hours=AT), MODEL, POLICY, "before")
    assert scored(store) == ["A1", "A2"]
    after = stages.score(store, START + pd.Timedelta(hours=AT + 2), MODEL, POLICY, "after")  # removed at that moment
    assert scored(store) == ["A1"] and after["accounts_recomputed"] == 1 and after["scores_changed"] == 1
    history = store.read_table(schema.score_history).set_index(["account_id", "run_id"])
    assert history.loc[("A2", "after"), "score_hash"] == score_history.NOT_SCORED
    assert history.loc[("A2", "after"), "total"] == 0 and not history.loc[("A2", "after"), "qualified"]
    dense = reporting.load_data(store).score_history  # the scorecard's and the backtest's view
    assert sorted(zip(dense["account_id"], dense["as_of"].dt.strftime("%dT%H"), strict=True)) == [
        ("A1", "05T00"), ("A1", "05T02"), ("A2", "05T00")]


def test_switching_the_setting_never_reuses_the_other_settings_reference(tmp_path: Path) -> None:
    store = loaded(tmp_path, "switch", [("listed", "A1", 0, True)])
    moment = START + pd.Timedelta(hours=AT)
    assert stages.score(store, moment, MODEL, POLICY, "on")["mode"] == "full"
    assert scored(store) == ["A1"]
    assert stages.score(store, moment + pd.Timedelta(hours=1), MODEL, OFF, "off")["mode"] == "full"
    assert scored(store) == ["A1", "A2", "A3", "A4"]
    again = stages.score(store, moment + pd.Timedelta(hours=2), MODEL, POLICY, "on again")
    # the "on" run is its reference, but the "off" run's scores stand in between: every account is recomputed
    assert again["mode"] == "incremental" and again["accounts_recomputed"] == 4
    assert scored(store) == ["A1"]
