"""How report tables read to people: column labels, formatted numbers, names with ids secondary.

The CSV files keep the machine columns and raw values; the HTML and Markdown show :func:`present`
of each table: labels from :data:`LABELS`, percentages as ``66.7%``, business hours as ``4.2 h``,
money as ``$12,345``, verdicts as words (never ``True``/``False``), tiers as ``Tier 1``, and an owner
or account as ``name · id`` in one column (the HTML shows the id smaller).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

CURRENCY = "$"
#: Separates a name from its id inside one cell; the HTML renders the id as secondary text.
ID_SEPARATOR = " · "
MISSING = "—"

CLOCK_NAMES = {"routing_time": "routing", "first_touch": "first touch", "status_update": "status update",
               "cadence": "cadence"}
RULE_NAMES = {"remove_from_list": "off the list", "demote_1_to_2": "Tier 1 → 2", "promote_3_to_2": "Tier 3 → 2",
              "promote_2_to_1": "Tier 2 → 1"}
COMMITMENT_NAMES = {
    "mqa_volume": "MQAs delivered", "rejection_pct": "Rejection rate of MQAs",
    "first_touch_met_pct": "First touch within the window", "tier1_win_rate_pct": "Win rate, Tier 1",
    "opportunity_to_won_pct": "Opportunity → won", "sales_cycle_days": "Median sales cycle",
}

#: Column labels; ``(table, column)`` overrides ``column``.
LABELS: dict[str | tuple[str, str], str] = {
    "tier": "Tier", "owner": "Owner", "account": "Account", "clock": "Clock", "week": "Week", "month": "Month",
    "routing_time_met_pct": "Routing met", "routing_time_met_of_decided": "Routing met / decided",
    "first_touch_met_pct": "First touch met", "first_touch_met_of_decided": "First touch met / decided",
    "first_touch_target_pct": "First-touch target", "cadence_met_pct": "Cadence met",
    "cadence_met_of_decided": "Cadence met / decided", "status_update_met_pct": "Status update met",
    "status_update_met_of_decided": "Status update met / decided",
    "missed": "Missed", "pending": "Pending", "met": "Met",
    "answered": "Answered", "before_routing": "Touched before routing", "unanswered": "Unanswered",
    "median_bh": "Median response", "p90_bh": "90% answered within", "window": "Window",
    "trigger_at": "MQA fired", "due_at": "Due", "met_at": "Met at",
    "level": "Escalation level", "first_opened_at": "First escalated", "last_opened_at": "Last escalated",
    "recipients": "Escalated to", "steps_taken": "Steps taken", "resolution": "Resolution",
    "proposed_tier": "Proposed", "rule": "Move", "reason": "Why",
    "mqas": "MQAs", "commitment": "Commitment", "accepted": "Accepted", "acceptance_pct": "Acceptance",
    "rejected": "Rejected", "rejection_pct": "Rejection", "rejection_band": "Against the rejection band",
    "no_verdict": "No verdict yet", "converted": "Became opportunity", "mqa_to_opportunity_pct": "MQA → opportunity",
    "accounts": "Accounts on the list", "engaged": "Engaged", "engagement_pct": "Engaged %",
    "multi_stakeholder": "2+ stakeholders", "multi_stakeholder_pct": "2+ stakeholders %",
    "met_pct": "Met %", "target_pct": "Target", "on_target": "On target",
    "opportunity": "Reached opportunity", "won": "Won", "lost": "Lost", "open": "Still open",
    "to_opportunity_pct": "→ opportunity", "to_won_pct": "→ won",
    "attribution": "Attribution", "opportunities": "Opportunities", "amount": "Amount",
    "from_mqa": "From an MQA", "from_mqa_amount": "Amount from MQAs",
    "closed": "Closed", "win_rate_pct": "Win rate", "win_rate_target_pct": "Win-rate target",
    "median_cycle_days": "Median sales cycle", "cycle_target_days_max": "Cycle target (at most)",
    "cycle_on_target": "Cycle on target", "sample": "Sample",
    "quarter": "Quarter", "previous_quarter": "Quarter before", "value": "Actual", "target": "Target",
    "owners": "Owners measured", "owners_missed": "Owners missing it", "owners_missed_ids": "Who misses it",
    "owners_missed_names": "Who misses it",
    "previous_value": "Actual, quarter before", "previous_missed": "Verdict, quarter before", "chronic": "Chronic",
    "action": "Action", "diagnosis": "Diagnosis",
    "threshold": "Threshold", "with_verdict": "With verdict", "conversion_pct": "Conversion",
    "unit": "Unit", "current": "Current", "responses": "Responses", "p80": "80% answered within",
    "proposed": "Proposed", "from": "From", "to": "To", "run_rate": "Monthly run-rate",
    "open_for_days": "Open for", "side": "Side",
    "roles": "Roles", "people": "People escalated to", "reassigned_at": "Reassigned at", "from_owner": "From",
    "to_owner": "To",
    "status": "Status", "written_back": "Written back", "reassigned": "Reassigned", "kept": "Kept (no other rep)",
    "dispute_id": "Dispute", "raised_by": "Raised by", "disagreement": "Disagreement",
    "requested_resolution": "Requested resolution", "opened_at": "Opened", "times_reopened": "Times reopened",
    "step": "Step", "step_name": "Current step", "owed_by": "Owed by", "step_due_at": "Step due",
    "overdue": "Overdue", "notes": "Notes", "closed_at": "Closed", "days_to_close": "Days to close",
    "outcome": "Outcome", "reopened": "Reopened", "open_at_end": "Open at the end",
    "median_days_to_close": "Median days to close", ("dispute_counts", "opened"): "Opened",
    ("dispute_counts", "closed"): "Closed",
    ("mqa_volume", "commitment"): "Commitment (pro-rated)", ("mqa_volume", "met"): "Commitment met",
    ("four_numbers", "missed"): "Clocks missed", ("four_numbers", "pending"): "Clocks pending",
    ("chronic_misses", "missed"): "Verdict",
}
#: Name and id columns shown as one ``name · id`` column.
ENTITIES = (("owner", "owner_name", "owner_id"), ("account", "account_name", "account_id"))
DAYS = {"median_cycle_days", "cycle_target_days_max", "inactive_days", "open_for_days"}
MONEY = {"amount", "from_mqa_amount", "open_pipeline"}
#: Verdict columns: a true value is bad news.
BAD_WHEN_TRUE = {"missed", "previous_missed"}


@dataclass
class Presented:
    """A table ready to show: human labels, text cells, and which labels hold ``name · id`` cells."""

    columns: list[str]
    rows: list[list[str]]
    entities: set[str]


def label(table: str, column: str) -> str:
    return LABELS.get((table, column)) or LABELS.get(column) or column.replace("_", " ").capitalize()


def number(value: float, digits: int = 1) -> str:
    """``1,234`` or ``12.5`` (trailing zeros trimmed); ``—`` when missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return MISSING
    text = f"{float(value):,.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def percent(value: float) -> str:
    text = number(value)
    return text if text == MISSING else f"{text}%"


