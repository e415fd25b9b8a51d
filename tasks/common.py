"""What every task shares: the warehouse by URL and the run logger."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

from abm_sla.warehouse import Warehouse


@lru_cache(maxsize=8)
def warehouse(db_url: str) -> Warehouse:
    """One migrated warehouse per URL and process (tasks get the URL, never an engine)."""
    return Warehouse(db_url)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
