"""The normalized tables every source produces and every pure module reads.

One DataFrame per kind. Timestamps are ``datetime64[ns, UTC]``; ids are strings
(the CRM's id); missing values are NaN/NaT/None. Sources (``abm_sla.crm``) emit
these columns, the warehouse stores them keyed on ``(source, source_id)``, and
the pure modules (scoring, hand-off, routing, sla) take them as input with
``account_id`` / ``contact_id`` / ``owner_id`` holding CRM ids.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

ACCOUNT_COLUMNS = [
    "account_id", "name", "domain", "industry", "employees", "annual_revenue",
    "country", "owner_id", "tier", "created_at", "updated_at",
]
CONTACT_COLUMNS = ["contact_id", "account_id", "title", "email", "created_at", "updated_at"]
ACTIVITY_COLUMNS = [
    "activity_id", "account_id", "type", "occurred_at", "contact_id", "owner_id", "url", "subject", "logged_at",
]
INTENT_COLUMNS = ["intent_id", "account_id", "topic", "score", "observed_at", "provider"]
OPPORTUNITY_COLUMNS = [
    "opportunity_id", "account_id", "stage", "amount", "created_at", "close_date", "is_closed", "is_won",
]
USER_COLUMNS = ["user_id", "name", "email", "role", "manager_id", "time_zone", "country", "active"]
#: ``reason``: why sales gave the status (optional; issue 14), e.g. the rejection reason.
STATUS_CHANGE_COLUMNS = ["status_change_id", "account_id", "status", "changed_at", "changed_by", "reason"]
#: Target account list membership: one row per period on the list (docs/policy/marketing.md).
#: ``priority``: the account's rank on the list, 1 = first (optional; docs/designs/tier1-commitments.md).
TARGET_ACCOUNT_COLUMNS = ["target_account_id", "account_id", "added_at", "removed_at", "agreed_at", "agreed_by",
                          "priority"]
#: Requests between the teams (issue 26, optional ``requests.csv``): ``kind`` one of :data:`REQUEST_KINDS`,
#: ``owner_id`` = who owes the answer (empty: the account's owner), ``answered_at`` empty while unanswered.
REQUEST_COLUMNS = ["request_id", "account_id", "kind", "requested_by", "requested_at", "answered_at", "owner_id"]
#: ``materials``: sales asks marketing for materials; ``account_info``: marketing asks sales about an account.
REQUEST_KINDS = ("materials", "account_info")

COLUMNS: dict[str, list[str]] = {
    "accounts": ACCOUNT_COLUMNS,
    "contacts": CONTACT_COLUMNS,
    "activities": ACTIVITY_COLUMNS,
    "intent_signals": INTENT_COLUMNS,
    "opportunities": OPPORTUNITY_COLUMNS,
    "users": USER_COLUMNS,
    "status_changes": STATUS_CHANGE_COLUMNS,
    "target_accounts": TARGET_ACCOUNT_COLUMNS,
    "requests": REQUEST_COLUMNS,
}
TIMESTAMP_COLUMNS: dict[str, list[str]] = {
    "accounts": ["created_at", "updated_at"],
    "contacts": ["created_at", "updated_at"],
    "activities": ["occurred_at", "logged_at"],
    "intent_signals": ["observed_at"],
    "opportunities": ["created_at", "close_date"],
    "users": [],
    "status_changes": ["changed_at"],
    "target_accounts": ["added_at", "removed_at", "agreed_at"],
    "requests": ["requested_at", "answered_at"],
}

MARKETING_TOUCHES = ("email_open", "email_click", "form_submit", "web_visit", "webinar")
SALES_TOUCHES = ("call", "email_sent", "meeting", "linkedin_message")
#: Neither touch: the CRM's own assignment of an owner (``owner_id`` = the new owner), which ends the
#: routing-time clock (issue 14 item 6).
OWNER_EVENTS = ("owner_assigned",)
#: Marketing channel touches beside SPEC's marketing touches: they count in touch tempo and channel
#: coverage (abm_sla.domain.marketing), never in SPEC's scores or hand-off gates.
CHANNEL_TOUCHES = ("ad_click", "content_download", "event_attended")
#: Marketing's own work on an account (``account_research`` meets the ``marketing_response`` clock by default);
#: ``campaign_start``: the account entered a campaign at ``occurred_at`` (``subject`` = the campaign), the start of
#: the Tier 1 research commitment (docs/designs/tier1-commitments.md).
MARKETING_WORK = ("account_research", "campaign_start")
#: Every activity type marketing's side produces (what a CRM mapping may map a campaign or event to).
MARKETING_SIDE = MARKETING_TOUCHES + CHANNEL_TOUCHES + MARKETING_WORK
#: Sales flags an account hot so marketing can coordinate (issue 26, ABM template): neither a touch nor work.
HOT_FLAG = "hot_flag"
ACTIVITY_TYPES = MARKETING_TOUCHES + SALES_TOUCHES + OWNER_EVENTS + CHANNEL_TOUCHES + MARKETING_WORK + (HOT_FLAG,)


def empty(kind: str) -> pd.DataFrame:
    """An empty frame of one kind with its columns and UTC timestamp dtypes."""
    frame = pd.DataFrame({column: pd.Series(dtype="object") for column in COLUMNS[kind]})
    for column in TIMESTAMP_COLUMNS[kind]:
        frame[column] = pd.Series(dtype="datetime64[ns, UTC]")
    return frame


#: A time with a UTC offset at the end, in ISO 8601 extended (``01:30:58+01:00``) or basic
#: (``T013058Z``, ``T0130+0100``) format.
OFFSET_PATTERN = (
    r"(?:\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?|[Tt ]\d{2}(?:\d{2}(?:\d{2}(?:[.,]\d+)?)?)?)"
    r"\s*(?:[zZ]|[+-]\d{2}(?::?\d{2})?)$"
)


def to_utc(values: pd.Series, errors: str = "raise") -> pd.Series:
    """Parse ISO 8601 strings to UTC; a value without an offset is UTC (SPEC section 2).

    Values with and without offsets are parsed apart: pandas would otherwise apply
    the first value's offset to the naive ones. ``errors="coerce"`` gives NaT for
    unparsable values.
    """
    if pd.api.types.is_datetime64_any_dtype(values):
        parsed = values if getattr(values.dt, "tz", None) else values.dt.tz_localize("UTC")
        return parsed.dt.tz_convert("UTC").astype("datetime64[ns, UTC]")
    text = strip_text(values.astype("string")).replace("", pd.NA)
    has_offset = _has_offset(text)
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns, UTC]")
    if has_offset.any():
        out[has_offset] = pd.to_datetime(text[has_offset], utc=True, format="ISO8601", errors=errors)
    naive = ~has_offset & text.notna()
    if naive.any():
        parsed = pd.to_datetime(text[naive], format="ISO8601", errors=errors)
        out[naive] = parsed.dt.tz_convert("UTC") if parsed.dt.tz is not None else parsed.dt.tz_localize("UTC")
    return out


#: Whitespace other than the space that ``str.strip`` removes, in ASCII (other whitespace is not ASCII).
_OTHER_SPACE = ("\t", "\n", "\r", "\v", "\f", "\x1c", "\x1d", "\x1e", "\x1f")


def strip_text(values: pd.Series) -> pd.Series:
    """``values.str.strip()``, skipped when no value starts or ends with whitespace: the check joins the
    column once and searches the joined text (C speed), stripping costs a Python call per value."""
    try:
        joined = "\x00".join(values.tolist())
    except TypeError:  # missing values (or not text): value by value
        return values.str.strip()
    if (
        joined.isascii()
        and " \x00" not in joined and "\x00 " not in joined
        and not joined.startswith(" ") and not joined.endswith(" ")
        and not any(space in joined for space in _OTHER_SPACE)
    ):
        return values
    return values.str.strip()


#: The endings of the usual ISO 8601 times with an offset, ``12:30:58+01:00`` and ``12:30:58Z``, as character
#: classes from the end (d: a digit, ``:``, ``s``: a sign, ``Z``): any value ending so matches OFFSET_PATTERN.
_USUAL_OFFSET_ENDINGS = ("dd:dd:ddsdd:dd", "dd:dd:ddZ")
#: Columns with a longer value are tested with the pattern alone (the fixed-width copy would be large).
_MAX_FIXED_WIDTH = 64


def _has_offset(text: pd.Series) -> pd.Series:
    """Which values (``string`` dtype, stripped) match :data:`OFFSET_PATTERN`: the usual endings are recognized
    column-wide on a fixed-width copy (numpy), the pattern runs only on the other values."""
    present = text.notna().to_numpy()
    usual = np.zeros(len(text), dtype=bool)
    lengths = text.str.len().fillna(0).to_numpy(dtype=np.int64)
    if present.any() and lengths.max() <= _MAX_FIXED_WIDTH:
        fixed = np.array(text.fillna("").tolist(), dtype=f"U{max(int(lengths.max()), 1)}")
        characters = fixed.view(np.uint32).reshape(len(fixed), -1)
        rows = np.arange(len(fixed))
        for ending in _USUAL_OFFSET_ENDINGS:
            match = present & (lengths >= len(ending))
            for back, kind in enumerate(reversed(ending), start=1):
                code = characters[rows, np.maximum(lengths - back, 0)]
                match &= ((code >= 48) & (code <= 57) if kind == "d" else
                          (code == 43) | (code == 45) if kind == "s" else
                          (code == 90) | (code == 122) if kind == "Z" else code == ord(kind))
            usual |= match
    out = pd.Series(usual, index=text.index)
    rest = present & ~usual
    if rest.any():
        out[rest] = text[rest].str.contains(OFFSET_PATTERN, regex=True).fillna(False).astype(bool).to_numpy()
    return out


def by_unique(values: pd.Series, transform: Callable[[pd.Series], pd.Series]) -> pd.Series:
    """``transform(values)``, computed once per distinct value (a column of few distinct values, such as a
    domain or an activity type repeated over millions of rows, costs its distinct values, not its rows)."""
    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    if len(uniques) == len(values):
        return transform(values)
    done = transform(pd.Series(uniques, dtype=values.dtype))
    return pd.Series(done.to_numpy(dtype=object)[codes], index=values.index, dtype=done.dtype)
