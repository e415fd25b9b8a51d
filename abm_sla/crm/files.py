"""The ``files`` source: a CRM export folder of CSV files (SPEC section 2).

Every file is validated set-based; a row that cannot be used becomes a
:class:`Quarantined` row with its reason and the run goes on. Accounts are
checked first so that the other files can be checked against them (and against
the accounts already in the warehouse).
"""

from __future__ import annotations

import hashlib
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from abm_sla import frames
from abm_sla.crm.base import CursorStore, Page, Quarantined
from abm_sla.errors import SourceError

SOURCE = "files"


@dataclass(frozen=True)
class FileSpec:
    """How one CSV file maps to a normalized kind."""

    file: str
    kind: str
    required: tuple[str, ...]
    timestamps: tuple[str, ...] = ()
    numbers: tuple[str, ...] = ()
    booleans: tuple[str, ...] = ()
    id_column: str | None = "id"


FILE_SPECS = (
    FileSpec("accounts.csv", "accounts", ("id", "name"), ("created_at", "updated_at"),
             ("employees", "annual_revenue")),
    FileSpec("users.csv", "users", ("id",), booleans=("active",)),
    FileSpec("contacts.csv", "contacts", ("id", "account_id"), ("created_at", "updated_at")),
    FileSpec("activities.csv", "activities", ("id", "account_id", "type", "occurred_at"), ("occurred_at",)),
    FileSpec("intent.csv", "intent_signals", ("topic", "score", "observed_at"), ("observed_at",), ("score",),
             id_column=None),
    FileSpec("opportunities.csv", "opportunities", ("id", "account_id"), ("created_at", "close_date"),
             ("amount",), ("is_closed", "is_won")),
    FileSpec("status_changes.csv", "status_changes", ("account_id", "status", "changed_at"), ("changed_at",),
             id_column=None),
)
TRUE_VALUES = {"true", "1"}
FALSE_VALUES = {"false", "0"}


def normalize_domain(values: pd.Series) -> pd.Series:
    """``https://www.Acme.com./x`` → ``acme.com``: scheme, ``www.``, case, trailing dots and paths go."""
    text = values.fillna("").astype(str).str.strip().str.lower()
    text = text.str.replace(r"^[a-z][a-z0-9+.-]*://", "", regex=True).str.split("/").str[0]
    text = text.str.replace(r"^www\.", "", regex=True).str.rstrip(".")
    return text.where(text != "", None)


