"""A synthetic CRM written as an export folder (SPEC section 2), optionally with bad rows for the quarantine."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from abm_sla.domain import frames
from abm_sla.services.synthetic.common import _p

EXPORT_COLUMNS = {
    "accounts.csv": ("accounts", {"account_id": "id"}),
    "contacts.csv": ("contacts", {"contact_id": "id"}),
    "activities.csv": ("activities", {"activity_id": "id"}),
    "intent.csv": ("intent_signals", {"provider": "source"}),
    "opportunities.csv": ("opportunities", {"opportunity_id": "id"}),
    "users.csv": ("users", {"user_id": "id"}),
    "status_changes.csv": ("status_changes", {}),
    "target_accounts.csv": ("target_accounts", {}),
    "requests.csv": ("requests", {}),  # optional (issue 26): written only when there are requests
}
DROPPED = {"intent.csv": ["intent_id"], "status_changes.csv": ["status_change_id"],
           "target_accounts.csv": ["target_account_id"]}
#: Optional columns written only when some row has a value (a CRM without reasons has no reason column).
OPTIONAL_EXPORT_COLUMNS = {"status_changes.csv": ("reason",), "activities.csv": ("logged_at",),
                           "target_accounts.csv": ("priority",)}


def _timestamps(values: pd.Series, rng: np.random.Generator) -> pd.Series:
    """ISO 8601: mostly ``+00:00``; ~5% in another offset (same instant), ~3% without an offset."""
    out = pd.Series("", index=values.index, dtype=object)
    present = values.notna().to_numpy()
    if not present.any():
        return out
    stamps = values[present].dt.tz_convert(None).to_numpy().astype("datetime64[s]")
    draw = rng.random(len(stamps))
    shift = np.where(draw < 0.05, np.where(draw < 0.025, -5, 1), 0)
    local = stamps + shift * np.timedelta64(3600, "s")
    text = pd.Series(np.datetime_as_string(local, unit="s"), dtype=object)
    naive = draw > 0.97
    suffix = np.where(shift == -5, "-05:00", np.where(shift == 1, "+01:00", np.where(naive, "", "+00:00")))
    out[present] = (text + suffix).to_numpy()
    return out


def _numbers(values: pd.Series, decimals: int = 0) -> pd.Series:
    """Plain numbers (``1200`` or ``1200.50``); missing ones empty."""
    if decimals:
        text = values.map(f"{{:.{decimals}f}}".format)
    else:
        text = values.fillna(0).round().astype(np.int64).astype(str)
    return text.astype(object).where(values.notna(), "")


def _export_table(
    file: str, frame: pd.DataFrame, domains: pd.Series, rng: np.random.Generator
) -> pd.DataFrame:
    """One file's table of strings, with the SPEC column names."""
    kind, renames = EXPORT_COLUMNS[file]
    optional = [c for c in OPTIONAL_EXPORT_COLUMNS.get(file, ()) if c not in frame or frame[c].isna().all()]
    table = frame.reindex(columns=frames.COLUMNS[kind]).drop(columns=[*DROPPED.get(file, []), *optional])
    table = table.astype(object).where(table.notna(), "")
    for column in frames.TIMESTAMP_COLUMNS[kind]:
        if column in table:
            table[column] = _timestamps(frame[column], rng)
    for column in ("active", "is_closed", "is_won"):
        if column in table:
            table[column] = frame[column].map({True: "true", False: "false"}).fillna("")
    for column in ("employees", "annual_revenue", "score"):
        if column in table:
            table[column] = _numbers(frame[column])
    if "amount" in table:
        table["amount"] = _numbers(frame["amount"], 2)
    if kind == "accounts":
        table["tier"] = _tiers(frame["tier"], rng)
    if kind == "intent_signals":
        table = _intent_by_domain(table, frame["account_id"].map(domains), rng)
    return table.rename(columns=renames)


def _tiers(tier: pd.Series, rng: np.random.Generator) -> pd.Series:
    """Tiers as ``2``, ``Tier 2`` or `` tier 2 ``; none stays empty."""
    form = rng.choice(3, len(tier))
    text = tier.fillna("").astype(str)
    written = np.select([form == 0, form == 1], [text, "Tier " + text], " tier " + text + " ")
    return pd.Series(np.where(text.isin(["1", "2", "3"]), written, text), index=tier.index, dtype=object)


