"""Where things live: the database URL, Prefect's home, the config files."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from abm_sla.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO_ROOT / "config"
DEFAULT_SQLITE_FILE = "abm-sla.db"
DATABASE_URL_ENV = "ABM_SLA_DATABASE_URL"
FUTURE_TOLERANCE_ENV = "ABM_SLA_FUTURE_TOLERANCE_MINUTES"
DEFAULT_FUTURE_TOLERANCE_MINUTES = 10.0


def database_url(cli_value: str | None = None) -> str:
    """``--db``, else ``ABM_SLA_DATABASE_URL``, else a SQLite file in the working directory."""
    if cli_value:
        return cli_value
    from_env = os.environ.get(DATABASE_URL_ENV, "").strip()
    if from_env:
        return from_env
    return f"sqlite:///{Path.cwd() / DEFAULT_SQLITE_FILE}"


def future_tolerance() -> dt.timedelta:
    """How far ahead of the wall clock a run's ``as of`` may be without ``--allow-future``:
    ``ABM_SLA_FUTURE_TOLERANCE_MINUTES``, else 10 minutes (clock skew between machines)."""
    text = os.environ.get(FUTURE_TOLERANCE_ENV, "").strip()
    try:
        minutes = float(text) if text else DEFAULT_FUTURE_TOLERANCE_MINUTES
    except ValueError:
        raise ConfigError(f"{FUTURE_TOLERANCE_ENV}={text!r} is not a number of minutes") from None
    if not minutes >= 0:
        raise ConfigError(f"{FUTURE_TOLERANCE_ENV}={text!r} must be 0 or more minutes")
    return dt.timedelta(minutes=minutes)


@contextmanager
def database_url_env(url: str) -> Iterator[None]:
    """Point in-process flow runs (CLI, demo, tests) at ``url`` without making it a flow parameter
    (parameters are stored by Prefect and shown in its UI; a URL may hold a password)."""
    previous = os.environ.get(DATABASE_URL_ENV)
    os.environ[DATABASE_URL_ENV] = url
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(DATABASE_URL_ENV, None)
        else:
            os.environ[DATABASE_URL_ENV] = previous


def configure_prefect_defaults(environ: dict[str, str] | None = None) -> None:
    """Serverless, telemetry-free Prefect with its home in ``./.prefect`` unless the user chose otherwise.

    Must run before prefect is imported: Prefect reads these settings at import.
    """
    env = os.environ if environ is None else environ
    env.setdefault("PREFECT_HOME", str(Path.cwd() / ".prefect"))
    env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    env.setdefault("DO_NOT_TRACK", "1")
    env.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    env.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "WARNING")
    env.setdefault("PREFECT_UI_ENABLED", "false")
