"""A run whose process died must not stay Running (or Cancelling) forever: Prefect's heartbeat automation.

Every flow run sends a ``prefect.flow-run.heartbeat`` event every ``PREFECT_FLOWS_HEARTBEAT_FREQUENCY``
seconds (Prefect 3.8: on by default, every 180 s; at least 30) from its own process. The automation made
here waits, after each heartbeat of a run, for the next heartbeat or a final state; when neither comes in
time (the worker and its run were killed, the machine went down), it sets the run to **Crashed**. A
Crashed backfill is then resumed with **Retry**: its finished steps are in the warehouse and are skipped.
This is the automation of Prefect's "Detect zombie flows" guide
(https://docs.prefect.io/v3/advanced/detect-zombie-flows).

``abm-sla serve`` sets it up; for deploy + worker setups, run once per server::

    PREFECT_API_URL=http://127.0.0.1:4200/api .venv/bin/python -m deployments.crash_detection
"""

from __future__ import annotations

import argparse
from datetime import timedelta

AUTOMATION_NAME = "abm-sla: mark runs Crashed when their heartbeats stop"
#: Heartbeats a run may miss before it is called Crashed (plus half a beat for the event pipeline).
MISSED_HEARTBEATS = 2
FINAL_EVENTS = ("prefect.flow-run.Completed", "prefect.flow-run.Failed", "prefect.flow-run.Cancelled",
                "prefect.flow-run.Crashed")


def heartbeat_seconds() -> int:
    """The heartbeat interval runs use (``PREFECT_FLOWS_HEARTBEAT_FREQUENCY``, Prefect's floor of 30 s)."""
    from prefect.settings import get_current_settings

    return max(int(get_current_settings().flows.heartbeat_frequency or 180), 30)


def crash_automation(every_seconds: int):  # -> prefect.automations.Automation
    """The automation: no heartbeat nor final state within ``MISSED_HEARTBEATS`` beats → Crashed."""
    from prefect.automations import Automation
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import EventTrigger, Posture
    from prefect.events.schemas.events import ResourceSpecification

    heartbeat = "prefect.flow-run.heartbeat"
    return Automation(
        name=AUTOMATION_NAME,
        description=f"Runs send a heartbeat every {every_seconds} s; a run silent for "
        f"{MISSED_HEARTBEATS} beats (its process is gone) is marked Crashed, so Retry can resume it.",
        trigger=EventTrigger(
            after={heartbeat}, expect={heartbeat, *FINAL_EVENTS},
            match=ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"]}),
            for_each={"prefect.resource.id"}, posture=Posture.Proactive, threshold=1,
            within=timedelta(seconds=int(every_seconds * (MISSED_HEARTBEATS + 0.5))),
        ),
        actions=[ChangeFlowRunState(state=StateType.CRASHED,
                                    message=f"No heartbeat for {MISSED_HEARTBEATS} beats of {every_seconds} s: "
                                    "the process running this flow is gone. Retry resumes it.")],
    )


def ensure_crash_automation(every_seconds: int | None = None) -> str:
    """Create (or replace) the automation on the current Prefect API; returns its id."""
    from prefect.automations import Automation

    while True:  # replace: one automation of this name, with the current interval
        try:
            Automation.read(name=AUTOMATION_NAME).delete()
        except ValueError:
            break
    return str(crash_automation(every_seconds or heartbeat_seconds()).create().id)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m deployments.crash_detection", description=__doc__.split("\n")[0])
    parser.add_argument("--heartbeat-seconds", type=int, default=None,
                        help="The workers' PREFECT_FLOWS_HEARTBEAT_FREQUENCY (default: this environment's, else 180).")
    args = parser.parse_args(argv)
    every = args.heartbeat_seconds or heartbeat_seconds()
    ensure_crash_automation(every)
    print(f"automation {AUTOMATION_NAME!r}: a run without a heartbeat for "
          f"{int(every * (MISSED_HEARTBEATS + 0.5))} s is marked Crashed")


if __name__ == "__main__":
    main()
