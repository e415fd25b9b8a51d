"""Scale-out: shard tasks on a 2-worker Dask LocalCluster give exactly a single-process run's results."""

from __future__ import annotations

import pytest

from tests.flows.conftest import outcome, run_live

pytestmark = [pytest.mark.flows, pytest.mark.usefixtures("prefect_harness")]

STEPS = ["2026-01-12T12:00:00Z", "2026-01-19T12:00:00Z"]


@pytest.fixture(scope="module")
def dask_cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, memory_limit="2GiB",
                                  dashboard_address=None) as cluster:
        yield cluster


def scores(db_url: str):
    from abm_sla.services import exports
    from abm_sla.warehouse import Warehouse

    return exports.scores(Warehouse(db_url)).reset_index(drop=True)


def test_shards_on_a_dask_cluster_equal_one_process(crm_export, tmp_path, dask_cluster):
    alone, spread = f"sqlite:///{tmp_path / 'alone.db'}", f"sqlite:///{tmp_path / 'dask.db'}"
    for as_of in STEPS:
        run_live(alone, as_of=as_of, source="files", path=str(crm_export))
        summary = run_live(spread, as_of=as_of, source="files", path=str(crm_export), shards=4,
                           dask_address=dask_cluster.scheduler_address)
        assert summary["scoring"]["shards"] == 4
    assert summary["scoring"]["mode"] == "incremental"
    expected, actual = outcome(alone), outcome(spread)
    assert len(expected["mqas"]) > 0 and len(expected["sla"]) > 0
    for kind in expected:
        pd_equal(actual[kind], expected[kind], kind)
    pd_equal(scores(spread), scores(alone), "scores")
    ran_on_dask = set(dask_cluster.scheduler.task_prefixes)  # what the workers ran
    assert {"score_shard", "fire_shard", "sla_shard"} <= ran_on_dask, ran_on_dask
    assert task_runs_named("score-shard") >= 4 * len(STEPS), "every shard is its own task run"


def pd_equal(left, right, what: str) -> None:
    import pandas as pd

    pd.testing.assert_frame_equal(left, right, check_dtype=False, obj=what)


def task_runs_named(name: str) -> int:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterName

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(task_run_filter=TaskRunFilter(name=TaskRunFilterName(like_=name)), limit=200)
    return len(runs)


def test_one_pass_backfill_shards_on_a_dask_cluster_equal_a_step_by_step_backfill(crm_export, tmp_path, dask_cluster):
    from flows.backfill import run_backfill

    alone, spread = f"sqlite:///{tmp_path / 'alone.db'}", f"sqlite:///{tmp_path / 'dask.db'}"
    fields = {"start": STEPS[0], "end": STEPS[-1], "step_hours": 24 * 7, "path": str(crm_export)}
    run_backfill(alone, **fields)
    run_backfill(spread, **fields, engine="one-pass", shards=4, dask_address=dask_cluster.scheduler_address)
    expected, actual = outcome(alone), outcome(spread)
    assert len(expected["mqas"]) > 0
    for kind in expected:
        pd_equal(actual[kind], expected[kind], kind)
    pd_equal(scores(spread), scores(alone), "scores")
    assert "backfill_shard" in set(dask_cluster.scheduler.task_prefixes)
