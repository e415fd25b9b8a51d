"""Routing: tier parsing, owner choice, and a round-robin that stays fair across runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from abm_sla.domain.routing import ROUTED_COLUMNS, parse_tier, route_mqas

AS_OF = pd.Timestamp("2026-03-02T12:00Z")


def users_frame(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["user_id", "role", "active"])


USERS = users_frame([
    ("S3", "Sales", True), ("S1", "sales ", True), ("S2", "SALES", None), ("S0", "sales", False),
    ("M1", "manager", True), ("R1", "revops", True),
])


def mqas_frame(ids: list[str], start: str = "2026-03-01T10:00Z") -> pd.DataFrame:
    base = pd.Timestamp(start)
    return pd.DataFrame({"account_id": ids,
                         "trigger_at": [base + pd.Timedelta(minutes=i) for i in range(len(ids))]})


def accounts_frame(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["account_id", "tier", "owner_id"])


@pytest.mark.parametrize(("raw", "tier"), [
    ("1", 1), ("Tier 1", 1), (" tier 3 ", 3), ("TIER2", 2), ("tier  2", 2), (2, 2), (1.0, 1), ("2.0", 2),
    ("", 3), (None, 3), (np.nan, 3), ("garbage", 3), ("Tier 4", 3), ("0", 3), ("12", 3),
])
def test_parse_tier(raw: object, tier: int) -> None:
    parsed = parse_tier(pd.Series([raw], dtype="object"))
    assert parsed.tolist() == [tier]
    assert parsed.dtype == "int64"


def test_active_owner_is_kept_and_tier_reason() -> None:
    accounts = accounts_frame([("A1", "Tier 1", "M1"), ("A2", None, "S1")])
    routed, state = route_mqas(mqas_frame(["A1", "A2"]), accounts, USERS, AS_OF, "S2")
    assert list(routed.columns) == ROUTED_COLUMNS
    assert routed["owner_id"].tolist() == ["M1", "S1"]  # any active user may own an account
    assert routed["tier"].tolist() == [1, 3]
    assert (routed["routed_at"] == AS_OF).all()
    assert str(routed["routed_at"].dtype) == "datetime64[ns, UTC]"
    assert routed["owner_reason"].tolist() == ["account owner M1", "account owner S1"]
    assert "Tier 1" in routed["tier_reason"][0] and "empty" in routed["tier_reason"][1]
    assert state == "S2"  # nobody took a turn


def test_inactive_unknown_or_missing_owner_goes_round_robin_in_trigger_order() -> None:
    accounts = accounts_frame([("A1", "1", "S0"), ("A2", "2", "GHOST"), ("A3", "3", None), ("A4", "x", "S1")])
    mqas = mqas_frame(["A3", "A1", "A2", "A4"])  # A3 fired first
    routed, state = route_mqas(mqas, accounts, USERS, AS_OF, None)
    assert routed["account_id"].tolist() == ["A3", "A1", "A2", "A4"]  # input order kept
    # active sales users ordered by id: S1, S2 (active missing = active), S3; S0 is inactive
    assert routed["owner_id"].tolist() == ["S1", "S2", "S3", "S1"]
    assert state == "S3"
    reasons = routed["owner_reason"].tolist()
    assert reasons[0].startswith("account has no owner; round-robin")
    assert reasons[1].startswith("account owner S0 is inactive; round-robin")
    assert reasons[2].startswith("account owner GHOST is not a known user; round-robin")
    assert reasons[3] == "account owner S1"
    assert routed["tier"].tolist() == [3, 1, 2, 3]


def test_same_trigger_time_breaks_ties_by_account_id() -> None:
    at = pd.Timestamp("2026-03-01T10:00Z")
    mqas = pd.DataFrame({"account_id": ["B", "A", "C"], "trigger_at": [at, at, at]})
    routed, _ = route_mqas(mqas, accounts_frame([]), USERS, AS_OF, None)
    owners = dict(zip(routed["account_id"], routed["owner_id"], strict=True))
    assert owners == {"A": "S1", "B": "S2", "C": "S3"}


def test_fair_across_two_runs_with_persisted_state() -> None:
    accounts = accounts_frame([])
    first, state = route_mqas(mqas_frame(["A1", "A2"]), accounts, USERS, AS_OF, None)
    second, state = route_mqas(mqas_frame(["A3", "A4", "A5", "A6"], "2026-03-02T10:00Z"), accounts, USERS,
                               AS_OF + pd.Timedelta(days=1), state)
    owners = first["owner_id"].tolist() + second["owner_id"].tolist()
    assert owners == ["S1", "S2", "S3", "S1", "S2", "S3"]
    assert state == "S3"
    counts = pd.Series(owners).value_counts()
    assert counts.max() - counts.min() == 0


def test_state_survives_the_last_user_leaving() -> None:
    # S2 was last; now S2 is inactive: the next turn is the next id after S2, i.e. S3
    users = USERS.assign(active=~USERS["user_id"].isin(["S0", "S2"]))
    routed, state = route_mqas(mqas_frame(["A1", "A2"]), accounts_frame([]), users, AS_OF, "S2")
    assert routed["owner_id"].tolist() == ["S3", "S1"]
    assert state == "S1"


def test_no_active_sales_user_leaves_unassigned() -> None:
    users = users_frame([("M1", "manager", True), ("S1", "sales", "false")])
    routed, state = route_mqas(mqas_frame(["A1"]), accounts_frame([("A1", "1", None)]), users, AS_OF, "S1")
    assert routed["owner_id"].tolist() == [None]
    assert "no active sales user" in routed["owner_reason"][0]
    assert state == "S1"


def test_empty_input() -> None:
    empty = mqas_frame([])
    routed, state = route_mqas(empty, accounts_frame([]), USERS, AS_OF, "S1")
    assert routed.empty and list(routed.columns) == ROUTED_COLUMNS
    assert state == "S1"
