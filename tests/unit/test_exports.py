"""Export formatting: ISO 8601 UTC text, empty when missing, whatever the column holds."""

from __future__ import annotations

import json

import pandas as pd

from abm_sla.services.exports import iso_utc


def test_iso_utc_formats_and_leaves_missing_values_empty():
    stamps = pd.Series([pd.Timestamp("2026-03-02T15:00:00+01:00"), pd.NaT, pd.Timestamp("2026-03-02T14:00:00.25Z")])
    assert iso_utc(stamps).tolist() == ["2026-03-02T14:00:00Z", "", "2026-03-02T14:00:00.250000Z"]


def test_an_all_missing_column_is_text_a_json_artifact_can_hold():
    """A what-if where nothing would fire has no would_fire_at at all: it must still serialize."""
    column = iso_utc(pd.Series([pd.NaT, pd.NaT], dtype="datetime64[ns, UTC]"))
    assert json.dumps(column.tolist()) == '["", ""]'
