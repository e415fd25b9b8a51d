"""Account shards: stable numbers, and shards that cover every account exactly once."""

from __future__ import annotations

import pandas as pd
import pytest

from abm_sla.infra.shards import SHARD_SPACE, Shard, all_shards, shard_key, shard_keys


def test_shard_numbers_are_stable_crc32_values():
    assert shard_key("A00000001") == shard_key("A00000001") == 4258095382 % SHARD_SPACE  # zlib.crc32(b"A00000001")
    keys = shard_keys(pd.Series(["A00000001", None, "A00000001", "B"]))
    assert keys.tolist() == [shard_key("A00000001"), -1, shard_key("A00000001"), shard_key("B")]


@pytest.mark.parametrize("count", [1, 3, 8, SHARD_SPACE])
def test_shards_cover_every_account_exactly_once(count):
    accounts = pd.Series([f"A{n:08d}" for n in range(5_000)])
    membership = sum(shard.contains(accounts).astype(int) for shard in all_shards(count))
    assert (membership == 1).all()
    assert all_shards(count)[0].low == 0 and all_shards(count)[-1].high == SHARD_SPACE


def test_a_shard_outside_its_count_is_refused():
    with pytest.raises(ValueError, match="shard 3 of 3"):
        Shard(3, 3)
