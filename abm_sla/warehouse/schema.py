"""Warehouse tables (SQLAlchemy Core). Alembic migrations in ``migrations/`` create them.

Raw CRM tables are keyed on ``(source, source_id)``, keep the raw row as JSON (see docs/crm/export-folder.md's raw-row
policy) and a 64-bit ``row_hash`` of the stored values, so a reload skips rows that did not change;
derived tables (scores, MQAs, clocks, escalations) are keyed on their business key
so every write is an idempotent upsert.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator):
    """Timezone-aware UTC in and out, on SQLite (no native zone) and PostgreSQL alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: abm-sla stores UTC-aware timestamps only")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


metadata = MetaData(
    naming_convention={
        "pk": "pk_%(table_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    }
)


def _crm_table(name: str, *columns: Column, sharded: bool = True, event_time: str | None = None) -> Table:
    """A raw CRM table: (source, source_id) key, the kind's columns, raw row, soft delete, row hash.

    ``sharded`` tables belong to an account and carry its shard number (:mod:`abm_sla.infra.shards`),
    indexed with the ``event_time`` column if any, so a shard of a run reads only its own rows
    (in its window) with one range scan.
    """
    shard: tuple = ()
    if sharded:
        shard = (Column("shard", Integer), Index(f"ix_{name}_shard", "shard", *([event_time] if event_time else [])))
    if event_time in ("occurred_at", "observed_at"):  # signals of chosen accounts (incremental runs), in a window
        shard += (Index(f"ix_{name}_account_time", "account_id", event_time),)
    return Table(
        name,
        metadata,
        Column("source", String(32), primary_key=True),
        Column("source_id", String(255), primary_key=True),
        *columns,
        *shard,
        Column("raw", JSON),
        Column("deleted_at", UtcDateTime),
        Column("row_hash", BigInteger),
    )


accounts = _crm_table(
    "accounts",
    Column("name", Text),
    Column("domain", String(255), index=True),
    Column("industry", Text),
    Column("employees", Float),
    Column("annual_revenue", Float),
    Column("country", String(8)),
    Column("owner_id", String(255)),
    Column("tier", String(32)),
    Column("created_at", UtcDateTime),
    Column("updated_at", UtcDateTime),
)
contacts = _crm_table(
    "contacts",
    Column("account_id", String(255), index=True),
    Column("title", Text),
    Column("email", Text),
    Column("created_at", UtcDateTime),
    Column("updated_at", UtcDateTime),
)
activities = _crm_table(
    "activities",
    Column("account_id", String(255)),
    Column("type", String(32)),
    Column("occurred_at", UtcDateTime, index=True),
    Column("contact_id", String(255)),
    Column("owner_id", String(255)),
    Column("url", Text),
    Column("subject", Text),
    #: when the activity was entered in the CRM (optional; issue 26: the crm_hygiene clock)
    Column("logged_at", UtcDateTime),
    event_time="occurred_at",
)
intent_signals = _crm_table(
    "intent_signals",
    Column("account_id", String(255)),
    Column("topic", Text),
    Column("score", Float),
    Column("observed_at", UtcDateTime, index=True),
    Column("provider", String(64)),
    event_time="observed_at",
)
opportunities = _crm_table(
    "opportunities",
    Column("account_id", String(255), index=True),
    Column("stage", Text),
    Column("amount", Float),
    Column("created_at", UtcDateTime),
    Column("close_date", UtcDateTime),
    Column("is_closed", Boolean),
    Column("is_won", Boolean),
)
users = _crm_table(
    "users",
    Column("name", Text),
    Column("email", Text),
    Column("role", String(64)),
    Column("manager_id", String(255)),
    Column("time_zone", String(64)),
    Column("country", String(8)),
    Column("active", Boolean),
    sharded=False,
)
status_changes = _crm_table(
    "status_changes",
    Column("account_id", String(255), index=True),
    Column("status", String(64)),
    Column("changed_at", UtcDateTime),
    Column("changed_by", String(255)),
    Column("reason", Text),
    event_time="changed_at",
)
target_accounts = _crm_table(
    "target_accounts",
    Column("account_id", String(255), index=True),
    Column("added_at", UtcDateTime),
    Column("removed_at", UtcDateTime),
    Column("agreed_at", UtcDateTime),
    Column("agreed_by", String(255)),
    Column("priority", Float),
)
#: requests between the teams and their answers (issue 26; optional ``requests.csv``)
requests = _crm_table(
    "requests",
    Column("account_id", String(255), index=True),
    Column("kind", String(32)),
    Column("requested_by", String(255)),
    Column("requested_at", UtcDateTime),
    Column("answered_at", UtcDateTime),
    Column("owner_id", String(255)),
    event_time="requested_at",
)

CRM_TABLES: dict[str, Table] = {
    table.name: table
    for table in (accounts, contacts, activities, intent_signals, opportunities, users, status_changes,
                  target_accounts, requests)
}

quarantine = Table(
    "quarantine",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(32), nullable=False),
    Column("object_name", String(255), nullable=False),
    Column("row", String(64), nullable=False),
    Column("reason", Text, nullable=False),
    Column("payload", JSON),
    Column("payload_hash", String(64), nullable=False),
    Column("first_run_id", String(64)),
    Column("recorded_at", UtcDateTime, nullable=False),
    Column("resolved_at", UtcDateTime),
    Column("resolved_run_id", String(64)),
    UniqueConstraint("source", "object_name", "payload_hash", "reason"),
)

