"""Validating one chunk of an export file, set-based: the first reason each row cannot be used (quarantine),
values parsed (timestamps, numbers, booleans), values dropped from rows that still load, duplicate ids across
chunks, and the accepted rows normalized (with their raw row for audit)."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from abm_sla.crm.base import Quarantined
from abm_sla.crm.files.specs import (
    DROPPED,
    FALSE_VALUES,
    FULL_RAW_KINDS,
    PLAUSIBLE,
    THOUSANDS,
    TRUE_VALUES,
    WHOLE_NUMBERS,
    FileSpec,
)
from abm_sla.crm.mapping import TierMapper
from abm_sla.domain import frames
from abm_sla.domain.calendar import usable_zone
from abm_sla.domain.frames import by_unique


def normalize_domain(values: pd.Series) -> pd.Series:
    """``https://www.Acme.com./x`` → ``acme.com``: scheme, ``www.``, case, trailing dots and paths go."""
    return by_unique(values, _normalize_domains)


def _normalize_domains(values: pd.Series) -> pd.Series:
    text = values.fillna("").astype(str).str.strip().str.lower()
    text = text.str.replace(r"^[a-z][a-z0-9+.-]*://", "", regex=True).str.split("/").str[0]
    text = text.str.replace(r"^www\.", "", regex=True).str.rstrip(".")
    return text.where(text != "", None)


class SeenIds:
    """The ids of one file seen in earlier chunks, as sorted 64-bit hashes (8 bytes an id).

    Recent chunks' hashes are kept as separate sorted arrays and merged once there are
    ``merge_every`` of them, so checking a chunk costs a few binary searches. Two different
    ids share a hash with probability 2**-64: for a 10M-row file, a false duplicate about once in
    370,000 loads.
    """

    def __init__(self, merge_every: int = 8) -> None:
        self.merged = np.empty(0, dtype=np.uint64)
        self.recent: list[np.ndarray] = []
        self.merge_every = merge_every

    def seen_before(self, ids: pd.Series) -> pd.Series:
        """Which of ``ids`` an earlier call saw; remembers them all."""
        hashes = pd.util.hash_array(ids.to_numpy(dtype=object))
        seen = np.zeros(len(hashes), dtype=bool)
        for known in (self.merged, *self.recent):
            if len(known):
                at = np.minimum(np.searchsorted(known, hashes), len(known) - 1)
                seen |= known[at] == hashes
        self.recent.append(np.unique(hashes))
        if len(self.recent) >= self.merge_every:
            self.merged = np.unique(np.concatenate([self.merged, *self.recent]))
            self.recent = []
        return pd.Series(seen, index=ids.index)


class RowChecks:
    """Collects the first reason each row of one file cannot be used (and the first value dropped from a row that
    loads); which rows have one is kept as a boolean array too, so each check costs no scan of the reasons."""

    def __init__(self, table: pd.DataFrame) -> None:
        self.table = table
        self.reason = pd.Series(None, index=table.index, dtype="object")
        self.notes = pd.Series(None, index=table.index, dtype="object")
        self._failed = np.zeros(len(table), dtype=bool)
        self._noted = np.zeros(len(table), dtype=bool)

    def _rows(self, bad: pd.Series) -> np.ndarray:
        if not bad.index.equals(self.reason.index):
            bad = bad.reindex(self.reason.index, fill_value=False)
        return bad.to_numpy(dtype=bool)

    def note(self, bad: pd.Series, message: pd.Series | str) -> None:
        """Record a value dropped from rows that still load (the first such problem of each row)."""
        new = self._rows(bad) & ~self._noted
        if new.any():
            self._noted |= new
            self.notes[new] = message[new] if isinstance(message, pd.Series) else message

    def fail(self, bad: pd.Series, message: pd.Series | str) -> None:
        """Give rows that are bad (and not failed already) this reason."""
        new = self._rows(bad) & ~self._failed
        if new.any():
            self._failed |= new
            self.reason[new] = message[new] if isinstance(message, pd.Series) else message

    @property
    def ok(self) -> pd.Series:
        return pd.Series(~self._failed, index=self.reason.index)


def present(table: pd.DataFrame, column: str) -> pd.Series:
    if column not in table:
        return pd.Series(False, index=table.index)
    return table[column] != ""


def _parse_timestamps(values: pd.Series) -> pd.Series:
    """ISO 8601 to UTC (NaT when unparsable); a value pandas chokes on costs its row, never the load."""
    try:
        return frames.to_utc(values, errors="coerce")
    except (TypeError, ValueError, OverflowError):
        return pd.Series([_parse_one_timestamp(value) for value in values], index=values.index,
                         dtype="datetime64[ns, UTC]")


def _parse_one_timestamp(value: str) -> pd.Timestamp:
    try:
        return frames.to_utc(pd.Series([value], dtype=object), errors="coerce").iloc[0]
    except (TypeError, ValueError, OverflowError):
        return pd.NaT


