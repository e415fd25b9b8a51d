"""breach alerts sent: one row per escalation level and notification block

Revision ID: 0010_alert_log
Revises: 0009_tier_moves
Create Date: 2026-12-06 22:10:00
"""

import sqlalchemy as sa
from alembic import op

import abm_sla.warehouse.schema

revision = "0010_alert_log"
down_revision = "0009_tier_moves"
branch_labels = None
depends_on = None


def upgrade() -> None:
    utc = abm_sla.warehouse.schema.UtcDateTime(timezone=True)
    op.create_table(
        "alert_log",
        sa.Column("account_id", sa.String(length=255), nullable=False),
        sa.Column("trigger_at", utc, nullable=False),
        sa.Column("clock", sa.String(length=32), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("claimed_at", utc, nullable=False),
        sa.Column("sent_at", utc, nullable=True),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("account_id", "trigger_at", "clock", "level", "channel", name=op.f("pk_alert_log")),
    )


def downgrade() -> None:
    op.drop_table("alert_log")
