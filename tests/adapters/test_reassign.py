"""Reassignment on breach against a real warehouse (SQLite): exactly once, fresh clocks, write-back, and the
race with a late touch (the rule: event time decides; a reassignment once made stands)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from abm_sla.crm.config import WritebackConfig
from abm_sla.crm.writeback import write_back
from abm_sla.domain.policy import DEFAULT_PATH
from abm_sla.services import exports, stages
from abm_sla.services.config_files import load_model, load_policy
from abm_sla.warehouse import Warehouse, schema, undo
from tests.adapters.test_stages import write_folder

POLICY = load_policy(DEFAULT_PATH.parent / "presets" / "one-page-escalation.yaml")
NOW = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
USERS = [{"id": u, "role": role, "manager_id": "m1" if role == "sales" else "", "time_zone": "UTC", "country": ""}
         for u, role in (("u1", "sales"), ("u2", "sales"), ("u3", "sales"), ("m1", "manager"), ("r1", "revops"),
                         ("c1", "cmo"), ("h1", "Head of Sales"), ("x1", "cro"))]
SIGNALS = [
    {"id": "f1", "account_id": "ACME", "type": "form_submit", "occurred_at": "2026-03-02T09:00:00Z",
     "contact_id": "c-1", "owner_id": "", "url": ""},
    {"id": "p1", "account_id": "ACME", "type": "web_visit", "occurred_at": "2026-03-02T09:30:00Z",
     "contact_id": "c-1", "owner_id": "", "url": "https://x.test/pricing"},
]
# Tier 1, routed Mon 10:00 to u1: first touch due 12:00; level 2 (reassigning) opens Thu 03-05 12:00
REASSIGN_AT = pd.Timestamp("2026-03-05T12:00Z")


def warehouse(tmp_path: Path, *touches: str) -> tuple[Warehouse, Path]:
    store = Warehouse(f"sqlite:///{tmp_path / 'w.db'}")
    folder = load(store, tmp_path, *touches)
    return store, folder


def load(store: Warehouse, tmp_path: Path, *touches: str) -> Path:
    calls = [{"id": f"t{n}", "account_id": "ACME", "type": "call", "occurred_at": at, "contact_id": "",
              "owner_id": "u1", "url": ""} for n, at in enumerate(touches)]
    folder = write_folder(tmp_path / "export", {
        "accounts": [{"id": "ACME", "name": "Acme", "industry": "Software", "employees": 1000, "country": "US",
                      "owner_id": "u1", "tier": 1}],
        "contacts": [{"id": "c-1", "account_id": "ACME", "title": "VP Marketing"}],
        "activities": SIGNALS + calls, "users": USERS})
    stages.extract_files(store, folder, f"load-{len(touches)}", NOW)
    return folder


def run(store: Warehouse, as_of: str) -> None:
    moment, model = pd.Timestamp(as_of), load_model()
    stages.score(store, moment, model, None, f"s-{as_of}")
    stages.fire_and_route(store, moment, model, POLICY, f"f-{as_of}")
    stages.evaluate_sla(store, moment, POLICY, run_id=f"e-{as_of}")


def state(store: Warehouse) -> dict[str, pd.DataFrame]:
    return {"mqas": exports.mqas(store).reset_index(drop=True), "sla": exports.sla(store).reset_index(drop=True),
            "reassignments": store.read_table(schema.reassignments)}


def test_reassigned_once_with_fresh_clocks_written_back_and_standing_against_a_late_touch(tmp_path: Path) -> None:
    store, _ = warehouse(tmp_path)
    run(store, "2026-03-02T10:00Z")
    run(store, "2026-03-05T11:59Z")
    assert store.read_table(schema.reassignments).empty  # the level has not opened yet
    run(store, "2026-03-05T13:00Z")
    done = state(store)
    row = done["reassignments"].iloc[0]
    assert (row["status"], row["from_owner_id"], row["to_owner_id"], row["clock"], row["level"]) == (
        "reassigned", "u1", "u2", "first_touch", 2)  # round-robin after u1 skips the owner: u2
    assert row["reassigned_at"] == REASSIGN_AT and row["writeback_key"]
    assert done["mqas"]["owner_id"].tolist() == ["u2"]
    clocks = done["sla"].set_index("clock")
    assert clocks.loc["first_touch", "due_at"] == pd.Timestamp("2026-03-05T14:00Z")  # fresh: 2 h from 12:00
    assert clocks.loc["first_touch", "status"] == "pending"
    assert clocks.loc["routing_time", "met_at"] == pd.Timestamp("2026-03-02T10:00Z")
    escalated = store.read_table(schema.escalations)
    assert set(escalated.loc[escalated["level"] == 2, "to_user_id"]) == {"c1", "h1"}  # a two-role step
    assert store.get_state(stages.ROUND_ROBIN_KEY) == "u2"

    run(store, "2026-03-05T13:00Z")  # re-run: nothing twice
    again = state(store)
    for name in ("mqas", "sla"):
        pd.testing.assert_frame_equal(done[name], again[name])
    assert len(again["reassignments"]) == 1 and store.get_state(stages.ROUND_ROBIN_KEY) == "u2"

    writer, config = Writer(), WritebackConfig(enabled=True)  # written back once, to the new owner
    now = dt.datetime(2026, 3, 5, 14, tzinfo=dt.UTC)
    assert write_back(store, writer, config, now)["created"] == 1  # (the routing task is past max_age_hours)
    task = next(iter(writer.tasks.values()))
    assert task["kind"] == "reassignment" and task["owner"] == "u2"
    assert "Reassigned from u1 at 2026-03-05T12:00:00Z: first touch missed." in task["body"]
    assert write_back(store, writer, config, now)["created"] == 0
    before = store.read_table(schema.reassignments)
    assert before["writeback_done_at"].notna().all()

    # the race: a touch dated before the breach arrives after the reassignment run; the reassignment stands
    load(store, tmp_path, "2026-03-05T11:00Z")
    run(store, "2026-03-06T10:00Z")
    pd.testing.assert_frame_equal(before, store.read_table(schema.reassignments))
    assert exports.mqas(store)["owner_id"].tolist() == ["u2"]
    first = exports.sla(store).set_index("clock").loc["first_touch"]
    assert first["status"] == "missed" and pd.isna(first["met_at"])  # the fresh clock counts touches from 12:00



def test_a_touch_before_the_reassigning_level_prevents_it_whenever_it_is_loaded(tmp_path: Path) -> None:
    store, _ = warehouse(tmp_path, "2026-03-05T11:59Z")  # late for the clock, before the level
    run(store, "2026-03-02T10:00Z")
    run(store, "2026-03-06T10:00Z")
    assert store.read_table(schema.reassignments).empty
    assert exports.mqas(store)["owner_id"].tolist() == ["u1"]


def test_a_touch_after_the_reassignment_meets_the_new_owners_clock(tmp_path: Path) -> None:
    store, _ = warehouse(tmp_path, "2026-03-05T12:30Z")  # the old owner re-engages just after the breach
    run(store, "2026-03-02T10:00Z")
    run(store, "2026-03-06T10:00Z")
    assert exports.mqas(store)["owner_id"].tolist() == ["u2"]
    first = exports.sla(store).set_index("clock").loc["first_touch"]
    assert (first["status"], first["met_at"]) == ("met", pd.Timestamp("2026-03-05T12:30Z"))


class Writer:
    name = "files"

    def __init__(self) -> None:
        self.tasks: dict[str, dict] = {}

    def ensure_task(self, item, config):
        subject = item.subject(config.subject_prefix)
        created = subject not in self.tasks
        self.tasks.setdefault(subject, {"owner": item.owner_id, "body": item.description(), "kind": item.kind})
        return subject, created

    def set_status(self, account_id, config) -> None:
        pass




def test_undoing_the_run_that_reassigned_restores_owner_clocks_and_turn(tmp_path: Path) -> None:
    """`abm-sla undo` of the run that reassigned: the MQA is u1's again with its old clocks, the audit row is
    gone, the round-robin turn is given back; running it again reassigns exactly as before."""
    from flows.pipeline import run_once
    from tasks.common import direct_calls

    store, folder = warehouse(tmp_path)
    policy = str(DEFAULT_PATH.parent / "presets" / "one-page-escalation.yaml")

    def pipeline(as_of: str) -> dict:
        with direct_calls():
            return run_once(store.url, as_of, "files", str(folder), policy_path=policy)

    pipeline("2026-03-02T10:00Z")
    before = {**state(store), "turn": store.get_state(stages.ROUND_ROBIN_KEY)}
    reassigning = pipeline("2026-03-05T13:00Z")
    assert state(store)["mqas"]["owner_id"].tolist() == ["u2"]
    undo.undo_run(store, reassigning["run_id"], dt.datetime.now(dt.UTC))
    after = {**state(store), "turn": store.get_state(stages.ROUND_ROBIN_KEY)}
    pd.testing.assert_frame_equal(after["mqas"], before["mqas"])
    pd.testing.assert_frame_equal(after["sla"], before["sla"])
    assert after["reassignments"].empty and after["turn"] == before["turn"]
    pipeline("2026-03-05T13:00Z")
    assert state(store)["mqas"]["owner_id"].tolist() == ["u2"]


def test_the_new_owners_ladder_is_stored_and_its_ticket_cites_stored_steps(tmp_path: Path) -> None:
    """After the reassignment the new owner misses the first touch too: their level-1 ticket (to the same revops
    user as the old owner's) is stored beside the old one (before, the escalations key dropped it, and the
    later ticket cited a level-1 step that was never stored)."""
    store, _ = warehouse(tmp_path)
    for as_of in ("2026-03-02T10:00Z", "2026-03-05T13:00Z", "2026-03-09T17:00Z"):
        run(store, as_of)
    stored = store.read_table(schema.escalations)
    first_touch = stored[stored["clock"] == "first_touch"]
    assert {("u1", 1), ("u2", 1)} <= set(zip(first_touch["owner_id"], first_touch["level"], strict=True))
    later = first_touch[(first_touch["owner_id"] == "u2") & (first_touch["level"] > 1)]
    for steps in later["steps_taken"]:
        for step in str(steps).split("; "):
            level, at = int(step.split()[1]), step.rsplit(" at ", 1)[1]
            opened = first_touch[(first_touch["owner_id"] == "u2") & (first_touch["level"] == level)]["opened_at"]
            assert any(stamp.strftime("%Y-%m-%dT%H:%M") in at for stamp in opened), (step, opened.tolist())
