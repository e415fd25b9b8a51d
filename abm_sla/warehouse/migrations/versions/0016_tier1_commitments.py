"""target_accounts gain priority: the account's rank on the list (issue 26, the top accounts of the list)

Revision ID: 0016_tier1_commitments
Revises: 0015_requests
Create Date: 2026-12-07 01:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0016_tier1_commitments"
down_revision = "0015_requests"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("target_accounts") as batch_op:
        batch_op.add_column(sa.Column("priority", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("target_accounts") as batch_op:
        batch_op.drop_column("priority")
