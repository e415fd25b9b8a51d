"""The ``propose-model`` form: learn the scoring points from the warehouse's outcomes, from the Prefect UI."""

from __future__ import annotations

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from abm_sla.domain import model_card
from abm_sla.services import model_proposal
from flows.parameters import ProposeModelParameters, resolve_database_url, validated
from tasks.common import run_logger


@task(name="propose-model", cache_policy=NO_CACHE)
def write_proposal(db_url: str, params: ProposeModelParameters) -> dict:
    """Fit, validate and write the three files; publish the model card as an artifact."""
    found, paths = model_proposal.propose(db_url, params.train_until, params.out_dir, params.model_path,
                                          params.horizon_days, params.outcome, params.volume_factor)
    create_markdown_artifact(key="model-proposal", markdown=model_card.card_markdown(found),
                             description=found.verdict[:250])
    return {"verdict": found.verdict, "proposed": found.proposed,
            "files": {name: str(path.resolve()) for name, path in paths.items()}}


@flow(name="propose-model", validate_parameters=False)  # checked by validated(), in one line
def propose_model(params: ProposeModelParameters = ProposeModelParameters()) -> dict:
    """A scoring model proposal learned from outcomes, validated on held-back as-ofs; never applied."""
    params = validated(ProposeModelParameters, params)
    result = write_proposal(resolve_database_url(params.database_secret), params)
    run_logger().info("model proposal: %s", result["verdict"])
    return result
