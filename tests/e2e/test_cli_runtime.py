"""The CLI without a Prefect API: runs directly (no Prefect server), stops cleanly on Ctrl-C, leaves no
process behind when killed, and a killed run's ``running`` row reads as dead."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from abm_sla.cli import main
from abm_sla.infra import faults
from abm_sla.warehouse import Warehouse, schema
from tests.e2e.test_cli import small_export  # noqa: F401  (fixture)

pytestmark = pytest.mark.e2e


def cli(args: list[str], tmp_path: Path, **extra: str) -> subprocess.CompletedProcess:
    """``abm-sla ARGS`` in a child process with no Prefect API and its own Prefect home, taking Ctrl-C as a
    terminal's foreground process does (a test session started in the background ignores SIGINT, and a
    child would inherit that)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PREFECT_", "ABM_SLA_"))}
    env.update(PREFECT_HOME=str(tmp_path / "prefect-home"), **extra)
    ignored = signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    if ignored:  # a handler (not SIG_IGN) in this process leaves the child the default: Python's KeyboardInterrupt
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return subprocess.run([sys.executable, "-m", "abm_sla.cli", *args], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)
    finally:
        if ignored:
            signal.signal(signal.SIGINT, signal.SIG_IGN)


def leftovers(tmp_path: Path) -> list[int]:
    """Processes still running with this test's Prefect home (an orphaned server would have it)."""
    marker = f"PREFECT_HOME={tmp_path / 'prefect-home'}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if marker in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def run_args(folder: Path, db: str) -> list[str]:
    return ["run", "--path", str(folder), "--as-of", "2026-03-03T00:00:00Z", "--db", db]


def test_ctrl_c_stops_the_run_with_130_and_marks_it_aborted(small_export: Path, tmp_path: Path) -> None:  # noqa: F811
    db = f"sqlite:///{tmp_path / 'w.db'}"
    done = cli(run_args(small_export, db), tmp_path, **{faults.FAULT_ENV: "4:SIGINT"})
    assert done.returncode == 130, done.stderr
    assert done.stderr.strip().splitlines() == ["error: interrupted"]
    assert Warehouse(db).read_table(schema.runs)["status"].tolist() == ["aborted"]
    assert not (tmp_path / "prefect-home").exists() or not any((tmp_path / "prefect-home").glob("*.db"))
    assert leftovers(tmp_path) == []


def test_a_killed_run_reads_as_dead_and_leaves_no_process(small_export: Path, tmp_path: Path) -> None:  # noqa: F811
    db = f"sqlite:///{tmp_path / 'w.db'}"
    trace = tmp_path / "trace.txt"
    killed = cli(run_args(small_export, db), tmp_path, **{faults.FAULT_ENV: "12", faults.TRACE_ENV: str(trace)})
    assert killed.returncode == -9
    assert trace.read_text().split()[-1] in {"score", "fire-and-route", "evaluate-sla"}
    assert leftovers(tmp_path) == []
    listed = cli(["runs", "--db", db], tmp_path)
    assert listed.returncode == 0 and " dead " in listed.stdout
    again = cli(run_args(small_export, db), tmp_path)
    assert again.returncode == 0, again.stderr
    statuses = Warehouse(db).read_table(schema.runs).sort_values("started_at")["status"].tolist()
    assert statuses == ["dead", "completed"]
    assert leftovers(tmp_path) == []


def test_a_future_as_of_is_one_line_unless_forced(small_export: Path, tmp_path: Path, capsys) -> None:  # noqa: F811
    db = f"sqlite:///{tmp_path / 'w.db'}"
    args = ["run", "--path", str(small_export), "--as-of", "2200-01-01", "--db", db]
    assert main(args) == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "in the future" in error[0] and "--allow-future" in error[0]
    assert not Path(tmp_path / "w.db").exists()  # refused before anything was written


def test_sigterm_stops_the_run_like_ctrl_c(small_export: Path, tmp_path: Path) -> None:  # noqa: F811
    db = f"sqlite:///{tmp_path / 'w.db'}"
    done = cli(run_args(small_export, db), tmp_path, **{faults.FAULT_ENV: "8:SIGTERM"})
    assert done.returncode == 130 and done.stderr.strip().splitlines() == ["error: interrupted"]
    assert Warehouse(db).read_table(schema.runs)["status"].tolist() == ["aborted"]


def test_two_first_runs_started_together_are_quiet(small_export: Path, tmp_path: Path) -> None:  # noqa: F811
    db = f"sqlite:///{tmp_path / 'w.db'}"
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PREFECT_", "ABM_SLA_"))}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    runs = [subprocess.Popen([sys.executable, "-m", "abm_sla.cli", *run_args(small_export, db)], env=env,
                             cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]
    results = [(run.communicate(timeout=120)[1], run.returncode) for run in runs]
    assert [(code, err) for err, code in results] == [(0, ""), (0, "")]
    assert Warehouse(db).read_table(schema.runs)["status"].tolist() == ["completed", "completed"]
    assert leftovers(tmp_path) == []


def test_a_direct_run_never_imports_prefect(small_export: Path, tmp_path: Path) -> None:  # noqa: F811
    db = f"sqlite:///{tmp_path / 'w.db'}"
    code = ("import sys; from abm_sla.cli import main; status = main(sys.argv[1:]); "
            "sys.exit(status or 3 * any(name.split('.')[0] == 'prefect' for name in sys.modules))")
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PREFECT_", "ABM_SLA_"))}
    env.update(PREFECT_HOME=str(tmp_path / "prefect-home"), ABM_SLA_RUNTIME="direct")
    done = subprocess.run([sys.executable, "-c", code, *run_args(small_export, db)], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"exit {done.returncode} (3: Prefect was imported): {done.stderr}"
    assert Warehouse(db).read_table(schema.runs)["status"].tolist() == ["completed"]
