"""Report cells as people read them."""

from __future__ import annotations

import pandas as pd

from abm_sla.services import report_format as fmt


def test_numbers_in_their_units():
    assert fmt.percent(66.66) == "66.7%" and fmt.percent(float("nan")) == "—"
    assert fmt.hours(4.2) == "4.2 h"
    assert fmt.money(1234567.4) == "$1,234,567"
    assert fmt.days(30.0) == "30 days"
    assert fmt.number(1234) == "1,234" and fmt.number(2.50) == "2.5"


def test_commitments_read_as_sentences():
    assert fmt.commitment_name("first_touch_met_pct", 2) == "First touch within the window, Tier 2"
    assert fmt.commitment_name("tier1_win_rate_pct", 1) == "Win rate, Tier 1"
    assert fmt.commitment_target("first_touch_met_pct", ">= 95") == "≥ 95%"
    assert fmt.commitment_target("rejection_pct", "5-10") == "5–10%"
    assert fmt.commitment_target("sales_cycle_days", "<= 120") == "≤ 120 days"


def test_present_merges_names_and_ids_and_words_verdicts():
    frame = pd.DataFrame({"owner_id": ["U1", "all"], "owner_name": ["Ann", "All owners"], "tier": [1, "all"],
                          "met_pct": [50.0, None], "on_target": [False, None], "missed": [True, False],
                          "amount": [1500.0, 0.0], "median_bh": [2.5, None]})
    shown = fmt.present("compliance_by_owner", frame)
    assert shown.columns == ["Owner", "Tier", "Met %", "On target", "Missed", "Amount", "Median response"]
    assert shown.rows[0] == ["Ann · U1", "Tier 1", "50%", "no", "missed", "$1,500", "2.5 h"]
    assert shown.rows[1] == ["All", "All tiers", "—", "—", "met", "$0", "—"]
    assert shown.entities == {"Owner"}
