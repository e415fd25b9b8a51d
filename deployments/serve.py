"""``abm-sla serve``: every deployment of prefect.yaml served from one process, same schedules and parameters.

prefect.yaml stays the one place schedules live: this module reads it and turns each entry into
``flow.to_deployment(...)``, then ``prefect.serve(...)`` runs them (no work pool, no worker).
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

import yaml

from abm_sla.infra.settings import REPO_ROOT

PREFECT_YAML = REPO_ROOT / "prefect.yaml"


def deployment_specs(path: Path = PREFECT_YAML) -> list[dict[str, Any]]:
    """The ``deployments`` entries of prefect.yaml (YAML aliases resolved)."""
    return yaml.safe_load(path.read_text(encoding="utf-8"))["deployments"]


def load_flow(entrypoint: str):
    """``flows/backfill.py:backfill`` → the flow object."""
    file, name = entrypoint.split(":")
    module = importlib.import_module(file.removesuffix(".py").replace("/", "."))
    return getattr(module, name)


def schedules(spec: dict[str, Any]) -> list:
    """prefect.yaml cron schedules as Prefect ``Cron`` schedules."""
    from prefect.schedules import Cron

    return [
        Cron(item["cron"], timezone=item.get("timezone"), day_or=item.get("day_or", True),
             parameters=item.get("parameters") or {})
        for item in spec.get("schedules") or []
    ]


def to_deployments(specs: list[dict[str, Any]]) -> list:
    """One served deployment per spec. Template parameters (``{{ $VAR }}``) are read from the environment."""
    from prefect.utilities.templating import apply_values

    deployments = []
    for spec in specs:
        parameters = apply_values(spec.get("parameters") or {}, dict(os.environ))
        deployments.append(
            load_flow(spec["entrypoint"]).to_deployment(
                name=spec["name"], description=spec.get("description"), tags=spec.get("tags"),
                schedules=schedules(spec), parameters=parameters,
            )
        )
    return deployments


#: Set to 1 to have ``serve`` create the ``abm-sla:<stage>`` concurrency limits (worth it only on a Prefect
#: server backed by PostgreSQL: see docs/operations/crashes.md).
STAGE_LIMITS_ENV = "ABM_SLA_STAGE_LIMITS"


def serve_all(limit: int | None = None, create_stage_limits: bool | None = None) -> None:
    """Serve every deployment until interrupted (Ctrl-C pauses the schedules).

    Sets up the heartbeat automation that marks a run Crashed when its process dies
    (:mod:`deployments.crash_detection`); creates the stage limits only when asked
    (``create_stage_limits``, default ``$ABM_SLA_STAGE_LIMITS == "1"``).
    """
    from prefect import serve

    from deployments.crash_detection import ensure_crash_automation
    from tasks.observe import ensure_stage_limits

    ensure_crash_automation()
    if create_stage_limits if create_stage_limits is not None else os.environ.get(STAGE_LIMITS_ENV) == "1":
        ensure_stage_limits()
    serve(*to_deployments(deployment_specs()), limit=limit)
