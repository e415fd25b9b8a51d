"""The warehouse read as one CRM, whatever number of sources fed it.

With one source (the usual case) rows pass through as stored. With several (say
Salesforce and HubSpot), accounts are unified by normalized domain and every other
row is re-keyed to the unified ids (:mod:`abm_sla.crm.unify`); the system of
record for owner and tier is the one the last ``sync`` recorded from
``abm-sla.yaml`` (default Salesforce).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from functools import cached_property

import pandas as pd

from abm_sla.crm.unify import Links, link_sources, unify_kind
from abm_sla.domain import frames, scorecard
from abm_sla.infra.shards import Shard
from abm_sla.warehouse.store import Warehouse

SYSTEM_OF_RECORD_KEY = "unify:system_of_record"
#: The order sources are preferred in for ids and attributes, after the owner's system of record.
SOURCE_ORDER = ("salesforce", "hubspot", "files")
LINKED_KINDS = ("accounts", "users", "contacts")


def record_system_of_record(warehouse: Warehouse, owner: str, tier: str) -> None:
    """Remember whose owner and tier win when several CRMs hold a company (read by :class:`CrmView`)."""
    with warehouse.engine.begin() as connection:
        warehouse.set_state(connection, SYSTEM_OF_RECORD_KEY, json.dumps({"owner": owner, "tier": tier}))


def system_of_record(warehouse: Warehouse) -> dict[str, str]:
    """``{"owner": source, "tier": source}`` as last recorded (default Salesforce for both)."""
    stored = warehouse.get_state(SYSTEM_OF_RECORD_KEY)
    return {"owner": "salesforce", "tier": "salesforce", **(json.loads(stored) if stored else {})}


def source_priority(sources: list[str], owner: str) -> tuple[str, ...]:
    """``sources`` ordered: the owner's system of record, then :data:`SOURCE_ORDER`, then by name."""
    order = list(dict.fromkeys((owner, *SOURCE_ORDER)))
    rank = {name: index for index, name in enumerate(order)}
    return tuple(sorted(sources, key=lambda name: (rank.get(name, len(rank)), name)))


class CrmView:
    """Reads normalized frames as one CRM; build one per stage (the links are computed once)."""

    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse
        self.sources = warehouse.sources()

    @property
    def unified(self) -> bool:
        """Whether several sources are unified (otherwise rows pass through)."""
        return len(self.sources) > 1

    @cached_property
    def links(self) -> Links:
        """How each source's accounts, users and contacts map to unified ids."""
        chosen = system_of_record(self.warehouse)
        priority = source_priority(self.sources, chosen["owner"])
        by_source = {
            source: {kind: self.warehouse.read_kind(kind, source=source) for kind in LINKED_KINDS}
            for source in priority
        }
        return link_sources(by_source, priority=priority, owner_from=chosen["owner"], tier_from=chosen["tier"])

    def read_kind(
        self,
        kind: str,
        *,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        types: Sequence[str] | None = None,
        shard: Shard | None = None,
        accounts: Sequence[str] | None = None,
        columns: Sequence[str] | None = None,
        min_score: float | None = None,
    ) -> pd.DataFrame:
        """One kind's live rows, as :meth:`Warehouse.read_kind`, unified across sources.

        ``shard`` and ``accounts`` narrow the read to those accounts; unified sources re-key
        accounts, so there they filter the unified rows (and a run uses a single shard).
        ``columns`` and ``min_score``: see :meth:`Warehouse.read_kind` (unified sources read every column).
        """
        if not self.unified:
            return self.warehouse.read_kind(kind, since=since, until=until, types=types, shard=shard,
                                            accounts=accounts, columns=columns, min_score=min_score)
        if kind == "accounts":
            rows = self.links.accounts.reindex(columns=frames.COLUMNS["accounts"])
        else:
            by_source = {
                source: self.warehouse.read_kind(kind, since=since, until=until, source=source, types=types)
                for source in self.links.priority
            }
            rows = unify_kind(kind, by_source, self.links)
            if min_score is not None:
                rows = rows[pd.to_numeric(rows["score"], errors="coerce") >= min_score].reset_index(drop=True)
        if accounts is not None and "account_id" in rows:
            rows = rows[rows["account_id"].isin(set(accounts))].reset_index(drop=True)
        if shard is not None and not shard.whole and "account_id" in rows:
            rows = rows[shard.contains(rows["account_id"])].reset_index(drop=True)
        return rows

    def activity_facts(self, as_of: pd.Timestamp, window: pd.Timedelta,
                       extent: bool = True) -> scorecard.ActivityFacts:
        """What the tier-move rules read of the activities (:class:`abm_sla.domain.scorecard.ActivityFacts`), in SQL:
        an aggregate per account, the window's possible buying signals, its distinct marketing-touch contacts.
        Unified sources compute them from the window's re-keyed activities (and an extent of them all).
        Without ``extent`` (one source), the aggregate is left empty (the caller reads it for some accounts)."""
        since, until = (as_of - window).to_pydatetime(), as_of.to_pydatetime()
        if self.unified:
            return scorecard.activity_facts(self.read_kind("activities", until=until), as_of, window)
        extent = (self.warehouse.activity_extent(until) if extent else
                  pd.DataFrame({"account_id": pd.Series(dtype=object),
                                "first_at": pd.Series(dtype="datetime64[ns, UTC]"),
                                "last_at": pd.Series(dtype="datetime64[ns, UTC]")}))
        buying = self.warehouse.read_kind(
            "activities", since=since, until=until, types=(*scorecard.HIGH_INTENT_TOUCHES, "web_visit"),
            columns=("account_id", "type", "url", "occurred_at"),
            url_contains={"web_visit": scorecard.HIGH_INTENT_PAGES})
        pairs = self.warehouse.activity_contacts(since, until, frames.MARKETING_TOUCHES)
        return scorecard.ActivityFacts(extent.set_index("account_id")[["first_at", "last_at"]],
                                       buying[["account_id", "type", "url", "occurred_at"]], pairs)

    def source_ids(self, source: str) -> tuple[pd.Series, pd.Series]:
        """Unified account id → ``source``'s id and unified user id → ``source``'s id (identity for one source)."""
        if self.unified:
            return self.links.source_ids(source)
        accounts = self.warehouse.read_kind("accounts", source=source)["account_id"]
        users = self.warehouse.read_kind("users", source=source)["user_id"]
        return _identity(accounts), _identity(users)


def _identity(ids: pd.Series) -> pd.Series:
    return pd.Series(ids.to_numpy(), index=ids.to_numpy())

