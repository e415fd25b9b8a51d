"""``abm-sla docs``: generated documentation (the metrics reference)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from abm_sla.cli.common import app
from abm_sla.errors import AbmSlaError

docs_app = typer.Typer(no_args_is_help=True, help="Generated documentation: the metrics reference.")
app.add_typer(docs_app, name="docs")


@docs_app.command("metrics")
def docs_metrics(
    out: Annotated[Path | None, typer.Option("--out", help="Write here (default: print).")] = None,
) -> None:
    """The metrics reference (docs/metrics.md), generated from the metrics catalog."""
    from abm_sla.domain.metrics import reference_markdown

    text = reference_markdown()
    if out is None:
        typer.echo(text, nl=False)
        return
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    except OSError as error:
        raise AbmSlaError(f"cannot write {out}: {error.strerror or error}") from None
    typer.echo(f"wrote the metrics reference to {out}")
