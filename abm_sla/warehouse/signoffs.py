"""Sign-offs in the warehouse: one row per signature (``abm-sla signoff``)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from abm_sla.domain.signoff import policy_hash
from abm_sla.errors import AbmSlaError
from abm_sla.warehouse import Warehouse, schema


def record(warehouse: Warehouse, policy_file: Path, signed_by: str, role: str, at: pd.Timestamp) -> str:
    """Store that ``signed_by`` in ``role`` signed the policy file as it is now; returns its hash."""
    if not signed_by.strip() or not role.strip():
        raise AbmSlaError("signoff needs a name (--by) and a role (--role)")
    try:
        content = policy_file.read_bytes()
    except OSError as error:
        raise AbmSlaError(f"cannot read the policy file {policy_file}: {error.strerror or error}") from None
    sha = policy_hash(content)
    with warehouse.engine.begin() as connection:
        connection.execute(schema.signoffs.insert().values(
            signed_at=at.to_pydatetime(), signed_by=signed_by.strip(), role=role.strip(), policy_sha256=sha,
            policy_file=str(policy_file)))
    return sha