def _parse_numbers(values: pd.Series) -> pd.Series:
    """Numbers, with thousands separators (``1,000``, ``1,234,567.5``) read; NaN when unparsable."""
    grouped = values.str.fullmatch(THOUSANDS, na=False)
    text = values.where(~grouped, values.str.replace(",", "", regex=False))
    return pd.to_numeric(text.replace("", None), errors="coerce").astype(float)


def _parse_booleans(values: pd.Series) -> pd.Series:
    lowered = values.str.lower()
    truth = {**dict.fromkeys(TRUE_VALUES, True), **dict.fromkeys(FALSE_VALUES, False)}
    return lowered.map(truth).astype("object")


def raw_json(spec: FileSpec, table: pd.DataFrame) -> pd.Series:
    """The raw row kept for audit, as JSON text: the whole CSV row for the low-volume kinds; for
    activities, intent and status changes only the columns the loader does not normalize (None
    when there are none or all are empty), so a 10M-row file is not stored twice."""
    columns = list(table.columns)
    if spec.kind not in FULL_RAW_KINDS:
        normalized = set(frames.COLUMNS[spec.kind]) | {"id", "source"}  # an intent row's domain stays
        columns = [column for column in columns if column not in normalized]
        if not columns:
            return pd.Series(None, index=table.index, dtype=object)
    if table.empty:
        return pd.Series(None, index=table.index, dtype=object)
    text = pd.Series(table[columns].to_json(orient="records", lines=True).splitlines(), index=table.index,
                     dtype=object)
    if spec.kind not in FULL_RAW_KINDS:
        text = text.where((table[columns] != "").any(axis=1), None)
    return text


def utc_text(values: pd.Series) -> pd.Series:
    """``values.astype(str)``, and for a UTC timestamp column (nanoseconds) the same text computed column-wide:
    ``2026-01-01 00:00:58+00:00``, a fraction of a second as 6 digits (9 with nanoseconds), ``NaT`` when
    missing (pandas formats each timestamp in Python)."""
    if not (isinstance(values.dtype, pd.DatetimeTZDtype) and str(values.dtype.tz) == "UTC"
            and values.dtype.unit == "ns"):
        return values.astype(str)
    instants = values.dt.tz_localize(None).to_numpy()
    nanos = instants.view(np.int64)
    fraction = np.mod(nanos, 1_000_000_000)
    text = np.datetime_as_string((nanos - fraction).view("datetime64[ns]"), unit="s")
    if len(text):  # YYYY-MM-DDTHH:MM:SS as UCS-4 code points, one row a value: the "T" becomes a space
        text.view(np.uint32).reshape(len(text), -1)[:, 10] = ord(" ")
    out = np.char.add(text, "+00:00").astype(object)
    for at in np.flatnonzero(fraction):  # rare in an export: timestamps to the second
        digits = f"{fraction[at] // 1000:06d}" if fraction[at] % 1000 == 0 else f"{fraction[at]:09d}"
        out[at] = f"{text[at]}.{digits}+00:00"
    out[np.isnat(instants)] = "NaT"
    return pd.Series(out, index=values.index, dtype=object)


def _hash_ids(rows: pd.DataFrame, columns: list[str], normalize: str) -> pd.Series:
    """A stable id for rows the CRM gives none (intent signals)."""
    parts = pd.DataFrame({column: utc_text(rows[column]) for column in columns}, index=rows.index)
    parts[normalize] = by_unique(parts[normalize], lambda values: values.str.strip().str.lower())
    joined = parts[columns[0]].str.cat(parts[columns[1:]], sep="|")  # an empty frame gives an empty column
    sha1 = hashlib.sha1
    return pd.Series([sha1(text.encode()).hexdigest()[:20] for text in joined.tolist()], index=joined.index,
                     dtype="object")


def frames_conform(kind: str, rows: pd.DataFrame) -> pd.DataFrame:
    """Normalized columns (plus ``raw``) with UTC timestamps and numbers as floats."""
    ordered = rows[[*frames.COLUMNS[kind], "raw"]].copy()
    for column in frames.TIMESTAMP_COLUMNS[kind]:
        ordered[column] = pd.to_datetime(ordered[column], utc=True).astype("datetime64[ns, UTC]")
    for column in ("employees", "annual_revenue", "score", "amount"):
        if column in ordered:
            ordered[column] = pd.to_numeric(ordered[column]).astype(float)
    return ordered


