"""Opportunities of the synthetic CRM: deals after accepted bursts, outbound deals, and the known relation
of ``outcome_truth`` (in-market moments that open deals) the scoring model proposal should find."""

from __future__ import annotations

import numpy as np
import pandas as pd

from abm_sla.domain import frames
from abm_sla.services.synthetic.common import DAY, HOUR, TYPE_CODE, _Accounts, _Events, _ids, _subjects, _to_utc
from abm_sla.services.synthetic.signals import TOPICS, _intent

STAGES_OPEN = ("Discovery", "Qualification", "Proposal", "Negotiation")


def _opportunities(
    rng: np.random.Generator, acc: _Accounts, status: pd.DataFrame, frame: pd.DataFrame, t0: int, days: int
) -> pd.DataFrame:
    """Deals for ~60% of accepted accounts, plus older deals on ~8% of accounts; some closed won or lost."""
    accepted = status[(status["status"] == 1) & (rng.random(len(status)) < 0.6) & (status["at"] < days * DAY)]
    n_old = int(0.08 * len(acc.ids))
    old_accounts = rng.choice(len(acc.ids), n_old, replace=False)
    account = np.concatenate([accepted["account"].to_numpy(), old_accounts])
    created = np.concatenate([
        np.minimum(accepted["at"].to_numpy() + rng.integers(HOUR, 5 * DAY, len(accepted)), days * DAY - 1),
        rng.integers(-365 * DAY, 0, n_old),
    ])
    n = len(account)
    employees = np.nan_to_num(frame["employees"].to_numpy()[account], nan=100)
    amount = np.round(rng.lognormal(np.log(15_000), 0.7, n) * np.clip(employees / 200, 0.5, 20) ** 0.5, -2)
    close = created + rng.integers(20 * DAY, 150 * DAY, n)
    closed = close < days * DAY
    won = closed & (rng.random(n) < 0.35)
    stage = np.where(won, "Closed Won", np.where(closed, "Closed Lost", rng.choice(STAGES_OPEN, n)))
    order = np.argsort(created, kind="stable")
    close_day = t0 + close[order] - (t0 + close[order]) % DAY
    return pd.DataFrame({
        "opportunity_id": _ids("O", n, 6), "account_id": acc.ids[account][order],
        "stage": stage[order].astype(object), "amount": amount[order],
        "created_at": _to_utc(t0 + created[order]), "close_date": _to_utc(close_day),
        "is_closed": closed[order], "is_won": won[order],
    })


def _outbound_deals(activities: pd.DataFrame, accounts: pd.DataFrame, start: pd.Timestamp, days: int,
                    seed: int) -> pd.DataFrame:
    """Open deals sales sourced on its own: on accounts marketing had not touched yet, a few days before
    marketing's first touch (or any time for an account it never touched); about 2% of the accounts."""
    rng = np.random.default_rng(seed + 1)  # its own stream: the rest of the CRM is unchanged
    touches = activities[activities["type"].isin(frames.MARKETING_TOUCHES)]
    first = touches.groupby("account_id")["occurred_at"].min().reindex(accounts["account_id"])
    latest = first.fillna(start + pd.Timedelta(days=days)).reset_index(drop=True) - pd.Timedelta(days=1)
    room = (latest - (start + pd.Timedelta(days=1))).dt.total_seconds().to_numpy()
    eligible = np.flatnonzero(room > 0)
    chosen = np.sort(rng.choice(eligible, min(len(eligible), int(0.02 * len(accounts))), replace=False))
    created = (latest.iloc[chosen] - pd.to_timedelta(rng.random(len(chosen)) * room[chosen], unit="s")).dt.floor("s")
    return pd.DataFrame({
        "opportunity_id": [f"OB{i:05d}" for i in range(1, len(chosen) + 1)],
        "account_id": accounts["account_id"].to_numpy()[chosen], "stage": rng.choice(STAGES_OPEN, len(chosen)),
        "amount": np.round(rng.lognormal(np.log(12_000), 0.6, len(chosen)), -2),
        "created_at": created.to_numpy(), "close_date": pd.Series(pd.NaT, index=range(len(chosen)),
                                                                  dtype="datetime64[ns, UTC]"),
        "is_closed": False, "is_won": False,
    }).astype({"stage": object})


