"""Where a stage's shard tasks run: one after another in this process, or on a Dask cluster.

A run names its cluster by address (a flow parameter, else ``ABM_SLA_DASK_ADDRESS``); the shard
tasks are submitted to a ``prefect_dask.DaskTaskRunner`` connected to it, so each shard runs on a
Dask worker and reports to the same Prefect flow run. Without an address the shards run in this
process one at a time, which keeps the run's memory at one shard's worth.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from abm_sla.infra.shards import Shard
from tasks.common import LazyTask, call

DASK_ADDRESS_ENV = "ABM_SLA_DASK_ADDRESS"
SHARDS_ENV = "ABM_SLA_SHARDS"


def dask_address(address: str | None = None) -> str | None:
    """The Dask scheduler to run shards on: ``address``, else ``ABM_SLA_DASK_ADDRESS``, else none."""
    return (address or os.environ.get(DASK_ADDRESS_ENV) or "").strip() or None


def shard_count(shards: int | None = None) -> int | None:
    """How many shards a run splits its accounts into: ``shards``, else ``ABM_SLA_SHARDS``, else None
    (one per 50,000 accounts, see ``abm_sla.services.stages.ACCOUNTS_PER_SHARD``)."""
    if shards:
        return shards
    text = os.environ.get(SHARDS_ENV, "").strip()
    return int(text) if text.isdigit() and int(text) > 0 else None


@contextmanager
def _runner(address: str) -> Iterator[Any]:
    from prefect_dask import DaskTaskRunner

    with DaskTaskRunner(address=address) as runner:
        yield runner


def run_shards(task: LazyTask, shards: Sequence[Shard], address: str | None, **parameters: Any) -> list[Any]:
    """Run ``task`` once per shard (``shard=`` plus ``parameters``) and return the results in shard order:
    on the Dask scheduler at ``address`` (else ``ABM_SLA_DASK_ADDRESS``), else in this process."""
    address = dask_address(address)
    if address is None:
        return [call(task, shard=shard, **parameters) for shard in shards]
    with _runner(address) as runner:
        futures = [runner.submit(task.prefect, {"shard": shard, **parameters}) for shard in shards]
        return [future.result() for future in futures]
