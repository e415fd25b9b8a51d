"""escalation of any clock, reassignment on breach and disputes

The escalations key gains the clock (several clocks may escalate the same MQA at the same level);
mqas gain reassigned_at; new tables reassignments, disputes and dispute_notes.

Revision ID: 0007_escalation_disputes
Revises: 0005_quarantine_resolved
Create Date: 2026-12-02 14:30:00
"""

import sqlalchemy as sa
from alembic import op

import abm_sla.warehouse.schema

revision = "0007_escalation_disputes"
down_revision = "0006_dispositions"
branch_labels = None
depends_on = None

UTC = abm_sla.warehouse.schema.UtcDateTime(timezone=True)
OLD_KEY = ["account_id", "trigger_at", "level", "to_user_id"]
NEW_KEY = ["account_id", "trigger_at", "clock", "level", "to_user_id"]


def upgrade() -> None:
    with op.batch_alter_table("escalations", recreate="always") as batch_op:
        batch_op.drop_constraint("pk_escalations", type_="primary")
        batch_op.create_primary_key("pk_escalations", NEW_KEY)
    with op.batch_alter_table("mqas") as batch_op:
        batch_op.add_column(sa.Column("reassigned_at", UTC, nullable=True))
    op.create_table(
        "reassignments",
        sa.Column("account_id", sa.String(length=255), nullable=False),
        sa.Column("trigger_at", UTC, nullable=False),
        sa.Column("clock", sa.String(length=32), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("reassigned_at", UTC, nullable=False),
        sa.Column("from_owner_id", sa.String(length=255), nullable=True),
        sa.Column("to_owner_id", sa.String(length=255), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.Column("writeback_key", sa.String(length=64), nullable=True),
        sa.Column("writeback_done_at", UTC, nullable=True),
        sa.Column("shard", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("account_id", "trigger_at", name=op.f("pk_reassignments")),
    )
    op.create_index(op.f("ix_reassignments_shard"), "reassignments", ["shard"], unique=False)
    op.create_table(
        "disputes",
        sa.Column("dispute_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("account_id", sa.String(length=255), nullable=False),
        sa.Column("disagreement", sa.Text(), nullable=False),
        sa.Column("raised_by", sa.String(length=255), nullable=False),
        sa.Column("requested_resolution", sa.Text(), nullable=False),
        sa.Column("opened_at", UTC, nullable=False),
        sa.Column("steps_from", UTC, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("closed_at", UTC, nullable=True),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.Column("times_reopened", sa.Integer(), nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("dispute_id", name=op.f("pk_disputes")),
    )
    op.create_index(op.f("ix_disputes_account_id"), "disputes", ["account_id"], unique=False)
    op.create_table(
        "dispute_notes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("dispute_id", sa.Integer(), nullable=False),
        sa.Column("at", UTC, nullable=False),
        sa.Column("author", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dispute_notes")),
    )
    op.create_index(op.f("ix_dispute_notes_dispute_id"), "dispute_notes", ["dispute_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_dispute_notes_dispute_id"), table_name="dispute_notes")
    op.drop_table("dispute_notes")
    op.drop_index(op.f("ix_disputes_account_id"), table_name="disputes")
    op.drop_table("disputes")
    op.drop_index(op.f("ix_reassignments_shard"), table_name="reassignments")
    op.drop_table("reassignments")
    with op.batch_alter_table("mqas") as batch_op:
        batch_op.drop_column("reassigned_at")
    op.execute("DELETE FROM escalations WHERE clock <> 'first_touch'")  # the old key cannot hold them
    with op.batch_alter_table("escalations", recreate="always") as batch_op:
        batch_op.drop_constraint("pk_escalations", type_="primary")
        batch_op.create_primary_key("pk_escalations", OLD_KEY)
