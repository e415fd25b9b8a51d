"""dispositions: status_changes.reason, sla_clocks.period (several status_recurring rows per MQA)

Revision ID: 0006_dispositions
Revises: 0005_quarantine_resolved
Create Date: 2026-12-02 14:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_dispositions"
down_revision = "0005_quarantine_resolved"
branch_labels = None
depends_on = None

OLD_KEY = ["account_id", "trigger_at", "clock"]


def upgrade() -> None:
    with op.batch_alter_table("status_changes") as batch_op:
        batch_op.add_column(sa.Column("reason", sa.Text(), nullable=True))
    # stored clocks are one-off clocks: period 0; the key gains the period (status_recurring has one per week)
    with op.batch_alter_table("sla_clocks", recreate="always") as batch_op:
        batch_op.add_column(sa.Column("period", sa.Integer(), server_default="0", nullable=False))
        batch_op.drop_constraint("pk_sla_clocks", type_="primary")
        batch_op.create_primary_key("pk_sla_clocks", [*OLD_KEY, "period"])


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM sla_clocks WHERE period <> 0"))
    with op.batch_alter_table("sla_clocks", recreate="always") as batch_op:
        batch_op.drop_constraint("pk_sla_clocks", type_="primary")
        batch_op.create_primary_key("pk_sla_clocks", OLD_KEY)
        batch_op.drop_column("period")
    with op.batch_alter_table("status_changes") as batch_op:
        batch_op.drop_column("reason")
