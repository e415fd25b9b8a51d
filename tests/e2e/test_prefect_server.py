"""End to end on a real Prefect server: deploy prefect.yaml, run backfill and recalculate through a process worker.

Starts ``prefect server start`` (own PREFECT_HOME, scheduler off so no scheduled run interferes), creates
the ``abm-sla`` process pool, runs ``prefect --no-prompt deploy --all``, starts a worker whose environment
holds ABM_SLA_DATABASE_URL (a SQLite file in tmp), triggers the deployments with ``run_deployment`` and
checks the warehouse. Every process is started in its own session and its group killed at teardown.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from abm_sla.infra.settings import CONFIG_DIR, REPO_ROOT
from abm_sla.services import synthetic
from abm_sla.warehouse import Warehouse, schema

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

PREFECT = str(Path(sys.executable).with_name("prefect"))
POLL_SECONDS = 1.0
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
HEARTBEAT_SECONDS = 30  # Prefect's minimum: the crash test waits about three of them
#: How often the server evaluates proactive automations (Prefect's default 5 s): the crash automation fires
#: within a second of its deadline instead of up to five.
PROACTIVE_SECONDS = 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(check, what: str, timeout: float):
    """Poll ``check`` every POLL_SECONDS until it returns a truthy value; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(POLL_SECONDS)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def healthy(api_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    handle = log.open("wb")
    return subprocess.Popen(args, cwd=REPO_ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT,
                            start_new_session=True)


def stop(process: subprocess.Popen) -> None:
    """Terminate the process group, then kill it if it does not go."""
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        if process.poll() is not None:
            return
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(wait)
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[dict]:
    """A Prefect server, the deployments of prefect.yaml and a process worker; torn down even on failure."""
    root = tmp_path_factory.mktemp("prefect-e2e")
    api_url = f"http://127.0.0.1:{free_port()}/api"
    database = f"sqlite:///{root / 'warehouse.db'}"
    crm = synthetic.generate_crm(n_accounts=80, start="2026-01-01T00:00:00Z", days=20, seed=5)
    export = synthetic.write_export_folder(crm, root / "export")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "ABM_SLA_"))}
    base.update(DO_NOT_TRACK="1", PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_LOGGING_LEVEL="WARNING")
    server_env = {**base, "PREFECT_HOME": str(root / "server-home"), "PREFECT_UI_ENABLED": "false",
                  "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false",
                  "PREFECT_SERVER_EVENTS_PROACTIVE_GRANULARITY": f"PT{PROACTIVE_SECONDS}S"}
    client_env = {**base, "PREFECT_HOME": str(root / "client-home"), "PREFECT_API_URL": api_url,
                  "ABM_SLA_EXPORT_PATH": str(export)}
    worker_env = {**client_env, "PREFECT_HOME": str(root / "worker-home"), "ABM_SLA_DATABASE_URL": database,
                  "PREFECT_WORKER_QUERY_SECONDS": "1", "PREFECT_WORKER_PREFETCH_SECONDS": "1",
                  "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(HEARTBEAT_SECONDS)}
    processes: list[subprocess.Popen] = []
    try:
        host, port = api_url.removeprefix("http://").removesuffix("/api").split(":")
        processes.append(start([PREFECT, "server", "start", "--host", host, "--port", port], server_env,
                               root / "server.log"))
        wait_until(lambda: healthy(api_url) or processes[0].poll() is not None, "the Prefect server", 90)
        assert processes[0].poll() is None, (root / "server.log").read_text()[-2000:]
        for args in (["work-pool", "create", "abm-sla", "--type", "process"], ["--no-prompt", "deploy", "--all"]):
            done = subprocess.run([PREFECT, *args], cwd=REPO_ROOT, env=client_env, capture_output=True, text=True,
                                  timeout=180)
            assert done.returncode == 0, f"prefect {' '.join(args)}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        def start_worker(log: str = "worker.log") -> subprocess.Popen:
            processes.append(start([PREFECT, "worker", "start", "--pool", "abm-sla", "--type", "process"],
                                   worker_env, root / log))
            return processes[-1]

        worker = start_worker()
        yield {"api_url": api_url, "database": database, "export": export, "root": root, "worker": worker,
               "start_worker": start_worker, "client_env": client_env}
    finally:
        for process in reversed(processes):
            stop(process)


def run(stack: dict, deployment: str, parameters: dict) -> str:
    """Trigger a deployment through the API and wait for a final state; returns its type."""
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: stack["api_url"]}):
        flow_run = run_deployment(deployment, parameters=parameters, timeout=0)
        with get_client(sync_client=True) as client:

            def final() -> str | None:
                state = client.read_flow_run(flow_run.id).state
                return state.type.value if state and state.type.value in FINAL else None

            return wait_until(final, f"{deployment} to finish (logs: {stack['root']}/worker.log)", 150)


