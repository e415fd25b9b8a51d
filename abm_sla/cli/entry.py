"""The entry points: :func:`main` (the console script: every failure as one line on stderr) and
``abm-sla serve`` (every deployment served from this process)."""

from __future__ import annotations

import os
import signal
import threading

import typer

from abm_sla.cli.common import app
from abm_sla.errors import AbmSlaError
from abm_sla.infra import settings


@app.command()
def serve() -> None:
    """Serve every deployment of prefect.yaml from this process (single-machine installs, no worker)."""
    settings.configure_prefect_defaults()
    from deployments.serve import serve_all

    serve_all()


def _interrupt(_signal: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Console entry point: run the app, turning every failure into one line on stderr.

    SIGTERM stops a run as Ctrl-C does (exit 130, the run recorded ``aborted``)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        code = app(args=argv, standalone_mode=False)  # click returns an Exit's code here (130: Ctrl-C)
        if isinstance(code, int) and code:
            if code == 130:
                typer.echo("error: interrupted", err=True)
            return code
    except typer.Exit as done:
        if done.exit_code == 130:  # Ctrl-C (typer turns KeyboardInterrupt into Exit(130))
            typer.echo("error: interrupted", err=True)
        return done.exit_code
    except KeyboardInterrupt:
        typer.echo("error: interrupted", err=True)
        return 130
    except typer.Abort:
        typer.echo("error: aborted", err=True)
        return 130
    except AbmSlaError as error:
        typer.echo(f"error: {error}", err=True)
        return 1
    except Exception as error:  # the user gets one line; ABM_SLA_DEBUG=1 shows the trace
        if _is_usage_error(error):
            if type(error).__name__ != "NoArgsIsHelpError":  # that one has printed the help already
                typer.echo(f"error: {error.format_message()}", err=True)
            return 2
        if os.environ.get("ABM_SLA_DEBUG"):
            raise
        from abm_sla.warehouse.store import read_only_error

        read_only = read_only_error(error)
        if read_only is not None:
            typer.echo(f"error: {read_only}", err=True)
            return 1
        message = str(error).strip().splitlines()[0] if str(error).strip() else ""
        typer.echo(f"error: {type(error).__name__}: {message} (set ABM_SLA_DEBUG=1 for details)", err=True)
        return 1
    return 0


def _is_usage_error(error: Exception) -> bool:
    """Click's usage errors (typer vendors click, so match by shape, not by class)."""
    return callable(getattr(error, "format_message", None)) and hasattr(error, "exit_code")

