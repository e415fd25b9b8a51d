"""target account list: membership periods with dates and the monthly agreement (issue 15)

Revision ID: 0008_marketing_tal
Revises: 0005_quarantine_resolved
Create Date: 2026-12-02 14:30:00
"""

import sqlalchemy as sa
from alembic import op

import abm_sla.warehouse.schema

revision = "0008_marketing_tal"
down_revision = "0007_escalation_disputes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    utc = abm_sla.warehouse.schema.UtcDateTime(timezone=True)
    op.create_table(
        "target_accounts",
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("source_id", sa.String(length=255), nullable=False),
        sa.Column("account_id", sa.String(length=255), nullable=True),
        sa.Column("added_at", utc, nullable=True),
        sa.Column("removed_at", utc, nullable=True),
        sa.Column("agreed_at", utc, nullable=True),
        sa.Column("agreed_by", sa.String(length=255), nullable=True),
        sa.Column("shard", sa.Integer(), nullable=True),
        sa.Column("raw", sa.JSON(), nullable=True),
        sa.Column("deleted_at", utc, nullable=True),
        sa.Column("row_hash", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("source", "source_id", name=op.f("pk_target_accounts")),
    )
    with op.batch_alter_table("target_accounts") as batch_op:
        batch_op.create_index(batch_op.f("ix_target_accounts_account_id"), ["account_id"], unique=False)
        batch_op.create_index("ix_target_accounts_shard", ["shard"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("target_accounts") as batch_op:
        batch_op.drop_index("ix_target_accounts_shard")
        batch_op.drop_index(batch_op.f("ix_target_accounts_account_id"))
    op.drop_table("target_accounts")
