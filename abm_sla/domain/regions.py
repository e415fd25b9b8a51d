"""The regional appendix (issue 26, one-page SLA: "the adaptation is documented region by region in a single SLA
appendix"): which region an MQA or a clock belongs to, and the windows a region replaces (pure; not part of SPEC:
without the policy's ``regions`` nothing here changes a clock).

An account belongs to the region listing its ``country`` (accounts.csv, ISO 3166 alpha-2); an account without a
country belongs to the region of its owner's country (users.csv ``country``); an account in no region is measured
by the master policy (region None, the ``region=(none)`` segment of the metrics catalog).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from abm_sla.domain.policy import SlaPolicy, Window

#: The windows a region can replace (SPEC's four clocks).
REGIONAL_CLOCKS = ("routing_time", "first_touch", "status_update", "cadence")
#: How the appendix names the MQAs of no region (measured by the master policy).
NO_REGION = "(none)"


def _codes(values: pd.Series) -> pd.Series:
    return values.astype("string").str.strip().str.upper()


def region_of(account_ids: pd.Series, owner_ids: pd.Series, accounts: pd.DataFrame | None, users: pd.DataFrame,
              policy: SlaPolicy) -> pd.Series:
    """Per row: the region of the account (its country, else its owner's country), None when in no region or
    when the policy has no regions."""
    out = pd.Series(None, index=account_ids.index, dtype="object")
    if not policy.regions:
        return out
    by_country = {code: name for name, region in policy.regions.items() for code in region.countries}
    country = pd.Series(pd.NA, index=account_ids.index, dtype="string")
    if accounts is not None and len(accounts) and "country" in accounts:
        country = _codes(account_ids.astype(str).map(_lookup(accounts, "account_id", "country")))
    if users is not None and len(users) and "country" in users:
        owners = _codes(owner_ids.astype("object").map(_lookup(users, "user_id", "country")))
        country = country.where(country.notna() & country.ne(""), owners)
    region = country.astype("object").map(by_country)
    return region.astype("object").where(region.notna(), None)


def _lookup(frame: pd.DataFrame, key: str, column: str) -> pd.Series:
    rows = frame.dropna(subset=[key]).drop_duplicates(key)
    return pd.Series(rows[column].to_numpy(), index=rows[key].astype(str).to_numpy())


def windows(regions: pd.Series, clock: str, kinds: np.ndarray, amounts: np.ndarray, policy: SlaPolicy,
            tiers: pd.Series | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The per-row window (``kinds``, ``amounts``: the master policy's) with each region's own window of
    ``clock`` in its rows (first_touch: the region's window of the row's tier, when it gives one)."""
    kinds, amounts = kinds.copy(), amounts.copy()
    for name, region in policy.regions.items():
        mine = regions.eq(name).to_numpy()
        if not mine.any():
            continue
        if clock == "first_touch":
            for tier, window in region.clocks.first_touch.items():
                rows = mine & (tiers == tier).to_numpy()
                kinds[rows], amounts[rows] = window.kind, window.amount
            continue
        given = getattr(region.clocks, clock)
        window = given.window if clock == "cadence" and given is not None else given
        if window is not None:
            kinds[mine], amounts[mine] = window.kind, window.amount
    return kinds, amounts


def cadence_touches(regions: pd.Series, policy: SlaPolicy) -> pd.Series:
    """Per row: the touches the cadence clock counts (the region's ``cadence.touches``, else the master's)."""
    touches = pd.Series(policy.clocks.cadence.touches, index=regions.index, dtype="int64")
    for name, region in policy.regions.items():
        if region.clocks.cadence is not None:
            touches[regions.eq(name)] = region.clocks.cadence.touches
    return touches


def _text(window: Window | None) -> str:
    if window is None:
        return ""
    if window.kind == "same_business_day":
        return "same business day"
    return f"{window.amount:g} {window.kind.replace('_', ' ')}"


def appendix_windows(policy: SlaPolicy) -> pd.DataFrame:
    """One row per region and window it replaces: ``region, countries, clock, tier, window, master_window``."""
    clocks = policy.clocks
    rows = []
    for name, region in policy.regions.items():
        countries = ", ".join(region.countries)
        own = region.clocks
        for clock in ("routing_time", "status_update"):
            if getattr(own, clock) is not None:
                rows.append((name, countries, clock, None, _text(getattr(own, clock)), _text(getattr(clocks, clock))))
        for tier, window in sorted(own.first_touch.items()):
            rows.append((name, countries, "first_touch", tier, _text(window), _text(clocks.first_touch.windows[tier])))
        if own.cadence is not None:
            rows.append((name, countries, "cadence", None,
                         f"{own.cadence.touches} touches in {_text(own.cadence.window)}",
                         f"{clocks.cadence.touches} touches in {_text(clocks.cadence.window)}"))
        if not any(getattr(own, clock) for clock in ("routing_time", "status_update", "cadence")) \
                and not own.first_touch:
            rows.append((name, countries, "", None, "master policy's windows", ""))
    out = pd.DataFrame(rows, columns=["region", "countries", "clock", "tier", "window", "master_window"])
    out["tier"] = out["tier"].astype("Int64")
    return out
