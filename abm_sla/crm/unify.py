"""Both CRMs at once: one account per company, matched on the normalized domain (pure, no I/O).

Accounts of every source whose normalized domain (scheme, ``www.``, case, trailing
dots and paths dropped) is the same are one company. The unified account takes
its id and its attributes from the first source in ``priority`` that has it
(missing values filled from the others), its owner and tier from the configured
system of record (falling back to the others). Accounts without a domain, or
whose domain no other account shares, are kept as they are. ``mapping`` says
which unified ``account_id`` every ``(source, source_account_id)`` became, so
contacts, activities, intent, opportunities and status changes can be re-keyed
(:func:`rekey`); :func:`unify_frames` does all of it, users matched by email.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from abm_sla.crm.files.validation import normalize_domain
from abm_sla.domain import frames

MAPPING_COLUMNS = ["source", "source_account_id", "account_id"]
#: Columns holding account ids, user ids and contact ids, per kind.
ACCOUNT_REFERENCES = ("contacts", "activities", "intent_signals", "opportunities", "status_changes",
                      "target_accounts", "requests")
USER_REFERENCES = {"accounts": ["owner_id"], "activities": ["owner_id"], "users": ["manager_id"],
                   "status_changes": ["changed_by"], "requests": ["requested_by", "owner_id"]}


@dataclass(frozen=True)
class Unified:
    """Unified accounts (``frames.ACCOUNT_COLUMNS`` plus ``sources``, ``owner_source``) and the id mapping."""

    accounts: pd.DataFrame
    mapping: pd.DataFrame


def _stacked(accounts: Mapping[str, pd.DataFrame], priority: Sequence[str]) -> pd.DataFrame:
    """Every source's accounts in one frame, in priority order, with ``source``, ``rank`` and ``company``."""
    parts = []
    for rank, source in enumerate(priority):
        frame = accounts.get(source)
        if frame is None or frame.empty:
            continue
        part = frame.reindex(columns=frames.ACCOUNT_COLUMNS).astype(object).assign(source=source, rank=rank)
        parts.append(part)
    if not parts:
        return frames.empty("accounts").assign(source=pd.Series(dtype=object), rank=0, company="")
    stacked = pd.concat(parts, ignore_index=True)
    for column in ("employees", "annual_revenue"):
        stacked[column] = pd.to_numeric(stacked[column], errors="coerce").astype(float)
    for column in frames.TIMESTAMP_COLUMNS["accounts"]:
        stacked[column] = pd.to_datetime(stacked[column], utc=True).astype("datetime64[ns, UTC]")
    domain = normalize_domain(stacked["domain"])
    by_id = "id:" + stacked["source"] + ":" + stacked["account_id"].astype(str)
    stacked["company"] = ("domain:" + domain).where(domain.notna(), by_id)
    return stacked


def _unique_ids(chosen: pd.DataFrame) -> pd.Series:
    """The chosen record's id per company; an id two companies share stays bare for the first-ranked source
    and gets its source as a prefix elsewhere."""
    ids = chosen["account_id"].astype(str)
    clash = ids[chosen["rank"].sort_values(kind="stable").index].duplicated(keep="first").reindex(ids.index)
    return ids.where(~clash, chosen["source"] + ":" + ids)


def _pick(stacked: pd.DataFrame, column: str, order: list[str]) -> pd.DataFrame:
    """Per company, ``column`` and ``source`` of the first record (in ``order`` of sources) with a value."""
    rank = stacked["source"].map({source: index for index, source in enumerate(order)})
    known = stacked[stacked[column].notna()].assign(_rank=rank)
    first = known.sort_values(["company", "_rank", "account_id"], kind="stable").drop_duplicates("company")
    return first.set_index("company")[[column, "source"]]


