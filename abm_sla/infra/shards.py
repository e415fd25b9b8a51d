"""Account shards: a stable hash of the account id splits the accounts into independent parts.

Every CRM row that belongs to an account carries ``shard``, a number in ``[0, SHARD_SPACE)``
computed once when the row is stored (CRC-32 of the account id, so it is the same in every
process, on every machine and in every Python version). A run split into ``count`` shards gives
shard ``index`` the contiguous range of shard numbers below, so a shard reads its rows with
one indexable range condition and the shards together cover every account exactly once.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

#: Shard numbers stored with the rows; a run may use any shard count up to this.
SHARD_SPACE = 1024


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count``: the stored shard numbers in ``[low, high)``."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not 1 <= self.count <= SHARD_SPACE or not 0 <= self.index < self.count:
            raise ValueError(f"shard {self.index} of {self.count}: need 0 <= index < count <= {SHARD_SPACE}")

    @property
    def low(self) -> int:
        return self.index * SHARD_SPACE // self.count

    @property
    def high(self) -> int:
        return (self.index + 1) * SHARD_SPACE // self.count

    @property
    def whole(self) -> bool:
        """Whether this shard is every account (a run with one shard)."""
        return self.count == 1

    def contains(self, account_ids: pd.Series) -> np.ndarray:
        """Which of ``account_ids`` belong to this shard."""
        keys = shard_keys(account_ids)
        return (keys >= self.low) & (keys < self.high)


def all_shards(count: int) -> list[Shard]:
    """The ``count`` shards that together cover every account."""
    return [Shard(index, count) for index in range(count)]


def shard_key(account_id: str) -> int:
    """The stored shard number of one account id."""
    return zlib.crc32(account_id.encode("utf-8")) % SHARD_SPACE


def shard_keys(account_ids: pd.Series) -> np.ndarray:
    """The stored shard numbers of many account ids (-1 for a missing id), hashed once per distinct id."""
    codes, uniques = pd.factorize(pd.Series(account_ids, dtype=object), use_na_sentinel=True)
    keys = np.fromiter((shard_key(str(value)) for value in uniques), dtype=np.int64, count=len(uniques))
    return np.where(codes < 0, -1, keys[np.maximum(codes, 0)] if len(keys) else -1)