#: One row per file an export-folder load read to the end: its fingerprint, so an unchanged file is skipped
#: next time; ``reference_rows`` counts rows whose fate depends on the accounts known (see ``crm/files/``).
load_fingerprints = Table(
    "load_fingerprints",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(32), nullable=False),
    Column("file", String(255), nullable=False),
    Column("path", Text, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("mtime_ns", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("rows", Integer, nullable=False),
    Column("quarantined", Integer, nullable=False),
    Column("reference_rows", Integer, nullable=False),
    Column("run_id", String(64)),
    Column("loaded_at", UtcDateTime, nullable=False),
    Index("ix_load_fingerprints_source_file", "source", "file"),
)

runs = Table(
    "runs",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("as_of", UtcDateTime),
    Column("started_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime),
    Column("status", String(16), nullable=False),
    Column("model_version", String(64)),
    Column("summary", JSON),
    Column("pid", Integer),
    Column("host", String(255)),
    Column("flow_run_id", String(64), index=True),
)
"""One row per pipeline run: ``status`` running, completed, failed, aborted or undone; ``pid`` and
``host`` name the process of a running run, so a ``running`` row whose process is gone reads as dead;
``flow_run_id`` is the Prefect flow run that made it (empty outside Prefect)."""

score_history = Table(
    "score_history",
    metadata,
    Column("account_id", String(255), primary_key=True),
    Column("as_of", UtcDateTime, primary_key=True),
    Column("model_version", String(64), primary_key=True),
    Column("firmographic", Integer, nullable=False),
    Column("engagement", Integer, nullable=False),
    Column("intent", Integer, nullable=False),
    Column("total", Integer, nullable=False),
    Column("qualified", Boolean, nullable=False),
    Column("gates", JSON, nullable=False),
    Column("reasons", JSON, nullable=False),
    Column("run_id", String(64)),
    Column("score_hash", String(40)),
)

sync_cursors = Table(
    "sync_cursors",
    metadata,
    Column("source", String(32), primary_key=True),
    Column("object_name", String(64), primary_key=True),
    Column("cursor", String(255)),
    Column("updated_at", UtcDateTime, nullable=False),
)

mqas = Table(
    "mqas",
    metadata,
    Column("account_id", String(255), primary_key=True),
    Column("trigger_at", UtcDateTime, primary_key=True),
    Column("firmographic", Integer, nullable=False),
    Column("engagement", Integer, nullable=False),
    Column("intent", Integer, nullable=False),
    Column("total", Integer, nullable=False),
    Column("reasons", JSON, nullable=False),
    Column("model_version", String(64), nullable=False),
    Column("tier", Integer),
    Column("owner_id", String(255)),
    Column("routed_at", UtcDateTime),
    Column("tier_reason", Text),
    Column("owner_reason", Text),
    Column("pricing_visit", Boolean),
    Column("ended_at", UtcDateTime),
    Column("reassigned_at", UtcDateTime),
    Column("writeback_key", String(64)),
    Column("writeback_done_at", UtcDateTime),
    Column("run_id", String(64)),
    Column("shard", Integer, index=True),
)

sla_clocks = Table(
    "sla_clocks",
    metadata,
    Column("account_id", String(255), primary_key=True),
    Column("trigger_at", UtcDateTime, primary_key=True),
    Column("clock", String(32), primary_key=True),
    Column("period", Integer, primary_key=True, server_default="0"),
    Column("status", String(16), nullable=False),
    Column("due_at", UtcDateTime),
    Column("met_at", UtcDateTime),
    Column("owner_id", String(255)),
    Column("tier", Integer),
    Column("as_of", UtcDateTime),
    Column("shard", Integer, index=True),
)

escalations = Table(
    "escalations",
    metadata,
    Column("account_id", String(255), primary_key=True),
    Column("trigger_at", UtcDateTime, primary_key=True),
    Column("clock", String(32), primary_key=True),
    Column("level", Integer, primary_key=True),
    Column("to_user_id", String(255), primary_key=True),
    Column("opened_at", UtcDateTime, nullable=False),
    # in the key: after a reassignment the new owner's ladder is stored beside the old owner's ("" = no owner)
    Column("owner_id", String(255), primary_key=True),
    Column("steps_taken", Text),
    Column("resolution", Text),
    Column("shard", Integer, index=True),
)

signoffs = Table(
    "signoffs",
    metadata,
    Column("signed_at", UtcDateTime, primary_key=True),
    Column("signed_by", String(255), primary_key=True),
    Column("role", String(255), primary_key=True),
    Column("policy_sha256", String(64), nullable=False),
    Column("policy_file", String(1024), nullable=False),
)
"""The SLA as a signed document: one row per signature (``abm-sla signoff``): who, in which role, when, and
the SHA-256 of the policy file signed. Not undone with a run."""

review_decisions = Table(
    "review_decisions",
    metadata,
    Column("decision_id", Integer, primary_key=True, autoincrement=True),
    Column("month", String(7), nullable=False, index=True),
    Column("text", Text, nullable=False),
    Column("owner", String(255), nullable=False),
    Column("due", String(10)),
    Column("recorded_at", UtcDateTime, nullable=False),
    Column("status", String(16), nullable=False),
    Column("outcome", Text),
    Column("updated_at", UtcDateTime, nullable=False),
)
"""The decisions a monthly review took (``abm-sla decision add``): the month of the review (``2026-03``), what
was decided, who owns it, an optional due date; ``status`` open or done (with its ``outcome``). The next month's
review shows them. Not undone with a run."""

review_attendance = Table(
    "review_attendance",
    metadata,
    Column("period", String(7), primary_key=True),
    Column("side", String(16), primary_key=True),
    Column("name", String(255), primary_key=True),
    Column("recorded_at", UtcDateTime, nullable=False),
)
"""Who attended the quarterly account review (``abm-sla review attend``): the quarter (``2026-Q1``), the side
(sales or marketing) and the attendee's name. The quarterly report shows attendance per side. Not undone with a
run."""

alert_log = Table(
    "alert_log",
    metadata,
    Column("account_id", String(255), primary_key=True),
    Column("trigger_at", UtcDateTime, primary_key=True),
    Column("clock", String(32), primary_key=True),
    Column("level", Integer, primary_key=True),
    Column("owner_id", String(255), primary_key=True),
    Column("channel", String(255), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("claimed_at", UtcDateTime, nullable=False),
    Column("sent_at", UtcDateTime),
    Column("run_id", String(64)),
)
"""Breach alerts sent, one row per escalation level (or digest day) and notification block: claimed
(``sending``) before the message goes out and ``sent`` after, so neither a retry nor a second run sends
it twice. Not undone with a run: a message cannot be taken back."""

reassignments = Table(
    "reassignments",
    metadata,
    Column("account_id", String(255), primary_key=True),
    Column("trigger_at", UtcDateTime, primary_key=True),
    Column("clock", String(32), nullable=False),
    Column("level", Integer, nullable=False),
    Column("reassigned_at", UtcDateTime, nullable=False),
    Column("from_owner_id", String(255)),
    Column("to_owner_id", String(255)),
    Column("status", String(16), nullable=False),
    Column("reason", Text),
    Column("run_id", String(64)),
    Column("writeback_key", String(64)),
    Column("writeback_done_at", UtcDateTime),
    Column("shard", Integer, index=True),
)
"""The audit of reassignments on breach: one row per MQA at most (``status`` pending until the
finishing step of the SLA run hands out the round-robin turn, then reassigned, or kept when no
other active sales rep exists). ``reassigned_at`` is the reassigning level's opening moment."""

disputes = Table(
    "disputes",
    metadata,
    Column("dispute_id", Integer, primary_key=True, autoincrement=True),
    Column("account_id", String(255), nullable=False, index=True),
    Column("disagreement", Text, nullable=False),
    Column("raised_by", String(255), nullable=False),
    Column("requested_resolution", Text, nullable=False),
    Column("opened_at", UtcDateTime, nullable=False),
    Column("steps_from", UtcDateTime, nullable=False),
    Column("status", String(16), nullable=False),
    Column("closed_at", UtcDateTime),
    Column("resolution", Text),
    Column("outcome", String(32)),
    Column("times_reopened", Integer, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)
"""Disputes rev-ops opened on an account: open until closed with a resolution; a reopened dispute
restarts its steps at ``steps_from`` (the reopening) and keeps its first ``opened_at``."""

dispute_notes = Table(
    "dispute_notes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dispute_id", Integer, nullable=False, index=True),
    Column("at", UtcDateTime, nullable=False),
    Column("author", String(255), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("text", Text, nullable=False),
)
"""A dispute's history: opened, note, closed, reopened; never updated or deleted."""

routing_state = Table(
    "routing_state",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", String(255)),
)

change_journal = Table(
    "change_journal",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),
    Column("source", String(80), nullable=False),
    Column("shard", Integer),
    Column("account_id", String(255)),
    Column("recorded_at", UtcDateTime, nullable=False),
)
"""What each stored page changed, in commit order: one row per account, or per shard (``account_id``
NULL: every account of the shard) for large pages, or for the whole CRM (``shard`` NULL too: users).
Incremental runs read the rows after their reference run's ``seq``."""

stage_runs = Table(
    "stage_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("stage", String(32), nullable=False, index=True),
    Column("run_id", String(64), nullable=False),
    Column("as_of", UtcDateTime, nullable=False),
    Column("config_version", String(128), nullable=False),
    Column("model_version", String(64)),
    Column("journal_seq", Integer, nullable=False),
    Column("accounts", JSON(none_as_null=True)),
    Column("mode", String(16), nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("summary", JSON),
)
"""One row per completed stage run (score, fire-and-route, evaluate-sla), written with its last results:
what it computed for (``as_of``, the configuration's fingerprint, the scoring model's version label,
``accounts``: NULL = all) and the journal
position it had seen. The next run with that stage and version uses the latest one at or before its
``as_of`` as its reference and recomputes only what changed since."""

undo_log = Table(
    "undo_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(64), nullable=False, index=True),
    Column("table_name", String(64), nullable=False),
    Column("existed", Boolean, nullable=False),
    Column("row", JSON, nullable=False),
)
"""What a run replaced, written in the transaction of the write: per derived row, its values before
the run (``existed``) or only its key (the run added it). ``abm-sla undo`` restores the earliest
entry of each key; rows a run added and that carry its ``run_id`` (scores, MQAs) are not logged."""

tier_move_recommendations = Table(
    "tier_move_recommendations",
    metadata,
    Column("account_id", String(255), primary_key=True),
    Column("recommended_at", UtcDateTime, primary_key=True),
    Column("rule", String(32), nullable=False),
    Column("from_tier", String(16), nullable=False),
    Column("proposed_tier", String(16), nullable=False),
    Column("reason", Text),
    Column("decision", String(16), nullable=False),
    Column("decided_at", UtcDateTime),
    Column("decision_note", Text),
    Column("evaluated_at", UtcDateTime, nullable=False),
    Column("run_id", String(64)),
    Index("ix_tier_move_recommendations_decision", "decision"),
)
"""The tier-move ledger (:mod:`abm_sla.domain.tier_moves`): one row per recommendation, made once per account
until sales decides it; ``decision`` pending, accepted or declined from the CRM's tier changes."""