def unify_accounts(
    accounts: Mapping[str, pd.DataFrame],
    *,
    priority: Sequence[str] | None = None,
    owner_from: str | None = None,
    tier_from: str | None = None,
) -> Unified:
    """One account per company across ``accounts`` (source name → normalized accounts frame).

    ``priority`` orders the sources for ids and attributes (default: the mapping's
    order); ``owner_from``/``tier_from`` name the system of record for owner and tier
    (default: the first in ``priority``). Within a company the earliest-created record
    of the first source gives the id; ``created_at`` is the earliest, ``updated_at``
    the latest of all its records.
    """
    priority = list(priority or accounts)
    stacked = _stacked(accounts, priority)
    if stacked.empty:
        empty = frames.empty("accounts").assign(sources=pd.Series(dtype=object), owner_source=pd.Series(dtype=object))
        return Unified(empty, pd.DataFrame(columns=MAPPING_COLUMNS))
    ordered = stacked.sort_values(["company", "rank", "created_at", "account_id"], kind="stable", na_position="last")
    chosen = ordered.drop_duplicates("company").set_index("company")
    chosen["account_id"] = _unique_ids(chosen.reset_index()).to_numpy()
    out = chosen[frames.ACCOUNT_COLUMNS].copy()
    for column in ("name", "domain", "industry", "employees", "annual_revenue", "country"):
        out[column] = _pick(stacked, column, priority)[column].reindex(out.index)
    for column, source in (("owner_id", owner_from), ("tier", tier_from)):
        order = [source, *[s for s in priority if s != source]] if source else priority
        picked = _pick(stacked, column, order).reindex(out.index)
        out[column] = picked[column]
        if column == "owner_id":
            out["owner_source"] = picked["source"]
    grouped = stacked.groupby("company")
    out["created_at"] = grouped["created_at"].min().reindex(out.index)
    out["updated_at"] = grouped["updated_at"].max().reindex(out.index)
    out["sources"] = grouped["source"].agg(lambda s: sorted(set(s))).reindex(out.index)
    mapping = pd.DataFrame({
        "source": stacked["source"].to_numpy(),
        "source_account_id": stacked["account_id"].to_numpy(),
        "account_id": stacked["company"].map(out["account_id"]).to_numpy(),
    })
    return Unified(out.reset_index(drop=True), mapping)


def rekey(frame: pd.DataFrame, source: str, mapping: pd.DataFrame, column: str = "account_id") -> pd.DataFrame:
    """``frame`` (rows of ``source``) with ``column`` replaced by the unified id; unknown ids stay."""
    own = mapping[mapping["source"] == source]
    lookup = pd.Series(own["account_id"].to_numpy(), index=own["source_account_id"].to_numpy())
    out = frame.copy()
    out[column] = out[column].map(lookup).fillna(out[column])
    return out


def _user_mapping(users: Mapping[str, pd.DataFrame], priority: Sequence[str]) -> pd.DataFrame:
    """``source, source_user_id → user_id``: users matched on lower-cased email (the first source's id wins)."""
    parts = [
        users[source].assign(source=source, rank=rank)
        for rank, source in enumerate(priority)
        if source in users and not users[source].empty
    ]
    if not parts:
        return pd.DataFrame(columns=["source", "source_user_id", "user_id"])
    stacked = pd.concat(parts, ignore_index=True)
    email = stacked["email"].astype("string").str.strip().str.lower()
    by_id = "id:" + stacked["source"] + ":" + stacked["user_id"].astype(str)
    stacked["person"] = ("email:" + email).where(email.notna() & (email != ""), by_id)
    chosen = stacked.sort_values(["person", "rank"], kind="stable").drop_duplicates("person").set_index("person")
    chosen["unified"] = _unique_ids(chosen.rename(columns={"user_id": "account_id"})).to_numpy()
    return pd.DataFrame(
        {
            "source": stacked["source"],
            "source_user_id": stacked["user_id"],
            "user_id": stacked["person"].map(chosen["unified"]),
        }
    )


def _lookup(mapping: pd.DataFrame, source: str, key: str, value: str) -> pd.Series:
    own = mapping[mapping["source"] == source]
    return pd.Series(own[value].to_numpy(), index=own[key].to_numpy())


def _replace(values: pd.Series, lookup: pd.Series) -> pd.Series:
    """Values found in ``lookup`` replaced; the others (and missing values) kept."""
    return values.map(lookup).where(values.isin(lookup.index), values)


def _row_ids(by_source: Mapping[str, pd.DataFrame], id_column: str, priority: Sequence[str]) -> pd.DataFrame:
    """``source, source_id → id``: row ids unique across sources (a clashing id gets its source as prefix)."""
    seen: set[str] = set()
    parts = []
    for source in priority:
        frame = by_source.get(source)
        if frame is None or frame.empty:
            continue
        ids = frame[id_column].astype(str)
        unique = ids.where(~ids.isin(seen), source + ":" + ids)
        seen |= set(unique)
        parts.append(pd.DataFrame({"source": source, "source_id": ids.to_numpy(), "id": unique.to_numpy()}))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["source", "source_id", "id"])


