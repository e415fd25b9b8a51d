"""What every task shares: the warehouse by URL, the run logger, and how tasks are called.

A run goes through Prefect (flow and task runs, visible in the UI) when a Prefect API is
configured, or *directly*: :func:`direct_calls` makes the same orchestration code call each
task's plain function (``task.fn``), log to the ``abm_sla`` logger and skip what needs a Prefect
API (events, artifacts, concurrency slots). No Prefect server is started then.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cached_property, lru_cache, update_wrapper
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import prefect

from abm_sla.crm.config import AppConfig, load_app_config, set_secret_loader
from abm_sla.crm.mapping import TokenStoreConfig
from abm_sla.crm.tokens import register_token_store
from abm_sla.warehouse import Warehouse


@lru_cache(maxsize=8)
def warehouse(db_url: str) -> Warehouse:
    """One migrated warehouse per URL and process (tasks get the URL, never an engine)."""
    return Warehouse(db_url)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def load_app_config_with_secrets(config_path: str | None) -> AppConfig:
    """``abm-sla.yaml`` (or the defaults) with Prefect Secret blocks as a credential source and as the
    ``token_store`` of a rotated refresh token (``kind: prefect-secret``)."""
    set_secret_loader(_load_secret)
    register_token_store("prefect-secret", lambda config: PrefectSecretTokenStore(config))
    return load_app_config(config_path)


def _load_secret(name: str) -> str:
    from prefect.blocks.system import Secret

    return str(Secret.load(name).get())


class PrefectSecretTokenStore:
    """A rotated refresh token in a Prefect Secret block: read at login, overwritten when Salesforce rotates it."""

    def __init__(self, config: TokenStoreConfig) -> None:
        self.block = str(config.block)

    def load(self) -> str | None:
        from prefect.blocks.system import Secret

        try:
            return str(Secret.load(self.block).get()) or None
        except ValueError:  # no such block yet: the configured SF_REFRESH_TOKEN seeds it
            return None

    def save(self, token: str) -> None:
        from prefect.blocks.system import Secret

        Secret(value=token).save(self.block, overwrite=True)


_DIRECT: ContextVar[bool] = ContextVar("abm_sla_direct", default=False)


@contextmanager
def direct_calls() -> Iterator[None]:
    """Within the body, tasks run as plain function calls, without Prefect runs or a Prefect API."""
    token = _DIRECT.set(True)
    try:
        yield
    finally:
        _DIRECT.reset(token)


class LazyTask:
    """A Prefect task made on first use: :func:`call` under :func:`direct_calls` runs ``fn``, the plain
    function, so a direct run never imports Prefect (about 1.5 s of CPU per process)."""

    def __init__(self, fn: Callable[..., Any], options: dict[str, Any]) -> None:
        self.fn, self.options = fn, options
        update_wrapper(self, fn)

    @cached_property
    def prefect(self) -> prefect.Task:
        """The Prefect task: ``fn`` with the options, never a result cache (every task writes to the warehouse)."""
        from prefect import task as prefect_task
        from prefect.cache_policies import NO_CACHE

        return prefect_task(cache_policy=NO_CACHE, **self.options)(self.fn)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.prefect(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:  # with_options, submit, name...: the Prefect task's
        if name.startswith("__") or name in ("fn", "options"):  # copy/pickle probing a bare instance
            raise AttributeError(name)
        return getattr(self.prefect, name)


def task(**options: Any) -> Callable[[Callable[..., Any]], LazyTask]:
    """``@task(name=..., retries=...)``: Prefect's ``@task`` with ``options``, made on first use (:class:`LazyTask`)."""
    return lambda fn: LazyTask(fn, options)


def in_prefect() -> bool:
    """Whether tasks run as Prefect task runs (events, artifacts and concurrency slots available)."""
    return not _DIRECT.get()


