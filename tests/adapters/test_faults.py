"""Crash safety: a run killed with SIGKILL anywhere, then run again, leaves what a clean run leaves.

Runs call the flows' body directly (no Prefect server). Each killed run is a forked child that
SIGKILLs itself at its Nth checkpoint (``abm_sla.infra.faults``: between and inside the migration, the
load's pages, every stage's shard writes and its recording), chosen with a fixed seed so that
every stage is hit; the parent then runs the schedule again and compares all four exports with a
warehouse that was never interrupted. No process may be left behind.
"""

from __future__ import annotations

import os
import random
import signal
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from abm_sla.infra import faults
from abm_sla.infra.settings import database_url_env
from abm_sla.services import exports, synthetic
from abm_sla.warehouse import Warehouse
from tasks.common import direct_calls

SEED = 20261202
#: Kills per run of the test: one at a checkpoint of every stage, the rest anywhere (fixed seed). Each costs a
#: rerun and every export compared (~6 s of CPU): 8 keeps every stage and two more points.
KILLS = 8
SCHEDULE = ("2026-01-20T12:00:00Z", "2026-01-31T12:00:00Z")
STAGES = {"migrate", "start", "extract", "score", "fire-and-route", "evaluate-sla"}

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="forks a child per killed run")


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    crm = synthetic.generate_crm(n_accounts=40, start=pd.Timestamp("2026-01-01T00:00:00Z"), days=31, seed=5)
    return synthetic.write_export_folder(crm, tmp_path_factory.mktemp("faults") / "crm", dirty=True)


@pytest.fixture(scope="module")
def clean(tmp_path_factory, folder: Path) -> tuple[str, list[str]]:
    """A warehouse the schedule ran into uninterrupted (in a child, as the killed runs) and the checkpoints it
    passed, in order; both tests read them."""
    root = tmp_path_factory.mktemp("clean")
    url, trace = f"sqlite:///{root / 'clean.db'}", root / "trace.txt"
    assert os.WIFEXITED(status := in_child({faults.TRACE_ENV: str(trace)}, url, folder))
    assert os.WEXITSTATUS(status) == 0
    return url, trace.read_text().split()


def run_schedule(url: str, folder: Path, first: int = 0) -> None:
    """The scheduled runs from the ``first``; a checkpoint ``next-run`` between runs."""
    from flows.pipeline import run_once

    with database_url_env(url), direct_calls():
        for number, as_of in enumerate(SCHEDULE[first:], first):
            if number:
                faults.checkpoint("next-run")
            run_once(url, as_of, "files", str(folder), shards=2)


def in_child(environment: dict[str, str], url: str, folder: Path) -> int:
    """Run the schedule in a forked child with ``environment``; returns its wait status."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 0
        try:
            os.environ.update(environment)
            faults.reset()
            run_schedule(url, folder)
        except BaseException:
            code = 3
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return status


def children() -> list[int]:
    """Processes whose parent is this one (none may outlive a run)."""
    mine = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == os.getpid():
                mine.append(int(entry.name))
    return mine


def all_exports(url: str) -> dict[str, pd.DataFrame]:
    store = Warehouse(url)
    return {kind: exports._with_iso_timestamps(make(store)).reset_index(drop=True)
            for kind, make in exports.EXPORTS.items()}


def test_sigkill_anywhere_then_a_rerun_equals_a_clean_run(tmp_path: Path, folder: Path, clean) -> None:
    clean_url, points = clean
    assert set(points) >= STAGES, Counter(points)
    rng = random.Random(SEED)
    chosen = {rng.choice([n for n, name in enumerate(points, 1) if name == stage]) for stage in sorted(STAGES)}
    chosen |= set(rng.sample(sorted(set(range(1, len(points) + 1)) - chosen), KILLS - len(chosen)))
    second = points.index("next-run") + 1  # checkpoints after it belong to the second run
    want = all_exports(clean_url)
    already_running = set(children())  # e.g. a test server another test in this worker started
    for number in sorted(chosen):
        url = f"sqlite:///{tmp_path / f'killed-{number}.db'}"
        status = in_child({faults.FAULT_ENV: str(number)}, url, folder)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, (number, points[number - 1])
        run_schedule(url, folder, first=int(number > second))  # run again from the run that was killed
        got = all_exports(url)
        for kind in exports.EXPORTS:
            pd.testing.assert_frame_equal(got[kind], want[kind], check_dtype=False,
                                          obj=f"{kind} after a kill at checkpoint {number} ({points[number - 1]})")
        assert set(children()) - already_running == set()
    assert len(chosen) == KILLS and {points[n - 1] for n in chosen} >= STAGES


def test_a_killed_run_can_be_undone_to_the_state_before_it(tmp_path: Path, folder: Path, clean) -> None:
    """Killed after some of its SLA shards committed: its row reads dead, and undo takes back what it wrote."""
    from abm_sla.services.stages import utc_now
    from abm_sla.warehouse import schema, undo

    url, points = f"sqlite:///{tmp_path / 'killed.db'}", clean[1]
    # the second run's last SLA shard, inside its transaction: the first shard has committed (services/stages/clocks.py:
    # a checkpoint inside and after each shard's transaction, then inside and after the stage's record)
    last_shard = len(points) - 3
    assert points[-6:] == ["evaluate-sla"] * 6
    first_only = f"sqlite:///{tmp_path / 'first-only.db'}"
    with database_url_env(first_only), direct_calls():
        from flows.pipeline import run_once

        run_once(first_only, SCHEDULE[0], "files", str(folder), shards=2)
    status = in_child({faults.FAULT_ENV: str(last_shard)}, url, folder)
    assert os.WIFSIGNALED(status)
    store = Warehouse(url)
    killed = undo.list_runs(store).iloc[0]
    assert killed["status"] == "dead"
    logged = store.read_table(schema.undo_log)
    assert (logged["table_name"] == "sla_clocks").any()  # the committed SLA shard logged what it replaced
    undo.undo_run(store, killed["run_id"], utc_now())
    got, want = all_exports(url), all_exports(first_only)
    for kind in exports.EXPORTS:
        pd.testing.assert_frame_equal(got[kind], want[kind], check_dtype=False, obj=kind)
