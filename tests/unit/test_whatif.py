"""The what-if diff: hand-off crossings, score deltas, MQAs that would fire, history rows."""

from __future__ import annotations

import pandas as pd

from abm_sla.domain import whatif


def scores(rows: list[tuple[str, int, int, int, bool]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["account_id", "firmographic", "engagement", "intent", "qualified"])
    return frame.assign(total=frame[["firmographic", "engagement", "intent"]].sum(axis=1),
                        gate_total=frame["qualified"], reasons=[[{"rule": "x", "points": 1}]] * len(frame))


BEFORE = scores([("A", 20, 15, 15, True), ("B", 20, 10, 10, False), ("C", 10, 0, 0, False), ("D", 20, 5, 5, False)])
AFTER = scores([("A", 20, 10, 15, False), ("B", 20, 15, 15, True), ("C", 10, 0, 0, False), ("D", 20, 10, 0, False)])


def test_diff_classifies_crossings_and_deltas():
    diff = whatif.score_diff(BEFORE, AFTER, "v1", "v2").set_index("account_id")

    assert diff.loc["B", "change"] == whatif.NEWLY_PASSES and diff.loc["B", "total_delta"] == 10
    assert diff.loc["A", "change"] == whatif.DROPS_BELOW and diff.loc["A", "total_delta"] == -5
    assert diff.loc["C", "change"] == whatif.UNCHANGED
    assert diff.loc["D", "change"] == whatif.SCORE_CHANGED and diff.loc["D", "total_delta"] == 0
    assert list(diff.index) == ["B", "A", "D", "C"]  # crossings first
    assert set(diff["model_after"]) == {"v2"}


def test_accounts_on_one_side_only_score_zero_on_the_other():
    diff = whatif.score_diff(BEFORE.iloc[:1], AFTER.iloc[:2], "v1", "v2").set_index("account_id")

    assert diff.loc["B", "total_before"] == 0 and not diff.loc["B", "qualified_before"]


def test_would_fire_and_summary():
    fired = pd.DataFrame({"account_id": ["B", "B"], "trigger_at": pd.to_datetime(
        ["2026-01-03T10:00Z", "2026-01-02T09:00Z"], utc=True)})
    diff = whatif.with_would_fire(whatif.score_diff(BEFORE, AFTER, "v1", "v2"), fired)

    assert diff.set_index("account_id").loc["B", "would_fire_at"] == pd.Timestamp("2026-01-02T09:00Z")
    assert whatif.summarize(diff) == {"accounts": 4, "newly_pass": 1, "drop_below": 1, "score_changed": 1,
                                      "unchanged": 1, "mqas_would_fire": 1, "mean_delta": 1.25}


def test_history_rows_carry_the_model_version():
    rows = whatif.history_rows(AFTER, pd.Timestamp("2026-01-05T00:00Z"), "v2", "run-1")

    assert set(rows["model_version"]) == {"v2"} and list(rows["total"]) == [45, 50, 10, 30]
    assert rows.loc[1, "gates"] == {"gate_total": True}


def test_history_rows_give_each_row_its_own_gates() -> None:
    gates = pd.DataFrame({"gate_total": [True, False, True, False, True], "gate_categories": [True, True, False,
                                                                                              False, True]})
    scores = AFTER.iloc[[0, 1, 2, 3, 0]].reset_index(drop=True).drop(columns=["gate_total"], errors="ignore")
    rows = whatif.history_rows(pd.concat([scores, gates], axis=1), pd.Timestamp("2026-01-05T00:00Z"), "v2", "r")

    assert rows["gates"].tolist() == gates.to_dict(orient="records")
    assert all(type(value) is bool for gate in rows["gates"] for value in gate.values())


def test_a_policy_what_if_diffs_the_stored_mqas_clocks_like_a_model_what_if() -> None:
    from abm_sla.domain.policy import DEFAULT_PATH
    from abm_sla.services.config_files import load_policy

    at = pd.Timestamp("2026-03-02T08:00Z")
    mqas = pd.DataFrame([{"account_id": "A", "trigger_at": at, "routed_at": at, "tier": 1, "owner_id": "U1"}])
    users = pd.DataFrame([{"user_id": "U1", "role": "sales", "time_zone": "UTC", "country": "GB", "active": True}])
    changes = pd.DataFrame({"account_id": ["A"], "status": ["Unqualified"], "reason": [None],
                            "changed_at": [pd.Timestamp("2026-03-03T10:00Z")]})
    activities = pd.DataFrame({"account_id": pd.Series(dtype=object), "type": pd.Series(dtype=object),
                               "occurred_at": pd.Series(dtype="datetime64[ns, UTC]")})
    opportunities = pd.DataFrame({"account_id": pd.Series(dtype=object),
                                  "created_at": pd.Series(dtype="datetime64[ns, UTC]")})
    as_of = pd.Timestamp("2026-03-20T00:00Z")
    args = (mqas, activities, changes, users, opportunities)
    before = whatif.policy_clocks(*args, load_policy(), as_of)
    after = whatif.policy_clocks(*args, load_policy(DEFAULT_PATH.parent / "presets" / "seven-commitments.yaml"), as_of)
    diff = whatif.clock_diff(before, after, "default", "seven-commitments")
    changed = diff[diff["change"] != whatif.UNCHANGED]
    # the preset adds a missed reason clock and weekly status clocks that stop at the disqualification
    assert changed[["clock", "period", "change", "status_after"]].values.tolist() == [
        ["quality_feedback", 0, "new clock", "missed"], ["status_recurring", 1, "new clock", "met"]]
    counts = whatif.summarize_clocks(diff).set_index("clock")
    assert counts.loc["quality_feedback", "missed_after"] == 1 and counts.loc["first_touch", "changed"] == 0
