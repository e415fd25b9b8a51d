"""Overlap safety: a scheduled run and a manual backfill at the same moment fire every MQA exactly once."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import pytest

from flows.backfill import backfill
from flows.parameters import BackfillParameters
from flows.pipeline import run_pipeline
from tasks.observe import ensure_stage_limits, stage_slot
from tests.flows.conftest import outcome, run_live

pytestmark = [pytest.mark.flows, pytest.mark.usefixtures("prefect_harness")]

AS_OF = "2026-01-14T12:00:00Z"


@pytest.mark.postgres
@pytest.mark.timeout(300)  # a hang (lock wait) fails with the threads' stacks instead of stalling the suite
def test_scheduled_run_and_backfill_at_once_fire_exactly_once(crm_export, postgres_url, sqlite_url, monkeypatch):
    run_live(sqlite_url, as_of=AS_OF, source="files", path=str(crm_export))  # the sequential reference
    monkeypatch.setenv("ABM_SLA_DATABASE_URL", postgres_url)
    start = threading.Barrier(2, timeout=120)

    def scheduled() -> int:
        start.wait()
        return run_pipeline(as_of=AS_OF, source="files", path=str(crm_export))["handoff"]["mqas_fired"]

    def manual() -> int:
        start.wait()
        [summary] = backfill(BackfillParameters(start=AS_OF, end=AS_OF, path=str(crm_export)))
        return summary["handoff"]["mqas_fired"]

    with ThreadPoolExecutor(2) as pool:
        fired = [future.result(timeout=600) for future in (pool.submit(scheduled), pool.submit(manual))]

    expected, concurrent = outcome(sqlite_url), outcome(postgres_url)
    assert len(expected["mqas"]) > 0
    assert sum(fired) == len(concurrent["mqas"]) == len(expected["mqas"])  # each MQA fired by exactly one run
    for kind in expected:
        pd.testing.assert_frame_equal(concurrent[kind], expected[kind], check_dtype=False, obj=kind)


def test_stage_slot_is_a_no_op_without_a_limit():
    with stage_slot("no-such-stage-limit", timeout_seconds=5), stage_slot("no-such-stage-limit", timeout_seconds=5):
        pass  # nested: a real limit of 1 would block here


def test_stage_slot_admits_one_holder_at_a_time():
    [name] = ensure_stage_limits(limit=1, stages=("test-overlap",))
    assert name == "abm-sla:test-overlap"
    holding, release = threading.Event(), threading.Event()

    def holder() -> None:
        with stage_slot("test-overlap"):
            holding.set()
            release.wait(60)

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert holding.wait(60)
        with pytest.raises(TimeoutError), stage_slot("test-overlap", timeout_seconds=1):
            pass
    finally:
        release.set()
        thread.join(60)
    with stage_slot("test-overlap", timeout_seconds=30):
        pass
