"""runs: the Prefect flow run that made each run, so the undo form takes the id the UI shows

Revision ID: 0011_run_flow_run_id
Revises: 0010_alert_log
Create Date: 2026-12-06 22:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_run_flow_run_id"
down_revision = "0010_alert_log"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch_op:
        batch_op.add_column(sa.Column("flow_run_id", sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f("ix_runs_flow_run_id"), ["flow_run_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch_op:
        batch_op.drop_index(batch_op.f("ix_runs_flow_run_id"))
        batch_op.drop_column("flow_run_id")
