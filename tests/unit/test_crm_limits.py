"""Rate limiter, retry with backoff and Retry-After, redaction, and the source config models."""

from __future__ import annotations

import threading
import time

import pandas as pd
import pytest

from abm_sla.crm.limits import (
    RateLimiter,
    Retry,
    RetryPolicy,
    call_with_retry,
    parse_retry_after,
    redact,
    shared_limiter,
)
from abm_sla.crm.mapping import HubSpotConfig, SalesforceConfig, TierMapper, load_config, to_bool
from abm_sla.errors import ConfigError


class FakeClock:
    """A clock whose sleep advances it (thread-safe enough for the limiter, which sleeps outside its lock)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds


def test_limiter_allows_max_calls_per_rolling_window():
    clock = FakeClock()
    limiter = RateLimiter(3, 10.0, clock=clock, sleep=clock.sleep)
    times = []
    for _ in range(7):
        limiter.acquire()
        times.append(clock.now)
    assert times == [0, 0, 0, 10, 10, 10, 20]
    for start in range(len(times)):  # never more than 3 calls inside any 10-second window
        assert sum(1 for t in times if times[start] <= t < times[start] + 10) <= 3


def test_limiter_frees_slots_as_old_calls_leave_the_window():
    clock = FakeClock()
    limiter = RateLimiter(2, 1.0, clock=clock, sleep=clock.sleep)
    limiter.acquire()
    clock.now = 0.6
    limiter.acquire()
    assert limiter.acquire() == pytest.approx(0.4)  # waits until the first call is 1 s old
    assert clock.now == pytest.approx(1.0)


def test_shared_limiter_keeps_parallel_threads_under_the_limit():
    granted = threading.local()  # each thread's last clock reading: the moment the limiter granted its call

    def clock() -> float:
        granted.at = time.monotonic()
        return granted.at

    limiter = RateLimiter(5, 0.05, clock=clock)
    stamps: list[float] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(5):
            limiter.acquire()
            with lock:  # the grant's own moment: a thread paused after acquire() does not shift it
                stamps.append(granted.at)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stamps.sort()
    assert len(stamps) == 20
    for i in range(len(stamps) - 5):
        assert stamps[i + 5] - stamps[i] >= 0.05  # any 6 calls span more than one window
    assert shared_limiter("acct", 5, 1.0) is shared_limiter("acct", 5, 1.0)
    assert shared_limiter("acct", 5, 1.0) is not shared_limiter("other", 5, 1.0)


def test_retry_backs_off_exponentially_with_jitter_and_honours_retry_after():
    sleeps: list[float] = []
    policy = RetryPolicy(max_attempts=5, base_delay=1.0, max_delay=3.0, sleep=sleeps.append, rng=lambda: 1.0)
    outcomes = [Retry("503"), Retry("503"), Retry("503"), Retry("429", after=7.0)]
    calls = iter([*[ValueError(str(i)) for i in range(4)], "ok"])

    def call():
        result = next(calls)
        if isinstance(result, Exception):
            raise result
        return result

    verdicts = iter(outcomes)
    assert call_with_retry(call, lambda error: next(verdicts), policy) == "ok"
    assert sleeps == [1.0, 2.0, 3.0, 7.0]  # base·2^n capped at 3; then the server's Retry-After
    low = RetryPolicy(base_delay=1.0, max_delay=8.0, rng=lambda: 0.0)
    assert [low.delay(n, None) for n in range(4)] == [0.5, 1.0, 2.0, 4.0]  # equal jitter: at least half


def test_retry_stops_on_permanent_errors_and_after_max_attempts():
    sleeps: list[float] = []
    policy = RetryPolicy(max_attempts=3, base_delay=0.0, sleep=sleeps.append)
    attempts = []

    def failing():
        attempts.append(1)
        raise KeyError("always")

    with pytest.raises(KeyError):
        call_with_retry(failing, lambda error: Retry("transient"), policy)
    assert len(attempts) == 3 and len(sleeps) == 2
    attempts.clear()
    with pytest.raises(KeyError):
        call_with_retry(failing, lambda error: None, policy)
    assert len(attempts) == 1


def test_parse_retry_after():
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("0.25") == 0.25
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=lambda: 1445412480.0) == pytest.approx(10.0)
    assert parse_retry_after("-5") == 0.0


def test_redact_replaces_every_secret():
    assert redact("token abc123 and pw hunter22", ["abc123", "hunter22", ""]) == "token *** and pw ***"


def test_configs_validate_touch_types_and_name_the_field():
    assert SalesforceConfig().task_types["Call"] == "call"
    assert HubSpotConfig(webinar_event_type="pe123_webinar").event_touches()["pe123_webinar"] == "webinar"
    with pytest.raises(ConfigError, match="task_types"):
        load_config("salesforce", {"task_types": {"Call": "web_visit"}})
    with pytest.raises(ConfigError, match="quota_share"):
        load_config("salesforce", {"quota_share": 1.5})
    with pytest.raises(ConfigError, match="marketing_events"):
        load_config("hubspot", {"marketing_events": {"e_visited_page": "call"}})


def test_credentials_hold_env_names_and_resolve_values(monkeypatch):
    config = HubSpotConfig()
    assert "HUBSPOT_ACCESS_TOKEN" in config.model_dump_json()
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", "pat-secret-value")
    assert config.credentials.resolve() == {"access_token": "pat-secret-value"}
    assert "pat-secret-value" not in config.model_dump_json()


def test_value_helpers():
    tiers = TierMapper(HubSpotConfig().tier_map)
    values = pd.Series(["1", "Tier 2", "tier_3", "TIER-1", 2.0, "Gold", None, "", "Gold", "A"], dtype="object")
    assert tiers.map(values).tolist() == ["Tier 1", "Tier 2", "Tier 3", "Tier 1", "Tier 2", None, None, None,
                                          None, None]
    assert tiers.unmapped == {"Gold": 2, "A": 1}
    assert tiers.warning("HubSpot companies", "sources.hubspot.tier_map") == (
        "HubSpot companies: tier values not in the tier map were left empty (such accounts route as Tier 3): "
        "'Gold' (2), 'A' (1); map them in sources.hubspot.tier_map in abm-sla.yaml")
    assert [to_bool(v) for v in ("TRUE", "false", True, None, "x")] == [True, False, True, None, None]


def test_a_tier_map_adds_to_specs_values_and_refuses_a_target_that_is_no_tier():
    """Issue 25: tier values such as "Strategic" or "A" map to a tier only when the config says so."""
    config = load_config("salesforce", {"tier_map": {"Strategic": 1, "A": "Tier 2"}})
    tiers = TierMapper(config.tier_map)
    assert tiers.map(pd.Series(["strategic", "a", "3", "Tier 1", "B"])).tolist() == [
        "Tier 1", "Tier 2", "Tier 3", "Tier 1", None]
    assert tiers.unmapped == {"B": 1}
    with pytest.raises(ConfigError, match="tier_map: 'Gold' maps to 'Platinum', not a tier"):
        load_config("hubspot", {"tier_map": {"Gold": "Platinum"}})