def hours(value: float) -> str:
    text = number(value)
    return text if text == MISSING else f"{text} h"


def days(value: float) -> str:
    text = number(value)
    return text if text == MISSING else f"{text} days"


def money(value: float) -> str:
    text = number(value, 0)
    return text if text == MISSING else f"{CURRENCY}{text}"


def tier(value: object) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    if str(value) == "all":
        return "All tiers"
    return f"Tier {int(float(value))}" if str(value).replace(".0", "").isdigit() else str(value)


def verdict(value: object, bad_when_true: bool) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    if bad_when_true:
        return "missed" if bool(value) else "met"
    return "yes" if bool(value) else "no"


def commitment_value(name: str, value: float) -> str:
    """A commitment's value in its unit: percent, MQAs or days."""
    if name.endswith("_pct"):
        return percent(value)
    if name.endswith("_days"):
        return days(value)
    return number(value)


def commitment_target(name: str, target: str) -> str:
    """``>= 95`` → ``≥ 95%``, ``5-10`` → ``5–10%``, ``<= 120`` → ``≤ 120 days``."""
    text = str(target).replace(">=", "≥").replace("<=", "≤")
    if "-" in text and not text.startswith("-"):
        text = text.replace("-", "–")
    unit = "%" if name.endswith("_pct") else " days" if name.endswith("_days") else ""
    return f"{text}{unit}"