def read_csv(path: Path) -> pd.DataFrame:
    """A CSV file as strings ('' for empty cells), header names stripped and lower-cased."""
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except UnicodeDecodeError:
        raise SourceError(f"{path.name} is not UTF-8 text") from None
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except (pd.errors.ParserError, OSError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise SourceError(f"cannot read {path.name}: {first_line}") from None
    table.columns = [str(column).strip().lower() for column in table.columns]
    return table.apply(lambda column: column.str.strip())


class RowChecks:
    """Collects the first reason each row of one file cannot be used."""

    def __init__(self, table: pd.DataFrame) -> None:
        self.table = table
        self.reason = pd.Series(None, index=table.index, dtype="object")

    def fail(self, bad: pd.Series, message: pd.Series | str) -> None:
        """Give rows that are bad (and not failed already) this reason."""
        new = bad & self.reason.isna()
        if new.any():
            self.reason[new] = message[new] if isinstance(message, pd.Series) else message

    @property
    def ok(self) -> pd.Series:
        return self.reason.isna()


def _present(table: pd.DataFrame, column: str) -> pd.Series:
    if column not in table:
        return pd.Series(False, index=table.index)
    return table[column] != ""


def _parse_timestamps(values: pd.Series) -> pd.Series:
    return frames.to_utc(values, errors="coerce")


def _parse_booleans(values: pd.Series) -> pd.Series:
    lowered = values.str.lower()
    truth = {**dict.fromkeys(TRUE_VALUES, True), **dict.fromkeys(FALSE_VALUES, False)}
    return lowered.map(truth).astype("object")


def _valid_time_zone(name: str) -> bool:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


class ExportFolder:
    """Reads and validates one export folder into pages of normalized rows."""

    def __init__(self, path: str | Path, stored_accounts: pd.DataFrame | None = None) -> None:
        self.path = Path(path)
        if not self.path.is_dir():
            raise SourceError(f"export folder {self.path} does not exist or is not a folder")
        if not (self.path / "accounts.csv").is_file():
            raise SourceError(f"export folder {self.path} has no accounts.csv (the one required file)")
        stored = stored_accounts if stored_accounts is not None else frames.empty("accounts")
        self.known_accounts: set[str] = set(stored["account_id"].dropna())
        self.domains = pd.Series(stored["account_id"].to_numpy(), index=normalize_domain(stored["domain"]))

    def pages(self) -> list[Page]:
        """One page per file present, in dependency order (accounts first)."""
        tables = {spec.file: self._read(spec) for spec in FILE_SPECS}
        pages = []
        for spec in FILE_SPECS:
            table = tables[spec.file]
            if table is None:
                continue
            pages.append(self._page(spec, table))
        return pages

    def _read(self, spec: FileSpec) -> pd.DataFrame | None:
        path = self.path / spec.file
        if not path.is_file():
            return None
        table = read_csv(path)
        if table.empty and not len(table.columns):
            return None
        required = spec.required + (("account_id|domain",) if spec.kind == "intent_signals" else ())
        for column in required:
            if not any(option in table.columns for option in column.split("|")):
                raise SourceError(f"{spec.file} lacks the required column {column.replace('|', ' or ')}")
        return table

    def _page(self, spec: FileSpec, table: pd.DataFrame) -> Page:
        checks = RowChecks(table)
        for column in spec.required:
            checks.fail(~_present(table, column), f"missing required value: {column}")
        if spec.id_column:
            checks.fail(table[spec.id_column].duplicated(keep="first"),
                        "duplicate id " + table[spec.id_column] + " in the same file")
        parsed = self._parse_values(spec, table, checks)
        self._check_references(spec, table, parsed, checks)
        rows = self._normalize(spec, table[checks.ok], parsed.loc[checks.ok])
        if spec.kind == "intent_signals":
            duplicate = rows["intent_id"].duplicated(keep="first")
            rows, dropped = rows[~duplicate], rows.index[duplicate]
            checks.reason[dropped] = "duplicate intent row (same account, topic, time, source) in the file"
        if spec.kind == "accounts":
            self.known_accounts |= set(rows["account_id"])
            new_domains = pd.Series(rows["account_id"].to_numpy(), index=normalize_domain(rows["domain"]))
            self.domains = pd.concat([self.domains, new_domains])
            self.domains = self.domains[self.domains.index.notna()]
            self.domains = self.domains[~self.domains.index.duplicated(keep="last")]
        return Page(SOURCE, spec.file, spec.kind, rows, quarantined=self._quarantined(spec, table, checks))

    def _parse_values(self, spec: FileSpec, table: pd.DataFrame, checks: RowChecks) -> pd.DataFrame:
        parsed = pd.DataFrame(index=table.index)
        for column in spec.timestamps:
            if column not in table:
                continue
            parsed[column] = _parse_timestamps(table[column])
            checks.fail(_present(table, column) & parsed[column].isna(),
                        f"unparsable timestamp in {column}: " + table[column])
        for column in spec.numbers:
            if column not in table:
                continue
            parsed[column] = pd.to_numeric(table[column].replace("", None), errors="coerce")
            checks.fail(_present(table, column) & parsed[column].isna(),
                        f"unparsable number in {column}: " + table[column])
        for column in spec.booleans:
            if column not in table:
                continue
            parsed[column] = _parse_booleans(table[column])
            checks.fail(_present(table, column) & parsed[column].isna(),
                        f"unparsable boolean in {column}: " + table[column])
        if spec.kind == "activities":
            kind = table["type"].str.lower()
            parsed["type"] = kind
            checks.fail(~kind.isin(frames.ACTIVITY_TYPES), "unknown activity type " + table["type"])
        if spec.kind == "intent_signals":
            checks.fail(parsed["score"].notna() & ~parsed["score"].between(0, 100), "score outside 0-100")
        if spec.kind == "users" and "time_zone" in table:
            zones = table["time_zone"][_present(table, "time_zone")]
            bad = zones[~zones.map(_valid_time_zone)]
            checks.fail(table.index.to_series().isin(bad.index), "unknown time zone " + table["time_zone"])
        return parsed

    def _check_references(
        self, spec: FileSpec, table: pd.DataFrame, parsed: pd.DataFrame, checks: RowChecks
    ) -> None:
        if spec.kind in ("accounts", "users"):
            return
        account_id = table["account_id"] if "account_id" in table else pd.Series("", index=table.index)
        if spec.kind == "intent_signals":
            domain = normalize_domain(table.get("domain", pd.Series(None, index=table.index)))
            by_domain = domain.map(self.domains)
            checks.fail((account_id == "") & domain.isna(), "missing required value: account_id or domain")
            checks.fail((account_id == "") & domain.notna() & by_domain.isna(),
                        "unknown domain " + domain.fillna(""))
            parsed["account_id"] = account_id.where(account_id != "", by_domain)
        else:
            parsed["account_id"] = account_id
        known = parsed["account_id"].isin(self.known_accounts)
        checks.fail(_present(table, "account_id") & ~known, "unknown account " + account_id)

    def _normalize(self, spec: FileSpec, table: pd.DataFrame, parsed: pd.DataFrame) -> pd.DataFrame:
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
        else:
            out["status_change_id"] = (
                out["account_id"] + "|" + out["changed_at"].dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
                + "|" + out["status"].str.lower()
            )
        if spec.kind == "users":
            out["time_zone"] = out["time_zone"].fillna("UTC")
            out["active"] = out["active"].astype("object").where(out["active"].notna(), True)
        out["raw"] = table.to_dict(orient="records")
        return frames_conform(spec.kind, out)

    def _quarantined(self, spec: FileSpec, table: pd.DataFrame, checks: RowChecks) -> list[Quarantined]:
        bad = checks.reason.notna()
        line_numbers = (table.index[bad] + 2).astype(str)  # the header is line 1
        payloads = table[bad].to_dict(orient="records")
        return [
            Quarantined(spec.file, line, reason, payload)
            for line, reason, payload in zip(line_numbers, checks.reason[bad], payloads, strict=True)
        ]


class FilesSource:
    """The export folder as a :class:`Source`: one page per file; accounts already stored count as known."""

    name = SOURCE

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def pages(self, cursors: CursorStore) -> Iterator[Page]:
        stored = cursors.read_kind("accounts", source=self.name) if hasattr(cursors, "read_kind") else None
        yield from ExportFolder(self.path, stored_accounts=stored).pages()


def _hash_ids(rows: pd.DataFrame, columns: list[str], normalize: str) -> pd.Series:
    """A stable id for rows the CRM gives none (intent signals)."""
    parts = rows[columns].astype(str)
    parts[normalize] = parts[normalize].str.strip().str.lower()
    joined = parts[columns[0]].str.cat(parts[columns[1:]], sep="|")  # an empty frame gives an empty column
    return joined.map(lambda text: hashlib.sha1(text.encode()).hexdigest()[:20]).astype("object")


def frames_conform(kind: str, rows: pd.DataFrame) -> pd.DataFrame:
    """Normalized columns (plus ``raw``) with UTC timestamps and numbers as floats."""
    ordered = rows[[*frames.COLUMNS[kind], "raw"]].copy()
    for column in frames.TIMESTAMP_COLUMNS[kind]:
        ordered[column] = pd.to_datetime(ordered[column], utc=True).astype("datetime64[ns, UTC]")
    for column in ("employees", "annual_revenue", "score", "amount"):
        if column in ordered:
            ordered[column] = pd.to_numeric(ordered[column]).astype(float)
    return ordered
