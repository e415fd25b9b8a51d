"""Score 200k accounts with ~10M signals (synthetic CRM) as of one moment: wall time and peak memory.

    .venv/bin/python benchmarks/bench_scoring.py [--accounts 200000] [--signals-per-account 50]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _measure import peak_rss_mib, timed

from abm_sla.domain.scoring import score_accounts
from abm_sla.services.config_files import load_model
from abm_sla.services.synthetic import generate_crm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=200_000)
    parser.add_argument("--signals-per-account", type=float, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    crm, generate_s, _ = timed(
        lambda: generate_crm(n_accounts=args.accounts, signals_per_account=args.signals_per_account), repeat=1
    )
    signals = len(crm["activities"]) + len(crm["intent_signals"])
    baseline_mib = peak_rss_mib()
    as_of = crm["activities"]["occurred_at"].max().floor("D") + pd.Timedelta(hours=12)
    model = load_model()
    scores, median_s, timings = timed(
        lambda: score_accounts(
            crm["accounts"], crm["contacts"], crm["activities"], crm["intent_signals"], model, as_of
        ),
        repeat=args.repeat,
    )
    print(json.dumps({
        "benchmark": "scoring",
        "accounts": args.accounts,
        "signals": signals,
        "generate_s": round(generate_s, 2),
        "score_median_s": round(median_s, 2),
        "score_runs_s": [round(t, 2) for t in timings],
        "accounts_per_s": round(args.accounts / median_s),
        "peak_rss_mib": round(peak_rss_mib()),
        "peak_rss_after_generation_mib": round(baseline_mib),
        "qualified": int(scores["qualified"].sum()),
    }))


if __name__ == "__main__":
    main()
