"""What a one-pass backfill derives once from the windows it holds in memory (within
:func:`abm_sla.warehouse.reads.crm_reads_cached`): the distinct (account, contact) pairs of a held activity window
and every account's last activity as the steps advance."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class HeldPairs:
    """The ``account_id, contact_id`` pairs of a held activity frame, coded once per frame: per row its pair's code
    (-1: no account or no contact) and its account's code, per pair its first row."""

    frame: pd.DataFrame
    pair: np.ndarray
    account: np.ndarray
    first: np.ndarray
    accounts: pd.Series  # the account of each account code

    @classmethod
    def of(cls, cache: dict, frame: pd.DataFrame) -> HeldPairs:
        """The pairs of ``frame``, coded when it is first asked for (kept while the held frame is the same)."""
        found = cache.get(("held-pairs",))
        if found is not None and found.frame is frame:
            return found
        known = frame["account_id"].notna().to_numpy() & frame["contact_id"].notna().to_numpy()
        account, accounts = pd.factorize(frame["account_id"].to_numpy(dtype=object))
        contact, _ = pd.factorize(frame["contact_id"].to_numpy(dtype=object))
        pair = np.where(known, account.astype(np.int64) * (int(contact.max(initial=0)) + 1) + contact, -1)
        codes, _ = pd.factorize(pair)
        pair = np.where(known, codes, -1)
        first = np.full(int(pair.max(initial=-1)) + 1, len(pair), dtype=np.int64)
        np.minimum.at(first, pair[known], np.flatnonzero(known))
        found = cls(frame, pair, account, first, pd.Series(accounts, dtype=object))
        cache[("held-pairs",)] = found
        return found

    def between(self, window: slice, accounts: Sequence[str] | None) -> pd.DataFrame:
        """The distinct pairs of the rows at ``window`` (of ``accounts`` if given), in the order of their first row
        there (as ``drop_duplicates`` of those rows gives them)."""
        pair, account = self.pair[window], self.account[window]
        keep = pair >= 0
        if accounts is not None:
            keep &= self.accounts.isin(set(accounts)).to_numpy()[np.where(account >= 0, account, 0)] & (account >= 0)
        codes, at = np.unique(pair[keep], return_index=True)
        codes = codes[np.argsort(at, kind="stable")]
        return self.frame[["account_id", "contact_id"]].iloc[self.first[codes]].reset_index(drop=True)


#: The held selection the last activities advance with: every live activity of any type, as the tier-move ledger
#: reads the activities entering its window (the same held read, so no other read).
ENTERING_SELECTION = {"source": None, "types": None, "shard": None, "min_score": None, "url_contains": None,
                      "columns": ("account_id", "type", "url", "occurred_at")}


@dataclass(frozen=True)
class LastSeen:
    """Every account's last live activity at or before ``until`` (``last``: by account id), as of the change
    journal's ``position``: from a read of every account's extent, then advanced by the held activities after it."""

    until: pd.Timestamp
    position: int
    last: pd.Series

    def advanced(self, rows: pd.DataFrame, until: pd.Timestamp, position: int) -> LastSeen:
        """Advanced to ``until`` by ``rows``: the live activities in ``(self.until, until]``, in time order."""
        rows = rows[rows["account_id"].notna().to_numpy()]
        newest = rows.drop_duplicates("account_id", keep="last")
        newer = pd.Series(newest["occurred_at"].to_numpy(), index=newest["account_id"].to_numpy(dtype=object))
        last = pd.concat([self.last[~self.last.index.isin(newer.index)], newer]) if len(newer) else self.last
        return LastSeen(until, position, last)

    def of(self, accounts: Sequence[str]) -> pd.DataFrame:
        """``account_id, last_at`` of those of ``accounts`` with an activity by then, by account id."""
        found = self.last.reindex(pd.Index(sorted(set(accounts)), dtype=object)).dropna()
        return pd.DataFrame({"account_id": found.index.to_numpy(dtype=object),
                             "last_at": found.to_numpy()}).astype({"last_at": "datetime64[ns, UTC]"})
