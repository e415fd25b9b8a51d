"""requests between the teams and their answers (issue 26, ABM template: materials, account information)

Revision ID: 0015_requests
Revises: 0014_signoffs
Create Date: 2026-12-07 01:00:00
"""

import sqlalchemy as sa
from alembic import op

import abm_sla.warehouse.schema

revision = "0015_requests"
down_revision = "0014_signoffs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    utc = abm_sla.warehouse.schema.UtcDateTime(timezone=True)
    op.create_table(
        "requests",
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("source_id", sa.String(length=255), nullable=False),
        sa.Column("account_id", sa.String(length=255), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=True),
        sa.Column("requested_by", sa.String(length=255), nullable=True),
        sa.Column("requested_at", utc, nullable=True),
        sa.Column("answered_at", utc, nullable=True),
        sa.Column("owner_id", sa.String(length=255), nullable=True),
        sa.Column("shard", sa.Integer(), nullable=True),
        sa.Column("raw", sa.JSON(), nullable=True),
        sa.Column("deleted_at", utc, nullable=True),
        sa.Column("row_hash", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("source", "source_id", name=op.f("pk_requests")),
    )
    with op.batch_alter_table("requests") as batch_op:
        batch_op.create_index(batch_op.f("ix_requests_account_id"), ["account_id"], unique=False)
        batch_op.create_index("ix_requests_shard", ["shard", "requested_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("requests") as batch_op:
        batch_op.drop_index("ix_requests_shard")
        batch_op.drop_index(batch_op.f("ix_requests_account_id"))
    op.drop_table("requests")
