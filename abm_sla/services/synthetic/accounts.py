"""The synthetic CRM's accounts: firmographics, names and domains, tiers and owners."""

from __future__ import annotations

import numpy as np
import pandas as pd

from abm_sla.services.synthetic.common import DAY, _Accounts, _ids, _lookup, _p, _to_utc
from abm_sla.services.synthetic.people import DEPARTED_OWNER, _regional_rep, _reps

# country, share, UTC offset (hours, for the hour of day people read mail), region index
COUNTRIES = (
    ("US", 38, -5, 0), ("CA", 6, -5, 0), ("GB", 12, 0, 1), ("DE", 9, 1, 1), ("FR", 6, 1, 1),
    ("NL", 4, 1, 1), ("AU", 5, 10, 2), ("BR", 4, -3, 0), ("IN", 5, 5.5, 1), ("JP", 3, 9, 2),
    ("ES", 2, 1, 1), ("SE", 2, 1, 1), ("SG", 2, 8, 2), ("MX", 2, -6, 0),
)
TLDS = {"GB": ".co.uk", "DE": ".de", "FR": ".fr", "NL": ".nl", "AU": ".com.au", "BR": ".com.br",
        "IN": ".in", "JP": ".jp", "ES": ".es", "SE": ".se", "SG": ".sg", "MX": ".mx", "CA": ".ca"}
LEGAL = {"US": " Inc.", "CA": " Inc.", "GB": " Ltd", "DE": " GmbH", "FR": " SAS", "NL": " B.V.",
         "AU": " Pty Ltd", "BR": " Ltda", "IN": " Pvt Ltd", "JP": " K.K.", "ES": " S.L.", "SE": " AB",
         "SG": " Pte Ltd", "MX": " S.A. de C.V."}
ICP_INDUSTRIES = (("Software", 16), ("Internet", 8), ("Financial Services", 10), ("Healthcare", 9))
OTHER_INDUSTRIES = (
    ("Manufacturing", 12), ("Retail", 9), ("Education", 6), ("Government", 3), ("Media", 5),
    ("Logistics", 6), ("Energy", 4), ("Construction", 5), ("Hospitality", 4), ("Telecommunications", 5),
)
NAME_PARTS = (
    ("North", "Blue", "Bright", "Silver", "Iron", "Summit", "Clear", "Red", "Green", "Stone", "Swift",
     "Cobalt", "Atlas", "Nova", "Pioneer", "Harbor", "Maple", "Cedar", "Quantum", "Vertex", "Polar", "Sun",
     "River", "Oak", "Falcon", "Crystal", "Granite", "Alpine", "Lumen", "Orbit", "Prism", "Echo", "Zen",
     "Apex", "Terra", "Urban", "Golden", "Bold", "Pixel", "Delta"),
    ("wind", "bridge", "field", "works", "labs", "point", "stack", "logic", "path", "wave", "forge", "line",
     "gate", "base", "core", "sys", "soft", "ware", "hub", "cloud", "mark", "scale", "flow", "grid", "leaf",
     "peak", "port", "ridge", "shift", "view"),
)


def _accounts(
    rng: np.random.Generator, n: int, start: pd.Timestamp, users: pd.DataFrame
) -> tuple[pd.DataFrame, _Accounts]:
    """The accounts frame and the arrays later steps need."""
    country_idx = rng.choice(len(COUNTRIES), n, p=_p([c[1] for c in COUNTRIES]))
    codes = np.array([c[0] for c in COUNTRIES], dtype=object)
    country = codes[country_idx]
    country[rng.random(n) < 0.02] = None
    offset_h = np.array([c[2] for c in COUNTRIES])[country_idx]
    region = np.array([c[3] for c in COUNTRIES])[country_idx]

    industries = ICP_INDUSTRIES + OTHER_INDUSTRIES
    industry_idx = rng.choice(len(industries), n, p=_p([i[1] for i in industries]))
    industry = _lookup([i[0] for i in industries], np.where(rng.random(n) < 0.03, -1, industry_idx))
    icp = industry_idx < len(ICP_INDUSTRIES)

    employees = np.maximum(1, np.round(rng.lognormal(np.log(150), 1.6, n)))
    employees = np.minimum(employees, 250_000)
    revenue = np.round(employees * rng.lognormal(np.log(120_000), 0.6, n), -3)
    band = np.where((employees >= 200) & (employees <= 5000), 20, np.where(employees >= 50, 10, 0))
    target = np.isin(country, ["US", "CA", "GB", "DE", "FR", "NL", "AU"])
    fit = (band + 10 * icp + 10 * target) >= 30
    employees_out = np.where(rng.random(n) < 0.04, np.nan, employees)
    revenue_out = np.where(rng.random(n) < 0.10, np.nan, revenue)

    large = employees > 1000
    tier_draw = rng.random(n)
    t1, t2 = np.where(large, 0.40, 0.06), np.where(large, 0.80, 0.29)
    tier_code = np.where(tier_draw < t1, 0, np.where(tier_draw < t2, 1, np.where(tier_draw < 0.78, 2, -1)))
    tier = _lookup(["1", "2", "3"], tier_code)

    owner, worker = _owners(rng, region, users)
    names, domains = _names(rng, n, country)
    ids = _ids("A", n, 6)
    created = int(start.timestamp()) - rng.integers(30 * DAY, 1500 * DAY, n)
    updated = np.maximum(created, int(start.timestamp()) - rng.integers(0, 60 * DAY, n))
    frame = pd.DataFrame({
        "account_id": ids, "name": names, "domain": domains, "industry": industry, "employees": employees_out,
        "annual_revenue": revenue_out, "country": country, "owner_id": owner, "tier": tier,
        "created_at": _to_utc(created), "updated_at": _to_utc(updated),
    })
    propensity = rng.gamma(1.2, 1 / 1.2, n)
    return frame, _Accounts(ids, offset_h, region, worker, fit, propensity)


def _owners(
    rng: np.random.Generator, region: np.ndarray, users: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray]:
    """Owner ids (a regional rep; a few none or departed) and the active rep who works each account."""
    n = len(region)
    active = users["active"].to_numpy()
    owner = np.empty(n, dtype=np.int64)
    for index, pool in enumerate(_reps(users, active_only=False)):
        rows = region == index
        owner[rows] = pool[rng.integers(0, len(pool), rows.sum())]
    worker = _regional_rep(rng, region, users)
    draw = rng.random(n)
    owner = np.where(draw < 0.02, -1, np.where(draw < 0.03, -2, owner))
    worker = np.where((owner >= 0) & active[np.maximum(owner, 0)], owner, worker)
    owner_ids = np.array([*users["user_id"], DEPARTED_OWNER, None], dtype=object)
    return owner_ids[owner], worker


def _names(rng: np.random.Generator, n: int, country: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Company names and unique domains."""
    first, second = NAME_PARTS
    stem = pd.Series(np.array(first, dtype=object)[rng.integers(0, len(first), n)]) + pd.Series(
        np.array(second, dtype=object)[rng.integers(0, len(second), n)]
    )
    repeat = stem.groupby(stem).cumcount().to_numpy()
    number = pd.Series(np.where(repeat > 0, repeat + 1, 0)).astype(str).replace("0", "")
    slug = stem.str.lower() + number
    country_s = pd.Series(country)
    tld = country_s.map(TLDS).fillna(".com")
    legal = country_s.map(LEGAL).fillna("").where(rng.random(n) < 0.4, "")
    name = stem + np.where(number == "", "", " " + number) + legal
    return name.to_numpy(dtype=object), (slug + tld).to_numpy(dtype=object)