@dataclass(frozen=True)
class Links:
    """How every source's accounts, users and contacts map to unified ids (see :func:`link_sources`)."""

    accounts: pd.DataFrame  # unified accounts, owner ids translated to unified user ids
    mapping: pd.DataFrame  # source, source_account_id -> account_id
    users: pd.DataFrame  # source, source_user_id -> user_id
    contacts: pd.DataFrame  # source, source_id -> id
    priority: tuple[str, ...]

    def source_ids(self, source: str) -> tuple[pd.Series, pd.Series]:
        """Unified account id → ``source``'s account id, and unified user id → ``source``'s user id."""
        accounts = self.mapping[self.mapping["source"] == source].drop_duplicates("account_id")
        users = self.users[self.users["source"] == source].drop_duplicates("user_id")
        return (
            pd.Series(accounts["source_account_id"].to_numpy(), index=accounts["account_id"].to_numpy()),
            pd.Series(users["source_user_id"].to_numpy(), index=users["user_id"].to_numpy()),
        )


def link_sources(
    by_source: Mapping[str, Mapping[str, pd.DataFrame]],
    *,
    priority: Sequence[str] | None = None,
    owner_from: str | None = None,
    tier_from: str | None = None,
) -> Links:
    """Unified accounts and the id links of several sources (each: ``accounts``, ``users``, ``contacts``).

    Accounts per :func:`unify_accounts` (owner ids translated to unified user ids),
    users matched on email, contact ids unique across sources.
    """
    priority = tuple(priority or by_source)
    kinds = {
        kind: {s: by_source[s].get(kind, frames.empty(kind)) for s in priority if s in by_source}
        for kind in ("accounts", "users", "contacts")
    }
    unified = unify_accounts(kinds["accounts"], priority=priority, owner_from=owner_from, tier_from=tier_from)
    users = _user_mapping(kinds["users"], priority)
    contacts = _row_ids(kinds["contacts"], "contact_id", priority)
    return Links(_translate_owners(unified.accounts, users), unified.mapping, users, contacts, priority)


def unify_kind(kind: str, by_source: Mapping[str, pd.DataFrame], links: Links) -> pd.DataFrame:
    """One kind's rows of several sources as one normalized frame, re-keyed to unified ids.

    Accounts are ``links.accounts``; users are one row per person; every other row
    is kept with unified account, contact and user ids (a row id clashing across
    sources gets its source as prefix).
    """
    if kind == "accounts":
        return links.accounts
    row_ids = links.contacts if kind == "contacts" else _row_ids(by_source, frames.COLUMNS[kind][0], links.priority)
    parts = [
        _rekey_rows(kind, source, by_source[source], links, row_ids)
        for source in links.priority
        if source in by_source and not by_source[source].empty
    ]
    out = pd.concat(parts, ignore_index=True) if parts else frames.empty(kind)
    return out.drop_duplicates("user_id").reset_index(drop=True) if kind == "users" else out


def unify_frames(
    by_source: Mapping[str, Mapping[str, pd.DataFrame]],
    *,
    priority: Sequence[str] | None = None,
    owner_from: str | None = None,
    tier_from: str | None = None,
) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Every kind of several sources as one set of normalized frames (:func:`unify_kind`), and the account mapping."""
    links = link_sources(by_source, priority=priority, owner_from=owner_from, tier_from=tier_from)
    out = {
        kind: unify_kind(kind, {s: by_source[s][kind] for s in links.priority if kind in by_source.get(s, {})}, links)
        for kind in frames.COLUMNS
    }
    return out, links.mapping


def _rekey_rows(kind: str, source: str, frame: pd.DataFrame, links: Links, row_ids: pd.DataFrame) -> pd.DataFrame:
    """One source's rows of one kind with unified account, contact, user and row ids."""
    out = frame.reindex(columns=frames.COLUMNS[kind]).copy()
    if kind in ACCOUNT_REFERENCES:
        out = rekey(out, source, links.mapping)
    if "contact_id" in out and kind != "contacts":
        out["contact_id"] = _replace(out["contact_id"], _lookup(links.contacts, source, "source_id", "id"))
    user_lookup = _lookup(links.users, source, "source_user_id", "user_id")
    for column in USER_REFERENCES.get(kind, []):
        out[column] = _replace(out[column], user_lookup)
    id_column = frames.COLUMNS[kind][0]
    lookup = user_lookup if kind == "users" else _lookup(row_ids, source, "source_id", "id")
    out[id_column] = _replace(out[id_column].astype(str), lookup)
    return out


def _translate_owners(accounts: pd.DataFrame, users: pd.DataFrame) -> pd.DataFrame:
    """Owner ids (each from its ``owner_source``) as unified user ids."""
    out = accounts.copy()
    if users.empty or out.empty:
        return out
    lookup = users.set_index(["source", "source_user_id"])["user_id"]
    keys = pd.MultiIndex.from_arrays([out["owner_source"].fillna(""), out["owner_id"].fillna("")])
    translated = pd.Series(lookup.reindex(keys).to_numpy(), index=out.index)
    out["owner_id"] = translated.where(translated.notna(), out["owner_id"])
    return out
