"""Rate limits and retries shared by the CRM sources.

* :class:`RateLimiter` — at most N calls in any rolling window (thread-safe, so
  parallel tasks that share one keep the account under HubSpot's 10-second and
  search limits together); clock and sleep are injectable for tests.
* :func:`call_with_retry` — exponential backoff with jitter for transient
  faults (429, 5xx, timeouts), honouring ``Retry-After`` in seconds.
* :func:`redact` — strips credential values out of any text shown to a user.
"""

from __future__ import annotations

import email.utils
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


class RateLimiter:
    """At most ``max_calls`` acquisitions in any rolling ``period`` seconds (a sliding-window log).

    A token bucket refilling ``max_calls / period`` would allow a full bucket plus a
    refill inside one window; the log never does, which is what a rolling limit needs.
    """

    def __init__(
        self,
        max_calls: int,
        period: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if max_calls < 1 or period <= 0:
            raise ValueError("a rate limit needs max_calls >= 1 and period > 0")
        self.max_calls, self.period = max_calls, period
        self.clock, self.sleep = clock, sleep
        self._calls: deque[float] = deque()
        self._lock = threading.Lock()
        self.waited = 0.0

    def acquire(self) -> float:
        """Block until a call is allowed, record it and return the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = self.clock()
                while self._calls and self._calls[0] <= now - self.period:
                    self._calls.popleft()
                if len(self._calls) < self.max_calls:
                    self._calls.append(now)
                    self.waited += waited
                    return waited
                delay = self._calls[0] + self.period - now
            self.sleep(delay)
            waited += delay


_SHARED: dict[tuple, RateLimiter] = {}
_SHARED_LOCK = threading.Lock()


def shared_limiter(key: str, max_calls: int, period: float) -> RateLimiter:
    """One limiter per (key, limit) in this process, so every task of one account shares it."""
    with _SHARED_LOCK:
        return _SHARED.setdefault((key, max_calls, period), RateLimiter(max_calls, period))


@dataclass(frozen=True)
class Retry:
    """A classifier's verdict: the call may be retried, after ``after`` seconds if the server said so."""

    reason: str
    after: float | None = None


@dataclass
class RetryPolicy:
    """How often and how long to back off; ``sleep`` and ``rng`` are injectable."""

    max_attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 60.0
    sleep: Callable[[float], None] = time.sleep
    rng: Callable[[], float] = field(default=random.random)

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Retry-After when given, otherwise base * 2^attempt capped, with "equal jitter" (half random)."""
        if retry_after is not None:
            return max(0.0, retry_after)
        ceiling = min(self.max_delay, self.base_delay * 2**attempt)
        return ceiling / 2 + self.rng() * ceiling / 2


def call_with_retry(
    call: Callable[[], T],
    classify: Callable[[BaseException], Retry | None],
    policy: RetryPolicy,
    what: str = "call",
) -> T:
    """``call()``, retried while ``classify`` says the error is transient; the last error is raised."""
    attempt = 0
    while True:
        try:
            return call()
        except Exception as error:
            verdict = classify(error)
            if verdict is None or attempt + 1 >= policy.max_attempts:
                raise
            delay = policy.delay(attempt, verdict.after)
            attempt += 1
            log.warning(
                "%s: %s; retry %d of %d in %.2fs",
                what,
                verdict.reason,
                attempt,
                policy.max_attempts - 1,
                delay,
            )
            policy.sleep(delay)


def parse_retry_after(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP-date); None when absent or unreadable."""
    if value is None or not str(value).strip():
        return None
    text = str(value).strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now())


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret value replaced by ``***``."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text
