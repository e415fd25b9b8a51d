"""the escalations key gains the owner: a reassigned MQA's new owner's ladder is stored beside the old one's

Revision ID: 0012_escalations_owner_key
Revises: 0011_run_flow_run_id
Create Date: 2026-12-06 22:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_escalations_owner_key"
down_revision = "0011_run_flow_run_id"
branch_labels = None
depends_on = None

OLD_KEY = ["account_id", "trigger_at", "clock", "level", "to_user_id"]
NEW_KEY = [*OLD_KEY, "owner_id"]


def upgrade() -> None:
    op.execute("UPDATE escalations SET owner_id = '' WHERE owner_id IS NULL")
    with op.batch_alter_table("escalations", recreate="always") as batch_op:
        batch_op.alter_column("owner_id", existing_type=sa.String(length=255), nullable=False)
        batch_op.drop_constraint("pk_escalations", type_="primary")
        batch_op.create_primary_key("pk_escalations", NEW_KEY)


def downgrade() -> None:
    # the old key holds one owner per level and recipient: keep the earliest opened
    op.execute("DELETE FROM escalations WHERE EXISTS (SELECT 1 FROM escalations AS e WHERE "
               "e.account_id = escalations.account_id AND e.trigger_at = escalations.trigger_at AND "
               "e.clock = escalations.clock AND e.level = escalations.level AND "
               "e.to_user_id = escalations.to_user_id AND e.opened_at < escalations.opened_at)")
    with op.batch_alter_table("escalations", recreate="always") as batch_op:
        batch_op.drop_constraint("pk_escalations", type_="primary")
        batch_op.create_primary_key("pk_escalations", OLD_KEY)
        batch_op.alter_column("owner_id", existing_type=sa.String(length=255), nullable=True)
