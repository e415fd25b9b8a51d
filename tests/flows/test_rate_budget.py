"""Issue 25: one HubSpot request budget for every process, through Prefect global concurrency limits."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from abm_sla.crm.hubspot.source import HubSpotSource
from abm_sla.crm.limits import RateLimiter
from abm_sla.crm.mapping import HubSpotConfig
from abm_sla.services import synthetic
from tasks.rate_budget import PortalBudget, bucket, ensure_limits
from tests.fakes import MemoryStore
from tests.fakes.hubspot import FakeHubSpot

NOW = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)
PORTAL_LIMIT = (6, 1.0)  # the fake portal's burst: 6 calls in any second (scaled down from 10 s)
BUDGET = (4, 1.0)  # what abm-sla spends of it, with a margin for transit jitter


def test_a_full_bucket_and_one_window_of_drain_never_exceed_the_budget():
    assert bucket(100, 10.0) == (50, 5.0)  # 50 held + 5/s x 10 s = 100 in any 10 s
    assert bucket(4, 1.0) == (2, 2.0)
    assert bucket(1, 1.0) == (1, 1.0)  # one call a period cannot be a leaky bucket: two in the worst window


def sync_in_two_processes(fake: FakeHubSpot, limiter) -> tuple[list[BaseException], list[set[str]]]:
    """Two sources, each with its own (process-local) limiter from ``limiter()``, syncing at once."""
    config = HubSpotConfig.model_validate({
        "objects": ["companies", "contacts"], "page_size": 5,
        "retry": {"max_attempts": 2, "base_delay": 0.01, "max_delay": 0.02, "timeout": 5},
    })
    errors: list[BaseException] = []
    synced: list[set[str]] = []

    def run() -> None:
        try:
            source = HubSpotSource(config, fake.factory(), now=lambda: NOW, sleep=lambda _: None,
                                   burst_limiter=limiter(), search_limiter=RateLimiter(10_000, 1.0))
            store = MemoryStore()
            store.sync(source.pages(store))
            synced.append(store.ids("accounts"))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors, synced


@pytest.mark.timeout(120)
def test_two_processes_stay_under_the_portal_limit_together(prefect_harness):
    crm = synthetic.generate_crm(n_accounts=10, start="2026-01-01", days=10, seed=3)
    data = {kind: crm[kind] for kind in ("users", "accounts", "contacts")}

    with FakeHubSpot(data, now=NOW, burst=PORTAL_LIMIT) as fake:  # per-process limiters: each spends it all
        sync_in_two_processes(fake, lambda: RateLimiter(*BUDGET))
        assert fake.rate_limited > 0

    ensure_limits({"abm-sla-test-burst": BUDGET})
    with FakeHubSpot(data, now=NOW, burst=PORTAL_LIMIT) as fake:  # one budget on the Prefect server
        errors, synced = sync_in_two_processes(fake, lambda: PortalBudget("abm-sla-test-burst", RateLimiter(*BUDGET)))
        assert not errors and fake.rate_limited == 0
        assert synced == [set(crm["accounts"]["account_id"])] * 2


def test_the_flows_share_the_budget_only_when_abm_sla_yaml_asks(prefect_harness):
    from prefect.client.orchestration import get_client

    from abm_sla.crm.config import parse_app_config
    from tasks.rate_budget import budget_options

    assert budget_options(parse_app_config({}), "hubspot") == {}  # default: per process, as documented
    shared = parse_app_config({"sources": {"hubspot": {"rate_budget": "prefect", "requests_per_10s": 90}}})
    assert budget_options(shared, "salesforce") == {}
    options = budget_options(shared, "hubspot")
    assert {type(limiter) for limiter in options.values()} == {PortalBudget}
    with get_client(sync_client=True) as client:
        burst = client.read_global_concurrency_limit_by_name("abm-sla-hubspot-burst")
    assert (burst.limit, burst.slot_decay_per_second) == (45, 4.5)
