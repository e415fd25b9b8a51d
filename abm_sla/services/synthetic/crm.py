"""The synthetic CRM generator: :func:`generate_crm` draws every part and assembles the normalized frames."""

from __future__ import annotations

import numpy as np
import pandas as pd

from abm_sla.domain import frames
from abm_sla.services.synthetic.accounts import _accounts
from abm_sla.services.synthetic.common import (
    DAY,
    DEFAULT_START,
    SUBJECTS,
    TYPE_CODE,
    VENDOR_SITE,
    _Accounts,
    _Calendar,
    _Events,
    _first_subject,
    _frame,
    _ids,
    _lookup,
    _time_order,
    _to_utc,
)
from abm_sla.services.synthetic.deals import _in_market, _opportunities, _outbound_deals, _truth_opportunities
from abm_sla.services.synthetic.marketing import add_marketing_program
from abm_sla.services.synthetic.people import _contacts, _users
from abm_sla.services.synthetic.sales import STATUSES, _background_sales, _feedback, _logged_at, _sales
from abm_sla.services.synthetic.signals import (
    DEFAULT_NOISE_INTENT,
    DEFAULT_NOISE_TOUCHES,
    PROVIDERS,
    TOPICS,
    URL_PATHS,
    _bursts,
    _noise,
)


def _activity_frame(
    events: _Events, acc: _Accounts, contact_ids: np.ndarray, users: pd.DataFrame, t0: int
) -> pd.DataFrame:
    flat_subjects = [s for name in frames.ACTIVITY_TYPES for s in SUBJECTS[name]]
    return _frame({
        "activity_id": _ids("ACT", len(events.at), 8),
        "account_id": acc.ids[events.account],
        "type": np.array(frames.ACTIVITY_TYPES, dtype=object)[events.kind],
        "occurred_at": _to_utc(t0 + events.at),
        "contact_id": np.append(contact_ids, None)[events.contact],
        "owner_id": _lookup(list(users["user_id"]), events.owner),
        "url": _lookup([VENDOR_SITE + u[0] for u in URL_PATHS], events.url),
        "subject": _lookup(flat_subjects, events.subject),
        "logged_at": pd.Series(pd.NaT, index=range(len(events.at)), dtype="datetime64[ns, UTC]"),
    })


def _intent_frame(parts: list[dict[str, np.ndarray]], acc: _Accounts, t0: int, span: int) -> pd.DataFrame:
    """Intent rows by time, without two rows of one account, topic, provider and moment."""
    intent = {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}
    rows = np.flatnonzero((intent["at"] >= 0) & (intent["at"] < span))
    key = ((intent["at"][rows] * len(acc.ids) + intent["account"][rows]) * len(TOPICS)
           + intent["topic"][rows]) * len(PROVIDERS) + intent["provider"][rows]
    _, first = np.unique(key, return_index=True)  # by time first, then account, topic, provider
    intent = {name: values[rows[first]] for name, values in intent.items()}
    return _frame({
        "intent_id": _ids("INT", len(first), 8),
        "account_id": acc.ids[intent["account"]],
        "topic": np.array(TOPICS, dtype=object)[intent["topic"]],
        "score": intent["score"].astype(float),
        "observed_at": _to_utc(t0 + intent["at"]),
        "provider": np.array(PROVIDERS, dtype=object)[intent["provider"]],
    })


def _status_frame(
    status: pd.DataFrame, acc: _Accounts, users: pd.DataFrame, t0: int, span: int
) -> pd.DataFrame:
    """Status rows in the period by time (``status`` codes into STATUSES, or text with ``reason``)."""
    status = status[(status["at"] >= 0) & (status["at"] < span)].sort_values("at", kind="stable")
    status = status.drop_duplicates(["account", "at", "status"])
    changed_at = _to_utc(t0 + status["at"].to_numpy())
    account_id = pd.Series(acc.ids[status["account"].to_numpy()])
    codes = status["status"].to_numpy()
    name = pd.Series(codes if codes.dtype == object else np.array(STATUSES, dtype=object)[codes])
    frame = pd.DataFrame({
        # the id the files source gives a status change, so loading the export keeps the same ids
        "status_change_id": account_id + "|" + changed_at.dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ") + "|" + name,
        "account_id": account_id, "status": name, "changed_at": changed_at,
        "changed_by": users["user_id"].to_numpy()[status["by"].to_numpy()],
    })
    frame["reason"] = status["reason"].to_numpy() if "reason" in status else None
    return frame