def parse_values(spec: FileSpec, table: pd.DataFrame, checks: RowChecks) -> pd.DataFrame:
    """The timestamps, numbers, booleans and kinds of one chunk parsed; a value that cannot be used fails its row
    (or, optional, is dropped and noted)."""
    parsed = pd.DataFrame(index=table.index)
    for column in spec.timestamps:
        if column not in table:
            continue
        parsed[column] = _parse_timestamps(table[column])
        checks.fail(present(table, column) & parsed[column].isna(),
                    f"unparsable timestamp in {column}: " + table[column])
    for column in spec.numbers:
        if column not in table:
            continue
        parsed[column] = _parse_numbers(table[column])
        unparsable = present(table, column) & parsed[column].isna()
        if column in spec.required:
            checks.fail(unparsable, f"unparsable number in {column}: " + table[column])
            continue
        # an optional value that cannot be used is dropped, not its row (nor the rows that refer to it)
        refused = unparsable | ~np.isfinite(parsed[column].fillna(0))
        checks.note(refused, f"unusable number in {column}: " + table[column])
        low, high = PLAUSIBLE.get(column, (-np.inf, np.inf))
        implausible = ~refused & parsed[column].notna() & ~parsed[column].between(low, high)
        checks.note(implausible, f"number outside {low:,.0f} to {high:,.0f} in {column}: " + table[column])
        if column in WHOLE_NUMBERS:
            fraction = ~refused & ~implausible & parsed[column].notna() & (parsed[column] % 1 != 0)
            implausible |= fraction
            checks.note(fraction, f"not a whole number in {column}: " + table[column])
        parsed.loc[refused | implausible, column] = np.nan
    for column in spec.booleans:
        if column not in table:
            continue
        parsed[column] = _parse_booleans(table[column])
        checks.fail(present(table, column) & parsed[column].isna(),
                    f"unparsable boolean in {column}: " + table[column])
    if spec.kind == "activities":
        kind = by_unique(table["type"], lambda values: values.str.lower())
        parsed["type"] = kind
        checks.fail(~kind.isin(frames.ACTIVITY_TYPES), "unknown activity type " + table["type"])
    if spec.kind == "requests":
        kind = by_unique(table["kind"], lambda values: values.str.strip().str.lower())
        parsed["kind"] = kind
        checks.fail(~kind.isin(frames.REQUEST_KINDS), "unknown request kind " + table["kind"])
    if spec.kind == "intent_signals":
        checks.fail(parsed["score"].notna() & ~parsed["score"].between(0, 100), "score outside 0-100")
    if spec.kind == "users" and "time_zone" in table:
        zones = table["time_zone"][present(table, "time_zone")]
        bad = zones[~zones.map(usable_zone)]  # posixrules, Factory, localtime: unknown too
        checks.fail(table.index.to_series().isin(bad.index), "unknown time zone " + table["time_zone"])
    return parsed


def normalize(spec: FileSpec, table: pd.DataFrame, parsed: pd.DataFrame, tiers: TierMapper) -> pd.DataFrame:
    """The accepted rows of one chunk as the kind's normalized columns (ids derived where the CRM gives none)."""
    out = pd.DataFrame(index=table.index)
    columns = frames.COLUMNS[spec.kind]
    source_names = {"provider": "source"}
    for column in columns:
        name = source_names.get(column, column)
        if column in parsed:
            out[column] = parsed[column]
        elif name in table:
            out[column] = table[name].replace("", None)
        else:
            out[column] = None
    if spec.id_column:
        out[columns[0]] = table[spec.id_column]
    elif spec.kind == "intent_signals":
        key = ["account_id", "topic", "observed_at", "provider"]
        out["intent_id"] = _hash_ids(out, key, normalize="topic")
    elif spec.kind == "target_accounts":  # one membership period per account and added_at
        added = out["added_at"].dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ").fillna("")
        out["target_account_id"] = out["account_id"] + "|" + added
    else:
        out["status_change_id"] = (
            out["account_id"] + "|" + out["changed_at"].dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            + "|" + out["status"].str.lower()
        )
    if spec.kind == "accounts":  # SPEC's tier values (and the configured tier map); others: no tier
        out["tier"] = tiers.map(out["tier"])
    if spec.kind == "users":
        out["time_zone"] = out["time_zone"].fillna("UTC")
        out["active"] = out["active"].astype("object").where(out["active"].notna(), True)
    out["raw"] = raw_json(spec, table)
    return frames_conform(spec.kind, out)


def dropped_values(spec: FileSpec, table: pd.DataFrame, checks: RowChecks) -> list[Quarantined]:
    """Rows loaded without a value they carried: kept in the quarantine table with what was dropped."""
    noted = checks.notes.notna() & checks.ok
    if not noted.any():
        return []
    payloads = table[noted].to_dict(orient="records")
    lines = (table.index[noted] + 2).astype(str)
    return [Quarantined(spec.file, line, DROPPED + note, payload)
            for line, note, payload in zip(lines, checks.notes[noted], payloads, strict=True)]


def quarantined_rows(
    spec: FileSpec, table: pd.DataFrame, checks: RowChecks, extras: pd.DataFrame | None = None
) -> list[Quarantined]:
    """The rows that failed, as quarantine rows: line number, first reason, the row's values."""
    bad = checks.reason.notna()
    line_numbers = (table.index[bad] + 2).astype(str)  # the header is line 1
    payloads = table[bad].to_dict(orient="records")
    if extras is not None and len(extras):  # a ragged row keeps the values past the header too
        more = extras.reindex(table.index[bad]).to_dict(orient="records")
        payloads = [{**payload, **{key: value for key, value in fields.items() if isinstance(value, str) and value}}
                    for payload, fields in zip(payloads, more, strict=True)]
    return [
        Quarantined(spec.file, line, reason, payload)
        for line, reason, payload in zip(line_numbers, checks.reason[bad], payloads, strict=True)
    ]
