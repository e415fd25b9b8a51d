"""Timing and memory helpers shared by the benchmarks."""

from __future__ import annotations

import resource
import statistics
import time
from collections.abc import Callable
from typing import Any


def peak_rss_mib() -> float:
    """The process's peak resident memory so far (MiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def own_peak_rss_mib() -> float:
    """This process's own peak RSS (MiB), from ``VmHWM``: unlike ``ru_maxrss``, which Linux carries over
    ``fork`` + ``exec`` from the parent, it starts afresh in a child process."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return peak_rss_mib()


def timed(function: Callable[[], Any], repeat: int = 3) -> tuple[Any, float, list[float]]:
    """Run ``function`` ``repeat`` times; returns the last result, the median seconds and every timing."""
    timings, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        timings.append(time.perf_counter() - start)
    return result, statistics.median(timings), timings