def _intent_by_domain(table: pd.DataFrame, domain: pd.Series, rng: np.random.Generator) -> pd.DataFrame:
    """~20% of intent rows name the account's domain (in assorted spellings) instead of its id."""
    domain = domain.fillna("")
    by_domain = (rng.random(len(table)) < 0.2) & (domain != "").to_numpy()
    style = rng.choice(4, len(table), p=_p((70, 10, 10, 10)))
    spelled = np.select([style == 1, style == 2, style == 3],
                        ["www." + domain, "https://www." + domain + "/", domain.str.upper()], domain)
    table.insert(1, "domain", np.where(by_domain, spelled, ""))
    table["account_id"] = np.where(by_domain, "", table["account_id"])
    return table


def _dirty_rows(tables: dict[str, pd.DataFrame]) -> dict[str, list[dict]]:
    """A handful of unusable rows per file: each kind of problem the loader must quarantine."""
    account = tables["accounts.csv"].iloc[0].to_dict()
    activity = tables["activities.csv"].iloc[0].to_dict() if len(tables["activities.csv"]) else {}
    when = "2026-01-15T10:00:00+00:00"
    return {
        "accounts.csv": [
            {**account, "name": "Duplicate of the first account"},
            # a bad optional value (employees = "about 500") no longer costs the row; a bad timestamp does
            {**account, "id": "A-BAD-TIME", "domain": "bad-time.example", "updated_at": "2026-13-45T25:00"},
        ],
        "contacts.csv": [
            {"id": "C-ORPHAN", "account_id": "A-MISSING", "title": "CEO", "email": "x@missing.example"},
        ],
        "activities.csv": [
            {"id": "ACT-BAD-TIME", "account_id": account["id"], "type": "call",
             "occurred_at": "2026-02-30T25:61"},
            {"id": "ACT-FAX", "account_id": account["id"], "type": "fax", "occurred_at": when},
            {"id": "ACT-ORPHAN", "account_id": "A-MISSING", "type": "email_open", "occurred_at": when},
            {**activity, "type": "meeting"},
        ],
        "intent.csv": [
            {"account_id": "", "domain": "no-such-company.example", "topic": "CRM Software", "score": "90",
             "observed_at": when, "source": "bombora"},
            {"account_id": account["id"], "domain": "", "topic": "CRM Software", "score": "high",
             "observed_at": when, "source": "g2"},
            {"account_id": "A-MISSING", "domain": "", "topic": "Lead Scoring", "score": "80",
             "observed_at": when, "source": "g2"},
        ],
        "opportunities.csv": [{"id": "O-BAD-AMOUNT", "account_id": account["id"], "stage": "Discovery",
                               "amount": "12k", "created_at": when, "is_closed": "false", "is_won": "false"}],
        "status_changes.csv": [{"account_id": account["id"], "status": "working", "changed_at": "soon"}],
    }


def write_export_folder(
    frames_by_kind: dict[str, pd.DataFrame], path: str | Path, dirty: bool = False, seed: int = 7
) -> Path:
    """Write ``frames_by_kind`` as a CRM export folder (SPEC section 2); returns the folder.

    Timestamps are ISO 8601 (mostly ``+00:00``, a few other offsets or none), booleans
    ``true``/``false``, tiers in mixed spellings and ~20% of intent rows by domain only.
    ``dirty`` appends a handful of unusable rows of every kind the loader quarantines.
    """
    rng = np.random.default_rng(seed)
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    accounts = frames_by_kind["accounts"]
    domains = pd.Series(accounts["domain"].to_numpy(), index=accounts["account_id"].to_numpy())
    tables = {
        file: _export_table(file, frames_by_kind[kind], domains, rng)
        for file, (kind, _) in EXPORT_COLUMNS.items()
        if kind in frames_by_kind
        and (kind not in ("target_accounts", "requests") or len(frames_by_kind[kind]))  # none: no file
    }
    if dirty:
        for file, rows in _dirty_rows(tables).items():
            tables[file] = pd.concat([tables[file], pd.DataFrame(rows)], ignore_index=True).fillna("")
    for file, table in tables.items():
        table.to_csv(folder / file, index=False, encoding="utf-8")
    return folder
