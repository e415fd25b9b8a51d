"""Fault injection for the crash-safety tests: named checkpoints between and inside a run's writes.

``ABM_SLA_FAULT=N`` (or ``N:SIGINT``, ``N:SIGTERM``) sends the signal (default SIGKILL) to this
process at the Nth checkpoint it passes; ``ABM_SLA_FAULT_TRACE=FILE`` appends each checkpoint's
name to FILE, so a test can count them and know which stage each one is in. Unset (always, outside
tests), a checkpoint is one environment lookup.
"""

from __future__ import annotations

import os
import signal

FAULT_ENV = "ABM_SLA_FAULT"
TRACE_ENV = "ABM_SLA_FAULT_TRACE"
_passed = 0


def checkpoint(name: str) -> None:
    """Count this checkpoint; at the chosen one, signal this process (see the module docstring)."""
    spec, trace = os.environ.get(FAULT_ENV), os.environ.get(TRACE_ENV)
    if not spec and not trace:
        return
    global _passed
    _passed += 1
    if trace:
        with open(trace, "a", encoding="utf-8") as handle:
            handle.write(f"{name}\n")
    number, _, name_of_signal = (spec or "").partition(":")
    if number.isdigit() and _passed == int(number):
        os.kill(os.getpid(), getattr(signal, name_of_signal or "SIGKILL"))


def reset() -> None:
    """Start counting checkpoints from zero (a forked test child)."""
    global _passed
    _passed = 0
