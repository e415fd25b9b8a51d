"""The distinct (account, contact) pairs of a held activity window, coded once per held frame."""

from __future__ import annotations

import numpy as np
import pandas as pd

from abm_sla.warehouse.held import HeldPairs


def test_pairs_of_a_window_equal_drop_duplicates_of_its_rows() -> None:
    """In the order of their first row in the window, without rows missing an account or a contact, of the
    accounts asked for; the same coded pairs serve every window of one held frame."""
    rng = np.random.default_rng(7)
    for _ in range(200):
        n = int(rng.integers(0, 40))
        frame = pd.DataFrame({
            "account_id": [None if rng.random() < .1 else f"a{rng.integers(0, 5)}" for _ in range(n)],
            "contact_id": [None if rng.random() < .1 else f"c{rng.integers(0, 7)}" for _ in range(n)],
            "occurred_at": pd.date_range("2026-01-01", periods=n, freq="h", tz="UTC"),
        }, columns=["account_id", "contact_id", "occurred_at"]).astype({"account_id": object, "contact_id": object})
        cache: dict = {}
        pairs = HeldPairs.of(cache, frame)
        assert HeldPairs.of(cache, frame) is pairs
        for _ in range(4):
            low, high = sorted(int(x) for x in rng.integers(0, n + 1, 2))
            accounts = None if rng.random() < .5 else [f"a{i}" for i in rng.integers(0, 5, 2)]
            rows = frame.iloc[low:high]
            rows = rows[rows["account_id"].notna() & rows["contact_id"].notna()]
            if accounts is not None:
                rows = rows[rows["account_id"].isin(set(accounts))]
            expected = rows[["account_id", "contact_id"]].drop_duplicates(ignore_index=True)
            pd.testing.assert_frame_equal(pairs.between(slice(low, high), accounts), expected)
    assert HeldPairs.of(cache, frame.copy()) is not pairs  # another held frame: coded again
