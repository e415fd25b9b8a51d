"""quarantine rows resolved by a later load (their account or domain arrived)

Revision ID: 0005_quarantine_resolved
Revises: 0004_undo_runs
Create Date: 2026-12-02 12:40:00
"""

import sqlalchemy as sa
from alembic import op

import abm_sla.warehouse.schema

revision = "0005_quarantine_resolved"
down_revision = "0004_undo_runs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("quarantine") as batch_op:
        batch_op.add_column(sa.Column("resolved_at", abm_sla.warehouse.schema.UtcDateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column("resolved_run_id", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("quarantine") as batch_op:
        batch_op.drop_column("resolved_run_id")
        batch_op.drop_column("resolved_at")
