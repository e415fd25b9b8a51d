"""incremental runs: shard numbers on account rows, the change journal, stage runs, change-only score history

Revision ID: 0003_incremental_runs
Revises: 0002_load_fingerprints
Create Date: 2026-12-02 11:00:00
"""

import json

import pandas as pd
import sqlalchemy as sa
from alembic import op

import abm_sla.warehouse.schema
from abm_sla.infra.shards import shard_keys

revision = "0003_incremental_runs"
down_revision = "0002_load_fingerprints"
branch_labels = None
depends_on = None

UtcDateTime = abm_sla.warehouse.schema.UtcDateTime
SHARDED = {  # table: the column holding the account id, and the event time indexed with the shard
    "accounts": ("source_id", None),
    "contacts": ("account_id", None),
    "activities": ("account_id", "occurred_at"),
    "intent_signals": ("account_id", "observed_at"),
    "opportunities": ("account_id", None),
    "status_changes": ("account_id", "changed_at"),
    "mqas": ("account_id", None),
    "sla_clocks": ("account_id", None),
    "escalations": ("account_id", None),
}
SCORE_VALUES = ["firmographic", "engagement", "intent", "total", "qualified", "gates", "reasons"]


def upgrade() -> None:
    for table, (_, event_time) in SHARDED.items():
        with op.batch_alter_table(table) as batch_op:
            batch_op.add_column(sa.Column("shard", sa.Integer(), nullable=True))
            batch_op.create_index(f"ix_{table}_shard", ["shard", *([event_time] if event_time else [])], unique=False)
            if table in ("activities", "intent_signals"):
                batch_op.create_index(f"ix_{table}_account_time", ["account_id", event_time], unique=False)
    op.create_table(
        "change_journal",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=80), nullable=False),
        sa.Column("shard", sa.Integer(), nullable=True),
        sa.Column("account_id", sa.String(length=255), nullable=True),
        sa.Column("recorded_at", UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_change_journal")),
    )
    op.create_table(
        "stage_runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("stage", sa.String(length=32), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("as_of", UtcDateTime(timezone=True), nullable=False),
        sa.Column("config_version", sa.String(length=128), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=True),
        sa.Column("journal_seq", sa.Integer(), nullable=False),
        sa.Column("accounts", sa.JSON(), nullable=True),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("started_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stage_runs")),
    )
    with op.batch_alter_table("stage_runs") as batch_op:
        batch_op.create_index("ix_stage_runs_stage", ["stage"], unique=False)
    with op.batch_alter_table("score_history") as batch_op:
        batch_op.add_column(sa.Column("score_hash", sa.String(length=40), nullable=True))
    connection = op.get_bind()
    for table, (account_column, _) in SHARDED.items():
        _fill_shards(connection, table, account_column)
    _score_runs_from_history(connection)
    _drop_unchanged_scores(connection)
    _fill_score_hashes(connection)


def _fill_shards(connection: sa.Connection, table: str, account_column: str) -> None:
    """Every existing row's shard number, from its account id (one update per account)."""
    accounts = pd.Series(connection.execute(
        sa.text(f"SELECT DISTINCT {account_column} FROM {table} WHERE {account_column} IS NOT NULL")).scalars().all(),
        dtype=object)
    if accounts.empty:
        return
    shards = [int(key) for key in shard_keys(accounts)]
    connection.execute(sa.text(f"UPDATE {table} SET shard = :shard WHERE {account_column} = :account"),
                       [{"shard": key, "account": account} for key, account in zip(shards, accounts, strict=True)])


