"""Timing and memory helpers shared by the benchmarks."""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
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


def child(script: str, step: str, args: list[str]) -> dict:
    """Run ``script --step STEP ARGS`` in a fresh interpreter (its peak RSS is its own); its last JSON line
    plus the wall time seen from here."""
    start = time.perf_counter()
    out = subprocess.run([sys.executable, script, "--step", step, *args], check=True, capture_output=True, text=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["wall_s"] = round(time.perf_counter() - start, 2)
    return result
