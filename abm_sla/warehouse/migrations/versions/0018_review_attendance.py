"""Attendance of the quarterly account review: who attended, per side (issue 26, implementation guide)

Revision ID: 0018_review_attendance
Revises: 0017_review_decisions
Create Date: 2026-12-07 02:10:00
"""

import sqlalchemy as sa
from alembic import op

import abm_sla.warehouse.schema

revision = "0018_review_attendance"
down_revision = "0017_review_decisions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "review_attendance",
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("side", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("recorded_at", abm_sla.warehouse.schema.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("period", "side", "name", name=op.f("pk_review_attendance")),
    )


def downgrade() -> None:
    op.drop_table("review_attendance")
