"""tier-move ledger: recommendations made once until sales decides them

Revision ID: 0009_tier_moves
Revises: 0005_quarantine_resolved
Create Date: 2026-12-02 14:30:00
"""

import sqlalchemy as sa
from alembic import op

import abm_sla.warehouse.schema

revision = "0009_tier_moves"
down_revision = "0008_marketing_tal"
branch_labels = None
depends_on = None


def upgrade() -> None:
    utc = abm_sla.warehouse.schema.UtcDateTime(timezone=True)
    op.create_table(
        "tier_move_recommendations",
        sa.Column("account_id", sa.String(length=255), nullable=False),
        sa.Column("recommended_at", utc, nullable=False),
        sa.Column("rule", sa.String(length=32), nullable=False),
        sa.Column("from_tier", sa.String(length=16), nullable=False),
        sa.Column("proposed_tier", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("decided_at", utc, nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=True),
        sa.Column("evaluated_at", utc, nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("account_id", "recommended_at", name=op.f("pk_tier_move_recommendations")),
    )
    op.create_index("ix_tier_move_recommendations_decision", "tier_move_recommendations", ["decision"])


def downgrade() -> None:
    op.drop_index("ix_tier_move_recommendations_decision", table_name="tier_move_recommendations")
    op.drop_table("tier_move_recommendations")
