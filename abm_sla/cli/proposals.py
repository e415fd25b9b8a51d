"""``abm-sla propose``: proposals backed by the warehouse's history (the scoring model)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from abm_sla.cli.common import DbOption, ModelOption, _date_option, _existing_warehouse, app

propose_app = typer.Typer(no_args_is_help=True, help="Proposals backed by the warehouse's history.")
app.add_typer(propose_app, name="propose")


@propose_app.command("model")
def propose_model(
    train_until: Annotated[str, typer.Option("--train-until", help="Learn from as-ofs whose outcome was known by "
                                             "this date; validate on the as-ofs after it (ISO 8601).")],
    out: Annotated[Path, typer.Option("--out", help="Folder for scoring.yaml.diff, model-card.md, model-card.json.")],
    db: DbOption = None,
    model: ModelOption = None,
    horizon_days: Annotated[int, typer.Option("--horizon-days", help="Days after an as-of an outcome counts.")] = 90,
    outcome: Annotated[str, typer.Option(help="What to predict: won (an opportunity created and won) or "
                                         "opportunity (one created).")] = "won",
    volume_factor: Annotated[float, typer.Option("--volume-factor", help="MQA volume the proposed threshold aims "
                                                 "at, relative to the current one.")] = 1.0,
    until: Annotated[str | None, typer.Option("--until", help="The end of the data (default: the latest signal or "
                                              "opportunity in the warehouse).")] = None,
) -> None:
    """Learn the scoring points from outcomes and write a diff of the model file and its model card (never applied)."""
    from abm_sla.services import model_proposal

    split, end = _date_option("--train-until", train_until), _date_option("--until", until) if until else None
    found, paths = model_proposal.propose(_existing_warehouse(db), split, out, model, horizon_days, outcome,
                                          volume_factor, end)
    typer.echo(found.verdict)
    for name, path in paths.items():
        typer.echo(f"{name}: {path}")
