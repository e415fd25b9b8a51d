"""Sales in the synthetic CRM: the follow-up of bursts, status changes, the feedback loop, when touches
are logged, and sales acting on tier-move recommendations (the demo's mid-quarter CRM change)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from abm_sla.domain import frames
from abm_sla.services.synthetic.common import (
    DAY,
    HOUR,
    _Accounts,
    _Calendar,
    _draw_types,
    _Events,
    _group_positions,
    _lookup,
    _p,
    _subjects,
)
from abm_sla.services.synthetic.people import _regional_rep
from abm_sla.services.synthetic.signals import _Bursts

FIRST_TOUCH_TYPES = {"call": 40, "email_sent": 45, "linkedin_message": 15}
FOLLOW_UP_TYPES = {"call": 30, "email_sent": 40, "meeting": 18, "linkedin_message": 12}


def _sales(
    rng: np.random.Generator, acc: _Accounts, bursts: _Bursts, users: pd.DataFrame, calendar: _Calendar,
    t0: int,
) -> tuple[_Events, pd.DataFrame]:
    """The follow-up of each burst: first touch after a business-hours delay, a cadence, status changes."""
    n = len(bursts.account)
    worker = acc.worker[bursts.account]
    responds = rng.random(n) < np.where(bursts.strong, 0.9, 0.6)
    kind_of_delay = rng.choice(4, n, p=_p((55, 20, 15, 10)))
    delay = np.select(
        [kind_of_delay == 0, kind_of_delay == 1, kind_of_delay == 2],
        [rng.exponential(0.8, n), rng.uniform(1, 4, n), rng.uniform(4, 24, n)], rng.uniform(24, 60, n),
    )
    follow_ups = np.where(responds, rng.choice(10, n, p=_p((8, 8, 10, 12, 12, 14, 12, 10, 8, 6))), 0)
    touches = np.where(responds, 1 + follow_ups, 0)
    burst, position = _group_positions(touches)
    gap = np.where(position == 0, delay[burst], rng.exponential(12, len(burst)))
    cumulative = np.cumsum(gap)
    first = np.cumsum(touches) - touches
    offset = cumulative - cumulative[first[burst]] + delay[burst]
    colleague = _regional_rep(rng, acc.region[bursts.account[burst]], users)
    by = np.where(rng.random(len(burst)) < 0.9, worker[burst], colleague)  # an SDR or colleague, sometimes
    base = t0 + bursts.pivot
    at = calendar.add(base[burst], offset, by) - t0
    kind = np.where(position == 0, _draw_types(rng, FIRST_TOUCH_TYPES, len(burst)),
                    _draw_types(rng, FOLLOW_UP_TYPES, len(burst)))
    account = bursts.account[burst]
    contact = np.where(rng.random(len(burst)) < 0.85, acc.lead[account], -1)
    events = _Events(account, kind, at, contact, by, np.full(len(burst), -1), _subjects(rng, kind))
    revops = int(np.flatnonzero(users["role"] == "revops")[0])
    status = _statuses(rng, bursts.account, responds, delay, worker, revops, calendar, base)
    status["at"] -= t0
    return events, status


def _statuses(
    rng: np.random.Generator, account: np.ndarray, responds: np.ndarray, delay: np.ndarray,
    worker: np.ndarray, revops: int, calendar: _Calendar, base: np.ndarray,
) -> pd.DataFrame:
    """``working`` soon after the first touch, then accepted / nurture / rejected (or nothing); 8% never.

    Bursts nobody followed up are sometimes parked in nurture by rev-ops days later. Times are
    UTC seconds, counted from ``base`` (each burst's pivot).
    """
    n = len(account)
    updates = responds & (rng.random(n) < 0.92)
    working = updates & (rng.random(n) < 0.75)
    outcome = rng.choice(4, n, p=_p((55, 20, 7, 18)))  # accepted, nurture, rejected, stays working
    final = updates & (outcome < 3)
    working_after = delay + rng.exponential(3, n)
    working_at = calendar.add(base, working_after, worker)
    final_at = calendar.add(base, working_after + rng.uniform(4, 80, n), worker)
    cleanup = ~responds & (rng.random(n) < 0.3)
    cleanup_at = base + rng.integers(3 * DAY, 10 * DAY, n)
    revops = np.full(n, revops)
    parts = [
        (working, working_at, np.full(n, 0), worker),
        (final, final_at, 1 + np.minimum(outcome, 2), worker),
        (cleanup, cleanup_at, np.full(n, 2), revops),
    ]
    return pd.DataFrame({
        "account": np.concatenate([account[rows] for rows, *_ in parts]),
        "at": np.concatenate([at[rows] for rows, at, *_ in parts]),
        "status": np.concatenate([status[rows] for rows, _, status, _ in parts]),
        "by": np.concatenate([by[rows] for rows, *_, by in parts]),
    })


STATUSES = ("working", "accepted", "nurture", "rejected")
#: The feedback loop's extra status values (``generate_crm(feedback=True)``), in the CRM's own spelling;
#: ``Callback Requested`` is a value no disposition map knows (reported as unknown, never dropped).
FEEDBACK_STATUSES = ("Unqualified", "Meeting Held", "No-Show", "Interested", "Not Ready", "Contacted",
                     "Callback Requested")
REJECTION_REASONS = (  # reason, weight
    ("No budget this fiscal year", 24), ("Too small: under 50 employees", 18),
    ("Using a competitor, renewal in 2027", 16),
    ("No project or timing", 14), ("Contact has no buying authority", 12), ("Student or job seeker", 6),
    ("Existing customer (account management)", 10),
)


def _feedback(
    rng: np.random.Generator, status: pd.DataFrame, bursts: _Bursts, acc: _Accounts, calendar: _Calendar, t0: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The feedback loop on top of the statuses: richer dispositions, rejection reasons (on time, late or
    missing), weekly status updates on accounts left in ``working``, an unknown status value, and the
    CRM's own owner assignment after ~half of the bursts (some later than the routing window).

    Returns the status rows (``status`` now text, with ``reason``) and ``owner_assigned`` events
    (``account, at, by``); times are seconds from ``t0`` as in ``status``.
    """
    out = status.assign(status=np.array(STATUSES, dtype=object)[status["status"].to_numpy()], reason=None)
    names = out["status"].to_numpy(dtype=object)
    draw = rng.random(len(out))
    rejected = names == "rejected"
    names[rejected & (draw < 0.4)] = "Unqualified"  # the CRM's "disqualified" value
    names[(names == "nurture") & (draw < 0.3)] = "Unqualified"  # "not a fit" rather than "not now"
    verdict = np.isin(names, ("rejected", "Unqualified"))
    reason = _lookup([r for r, _ in REJECTION_REASONS], rng.choice(len(REJECTION_REASONS), len(out),
                                                                  p=_p(dict(REJECTION_REASONS))))
    how = rng.choice(3, len(out), p=_p((62, 23, 15)))  # with the verdict, a later row, never
    reasons = np.where(verdict & (how == 0), reason, None)
    later = out[verdict & (how == 1)].assign(
        reason=reason[verdict & (how == 1)],
        at=lambda f: calendar.add(t0 + f["at"].to_numpy(), rng.uniform(2, 64, len(f)), f["by"].to_numpy()) - t0,
    )
    later["status"] = names[verdict & (how == 1)]
    out["status"], out["reason"] = names, reasons
    working = out[out["status"] == "working"]
    mid = working[rng.random(len(working)) < 0.45]
    mid_at = calendar.add(t0 + mid["at"].to_numpy(), rng.uniform(4, 40, len(mid)), mid["by"].to_numpy()) - t0
    mid = mid.assign(status=rng.choice(FEEDBACK_STATUSES[1:6], len(mid), p=_p((30, 15, 25, 15, 15))), at=mid_at)
    weekly = working[rng.random(len(working)) < 0.5]
    weeks = rng.integers(1, 9, len(weekly))
    repeat, _ = _group_positions(weeks)
    gap = (rng.uniform(4.0, 8.5, len(repeat)) * DAY).astype(np.int64)  # every 4-8.5 days: some weeks missed
    cumulative = np.cumsum(gap)
    first = np.cumsum(weeks) - weeks
    since = cumulative - cumulative[first[repeat]] + gap[first[repeat]]
    weekly = weekly.iloc[repeat].assign(at=weekly["at"].to_numpy()[repeat] + since,
                                        status=np.where(rng.random(len(repeat)) < 0.7, "working", "Contacted"))
    unknown = out[rng.random(len(out)) < 0.02].assign(status=FEEDBACK_STATUSES[6], reason=None,
                                                      at=lambda f: f["at"] + 3 * HOUR)
    assigned = rng.random(len(bursts.account)) < 0.5
    worker = acc.worker[bursts.account[assigned]]
    delay = np.where(rng.random(assigned.sum()) < 0.8, rng.uniform(0.1, 20, assigned.sum()),
                     rng.uniform(24, 72, assigned.sum())) * HOUR
    owners = pd.DataFrame({"account": bursts.account[assigned],
                           "at": bursts.pivot[assigned] + delay.astype(np.int64), "by": worker})
    statuses = pd.concat([out, later, mid, weekly, unknown], ignore_index=True)
    return statuses, owners


def _background_sales(
    rng: np.random.Generator, acc: _Accounts, calendar: _Calendar, days: int, t0: int
) -> _Events:
    """Sales touches unrelated to any burst (existing conversations), in business hours."""
    account = np.repeat(np.arange(len(acc.ids)), rng.poisson(0.4 * days / 90, len(acc.ids)))
    n = len(account)
    by = acc.worker[account]
    at = calendar.add(t0 + rng.integers(0, days * DAY, n), rng.uniform(0, 8, n), by) - t0
    kind = _draw_types(rng, FOLLOW_UP_TYPES, n)
    contact = acc.contact_start[account] + (rng.random(n) * acc.n_contacts[account]).astype(np.int64)
    return _Events(account, kind, at, contact, by, np.full(n, -1), _subjects(rng, kind))


#: When sales enter a touch in the CRM (issue 26, the crm_hygiene clock): share and delay range in minutes.
LOGGING_DELAYS = ((0.80, 0, 120), (0.14, 120, 1200), (0.06, 1500, 4320))


def _logged_at(rng: np.random.Generator, activities: pd.DataFrame) -> pd.Series:
    """``logged_at`` of the sales touches and of the marketing touches (the engaged-lead data marketing enters;
    issue 26, policy ``crm_updates``): most within two hours, some the next day, a few after 24 hours; NaT for
    other activities. The delays drawn for the sales touches do not depend on the marketing ones."""
    sales = activities["type"].isin(frames.SALES_TOUCHES + frames.MARKETING_TOUCHES).to_numpy()
    shares, lows, highs = (np.array(part, dtype=float) for part in zip(*LOGGING_DELAYS, strict=True))
    band = rng.choice(len(shares), size=len(activities), p=shares / shares.sum())
    minutes = rng.uniform(lows[band], highs[band]).round()
    logged = activities["occurred_at"] + pd.to_timedelta(minutes, unit="min")
    return logged.where(sales)


def sales_tier_decisions(accounts: pd.DataFrame, ledger: pd.DataFrame, at: pd.Timestamp, seed: int = 7,
                         accept: float = 0.5, other_way: float = 0.1) -> pd.DataFrame:
    """``accounts`` after sales acted in the CRM on the pending recommendations of ``ledger`` by ``at``:
    about ``accept`` of them moved as recommended (an "off list" move sets the tier to ``off list``), ``other_way``
    of the Tier 2 → 1 ones sent back to Tier 3, the rest left alone (declined when their days pass).
    ``updated_at`` is stamped a few days after the recommendation, never after ``at``."""
    rng = np.random.default_rng(seed)
    pending = ledger[ledger["decision"].eq("pending") & (ledger["recommended_at"] <= at)]
    pending = pending.drop_duplicates("account_id").reset_index(drop=True)
    draw = rng.random(len(pending))
    accepted = draw < accept
    reverse = ~accepted & pending["rule"].eq("promote_2_to_1").to_numpy() & (draw < accept + other_way)
    lag = pd.to_timedelta(rng.uniform(0.5, 10, len(pending)), unit="D")
    stamped = (pending["recommended_at"] + lag.to_numpy()).clip(upper=at)
    new_tier = pending["proposed_tier"].to_numpy()
    changes = pd.DataFrame({"account_id": pending["account_id"], "tier": np.where(reverse, "3", new_tier),
                            "updated_at": stamped})[accepted | reverse].set_index("account_id")
    out = accounts.copy()
    hit = out["account_id"].isin(changes.index)
    out["tier"] = out["tier"].astype(object).where(~hit, out["account_id"].map(changes["tier"]))
    stamp = out["account_id"].map(changes["updated_at"]).astype("datetime64[ns, UTC]")
    out["updated_at"] = stamp.where(hit, pd.to_datetime(out["updated_at"], utc=True).astype("datetime64[ns, UTC]"))
    return out
