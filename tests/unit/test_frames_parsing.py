"""Timestamps with and without offsets: the column-wide test of the usual offsets agrees with the offset pattern;
the column-wide text of UTC timestamps is pandas' own."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from abm_sla.crm.files.validation import _hash_ids, by_unique, utc_text
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


#: Whole seconds, fractions of 6 and 9 digits, either side of 1970, the ends of the nanosecond range, other offsets.
TIMES = ["2026-01-01T00:00:58Z", "2026-01-02T00:00:00.5Z", "1969-12-31T23:59:59.5Z", "1969-12-31T23:59:59.000000001Z",
         "2026-01-01T00:00:58.000001Z", "2026-01-02T00:00:00.123Z", None, "1677-09-22T00:00:00Z",
         "2262-04-11T00:00:00.999999999Z", "2026-03-01T12:30:58+02:00", "2026-03-01T00:00:00.000999Z"]


@pytest.mark.parametrize("times", [TIMES, TIMES[:1], [], "random"])
def test_utc_text_is_pandas_text_of_each_timestamp(times: list[str] | str) -> None:
    if times == "random":
        nanos = np.random.default_rng(7).integers(-2**62, 2**62, 20_000)
        nanos[::3] -= nanos[::3] % 1_000_000_000  # a third to the second
        values = pd.Series(nanos.view("datetime64[ns]"), index=np.arange(20_000) * 2).dt.tz_localize("UTC")
    else:
        values = pd.to_datetime(pd.Series(times, dtype=object), utc=True, format="ISO8601").astype(
            "datetime64[ns, UTC]")
    text = utc_text(values)
    assert text.tolist() == values.astype(str).tolist() and text.index.equals(values.index)
    assert utc_text(values.astype(object)).tolist() == values.astype(object).astype(str).tolist()


def test_intent_ids_are_the_sha1_of_the_row_key_as_before() -> None:
    """The stored intent ids (SHA-1 of account, topic, time and provider, as pandas writes them) do not change."""
    import hashlib

    rows = pd.DataFrame({"account_id": ["A1", "A2"], "topic": [" CRM ", "crm"],
                         "observed_at": pd.to_datetime(["2026-01-01T10:00:00Z", "2026-01-01T10:00:00.25Z"], utc=True,
                                                          format="ISO8601"),
                         "provider": ["bombora", None]}, index=[4, 9])
    ids = _hash_ids(rows, ["account_id", "topic", "observed_at", "provider"], normalize="topic")
    keys = ["A1|crm|2026-01-01 10:00:00+00:00|bombora", "A2|crm|2026-01-01 10:00:00.250000+00:00|None"]
    assert ids.to_dict() == {4: hashlib.sha1(keys[0].encode()).hexdigest()[:20],
                             9: hashlib.sha1(keys[1].encode()).hexdigest()[:20]}