#: The known relation of ``outcome_truth`` (what the scoring model proposal should find). Accounts go
#: *in market* at random moments (TRUTH_IN_MARKET per account per 90 days, independent of fit and
#: engagement). In the TRUTH_LEAD_DAYS before that moment the account shows buying signals: demo-page
#: visits, pricing-page visits, form submits (by the account's lead) and high intent (Poisson means in
#: TRUTH_SIGNALS); with chance
#: TRUTH_OPEN an opportunity opens 2 to 30 days after the moment. Email opens and clicks, webinars, other
#: pages and the firmographic fit predict nothing: besides, every account opens TRUTH_BASE_RATE
#: opportunities per 90 days at random. TRUTH_WIN_RATE of the opportunities close won, 10 to 60 days
#: after they open; the others close lost then.
TRUTH_IN_MARKET = 0.4
TRUTH_LEAD_DAYS = 14
TRUTH_SIGNALS = {"/demo": 1.2, "/pricing": 1.0, "form_submit": 0.8, "intent": 1.5}
TRUTH_OPEN = 0.8
TRUTH_KNOWN_VISITOR = 0.6  # the share of those page visits the lead makes signed in (the rest anonymous)
TRUTH_BASE_RATE = 0.03
TRUTH_WIN_RATE = 0.5


def _in_market(rng: np.random.Generator, acc: _Accounts, days: int) -> tuple[_Events, dict, np.ndarray]:
    """The buying signals of in-market moments (:data:`TRUTH_SIGNALS`) and the opportunities they and
    the base rate open: (events, intent rows, [account, created] seconds since the period start)."""
    n, span = len(acc.ids), days * DAY
    moment_account = np.repeat(np.arange(n), rng.poisson(TRUTH_IN_MARKET * days / 90, n))
    moment = rng.integers(0, span, len(moment_account))
    urls = {"/demo": 3, "/pricing": 2, "form_submit": -1}
    parts = []
    for signal, url in urls.items():
        source = np.repeat(np.arange(len(moment)), rng.poisson(TRUTH_SIGNALS[signal], len(moment)))
        account = moment_account[source]
        kind = np.full(len(source), TYPE_CODE["form_submit" if url < 0 else "web_visit"])
        contact = np.where((url < 0) | (rng.random(len(source)) < TRUTH_KNOWN_VISITOR), acc.lead[account], -1)
        at = moment[source] - rng.integers(0, TRUTH_LEAD_DAYS * DAY, len(source))
        parts.append(_Events(account, kind, at, contact, np.full(len(source), -1), np.full(len(source), url),
                             _subjects(rng, kind)))
    source = np.repeat(np.arange(len(moment)), rng.poisson(TRUTH_SIGNALS["intent"], len(moment)))
    intent = _intent(rng, moment_account[source], moment[source] - rng.integers(0, TRUTH_LEAD_DAYS * DAY, len(source)),
                     rng.integers(0, len(TOPICS), len(source)), rng.integers(75, 101, len(source)))
    opens = rng.random(len(moment)) < TRUTH_OPEN
    base = np.repeat(np.arange(n), rng.poisson(TRUTH_BASE_RATE * days / 90, n))
    opportunities = np.column_stack([
        np.concatenate([moment_account[opens], base]),
        np.concatenate([moment[opens] + rng.integers(2 * DAY, 30 * DAY, int(opens.sum())),
                        rng.integers(0, span, len(base))]),
    ])
    return _Events.concat(parts), intent, opportunities


def _truth_opportunities(rng: np.random.Generator, acc: _Accounts, opened: np.ndarray, t0: int,
                         days: int) -> pd.DataFrame:
    """The opportunities of :func:`_in_market` closed in the period, won at :data:`TRUTH_WIN_RATE`."""
    account, created = opened[:, 0], opened[:, 1]
    n = len(account)
    close = created + rng.integers(10 * DAY, 60 * DAY, n)
    won = rng.random(n) < TRUTH_WIN_RATE
    amount = np.round(rng.lognormal(np.log(15_000), 0.7, n), -2)
    keep = np.flatnonzero(close < days * DAY)
    order = keep[np.argsort(created[keep], kind="stable")]
    close_day = t0 + close[order] - (t0 + close[order]) % DAY
    return pd.DataFrame({
        "opportunity_id": _ids("OT", len(order), 6), "account_id": acc.ids[account[order]],
        "stage": np.where(won[order], "Closed Won", "Closed Lost").astype(object), "amount": amount[order],
        "created_at": _to_utc(t0 + created[order]), "close_date": _to_utc(close_day),
        "is_closed": True, "is_won": won[order],
    })
