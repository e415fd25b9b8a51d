"""load fingerprints and row hashes

Revision ID: 0002_load_fingerprints
Revises: 0001
Create Date: 2026-12-02 10:50:00.000000
"""

import sqlalchemy as sa
from alembic import op

import abm_sla.warehouse.schema

revision = "0002_load_fingerprints"
down_revision = "0001"
branch_labels = None
depends_on = None

CRM_TABLES = ("accounts", "contacts", "activities", "intent_signals", "opportunities", "users", "status_changes")


def upgrade() -> None:
    op.create_table(
        "load_fingerprints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("file", sa.String(length=255), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("mtime_ns", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("quarantined", sa.Integer(), nullable=False),
        sa.Column("reference_rows", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.Column("loaded_at", abm_sla.warehouse.schema.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_load_fingerprints")),
    )
    with op.batch_alter_table("load_fingerprints", schema=None) as batch_op:
        batch_op.create_index("ix_load_fingerprints_source_file", ["source", "file"], unique=False)
    for table in CRM_TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("row_hash", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    for table in CRM_TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("row_hash")
    with op.batch_alter_table("load_fingerprints", schema=None) as batch_op:
        batch_op.drop_index("ix_load_fingerprints_source_file")
    op.drop_table("load_fingerprints")
