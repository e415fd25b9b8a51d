"""The export folder read into pages (the contract's section 2).

Files are read in chunks of ``chunk_rows`` rows (memory stays bounded whatever the
file's size) and every chunk is validated set-based; a row that cannot be used
becomes a :class:`Quarantined` row with its reason and the run goes on. Accounts
are checked first so that the other files can be checked against them (and against
the accounts already in the warehouse). Each chunk is one :class:`Page`, stored in
one transaction; a file's last page carries its fingerprint, and a file that matches
the fingerprint of its last load is not read again (one ``unchanged`` page).
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from abm_sla.crm.base import FileFingerprint, Page
from abm_sla.crm.files.changes import fingerprint_file, fingerprint_of_read, is_unchanged
from abm_sla.crm.files.reading import (
    CHUNK_ROWS,
    Chunk,
    FileRead,
    check_not_unreadable,
    header_name,
    read_chunks,
    read_header,
    skipped_rows,
)
from abm_sla.crm.files.specs import FILE_SPECS, KEYS_MAY_REPEAT, REFERENCE_REASONS, SOURCE, FileSpec
from abm_sla.crm.files.validation import (
    RowChecks,
    SeenIds,
    dropped_values,
    normalize,
    normalize_domain,
    parse_values,
    present,
    quarantined_rows,
)
from abm_sla.crm.mapping import TierMapper
from abm_sla.domain import frames
from abm_sla.errors import SourceError

#: A chunk referring to more accounts not yet known than this reads every stored account once instead of
#: looking its accounts up by key (a small incremental folder costs its own rows, not the warehouse's).
MAX_ACCOUNTS_LOOKUP = 20_000


class ExportFolder:
    """Reads and validates one export folder into pages of normalized rows, chunk by chunk.

    ``stored_accounts`` are the accounts already in the warehouse (they count as known), or
    ``load_accounts`` reads them on first need; with ``lookup_accounts`` (ids -> the ids stored) a chunk
    that refers to few accounts not known yet looks them up by key instead (at most
    :data:`MAX_ACCOUNTS_LOOKUP`; more read every stored account once). Domains need every stored
    account: they are read at the first accounts chunk when the folder has an intent file (or
    ``domains_needed``), as before, else only when a retried row asks;
    ``fingerprints`` the latest stored fingerprint per file (``Warehouse.file_fingerprints``):
    a file that still matches its fingerprint is skipped, unless rows of it were refused or
    matched through accounts (``reference_rows``) and accounts were loaded since.
    """

    def __init__(
        self,
        path: str | Path,
        stored_accounts: pd.DataFrame | None = None,
        *,
        fingerprints: dict[str, dict[str, Any]] | None = None,
        chunk_rows: int = CHUNK_ROWS,
        load_accounts: Any = None,
        lookup_accounts: Any = None,
        domains_needed: bool = False,
        tier_map: dict[str, str] | None = None,
    ) -> None:
        self.path = Path(path)
        self.tiers = TierMapper(tier_map)
        if not self.path.is_dir():
            raise SourceError(f"export folder {self.path} does not exist or is not a folder")
        if not (self.path / "accounts.csv").is_file():
            check_not_unreadable(self.path / "accounts.csv")
            raise SourceError(f"export folder {self.path} has no accounts.csv (the one required file)")
        self.stored_accounts = stored_accounts
        self.load_accounts = load_accounts
        self.lookup_accounts = lookup_accounts
        # read the stored domains before this load's accounts are written (their old domains still count)
        self.domains_early = (domains_needed or lookup_accounts is None or stored_accounts is not None
                              or (self.path / "intent.csv").is_file())
        self.fingerprints = fingerprints or {}
        self.chunk_rows = chunk_rows
        self.accounts_loaded = False
        self._known: set[str] = set()  # accepted by this load, and stored ones found
        self._absent: set[str] = set()  # looked up and not stored
        self._all_stored = False  # every stored account is in _known
        self._domains: pd.Series | None = None
        self._pending_domains: list[pd.Series] = []  # accepted before the stored domains were read

    def pages(self) -> Iterator[Page]:
        """Pages per file present, in dependency order (accounts first); headers and encodings of every
        file are checked first, so a missing column or a non-UTF-8 file stops the load before any write."""
        found = []
        for spec in FILE_SPECS:
            path = self.path / spec.file
            if not path.is_file():
                check_not_unreadable(path)
                continue
            if self._check_header(spec, path):
                found.append((spec, fingerprint_file(path, self.fingerprints.get(spec.file))))
        return self._pages(found)

    def retry_pages(self, waiting: pd.DataFrame) -> Iterator[Page]:
        """Rows quarantined by earlier loads for an account or domain not known then, validated again now
        that the accounts of this load (and the stored ones) are known: one page per file, named
        ``<file>:retried``, whose ``resolved_quarantine`` names the quarantined rows it loads."""
        specs = {spec.file: spec for spec in FILE_SPECS}
        for file, group in waiting.groupby("object_name", sort=False):
            spec = specs.get(str(file))
            if spec is None:
                continue
            payloads = [payload if isinstance(payload, dict) else json.loads(payload) for payload in group["payload"]]
            table = pd.DataFrame(payloads, dtype=object).fillna("").astype(str)
            table.columns = [header_name(str(column)) for column in table.columns]
            if not self._now_known(spec, table).any():
                continue
            table.index = pd.RangeIndex(len(table))
            chunk = Chunk(table, pd.Series(None, index=table.index, dtype=object), [])
            page, _ = self._page(spec, chunk, SeenIds(), SeenIds())
            page.object_name = f"{spec.file}:retried"
            page.resolved_quarantine = [int(i) for i in group["id"].to_numpy()[page.rows.index.to_numpy()]]
            page.quarantined = []  # rows still refused keep their first quarantine row
            yield page

    def _now_known(self, spec: FileSpec, table: pd.DataFrame) -> pd.Series:
        """Which waiting rows refer to an account or domain known now."""
        account = table.get("account_id", pd.Series("", index=table.index))
        known = self.known(account)
        if "domain" in table:
            known |= normalize_domain(table["domain"]).isin(set(self.domains.index))
        return known

    def _pages(self, found: list[tuple[FileSpec, FileFingerprint]]) -> Iterator[Page]:
        for spec, fingerprint in found:
            stored = self.fingerprints.get(spec.file)
            if is_unchanged(self.fingerprints, fingerprint, stored, self.accounts_loaded):
                unchanged = dataclasses.replace(fingerprint, unchanged_since=stored["id"])
                yield Page(SOURCE, spec.file, spec.kind, frames.empty(spec.kind), fingerprint=unchanged,
                           unchanged=True)
                continue
            yield from self._file_pages(spec, fingerprint)
            if spec.kind == "accounts":
                self.accounts_loaded = True

    def _check_header(self, spec: FileSpec, path: Path) -> bool:
        columns = read_header(path)
        if columns is None:
            return False
        required = spec.required + (("account_id|domain",) if spec.kind == "intent_signals" else ())
        for column in required:
            if not any(option in columns for option in column.split("|")):
                raise SourceError(f"{spec.file} lacks the required column {column.replace('|', ' or ')}")
        return True

    def _file_pages(self, spec: FileSpec, fingerprint: FileFingerprint) -> Iterator[Page]:
        """One page per chunk; the last one carries the file's fingerprint with its counts."""
        seen_ids, seen_intent = SeenIds(), SeenIds()
        rows = quarantined = reference_rows = 0
        pending: Page | None = None
        path = self.path / spec.file
        # rows stored identically are dropped before the database (one read of the stored hashes per file);
        # not for status changes or list rows, whose key may repeat within a file (a later row replaces an earlier one)
        skip_key = None if spec.kind in KEYS_MAY_REPEAT else f"{spec.file}:{uuid.uuid4().hex}"
        read = FileRead()
        for chunk in read_chunks(path, self.chunk_rows, read):
            if pending is not None:
                yield pending
            pending, references = self._page(spec, chunk, seen_ids, seen_intent)
            pending.skip_key = skip_key
            pending.quarantined.extend(skipped_rows(path, chunk.skipped))
            rows += len(chunk.table) + len(chunk.skipped)
            quarantined += len(pending.quarantined)
            reference_rows += references
        if pending is None:  # a header without rows
            header = pd.DataFrame(columns=read_header(path), dtype=object)
            empty = Chunk(header, pd.Series(None, index=header.index, dtype=object), [])
            pending, _ = self._page(spec, empty, seen_ids, seen_intent)
        pending.fingerprint = fingerprint_of_read(path, fingerprint, read, self.fingerprints.get(spec.file))
        pending.fingerprint = dataclasses.replace(
            pending.fingerprint, rows=rows, quarantined=quarantined, reference_rows=reference_rows
        )
        yield pending

    def known(self, ids: pd.Series) -> pd.Series:
        """Which ``ids`` are known accounts: accepted by this load or stored. Ids not known yet are looked
        up by key when they are few (and a lookup is given), else every stored account is read once."""
        if not self._all_stored:
            asked = set(pd.unique(ids[~ids.isin(self._known)].dropna())) - self._absent
            if asked and self.lookup_accounts is not None and len(asked) <= MAX_ACCOUNTS_LOOKUP:
                found = set(self.lookup_accounts(sorted(asked)))
                self._known |= found
                self._absent |= asked - found
            elif asked:
                self._read_stored_accounts()
        return ids.isin(self._known)

    @property
    def domains(self) -> pd.Series:
        """Account id by normalized domain (the last account with a domain wins)."""
        if self._domains is None:
            self._read_stored_accounts()
        return self._domains

    def _read_stored_accounts(self) -> None:
        """Every stored account: its id known, its domain mapped (then the domains this load accepted)."""
        stored = self.stored_accounts
        if stored is None and self.load_accounts is not None:
            stored = self.load_accounts()
        stored = stored if stored is not None else frames.empty("accounts")
        self._known |= set(stored["account_id"].dropna())
        self._all_stored = True
        if self._domains is None:
            self._domains = pd.Series(stored["account_id"].to_numpy(), index=normalize_domain(stored["domain"]))
            for accepted in self._pending_domains:
                self._add_domains(accepted)
            self._pending_domains = []

    def _page(self, spec: FileSpec, chunk: Chunk, seen_ids: SeenIds, seen_intent: SeenIds) -> tuple[Page, int]:
        """One chunk validated and normalized; also how many of its rows depend on the accounts known."""
        table = chunk.table
        checks = RowChecks(table)
        checks.fail(chunk.problems.notna(), chunk.problems)
        for column in spec.required:
            checks.fail(~present(table, column), f"missing required value: {column}")
        if spec.id_column:
            ids = table.loc[chunk.problems.isna(), spec.id_column]  # a malformed row's id is no id
            duplicate = ids.duplicated(keep="first") | seen_ids.seen_before(ids)
            checks.fail(duplicate.reindex(table.index, fill_value=False),
                        "duplicate id " + table[spec.id_column] + " in the same file")
        parsed = parse_values(spec, table, checks)
        by_domain = self._check_references(spec, table, parsed, checks)
        rows = normalize(spec, table[checks.ok], parsed.loc[checks.ok], self.tiers)
        if spec.kind == "intent_signals":
            duplicate = rows["intent_id"].duplicated(keep="first")
            earlier = seen_intent.seen_before(rows.loc[~duplicate, "intent_id"])
            duplicate[earlier.index[earlier]] = True
            rows, dropped = rows[~duplicate], rows.index[duplicate]
            checks.fail(pd.Series(table.index.isin(dropped), index=table.index),
                        "duplicate intent row (same account, topic, time, source) in the file")
        if spec.kind == "accounts":
            self._accept_accounts(rows)
        reasons = checks.reason.dropna()
        references = int(reasons.str.startswith(REFERENCE_REASONS).sum()) + int(by_domain[checks.ok].sum())
        quarantined = quarantined_rows(spec, table, checks, chunk.extras)
        quarantined += dropped_values(spec, table, checks)
        return Page(SOURCE, spec.file, spec.kind, rows, quarantined=quarantined), references

    def _accept_accounts(self, rows: pd.DataFrame) -> None:
        self._known.update(rows["account_id"])
        new_domains = pd.Series(rows["account_id"].to_numpy(), index=normalize_domain(rows["domain"]))
        if self._domains is None and not self.domains_early:
            self._pending_domains.append(new_domains)
            return
        self._add_domains(new_domains)

    def _add_domains(self, new_domains: pd.Series) -> None:
        domains = pd.concat([self.domains, new_domains])
        domains = domains[domains.index.notna()]
        self._domains = domains[~domains.index.duplicated(keep="last")]

    def _check_references(
        self, spec: FileSpec, table: pd.DataFrame, parsed: pd.DataFrame, checks: RowChecks
    ) -> pd.Series:
        """Refuse rows of unknown accounts (or domains); returns which rows found their account by domain."""
        by_domain = pd.Series(False, index=table.index)
        if spec.kind in ("accounts", "users"):
            return by_domain
        account_id = table["account_id"] if "account_id" in table else pd.Series("", index=table.index)
        if spec.kind == "intent_signals":
            domain = normalize_domain(table.get("domain", pd.Series(None, index=table.index)))
            found = domain.map(self.domains)
            checks.fail((account_id == "") & domain.isna(), "missing required value: account_id or domain")
            checks.fail((account_id == "") & domain.notna() & found.isna(),
                        "unknown domain " + domain.fillna(""))
            parsed["account_id"] = account_id.where(account_id != "", found)
            by_domain = (account_id == "") & parsed["account_id"].notna()
        else:
            parsed["account_id"] = account_id
        known = self.known(parsed["account_id"])
        checks.fail(present(table, "account_id") & ~known, "unknown account " + account_id)
        return by_domain
