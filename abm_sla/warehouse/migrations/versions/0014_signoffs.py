"""SLA sign-offs: who signed which version of the policy file, and when

Revision ID: 0014_signoffs
Revises: 0013_activities_logged_at
Create Date: 2026-12-06 23:15:00
"""

import sqlalchemy as sa
from alembic import op

import abm_sla.warehouse.schema

revision = "0014_signoffs"
down_revision = "0013_activities_logged_at"
branch_labels = None
depends_on = None


def upgrade() -> None:
    utc = abm_sla.warehouse.schema.UtcDateTime(timezone=True)
    op.create_table(
        "signoffs",
        sa.Column("signed_at", utc, nullable=False),
        sa.Column("signed_by", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=255), nullable=False),
        sa.Column("policy_sha256", sa.String(length=64), nullable=False),
        sa.Column("policy_file", sa.String(length=1024), nullable=False),
        sa.PrimaryKeyConstraint("signed_at", "signed_by", "role", name=op.f("pk_signoffs")),
    )


def downgrade() -> None:
    op.drop_table("signoffs")
