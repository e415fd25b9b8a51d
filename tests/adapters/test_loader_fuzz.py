"""Fuzz the export-folder loader: no input crashes a load.

Generated rows (valid values mixed with garbage: quotes, separators, line breaks, NUL bytes, odd
timestamps and numbers, missing and extra fields) and raw bytes. Every data row is either loaded or
quarantined with a reason; the only other outcome is one clear line naming the file (a ``SourceError``)
for a file that is no UTF-8 text or that the CSV reader cannot read at all.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from abm_sla.errors import SourceError
from abm_sla.services import stages
from abm_sla.warehouse import Warehouse, schema

NOW = dt.datetime(2026, 4, 1, tzinfo=dt.UTC)
HEADER = ["id", "account_id", "type", "occurred_at", "url"]
ACCOUNTS = "id,name,employees\nA1,Acme,1000\nA2,Beta,\n"

garbage = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)
field = st.one_of(
    garbage,
    st.sampled_from(["", "A1", "A2", "A9", "call", "web_visit", "fax", "CALL", "2026-01-02T03:04:05Z",
                     "20260101T013058Z", "2026-02-30", "yesterday", "1e400", "NaN", "https://x.example/pricing",
                     '"', '""', ",", "\n", "\r\n", "\x00", "A1\x00", " A1 "]),
)
row = st.lists(field, min_size=0, max_size=7)  # fewer and more fields than the header


def count_records(text: str) -> int:
    """Data records as Python's csv module reads them (the header excluded, blank lines skipped)."""
    return max(sum(1 for record in csv.reader(io.StringIO(text)) if record) - 1, 0)


def load_activities(content: bytes) -> tuple[dict | None, int]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "export"
        folder.mkdir()
        (folder / "accounts.csv").write_text(ACCOUNTS, encoding="utf-8")
        (folder / "activities.csv").write_bytes(content)
        store = Warehouse(f"sqlite:///{Path(tmp) / 'w.db'}")
        try:
            summary = stages.extract_files(store, folder, "fuzz", NOW)
        except SourceError as error:
            assert "\n" not in str(error) and str(error).startswith("activities.csv")
            return None, 0
        stored = len(store.read_kind("activities"))
        with store.engine.connect() as connection:
            reasons = [r for (r,) in connection.execute(
                schema.quarantine.select().with_only_columns(schema.quarantine.c.reason)
                .where(schema.quarantine.c.object_name == "activities.csv"))]
        store.engine.dispose()
        assert all(reasons), "every quarantined row has a reason"
        return summary.get("activities.csv"), stored


@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(row, max_size=8))
def test_generated_rows_are_each_loaded_or_quarantined(rows) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(HEADER)
    writer.writerows(rows)
    text = buffer.getvalue()
    counts, stored = load_activities(text.encode("utf-8"))
    if counts is None:
        return
    assert counts["loaded"] + counts["quarantined"] == count_records(text), counts
    assert stored <= counts["loaded"]  # a repeated id loads once


@settings(max_examples=20, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(content=st.binary(max_size=200))
def test_arbitrary_bytes_never_crash_a_load(content) -> None:
    load_activities(b"id,account_id,type,occurred_at\n" + content)
