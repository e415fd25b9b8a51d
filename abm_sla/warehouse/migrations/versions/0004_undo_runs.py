"""undo runs: the undo log of derived rows a run replaced, and the process of a running run

Revision ID: 0004_undo_runs
Revises: 0003_incremental_runs
Create Date: 2026-12-02 12:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_undo_runs"
down_revision = "0003_incremental_runs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "undo_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("table_name", sa.String(length=64), nullable=False),
        sa.Column("existed", sa.Boolean(), nullable=False),
        sa.Column("row", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_undo_log")),
    )
    op.create_index(op.f("ix_undo_log_run_id"), "undo_log", ["run_id"], unique=False)
    with op.batch_alter_table("runs") as batch_op:
        batch_op.add_column(sa.Column("pid", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("host", sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch_op:
        batch_op.drop_column("host")
        batch_op.drop_column("pid")
    op.drop_index(op.f("ix_undo_log_run_id"), table_name="undo_log")
    op.drop_table("undo_log")
