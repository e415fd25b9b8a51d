"""Marketing signals of the synthetic CRM: background touches and intent, and campaign bursts."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from abm_sla.services.synthetic.common import (
    DAY,
    HOUR,
    TYPE_CODE,
    _Accounts,
    _draw_types,
    _Events,
    _group_positions,
    _p,
    _subjects,
)

TOPICS = (
    "Sales Engagement", "Revenue Operations", "CRM Software", "Account-Based Marketing", "Lead Scoring",
    "Sales Automation", "Marketing Automation", "Intent Data", "Pipeline Management", "Sales Forecasting",
    "Customer Data Platform", "Data Integration", "Lead Routing", "Conversation Intelligence",
    "Sales Enablement", "B2B Advertising", "Email Deliverability", "Customer Success", "Cloud Security",
    "Data Warehousing",
)
PROVIDERS = ("bombora", "g2")
URL_PATHS = (  # path, share among background visits, share among burst visits
    ("/", 20, 0), ("/product", 14, 14), ("/pricing", 3, 30), ("/demo", 1, 16), ("/customers", 8, 10),
    ("/integrations", 8, 5), ("/careers", 5, 0), ("/blog/abm-playbook", 12, 6),
    ("/blog/lead-scoring-guide", 10, 5), ("/blog/sla-best-practices", 10, 5), ("/blog/revops-metrics", 9, 3),
    ("/pricing?utm_source=linkedin", 0, 4), ("/demo?ref=webinar", 0, 2),
)
NOISE_TYPES = {"email_open": 45, "email_click": 15, "form_submit": 3, "web_visit": 34, "webinar": 3}
BURST_TYPES = {"email_open": 16, "email_click": 17, "form_submit": 12, "web_visit": 47, "webinar": 8}

DEFAULT_NOISE_TOUCHES = 7.0  # background marketing touches per account over the period
DEFAULT_NOISE_INTENT = 3.0  # background intent rows per account over the period
BURST_RATE = 0.3  # bursts per account over 90 days, before fit and propensity
MAX_BURSTS = 4


def _marketing(
    rng: np.random.Generator, acc: _Accounts, account: np.ndarray, at: np.ndarray, mix: dict, burst: bool
) -> _Events:
    """Marketing touches: type, page, contact (the lead in bursts; anonymous web visits) and subject."""
    n = len(account)
    kind = _draw_types(rng, mix, n)
    visit = kind == TYPE_CODE["web_visit"]
    url = np.where(visit, rng.choice(len(URL_PATHS), n, p=_p([u[2 if burst else 1] for u in URL_PATHS])), -1)
    random_contact = acc.contact_start[account] + (rng.random(n) * acc.n_contacts[account]).astype(np.int64)
    contact = np.where(rng.random(n) < (0.75 if burst else 0.2), acc.lead[account], random_contact)
    contact = np.where(visit & (rng.random(n) < (0.3 if burst else 0.55)), -1, contact)
    return _Events(account, kind, at, contact, np.full(n, -1), url, _subjects(rng, kind))


def _touch_times(
    rng: np.random.Generator, offset_h: np.ndarray, days: int, origin: pd.Timestamp
) -> np.ndarray:
    """Seconds since ``origin``: mostly weekdays, around the early afternoon local time."""
    n = len(offset_h)
    day = rng.integers(0, days, n)
    weekday = (origin.weekday() + day) % 7
    day = np.where((weekday >= 5) & (rng.random(n) < 0.8), day + 7 - weekday, day)
    day = np.where(day >= days, np.maximum(day - 7, 0), day)
    local_hour = np.clip(rng.normal(13, 3.5, n), 0, 23.99)
    phase = origin.hour * HOUR + origin.minute * 60 + origin.second
    at = day * DAY + ((local_hour - offset_h) * HOUR).astype(np.int64) - phase
    return np.where(at < 0, at + DAY, np.where(at >= days * DAY, at - DAY, at))


def _intent(rng: np.random.Generator, account: np.ndarray, at: np.ndarray, topic: np.ndarray,
            score: np.ndarray) -> dict[str, np.ndarray]:
    """Intent rows as code arrays; bombora scores are daily (midnight UTC), g2 ones timestamped."""
    provider = (rng.random(len(account)) < 0.4).astype(np.int8)
    at = np.where(provider == 0, at - at % DAY, at)
    return {"account": account.astype(np.int32), "at": at, "topic": topic.astype(np.int8),
            "score": score.astype(np.int8), "provider": provider}


@dataclass
class _Bursts:
    account: np.ndarray
    start: np.ndarray  # seconds since the period start
    pivot: np.ndarray  # the moment the burst most likely crossed the hand-off (its third touch)
    strong: np.ndarray  # bool: enough touches for sales to care


def _bursts(
    rng: np.random.Generator, acc: _Accounts, days: int, origin: pd.Timestamp
) -> tuple[_Bursts, _Events, dict[str, np.ndarray]]:
    """Campaign bursts: touches hours apart by the lead and colleagues, plus high-score intent."""
    rate = BURST_RATE * days / 90 * (0.4 + 0.6 * acc.propensity) * np.where(acc.fit, 1.6, 0.7)
    per_account = np.minimum(rng.poisson(rate), MAX_BURSTS)
    account = np.repeat(np.arange(len(acc.ids)), per_account)
    start = _touch_times(rng, acc.offset_h[account], max(days - 1, 1), origin)
    size = np.clip(2 + rng.poisson(3.5, len(account)), 2, 14)
    burst, position = _group_positions(size)
    gap = rng.exponential(2.5 * HOUR, len(burst)).astype(np.int64)
    gap[position == 0] = 0
    cumulative = np.cumsum(gap)
    first = np.cumsum(size) - size
    at = start[burst] + cumulative - cumulative[first[burst]]
    touches = _marketing(rng, acc, account[burst], at, BURST_TYPES, burst=True)
    pivot = at[first + np.minimum(2, size - 1)]
    n_intent = rng.choice(4, len(account), p=_p((25, 35, 28, 12)))
    source, nth = _group_positions(n_intent)
    topic = (rng.integers(0, len(TOPICS), len(account))[source] + 7 * nth) % len(TOPICS)
    intent_at = start[source] + rng.integers(-72 * HOUR, 24 * HOUR, len(source))
    score = np.round(55 + 45 * rng.beta(4, 2, len(source)))
    intent = _intent(rng, account[source], intent_at, topic, score)
    return _Bursts(account, start, pivot, size >= 4), touches, intent


def _noise(
    rng: np.random.Generator, acc: _Accounts, days: int, origin: pd.Timestamp, touches: float, intent: float
) -> tuple[_Events, dict[str, np.ndarray]]:
    """Background marketing touches and intent all period, heavier for engaged accounts."""
    n = len(acc.ids)
    account = np.repeat(np.arange(n), rng.poisson(touches * acc.propensity))
    events = _marketing(rng, acc, account, _touch_times(rng, acc.offset_h[account], days, origin),
                        NOISE_TYPES, burst=False)
    source = np.repeat(np.arange(n), rng.poisson(intent * acc.propensity))
    at = rng.integers(0, days * DAY, len(source))
    topic = rng.choice(len(TOPICS), len(source), p=_p(np.linspace(3, 1, len(TOPICS))))
    score = np.round(100 * rng.beta(2, 5, len(source)))
    return events, _intent(rng, source, at, topic, score)
