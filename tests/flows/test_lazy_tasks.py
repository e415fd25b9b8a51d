"""The pipeline's tasks are Prefect tasks made on first use (a direct run never imports Prefect)."""

from __future__ import annotations

from prefect import Task
from prefect.cache_policies import NO_CACHE

from tasks.alerts import send_alerts
from tasks.stages import extract_files, sla_shard


def test_a_task_is_a_prefect_task_with_its_options_and_no_cache() -> None:
    made = extract_files.prefect
    assert isinstance(made, Task) and extract_files.prefect is made  # made once
    assert (made.name, made.retries, made.retry_delay_seconds) == ("extract-files", 2, 5)
    assert made.cache_policy is NO_CACHE and made.fn is extract_files.fn
    assert extract_files.with_options(retries=0).retries == 0  # the Prefect task's methods
    assert sla_shard.prefect.name == "sla-shard" and send_alerts.prefect.retries == 2
    assert extract_files.__doc__ == extract_files.fn.__doc__


def test_a_task_copies_and_pickles_without_making_its_prefect_task() -> None:
    import copy
    import pickle

    from tasks.common import LazyTask

    def plain(value: int) -> int:
        return value + 1

    lazy = LazyTask(plain, {"name": "plain"})
    assert copy.copy(lazy).fn is plain and "prefect" not in vars(lazy)
    assert pickle.loads(pickle.dumps(LazyTask(abs, {"name": "abs"}))).fn is abs
