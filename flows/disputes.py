"""The dispute form: rev-ops opens, notes, closes or reopens a dispute from the Prefect UI."""

from __future__ import annotations

from prefect import flow

from abm_sla.warehouse import disputes
from flows.parameters import DisputeParameters, resolve_database_url, validated
from tasks.common import run_logger, utc_now, warehouse


@flow(name="abm-sla-dispute", validate_parameters=False)
def dispute(params: DisputeParameters) -> dict:
    """Apply one dispute action now (``params.action``); returns the dispute's id and the action."""
    params = validated(DisputeParameters, params)
    store, now = warehouse(resolve_database_url(params.database_secret)), utc_now()
    if params.action == "open":
        dispute_id = disputes.open_dispute(store, params.account_id, params.disagreement, params.raised_by,
                                           params.requested_resolution, now)
    else:
        dispute_id = params.dispute_id
        if params.action == "note":
            disputes.add_note(store, dispute_id, params.raised_by, params.text, now)
        elif params.action == "close":
            disputes.close_dispute(store, dispute_id, params.text, params.raised_by, now, params.outcome)
        else:
            disputes.reopen_dispute(store, dispute_id, params.raised_by, params.text, now)
    run_logger().info("dispute %s: %s", dispute_id, params.action)
    return {"dispute_id": dispute_id, "action": params.action}