def deployment_names(stack: dict) -> set[str]:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: stack["api_url"]}), get_client(sync_client=True) as client:
        return {deployment.name for deployment in client.read_deployments()}


def test_every_deployment_is_registered(stack):
    specs = yaml.safe_load((REPO_ROOT / "prefect.yaml").read_text())["deployments"]
    assert deployment_names(stack) == {spec["name"] for spec in specs}


def test_backfill_then_recalculate_through_a_worker(stack, tmp_path):
    state = run(stack, "backfill/backfill", {"params": {
        "start": "2026-01-12T12:00:00Z", "end": "2026-01-13T12:00:00Z", "step_hours": 24,
        "path": str(stack["export"])}})
    assert state == "COMPLETED"
    store = Warehouse(stack["database"])
    steps = store.read_table(schema.runs, schema.runs.c.kind == "backfill-step")
    assert len(steps) == 2 and set(steps["status"]) == {"completed"}
    assert len(store.read_kind("accounts")) == 80

    model = yaml.safe_load((CONFIG_DIR / "scoring.yaml").read_text())
    model["version"] = "e2e-lenient"
    model["gates"]["min_total"] = 35
    (tmp_path / "lenient.yaml").write_text(yaml.safe_dump(model))
    state = run(stack, "recalculate/recalculate", {"params": {
        "model_path": str(tmp_path / "lenient.yaml"), "as_of": "2026-01-13T12:00:00Z", "dry_run": False,
        "out_dir": str(tmp_path / "whatif")}})
    assert state == "COMPLETED"
    history = store.read_table(schema.score_history)
    assert (history["model_version"] == "e2e-lenient").sum() == 80
    assert len(list((tmp_path / "whatif").glob("whatif-e2e-lenient-*-stored.csv"))) == 1


def test_invalid_parameters_fail_the_run_before_any_work(stack):
    store = Warehouse(stack["database"])
    with store.engine.connect() as connection:
        runs_before = connection.execute(sa.select(sa.func.count()).select_from(schema.runs)).scalar_one()
    state = run(stack, "backfill/backfill", {"params": {
        "start": "2026-01-13T12:00:00Z", "end": "2026-01-01T12:00:00Z", "path": str(stack["export"])}})
    assert state == "FAILED"
    with store.engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(schema.runs)).scalar_one() == runs_before


def test_the_scheduled_deployments_run_with_their_forms(stack, tmp_path):
    """crm-sync, score-and-route, sla-monitor and the weekly dashboard, triggered by hand with parameters."""
    for deployment, params in (
        ("crm-sync/crm-sync", {"source": "files", "path": str(stack["export"])}),
        ("score-and-route/score-and-route", {"as_of": "2026-01-15T12:00:00Z"}),
        ("sla-monitor/sla-monitor", {"as_of": "2026-01-19T12:00:00Z"}),
        ("weekly-sla-dashboard/weekly-sla-dashboard", {"period": "2026-W03", "out_dir": str(tmp_path)}),
    ):
        assert run(stack, deployment, {"params": params}) == "COMPLETED", deployment
    store = Warehouse(stack["database"])
    mqas, clocks = store.read_table(schema.mqas), store.read_table(schema.sla_clocks)
    assert len(mqas) > 0 and len(clocks) == 4 * len(mqas)
    assert (tmp_path / "weekly-2026-W03.html").is_file()

    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: stack["api_url"]}), get_client(sync_client=True) as client:
        runs = client.read_flow_runs()
    assert runs and all("sqlite:" not in repr(flow_run.parameters) for flow_run in runs)  # never a parameter


def descendants(pid: int) -> list[int]:
    """Every process started under ``pid`` (from /proc), children first."""
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
        for child in children:
            out += [child, *descendants(child)]
    return out


def kill_hard(process: subprocess.Popen) -> None:
    """SIGKILL a worker and everything it started, as a machine failure would: nothing gets to clean up."""
    for pid in [*descendants(process.pid), process.pid]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    process.wait(10)


