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
               "cadence": "cadence", "marketing_response": "marketing research"}
RULE_NAMES = {"remove_from_list": "off the list", "demote_1_to_2": "Tier 1 → 2", "promote_3_to_2": "Tier 3 → 2",
              "promote_2_to_1": "Tier 2 → 1", "promote_3_to_1": "Tier 3 → 1 (watch list)"}
COMMITMENT_NAMES = {
    "mqa_volume": "MQAs delivered", "rejection_pct": "Rejection rate of MQAs",
    "first_touch_met_pct": "First touch within the window", "tier1_win_rate_pct": "Win rate, Tier 1",
    "opportunity_to_won_pct": "Opportunity → won", "sales_cycle_days": "Median sales cycle",
    "engagement_rate_pct": "Account engagement rate", "multi_stakeholder_pct": "Multi-stakeholder accounts",
    "engaged_contacts_per_account": "Engaged contacts per engaged account",
    "tier1_acceptance_pct": "MQA acceptance", "tier2_mqa_to_opportunity_pct": "MQA → opportunity",
    "sql_to_opportunity_pct": "SQL (accepted MQA) → opportunity",
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
    "engaged_contacts_per_account": "Engaged contacts per engaged account", "judged": "With a tempo",
    "on_tempo": "On tempo", "below": "Below tempo", "above": "Above tempo", "on_tempo_pct": "On tempo %",
    "engaged_before_mqa": "Engaged, before the MQA", "covered": "Covered", "covered_pct": "Covered %",
    "group": "Accounts", "on_list": "On the list", "added_recently": "Added (last agreement period)",
    "removed_recently": "Removed (last agreement period)", "last_agreed_at": "Last agreed",
    "agreed_by": "Agreed by", "agreement_age_days": "Agreement age", "agreement_overdue": "Agreement overdue",
    ("engaged_stage", "accounts"): "Accounts measured", ("engaged_stage", "engaged_pct"): "Engaged %",
    ("touch_tempo", "accounts"): "Accounts measured",
    "metric": "Metric", "change": "Change", "recommended_at": "Recommended", "decision": "Decision",
    "decided_at": "Decided", "age_days": "Age", "recommended": "Recommended", "declined": "Declined",
    "median_age_days": "Median age", "source": "Source", "share_pct": "Share",
    "accounts_touched": "Accounts touched", "touches": "Marketing touches",
    "touches_per_account": "Touches per account", "coverage_pct": "Coverage",
    ("monthly_trend", "previous_value"): "Month before", ("weekly_changes", "previous_value"): "Week before",
    ("monthly_trend", "value"): "This month", ("weekly_changes", "value"): "This week",
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
    ("mqa_volume", "max"): "Max (pro-rated)", ("mqa_weeks", "in_band"): "In band", ("mqa_weeks", "judged"): "Ended",
    ("four_numbers", "missed"): "Clocks missed", ("four_numbers", "pending"): "Clocks pending",
    ("chronic_misses", "missed"): "Verdict",
    # the feedback loop (issue 14)
    ("disqualification_patterns", "reason"): "Reason", ("disqualification_patterns", "owners"): "Owners",
    ("disqualification_patterns", "share_pct"): "Share", "tier_1": "Tier 1", "tier_2": "Tier 2", "tier_3": "Tier 3",
    "handoff_source": "Hand-off source (rule)", "measured_to": "Measured to", "clocks": "Clocks",
    ("unknown_statuses", "status"): "Status value", ("unknown_statuses", "changes"): "Changes",
    ("unknown_statuses", "accounts"): "Accounts", "first_at": "First seen", "last_at": "Last seen",
    "not_ready": "Not ready", "meeting_held": "Meeting held", "no_show": "No-show", "none": "No status yet",
    "unknown": "Unknown status",
    # the regional appendix (issue 26)
    "region": "Region", "countries": "Countries", ("regional_windows", "window"): "Region's window",
    "master_window": "Master policy's window", ("regional_compliance", "target"): "Target (met %)",
    ("regional_compliance", "verdict"): "Verdict",
}
#: Name and id columns shown as one ``name · id`` column.
ENTITIES = (("owner", "owner_name", "owner_id"), ("account", "account_name", "account_id"))
DAYS = {"median_cycle_days", "cycle_target_days_max", "inactive_days", "open_for_days", "agreement_age_days",
        "age_days", "median_age_days"}
#: Tables of (metric, unit, value, previous_value, change) rows: values formatted by the row's unit.
COMPARISONS = {"monthly_trend", "weekly_changes"}
UNIT_FORMATS = {"count": lambda v: number(v), "pct": lambda v: percent(v), "hours": lambda v: hours(v),
                "money": lambda v: money(v)}
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


def commitment_label(name: str) -> str:
    """A commitment's display name (a ``targets.custom`` entry: ``Custom target: win rate pct``)."""
    if name in COMMITMENT_NAMES:
        return COMMITMENT_NAMES[name]
    if str(name).startswith("custom:"):
        return "Custom target: " + str(name).removeprefix("custom:").replace("_", " ")
    return str(name).replace("_", " ")


def commitment_name(name: str, tier_value: object = None) -> str:
    base = commitment_label(name)
    shown = tier(tier_value)
    return f"{base}, {shown}" if shown and name != "tier1_win_rate_pct" else base


def _is_boolean(values: pd.Series) -> bool:
    if values.dtype == bool:
        return True
    present = values.dropna()
    return values.dtype == object and len(present) > 0 and present.map(lambda v: isinstance(v, bool)).all()


def _cell_formatter(table: str, column: str, values: pd.Series):
    if table == "regional_compliance" and column == "target":  # ">= 90" → "≥ 90%"
        return lambda v: commitment_target("met_pct", v) if v else ""
    if column == "tier" or column == "proposed_tier":
        return tier
    if column == "clock":
        return lambda v: CLOCK_NAMES.get(v, v)
    if column == "rule":
        return lambda v: RULE_NAMES.get(v, v)
    if column == "commitment" and table != "mqa_volume":
        return commitment_label
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
    if table in COMPARISONS and "unit" in out.columns:
        out = _by_unit(out)
    columns, cells = [], []
    for column in out.columns:
        values = out[column]
        formatter = _cell_formatter(table, column, values)
        text = values.map(lambda v, f=formatter: _text(v, f))
        columns.append(label(table, column))
        cells.append(text.tolist())
    rows = [list(row) for row in zip(*cells, strict=True)] if cells else []
    return Presented(columns, rows, entities)


def _by_unit(frame: pd.DataFrame) -> pd.DataFrame:
    """Value and previous value as text in each row's unit; the change signed (a change in % is in points)."""
    out = frame.copy()
    for column in ("value", "previous_value"):
        out[column] = [UNIT_FORMATS.get(unit, number)(value) for unit, value in zip(out["unit"], out[column],
                                                                                      strict=True)]
    out["change"] = [_change(unit, value) for unit, value in zip(out["unit"], out["change"], strict=True)]
    return out.drop(columns="unit")


def _change(unit: str, value: float) -> str:
    if value is None or pd.isna(value):
        return MISSING
    sign = "+" if value > 0 else "-" if value < 0 else "±"
    if unit == "pct":
        return f"{sign}{number(abs(value))} pp"
    return sign + UNIT_FORMATS.get(unit, number)(abs(value))


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
