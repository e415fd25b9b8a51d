"""One HubSpot request budget for every process: Prefect global concurrency limits used as rate limits.

The sources' own limiters (:func:`abm_sla.crm.limits.shared_limiter`) hold per process, so the
``crm-sync`` deployment and ``sla-monitor``'s write-back, running at once, could each spend the
portal's whole budget. With ``sources.hubspot.rate_budget: prefect`` every HubSpot call first takes a
slot of a limit on the Prefect server (``abm-sla-<source>-burst`` and ``-search``), which every process
of every worker shares.

A Prefect rate limit is a leaky bucket: at most ``limit`` slots held, each released at
``slot_decay_per_second``. A full bucket plus what drains in one window must stay within the portal's
rolling window (``max_calls`` per ``period``), so the bucket holds half the budget and drains the other
half over the window.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from prefect.client.orchestration import get_client
from prefect.concurrency.sync import rate_limit

from abm_sla.crm.config import AppConfig
from abm_sla.crm.limits import RateLimiter, shared_limiter
from abm_sla.crm.mapping import HubSpotConfig


def bucket(max_calls: int, period: float) -> tuple[int, float]:
    """(slots, decay per second) whose worst case in any ``period`` is ``max_calls`` (two calls for one)."""
    slots = max(1, max_calls // 2)
    return slots, max(max_calls - slots, 1) / period


@dataclass
class PortalBudget:
    """A limiter like :class:`RateLimiter` (``acquire()``) whose budget lives on the Prefect server.

    ``local`` keeps this process's threads under the rolling window as before; the server's slot makes
    the other processes count too.
    """

    name: str
    local: RateLimiter

    def acquire(self) -> float:
        started = time.monotonic()
        self.local.acquire()
        rate_limit(self.name, occupy=1, strict=True)
        return time.monotonic() - started


def budget_limits(config: HubSpotConfig) -> dict[str, tuple[int, float]]:
    """Limit name → (max calls, period) of the portal's 10-second burst and search limits."""
    return {
        f"abm-sla-{config.name}-burst": (config.requests_per_10s, 10.0),
        f"abm-sla-{config.name}-search": (config.search_per_second, 1.0),
    }


def ensure_limits(limits: dict[str, tuple[int, float]]) -> None:
    """Create (or resize) the global concurrency limits on the Prefect server."""
    with get_client(sync_client=True) as client:
        for name, (max_calls, period) in limits.items():
            slots, decay = bucket(max_calls, period)
            client.upsert_global_concurrency_limit_by_name(name, slots, slot_decay_per_second=decay)


def hubspot_limiters(config: HubSpotConfig) -> dict[str, PortalBudget]:
    """``burst_limiter`` and ``search_limiter`` for a HubSpot source sharing the budget through Prefect."""
    limits = budget_limits(config)
    ensure_limits(limits)
    (burst, (burst_calls, burst_period)), (search, (search_calls, search_period)) = limits.items()
    return {
        "burst_limiter": PortalBudget(burst, shared_limiter(f"{config.name}:burst", burst_calls, burst_period)),
        "search_limiter": PortalBudget(search, shared_limiter(f"{config.name}:search", search_calls, search_period)),
    }


def budget_options(app_config: AppConfig, source: str) -> dict[str, PortalBudget]:
    """``build_source`` options for ``source``: the shared HubSpot budget when ``rate_budget: prefect``."""
    config = app_config.sources.hubspot
    if source != "hubspot" or config.rate_budget != "prefect":
        return {}
    return hubspot_limiters(config)