def test_a_cancelled_backfill_ends_cancelled_and_says_where_it_stopped(stack):
    """Cancel from the UI (the Cancelling state): the run ends Cancelled without the flow logging "Crash
    detected", and the progress artifact says at which step it stopped and how to resume."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey, LogFilter, LogFilterFlowRunId
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect.states import Cancelling

    from flows.backfill import backfill_key
    from flows.parameters import BackfillParameters

    store = Warehouse(stack["database"])
    # a week of hourly steps: the cancellation lands long before the last one, however fast the steps run
    total = 24 * 7
    fields = {"start": "2026-01-03T00:00:00Z", "end": "2026-01-09T23:00:00Z", "step_hours": 1,
              "path": str(stack["export"])}
    key = backfill_key(BackfillParameters(**fields))

    def completed() -> int:
        steps = store.read_table(schema.runs, schema.runs.c.kind == "backfill-step")
        return int(steps["run_id"].str.startswith(f"backfill-{key}-").mul(steps["status"].eq("completed")).sum())

    with temporary_settings({PREFECT_API_URL: stack["api_url"]}), get_client(sync_client=True) as client:
        flow_run = run_deployment("backfill/backfill", timeout=0, parameters={"params": fields})
        wait_until(lambda: completed() >= 2, "the backfill's first steps", 150)
        client.set_flow_run_state(flow_run.id, Cancelling(), force=True)  # what the UI's Cancel does
        wait_until(lambda: client.read_flow_run(flow_run.id).state.type.value in FINAL, "the cancellation", 120)
        assert client.read_flow_run(flow_run.id).state.type.value == "CANCELLED"
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run.id])))
        # the flow run's own log (a task the signal lands in may still log its own crash: Prefect's task engine)
        assert not [log.message for log in logs if "Crash detected" in log.message and log.task_run_id is None]
        wanted = ArtifactFilter(key=ArtifactFilterKey(any_=[f"backfill-{key}"]))
        progress = client.read_artifacts(artifact_filter=wanted)
    assert completed() < total
    description = progress[-1].description
    assert f"stopped at step {completed() + 1} of {total}" in description and "resume with" in description


@pytest.mark.timeout(600)
def test_a_killed_worker_leaves_a_crashed_run_that_retry_resumes(stack):
    """Runs last in the module: it kills the module's worker. The one documented command sets up the heartbeat
    automation; the killed run turns Crashed within a few heartbeats; Retry (a new worker) finishes it."""
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect.states import AwaitingRetry

    setup = subprocess.run([sys.executable, "-m", "deployments.crash_detection", "--heartbeat-seconds",
                            str(HEARTBEAT_SECONDS)], cwd=REPO_ROOT, env=stack["client_env"], capture_output=True,
                           text=True, timeout=120)
    assert setup.returncode == 0 and "is marked Crashed" in setup.stdout, setup.stderr[-2000:]
    store = Warehouse(stack["database"])
    before = len(store.read_table(schema.runs, schema.runs.c.kind == "backfill-step"))
    steps = 24  # hourly over a day: long enough to be killed in the middle
    with temporary_settings({PREFECT_API_URL: stack["api_url"]}), get_client(sync_client=True) as client:
        flow_run = run_deployment("backfill/backfill", timeout=0, parameters={"params": {
            "start": "2026-01-02T00:00:00Z", "end": "2026-01-02T23:00:00Z", "step_hours": 1,
            "path": str(stack["export"])}})

        def steps_done() -> int:
            return len(store.read_table(schema.runs, schema.runs.c.kind == "backfill-step")) - before

        def state() -> str:
            return client.read_flow_run(flow_run.id).state.type.value

        wait_until(lambda: steps_done() >= 3, "the backfill's first steps", 150)
        kill_hard(stack["worker"])
        killed_at, done_when_killed = time.monotonic(), steps_done()
        assert state() == "RUNNING" and done_when_killed < steps
        # the new worker starts while the heartbeats are missed: a Running (then Crashed) run is not for it to take
        stack["start_worker"]("worker-after-crash.log")
        wait_until(lambda: state() == "CRASHED", "the automation to mark the run Crashed", 6 * HEARTBEAT_SECONDS)
        assert time.monotonic() - killed_at < 6 * HEARTBEAT_SECONDS
        assert steps_done() < steps

        client.set_flow_run_state(flow_run.id, AwaitingRetry(), force=True)  # what the UI's Retry does
        wait_until(lambda: state() in FINAL - {"CRASHED"}, "the retried backfill to finish", 240)
        assert state() == "COMPLETED"
        assert steps_done() == steps  # each step once: the ones finished before the crash were skipped
