"""Hand-off replay + SLA clocks for 200k accounts / ~10M signals, and 1M business-hour deadlines.

    .venv/bin/python benchmarks/bench_sla.py [--accounts 200000] [--signals-per-account 50] [--deadlines 1000000]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _measure import peak_rss_mib, timed

from abm_sla.domain import calendar, handoff, routing, sla
from abm_sla.services.config_files import load_model, load_policy
from abm_sla.services.synthetic import generate_crm


def deadlines(n: int, users: pd.DataFrame, policy) -> tuple[float, list[float]]:
    """Add 2-24 business hours to n random moments, across every user's zone and country."""
    rng = np.random.default_rng(1)
    starts = pd.Series(pd.Timestamp("2026-01-01T00:00:00Z") + pd.to_timedelta(rng.integers(0, 90 * 86400, n), "s"))
    owners = users.iloc[rng.integers(0, len(users), n)].reset_index(drop=True)
    hours = pd.Series(rng.choice([2.0, 4.0, 24.0], n))
    _, median_s, timings = timed(
        lambda: calendar.add_business_hours(starts, hours, owners["time_zone"], owners["country"],
                                            policy.business_hours)
    )
    return median_s, timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=200_000)
    parser.add_argument("--signals-per-account", type=float, default=50)
    parser.add_argument("--deadlines", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    crm = generate_crm(n_accounts=args.accounts, days=90, signals_per_account=args.signals_per_account)
    model, policy = load_model(), load_policy()
    as_of = pd.Timestamp("2026-03-01T12:00:00Z")
    window = pd.Timedelta(days=2 * model.window_days)
    activities = crm["activities"][crm["activities"]["occurred_at"].between(as_of - window, as_of)]
    intent = crm["intent_signals"][crm["intent_signals"]["observed_at"].between(as_of - window, as_of)]
    status_changes = crm["status_changes"][crm["status_changes"]["changed_at"] <= as_of]
    no_prior = pd.DataFrame(
        {"account_id": pd.Series(dtype=object), "trigger_at": pd.Series(dtype="datetime64[ns, UTC]")}
    )

    fired, replay_s, replay_runs = timed(
        lambda: handoff.replay_handoffs(crm["accounts"], crm["contacts"], activities, intent, status_changes,
                                        no_prior, model, as_of),
        repeat=args.repeat,
    )
    routed, _ = routing.route_mqas(fired[["account_id", "trigger_at"]], crm["accounts"], crm["users"], as_of, None)
    later = as_of + pd.Timedelta(days=20)  # clocks and ladders measured three weeks after routing
    later_changes = crm["status_changes"][crm["status_changes"]["changed_at"] <= later]
    clocks, clocks_s, clocks_runs = timed(
        lambda: sla.evaluate_clocks(routed, crm["activities"], later_changes, crm["users"], policy, later),
        repeat=args.repeat,
    )
    escalations, escalations_s, _ = timed(
        lambda: sla.evaluate_escalations(clocks, routed, crm["activities"], crm["users"], policy, later),
        repeat=args.repeat,
    )
    deadline_s, deadline_runs = deadlines(args.deadlines, crm["users"], policy)
    print(json.dumps({
        "benchmark": "handoff-replay+sla",
        "accounts": args.accounts,
        "signals_in_replay_window": len(activities) + len(intent),
        "signals_total": len(crm["activities"]) + len(crm["intent_signals"]),
        "mqas_fired": len(fired),
        "replay_median_s": round(replay_s, 2),
        "replay_runs_s": [round(t, 2) for t in replay_runs],
        "clocks": len(clocks),
        "clocks_median_s": round(clocks_s, 2),
        "clocks_runs_s": [round(t, 2) for t in clocks_runs],
        "escalation_rows": len(escalations),
        "escalations_median_s": round(escalations_s, 2),
        "deadlines": args.deadlines,
        "deadlines_median_s": round(deadline_s, 2),
        "deadlines_runs_s": [round(t, 2) for t in deadline_runs],
        "peak_rss_mib": round(peak_rss_mib()),
    }))


if __name__ == "__main__":
    main()
