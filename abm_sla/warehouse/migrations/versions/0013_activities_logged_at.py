"""activities gain logged_at: when the activity was entered in the CRM (issue 26, the crm_hygiene clock)

Revision ID: 0013_activities_logged_at
Revises: 0012_escalations_owner_key
Create Date: 2026-12-06 23:20:00
"""

import sqlalchemy as sa
from alembic import op

import abm_sla.warehouse.schema

revision = "0013_activities_logged_at"
down_revision = "0012_escalations_owner_key"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("activities") as batch_op:
        batch_op.add_column(sa.Column("logged_at", abm_sla.warehouse.schema.UtcDateTime(timezone=True),
                                      nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("activities") as batch_op:
        batch_op.drop_column("logged_at")
