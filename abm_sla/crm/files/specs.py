"""What the export folder holds: its files, the kind each maps to, and the rules its values follow."""

from __future__ import annotations

from dataclasses import dataclass

SOURCE = "files"

#: Kinds whose stored ``raw`` is the whole CSV row; the high-volume kinds keep only their extra columns.
FULL_RAW_KINDS = frozenset({"accounts", "contacts", "users", "opportunities"})

#: Quarantine reasons that depend on which accounts are known (a later load may accept the row).
REFERENCE_REASONS = ("unknown account ", "unknown domain ")


@dataclass(frozen=True)


class FileSpec:
    """How one CSV file maps to a normalized kind."""

    file: str
    kind: str
    required: tuple[str, ...]
    timestamps: tuple[str, ...] = ()
    numbers: tuple[str, ...] = ()
    booleans: tuple[str, ...] = ()
    id_column: str | None = "id"

FILE_SPECS = (
    FileSpec("accounts.csv", "accounts", ("id", "name"), ("created_at", "updated_at"),
             ("employees", "annual_revenue")),
    FileSpec("users.csv", "users", ("id",), booleans=("active",)),
    FileSpec("contacts.csv", "contacts", ("id", "account_id"), ("created_at", "updated_at")),
    FileSpec("activities.csv", "activities", ("id", "account_id", "type", "occurred_at"),
             ("occurred_at", "logged_at")),
    FileSpec("intent.csv", "intent_signals", ("topic", "score", "observed_at"), ("observed_at",), ("score",),
             id_column=None),
    FileSpec("opportunities.csv", "opportunities", ("id", "account_id"), ("created_at", "close_date"),
             ("amount",), ("is_closed", "is_won")),
    FileSpec("status_changes.csv", "status_changes", ("account_id", "status", "changed_at"), ("changed_at",),
             id_column=None),
    FileSpec("target_accounts.csv", "target_accounts", ("account_id",), ("added_at", "removed_at", "agreed_at"),
             ("priority",), id_column=None),
    # issue 26 (optional): requests between the teams; kind materials | account_info
    FileSpec("requests.csv", "requests", ("request_id", "account_id", "kind", "requested_at"),
             ("requested_at", "answered_at"), id_column="request_id"),
)

#: Kinds whose derived row key may repeat within one file (the later row wins).
KEYS_MAY_REPEAT = frozenset({"status_changes", "target_accounts"})

TRUE_VALUES = {"true", "1"}

FALSE_VALUES = {"false", "0"}

#: A number written with thousands separators.
THOUSANDS = r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d*)?"

#: The plausible range of each optional number: a value outside it (``1e308`` employees, a negative
#: amount) is dropped from its row and recorded, as an unparsable one. The largest employer has about
#: 2.1 million employees and the largest company about $0.7 trillion of revenue; an opportunity of a
#: trillion dollars is a typing error.
PLAUSIBLE = {"employees": (0, 10_000_000), "annual_revenue": (0, 1e13), "amount": (0, 1e12), "priority": (0, 1e6)}

#: Optional numbers that are whole numbers (``3.7`` employees is dropped).
WHOLE_NUMBERS = frozenset({"employees"})

#: The reason of a row loaded without one of its values (stored in ``quarantine`` too).
DROPPED = "value dropped, row loaded: "