def generate_crm(
    n_accounts: int = 2000,
    start: pd.Timestamp | str = DEFAULT_START,
    days: int = 90,
    seed: int = 7,
    signals_per_account: float | None = None,
    feedback: bool = False,
    marketing_program: bool = False,
    outcome_truth: bool = False,
) -> dict[str, pd.DataFrame]:
    """A synthetic CRM over ``days`` from ``start``: the normalized frames keyed by kind.

    ``feedback`` adds the SLA's feedback loop (issue 14, see :func:`_feedback`, drawn from its own
    random stream so the rest stays the same): dispositions, reasons, weekly updates, an unknown
    status, ``owner_assigned`` activities. The demo turns it on.

    ``signals_per_account`` sets the mean number of activities plus intent rows per account
    (background noise fills what the bursts and sales follow-up leave); None keeps the
    natural ~14 over 90 days. Ids and text are str objects (rows share them), numbers
    floats, flags bools, timestamps ``datetime64[ns, UTC]``. Same arguments, same frames.
    ``marketing_program`` adds the marketing side (:func:`add_marketing_program`); the other
    frames stay exactly as without it. ``outcome_truth`` replaces the opportunities with ones that
    follow a known relation to some signals (:func:`_in_market`, :data:`TRUTH_SIGNALS`) and adds
    those signals, for the scoring model proposal (``abm-sla propose model``) to find.
    """
    rng = np.random.default_rng(seed)
    start = pd.Timestamp(start)
    start = start.tz_localize("UTC") if start.tzinfo is None else start.tz_convert("UTC")
    t0, span = int(start.timestamp()), days * DAY
    users = _users()
    calendar = _Calendar(users, start, days)
    accounts, acc = _accounts(rng, n_accounts, start, users)
    contacts = _contacts(rng, accounts, acc, start)
    bursts, burst_events, burst_intent = _bursts(rng, acc, days, start)
    sales, status = _sales(rng, acc, bursts, users, calendar, t0)
    background = _background_sales(rng, acc, calendar, days, t0)
    touches, intent = DEFAULT_NOISE_TOUCHES * days / 90, DEFAULT_NOISE_INTENT * days / 90
    if signals_per_account is not None:
        fixed = len(burst_events.at) + len(burst_intent["at"]) + len(sales.at) + len(background.at)
        left = max(signals_per_account * n_accounts - fixed, 0.0) / max(n_accounts, 1)
        touches, intent = 0.65 * left, 0.35 * left
    noise_events, noise_intent = _noise(rng, acc, days, start, touches, intent)
    parts = [noise_events, burst_events, sales, background]
    opportunities = _opportunities(rng, acc, status, accounts, t0, days)
    if feedback:
        status, owners = _feedback(np.random.default_rng([seed, 14]), status, bursts, acc, calendar, t0)
        n = len(owners)
        kind = np.full(n, TYPE_CODE["owner_assigned"])
        parts.append(_Events(owners["account"].to_numpy(), kind, owners["at"].to_numpy(), np.full(n, -1),
                             owners["by"].to_numpy(), np.full(n, -1), np.full(n, _first_subject("owner_assigned"))))
    if outcome_truth:
        truth_rng = np.random.default_rng([seed, 27])  # its own stream: without it the CRM is unchanged
        truth_events, truth_intent, truth_opened = _in_market(truth_rng, acc, days)
        parts.append(truth_events)
    events = _Events.concat(parts)
    events = events.keep(_time_order(events.at, span))
    activities = _activity_frame(events, acc, contacts["contact_id"].to_numpy(), users, t0)
    if feedback:
        activities["logged_at"] = _logged_at(np.random.default_rng([seed, 26]), activities)
    outbound = _outbound_deals(activities, accounts, start, days, seed)
    parts = [part for part in (opportunities, outbound) if len(part)] or [opportunities]
    intent_parts = [noise_intent, burst_intent] + ([truth_intent] if outcome_truth else [])
    intent_signals = _intent_frame(intent_parts, acc, t0, span)
    opportunities = pd.concat(parts, ignore_index=True)
    if outcome_truth:
        opportunities = _truth_opportunities(truth_rng, acc, truth_opened, t0, days)
    crm = {
        "accounts": accounts,
        "contacts": contacts,
        "activities": activities,
        "intent_signals": intent_signals,
        "opportunities": opportunities,
        "users": users,
        "status_changes": _status_frame(status, acc, users, t0, span),
        "target_accounts": frames.empty("target_accounts"),
        "requests": frames.empty("requests"),  # issue 26: add_team_requests fills it
    }
    return add_marketing_program(crm, start, days, seed) if marketing_program else crm