def _score_runs_from_history(connection: sa.Connection) -> None:
    """One ``score`` stage run per scoring run recorded in the history (the scores export reads them)."""
    runs = pd.DataFrame(connection.execute(sa.text(
        "SELECT h.run_id, h.as_of, h.model_version, MIN(r.started_at) AS started_at, MIN(r.kind) AS kind, "
        "COUNT(*) AS scored FROM score_history h LEFT JOIN runs r ON r.run_id = h.run_id "
        "GROUP BY h.run_id, h.as_of, h.model_version")).fetchall(),
        columns=["run_id", "as_of", "model_version", "started_at", "kind", "scored"])
    if runs.empty:
        return
    runs["started_at"] = runs["started_at"].fillna(runs["as_of"])
    runs = runs.sort_values(["started_at", "as_of"], kind="stable")
    table = abm_sla.warehouse.schema.stage_runs
    for run in runs.to_dict(orient="records"):
        accounts = None
        if run["kind"] == "recalculate":  # a what-if applied to chosen accounts scored only those
            accounts = sorted(connection.execute(
                sa.text("SELECT account_id FROM score_history WHERE run_id = :run_id"), {"run_id": run["run_id"]}
            ).scalars())
        connection.execute(table.insert().values(
            stage="score", run_id=run["run_id"] or "", as_of=_utc(run["as_of"]),
            config_version=f"legacy:{run['model_version']}", model_version=run["model_version"], journal_seq=0,
            accounts=accounts, mode="full",
            started_at=_utc(run["started_at"]), summary={"accounts_scored": int(run["scored"])},
        ))


def _drop_unchanged_scores(connection: sa.Connection) -> None:
    """Keep a score only where it differs from the account's previous one under the same model."""
    history = pd.DataFrame(connection.execute(sa.text(
        f"SELECT account_id, as_of, model_version, {', '.join(SCORE_VALUES)} FROM score_history")).fetchall(),
        columns=["account_id", "as_of", "model_version", *SCORE_VALUES])
    if history.empty:
        return
    history["as_of_key"] = pd.to_datetime(history["as_of"], utc=True, format="ISO8601")
    history = history.sort_values(["account_id", "model_version", "as_of_key"], kind="stable")
    value = history[SCORE_VALUES].map(lambda cell: json.dumps(cell, sort_keys=True) if isinstance(cell, dict | list)
                                      else str(cell)).agg("|".join, axis=1)
    series = history[["account_id", "model_version"]]
    same_series = series.eq(series.shift()).all(axis=1)
    redundant = history[same_series & value.eq(value.shift())]
    if redundant.empty:
        return
    connection.execute(
        sa.text("DELETE FROM score_history WHERE account_id = :account_id AND as_of = :as_of "
                "AND model_version = :model_version"),
        redundant[["account_id", "as_of", "model_version"]].to_dict(orient="records"),
    )


def _fill_score_hashes(connection: sa.Connection) -> None:
    """The fingerprint new runs compare against (computed as the scoring stage computes it)."""
    from abm_sla.warehouse.score_history import score_hashes

    table = abm_sla.warehouse.schema.score_history
    selected = [table.c.account_id, table.c.as_of, table.c.model_version, *(table.c[name] for name in SCORE_VALUES)]
    rows = pd.DataFrame(connection.execute(sa.select(*selected)).fetchall(),
                        columns=["account_id", "as_of", "model_version", *SCORE_VALUES])
    if rows.empty:
        return
    rows["score_hash"] = score_hashes(rows.assign(qualified=rows["qualified"].astype(bool)))
    statement = table.update().where(
        table.c.account_id == sa.bindparam("key_account"), table.c.as_of == sa.bindparam("key_as_of"),
        table.c.model_version == sa.bindparam("key_model"),
    ).values(score_hash=sa.bindparam("hash"))
    connection.execute(statement, [
        {"key_account": row.account_id, "key_as_of": row.as_of, "key_model": row.model_version, "hash": row.score_hash}
        for row in rows.itertuples()
    ])


def _utc(value):
    stamp = pd.Timestamp(value)
    return (stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")).to_pydatetime()


def downgrade() -> None:
    with op.batch_alter_table("score_history") as batch_op:
        batch_op.drop_column("score_hash")
    op.drop_table("stage_runs")
    op.drop_table("change_journal")
    for table in SHARDED:
        with op.batch_alter_table(table) as batch_op:
            if table in ("activities", "intent_signals"):
                batch_op.drop_index(f"ix_{table}_account_time")
            batch_op.drop_index(f"ix_{table}_shard")
            batch_op.drop_column("shard")
