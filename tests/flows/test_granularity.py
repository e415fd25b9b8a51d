"""Task granularity: a pipeline run's task count does not grow with the number of accounts."""

from __future__ import annotations

import pytest

from abm_sla.services import synthetic
from tests.flows.conftest import run_live

pytestmark = [pytest.mark.flows, pytest.mark.usefixtures("prefect_harness")]


def task_runs() -> int:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:  # the REST count endpoint (the client has no wrapper for it)
        return int(client._client.post("/task_runs/count", json={}).json())


@pytest.mark.parametrize("sizes", [(50, 500)])
def test_task_runs_do_not_grow_with_accounts(sizes, tmp_path):
    counts = {}
    for n_accounts in sizes:
        crm = synthetic.generate_crm(n_accounts=n_accounts, start="2026-01-01T00:00:00Z", days=20, seed=2)
        folder = synthetic.write_export_folder(crm, tmp_path / f"crm-{n_accounts}")
        before = task_runs()
        summary = run_live(f"sqlite:///{tmp_path / f'{n_accounts}.db'}", as_of="2026-01-15T12:00:00Z",
                               source="files", path=str(folder))
        assert summary["scoring"]["accounts_scored"] == n_accounts
        counts[n_accounts] = task_runs() - before
    assert counts[sizes[0]] > 0
    assert counts[sizes[0]] == counts[sizes[1]], counts