def commitment_name(name: str, tier_value: object = None) -> str:
    base = COMMITMENT_NAMES.get(name, name.replace("_", " "))
    shown = tier(tier_value)
    return f"{base}, {shown}" if shown and name != "tier1_win_rate_pct" else base


def _is_boolean(values: pd.Series) -> bool:
    if values.dtype == bool:
        return True
    present = values.dropna()
    return values.dtype == object and len(present) > 0 and present.map(lambda v: isinstance(v, bool)).all()


def _cell_formatter(table: str, column: str, values: pd.Series):
    if column == "tier" or column == "proposed_tier":
        return tier
    if column == "clock":
        return lambda v: CLOCK_NAMES.get(v, v)
    if column == "rule":
        return lambda v: RULE_NAMES.get(v, v)
    if column == "commitment" and table != "mqa_volume":
        return COMMITMENT_NAMES.get
    if _is_boolean(values):
        return lambda v: verdict(v, column in BAD_WHEN_TRUE)
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return lambda v: v.strftime("%Y-%m-%d %H:%M") if pd.notna(v) else ""
    if column.endswith("_pct"):
        return percent
    if column.endswith("_bh") or (table == "window_proposals" and column in ("p80", "current")):
        return hours
    if column in DAYS:
        return days
    if column in MONEY:
        return money
    if pd.api.types.is_numeric_dtype(values):
        return number
    return None


def present(table: str, frame: pd.DataFrame) -> Presented:
    """``frame`` as people read it (see the module docstring); row order and values are unchanged."""
    out = frame.copy()
    entities: set[str] = set()
    for key, name_column, id_column in ENTITIES:
        if id_column in out.columns and name_column in out.columns:
            names = out[name_column].astype(object).where(out[name_column].notna(), None)
            ids = out[id_column].astype(object).where(out[id_column].notna(), None)
            out[id_column] = [_entity(n, i) for n, i in zip(names, ids, strict=True)]
            out = out.drop(columns=name_column).rename(columns={id_column: key})
            entities.add(label(table, key))
    if "owners_missed_names" in out.columns:
        out = out.drop(columns="owners_missed_ids")
    if table == "chronic_misses" and {"value", "previous_value"} <= set(out.columns):
        for column in ("value", "previous_value"):
            out[column] = [commitment_value(c, v) for c, v in zip(out["commitment"], out[column], strict=True)]
        out["target"] = [commitment_target(c, t) for c, t in zip(out["commitment"], out["target"], strict=True)]
    columns, cells = [], []
    for column in out.columns:
        values = out[column]
        formatter = _cell_formatter(table, column, values)
        text = values.map(lambda v, f=formatter: _text(v, f))
        columns.append(label(table, column))
        cells.append(text.tolist())
    rows = [list(row) for row in zip(*cells, strict=True)] if cells else []
    return Presented(columns, rows, entities)


def _entity(name: object, ident: object) -> str:
    if ident is None or ident == "all":
        return "All" if ident == "all" else (str(name) if name is not None else "")
    return f"{name}{ID_SEPARATOR}{ident}" if name not in (None, "") and str(name) != str(ident) else str(ident)


def _text(value: object, formatter) -> str:
    if formatter is not None:
        shown = formatter(value)
        if shown is not None:
            return str(shown)
    if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)
