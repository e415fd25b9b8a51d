"""Timestamps with and without offsets: the column-wide test of the usual offsets agrees with the offset pattern."""
from __future__ import annotations

import pandas as pd
import pytest

from abm_sla.crm.files.validation import by_unique
from abm_sla.domain import frames

VALUES = ["2026-01-01T10:00:00+02:00", "2026-01-01T10:00:00Z", "2026-01-01T10:00:00z", "2026-01-01T10:00:00",
          "2026-01-01", "2026-01-01T10:00:00.123+02:00", "2026-01-01T1000+0200", "T100000Z", "x", "",
          " 2026-01-01T10:00:00-05:00 ", "2026-01-01+02:00", "ab:cd:ef+gh:ij", "2026-01-01T10:00:00 +0200",
          "é2026-01-01T10:00:00+05:00"]
#: A value longer than the fixed-width copy takes: its column is tested with the pattern alone.
LONG = "2026-01-01T10:00:00" + " " * 70 + "+02:00"


@pytest.mark.parametrize("values", [VALUES, [*VALUES, LONG]], ids=["column-wide", "pattern-only"])
def test_the_usual_offsets_are_recognized_as_the_pattern_does(values: list[str]) -> None:
    text = frames.strip_text(pd.Series(values).astype("string")).replace("", pd.NA)
    expected = text.str.contains(frames.OFFSET_PATTERN, regex=True).fillna(False).astype(bool)
    assert frames._has_offset(text).tolist() == expected.tolist()


def test_a_naive_time_beside_an_offset_one_is_utc() -> None:
    parsed = frames.to_utc(pd.Series(["2026-01-01T10:00:00+02:00", "2026-01-01T10:00:00", None]), errors="coerce")
    assert parsed.iloc[0] == pd.Timestamp("2026-01-01T08:00:00Z")
    assert parsed.iloc[1] == pd.Timestamp("2026-01-01T10:00:00Z")
    assert pd.isna(parsed.iloc[2])


def test_by_unique_keeps_the_rows_and_their_labels() -> None:
    values = pd.Series(["A", "b", None, "A"], index=[7, 3, 9, 1])
    lowered = by_unique(values, lambda column: column.str.lower())
    assert lowered.index.tolist() == [7, 3, 9, 1]
    assert lowered.tolist()[:2] == ["a", "b"] and pd.isna(lowered.iloc[2]) and lowered.iloc[3] == "a"
