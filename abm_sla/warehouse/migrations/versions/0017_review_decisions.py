"""The monthly review's decisions: what the review decided, who owns it, open or done (issue 26)

Revision ID: 0017_review_decisions
Revises: 0016_tier1_commitments
Create Date: 2026-12-07 00:50:00
"""

import sqlalchemy as sa
from alembic import op

import abm_sla.warehouse.schema

revision = "0017_review_decisions"
down_revision = "0016_tier1_commitments"
branch_labels = None
depends_on = None


def upgrade() -> None:
    utc = abm_sla.warehouse.schema.UtcDateTime(timezone=True)
    op.create_table(
        "review_decisions",
        sa.Column("decision_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("owner", sa.String(length=255), nullable=False),
        sa.Column("due", sa.String(length=10), nullable=True),
        sa.Column("recorded_at", utc, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.Column("updated_at", utc, nullable=False),
        sa.PrimaryKeyConstraint("decision_id", name=op.f("pk_review_decisions")),
    )
    op.create_index(op.f("ix_review_decisions_month"), "review_decisions", ["month"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_review_decisions_month"), table_name="review_decisions")
    op.drop_table("review_decisions")
