"""What every task shares: the warehouse by URL and the run logger."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

from abm_sla.crm.config import AppConfig, load_app_config, set_secret_loader
from abm_sla.warehouse import Warehouse


@lru_cache(maxsize=8)
def warehouse(db_url: str) -> Warehouse:
    """One migrated warehouse per URL and process (tasks get the URL, never an engine)."""
    return Warehouse(db_url)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def load_app_config_with_secrets(config_path: str | None) -> AppConfig:
    """``abm-sla.yaml`` (or the defaults) with Prefect Secret blocks as a credential source."""
    set_secret_loader(_load_secret)
    return load_app_config(config_path)


def _load_secret(name: str) -> str:
    from prefect.blocks.system import Secret

    return str(Secret.load(name).get())
