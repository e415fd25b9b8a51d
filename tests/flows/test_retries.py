"""Tasks retry only what a retry can fix: a busy database, not a bad file."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from prefect import flow
from prefect.states import Failed

from abm_sla.errors import SourceError
from abm_sla.services import stages
from tasks import stages as stage_tasks
from tasks.common import is_transient, retry_transient

pytestmark = pytest.mark.flows
BUSY = sa.exc.OperationalError("INSERT", {}, Exception("database is locked"))


@pytest.mark.parametrize(("error", "transient"), [
    (SourceError("accounts.csv: not a CSV file"), False),
    (ValueError("bad value"), False),
    (FileNotFoundError("gone"), False),
    (UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"), False),
    (BUSY, True),
    (sa.exc.OperationalError("INSERT", {}, Exception("attempt to write a readonly database")), False),
    (ConnectionResetError(), True),
    (TimeoutError(), True),
])
def test_only_transient_errors_are_retried(error: BaseException, transient: bool) -> None:
    assert is_transient(error) is transient
    assert retry_transient(None, None, Failed(data=error)) is transient


@pytest.mark.parametrize(("error", "attempts"), [(SourceError("accounts.csv: not a CSV file"), 1), (BUSY, 3)])
def test_extract_runs_once_for_a_bad_file_and_three_times_for_a_busy_database(
    prefect_harness, monkeypatch, sqlite_url: str, error: BaseException, attempts: int,
) -> None:
    calls = []

    def failing(*_args, **_kwargs):
        calls.append(1)
        raise error

    monkeypatch.setattr(stages, "extract_files", failing)
    extract = stage_tasks.extract_files.with_options(retry_delay_seconds=0)

    @flow
    def load() -> None:
        extract(sqlite_url, "folder", "run")

    with pytest.raises(type(error)):
        load()
    assert len(calls) == attempts