def call(task: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a Prefect task: as a task run, or as its plain function under :func:`direct_calls`."""
    return task(*args, **kwargs) if in_prefect() else task.fn(*args, **kwargs)


def run_logger() -> logging.Logger | logging.LoggerAdapter:
    """Prefect's run logger in a flow or task run, else the ``abm_sla`` logger."""
    if in_prefect():
        from prefect import get_run_logger
        from prefect.exceptions import MissingContextError

        try:
            return get_run_logger()
        except MissingContextError:
            pass
    return logging.getLogger("abm_sla")


def current_flow_run_id() -> str | None:
    """The id of the Prefect flow run this code runs in (None outside one, or under :func:`direct_calls`)."""
    if not in_prefect():
        return None
    from prefect.runtime import flow_run

    return str(flow_run.id) if flow_run.id else None


#: Warnings logged already, per flow run (None: outside one), so a backfill says each once, not per step.
_WARNED: dict[str | None, set[str]] = {}


def warn_once(message: str) -> None:
    """Log ``message`` as a warning unless this flow run logged it already (a backfill's steps repeat it)."""
    if len(_WARNED) > 100:  # a long-lived process (abm-sla serve) keeps the recent flow runs' only
        _WARNED.pop(next(iter(_WARNED)))
    seen = _WARNED.setdefault(current_flow_run_id(), set())
    if message not in seen:
        seen.add(message)
        run_logger().warning(message)


def only_in_prefect(action: Callable[..., Any], *args: Any, default: Any = None, **kwargs: Any) -> Any:
    """``action(...)`` when tasks run in Prefect (events, artifacts), else ``default``."""
    return action(*args, **kwargs) if in_prefect() else default


#: Errors that a retry cannot fix: bad input, bad configuration, a missing or unreadable file.
_DETERMINISTIC = (ValueError, TypeError, KeyError, LookupError, FileNotFoundError, IsADirectoryError,
                  NotADirectoryError, PermissionError)


def is_transient(error: BaseException | None) -> bool:
    """Whether a task's failure may go away on a retry: a database that was busy or unreachable, a
    connection or time-out error. Bad files and bad configuration (``AbmSlaError``, ``ValueError``...)
    and a read-only warehouse fail the same way every time."""
    import sqlalchemy as sa

    from abm_sla.errors import AbmSlaError
    from abm_sla.warehouse.store import read_only_error

    if error is None or isinstance(error, (AbmSlaError, *_DETERMINISTIC)):
        return False
    if read_only_error(error) is not None:  # a read-only warehouse stays read-only
        return False
    if isinstance(error, sa.exc.DBAPIError):
        return isinstance(error, sa.exc.OperationalError) or error.connection_invalidated
    return isinstance(error, (ConnectionError, TimeoutError, OSError))


def retry_transient(_task: Any, _task_run: Any, state: Any) -> bool:
    """Prefect's ``retry_condition_fn``: retry a failed task run only for a transient error
    (https://docs.prefect.io/v3/how-to-guides/workflows/retries, "Retry with a custom condition")."""
    error = state.data if isinstance(getattr(state, "data", None), BaseException) else None
    if error is None:
        try:
            error = state.result(raise_on_failure=False)
        except Exception as raised:  # the result could not be read: judge by what was raised
            error = raised
    return is_transient(error if isinstance(error, BaseException) else None)


def prefect_api_configured() -> bool:
    """Whether Prefect's settings (environment or profile) name an API server to run against."""
    from prefect.settings import PREFECT_API_URL

    return bool(PREFECT_API_URL.value())


def _one_line_for_expected_errors(record: logging.LogRecord) -> bool:
    """A run that fails with an :class:`~abm_sla.errors.AbmSlaError` (bad parameters, a bad file: one
    readable line, already in the record's message and the state message) logs no traceback."""
    from abm_sla.errors import AbmSlaError

    if record.exc_info and isinstance(record.exc_info[1], AbmSlaError):
        record.exc_info, record.exc_text = None, None
    return True


def quiet_expected_failures() -> None:
    """Install :func:`_one_line_for_expected_errors` on Prefect's run loggers (once; idempotent)."""
    for name in ("prefect.flow_runs", "prefect.task_runs", "prefect.engine"):
        logger = logging.getLogger(name)
        if _one_line_for_expected_errors not in logger.filters:
            logger.addFilter(_one_line_for_expected_errors)
