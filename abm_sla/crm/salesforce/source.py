"""The Salesforce source on simple-salesforce: incremental pages of normalized frames.

Each object is read with ``queryAll`` (so soft-deleted rows arrive with
``IsDeleted = true`` and become deletes) as
``WHERE SystemModstamp >= <cursor - overlap> AND SystemModstamp <= <sync start>
ORDER BY SystemModstamp, Id``, paging through ``nextRecordsUrl``. Every REST page
becomes one :class:`Page` whose cursor is the page's largest SystemModstamp, so
the watermark never passes the sync's start and a sync stopped after any page
resumes there (the overlap re-reads a few rows; the warehouse merges by id).
Objects whose change count is above ``bulk_threshold`` are read with Bulk API 2.0
(unordered, so only its last page carries the cursor).
"""


from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable, Iterator
from typing import Any

import requests
from simple_salesforce import Salesforce
from simple_salesforce.bulk2 import Operation
from simple_salesforce.exceptions import (
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceOperationError,
    SalesforceRefusedRequest,
)

from abm_sla.crm.base import CursorStore, Page
from abm_sla.crm.limits import Retry, RetryPolicy, call_with_retry, redact
from abm_sla.crm.mapping import SalesforceConfig, conform, list_periods, to_bool
from abm_sla.crm.reconcile import IdScan, Reconciling, marketing_types, sales_types
from abm_sla.crm.salesforce.login import ClientFactory
from abm_sla.crm.salesforce.query import (
    CONFIGURED_FIELDS,
    HISTORY_RETENTION,
    MISSING_EFFECT,
    BulkState,
    ObjectSpec,
    build_soql,
    bulk_client,
    bulk_object,
    cursor_text,
    object_specs,
    parse_time,
)
from abm_sla.crm.salesforce.records import CurrencyRates, RecordMapper, flatten, parse_csv
from abm_sla.errors import SourceError

log = logging.getLogger(__name__)
#: Account ids per AccountHistory query of the target account list field: 200 quoted 18-character ids keep the
#: SOQL text (a GET query string) near 5,000 characters, far under the 100,000 characters SOQL allows.
TAL_HISTORY_BATCH = 200


class SalesforceSource(Reconciling):
    """Yields pages of every configured object changed since the stored cursors."""

    def __init__(
        self,
        config: SalesforceConfig,
        client_factory: ClientFactory,
        *,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.config, self.name = config, config.name
        self.factory, self.now = client_factory, now
        self.policy = RetryPolicy(config.retry.max_attempts, config.retry.base_delay, config.retry.max_delay)
        if sleep is not None:
            self.policy.sleep = sleep
        self.mapper = RecordMapper(config, self.name)
        self._client: Salesforce | None = None
        self._described: dict[str, dict[str, dict]] = {}
        self._usage: tuple[int, int] | None = None  # (used, total) daily API requests, from the last response
        self.calls = 0

    # ---- public ----

    def pages(self, cursors: CursorStore) -> Iterator[Page]:
        """Every configured object in order; each page carries its own cursor.

        First the configured fields are checked against each object's ``describe()``: a mapped field
        the org does not have (a vanilla org has no ``Tier__c``) is one warning line naming the config
        key, and the rest syncs without it (its column stays empty)."""
        sync_start = self.now().astimezone(dt.UTC).replace(microsecond=0)
        warnings = self._check_fields()
        multi_currency = self._read_currencies(warnings)
        retention_said = False
        for spec in object_specs(self.config, multi_currency):
            stored = cursors.get_cursor(self.name, spec.name)
            if spec.table == "AccountHistory" and stored is None and not retention_said:
                retention_said = True
                log.warning(HISTORY_RETENTION)
                warnings.setdefault(spec.name, []).append(HISTORY_RETENTION)
            job = BulkState.parse(cursors.get_cursor(self.name, bulk_object(spec)))
            pages = self.object_pages(spec, parse_time(stored) if stored else None, sync_start, job)
            yield from self._said_first(spec, warnings.pop(spec.name, []), pages)
        for name, lines in warnings.items():  # an object not configured for reading: still said
            kind = "accounts" if name == "Account" else "users"
            yield Page(self.name, name, kind, conform(kind, []), warnings=lines)
        yield from self.reconcile(cursors, sync_start)
        warning = self.mapper.tiers.warning(f"Salesforce Account.{self.config.tier_field}",
                                            f"sources.{self.name}.tier_map")
        if warning:
            log.warning(warning)
            yield Page(self.name, "Account", "accounts", conform("accounts", []), warnings=[warning])

    def _said_first(self, spec: ObjectSpec, lines: list[str], pages: Iterator[Page]) -> Iterator[Page]:
        """``pages`` with ``lines`` on the first of them (on an empty page of their own when there is none)."""
        for page in pages:
            page.warnings[:0], lines = lines, []
            yield page
        if lines:
            yield Page(self.name, spec.name, spec.kind, conform(spec.kind, []), warnings=lines)

    def describe(self, sobject: str) -> dict[str, dict]:
        """``sobject``'s fields by name (``GET sobjects/{T}/describe``), relationship names too
        (``UserRole`` of ``UserRoleId``), read once per source."""
        if sobject not in self._described:
            result = self._call(lambda sf: getattr(sf, sobject).describe(), f"describe {sobject}")
            fields = {str(f["name"]): f for f in result.get("fields", [])}
            fields |= {str(f["relationshipName"]): f for f in fields.values() if f.get("relationshipName")}
            self._described[sobject] = fields
        return self._described[sobject]

    def has_field(self, sobject: str, name: str) -> bool:
        """Whether ``sobject`` has field ``name`` (``Parent.Field``: whether it has the relationship)."""
        return name.split(".", 1)[0] in self.describe(sobject)

    def _check_fields(self) -> dict[str, list[str]]:
        """Configured fields the org lacks become ``None`` in this source's config, each with one warning
        (by the object that would have read it); a missing standard field stays and fails as the org says."""
        warnings: dict[str, list[str]] = {}
        updates: dict[str, None] = {}
        for key, sobject in CONFIGURED_FIELDS:
            field = getattr(self.config, key)
            if not field or sobject not in self._sobjects() or self.has_field(sobject, field):
                continue
            updates[key] = None
            line = (f"Salesforce {sobject} has no field {field} (sources.salesforce.{key}): "
                    f"{MISSING_EFFECT.get(key, 'synced without it')}; set the key to your field or to null")
            log.warning(line)
            warnings.setdefault(sobject, []).append(line)
        if updates:
            self.config = self.config.model_copy(update=updates)
            self.mapper.config = self.config
        return warnings

    def _read_currencies(self, warnings: dict[str, list[str]]) -> bool:
        """In a multi-currency org (``CurrencyIsoCode`` on Account or Opportunity), the rates to the corporate
        currency, and one line saying which currency the amounts are in."""
        money = [name for name in ("Opportunity", "Account") if name in self.config.objects]
        if not money or not self.has_field(money[-1], "CurrencyIsoCode"):
            return False
        types = list(self._query_all("SELECT IsoCode, ConversionRate, IsCorporate FROM CurrencyType",
                                     "read the currency rates"))
        corporate = next((str(t["IsoCode"]) for t in types if to_bool(t.get("IsCorporate"))), "")
        dated: dict[str, list[tuple[str, str, float]]] = {}
        for r in self._query_all("SELECT IsoCode, ConversionRate, StartDate, NextStartDate FROM DatedConversionRate",
                                 "read the dated currency rates"):
            dated.setdefault(str(r["IsoCode"]), []).append(
                (str(r.get("StartDate") or "0001-01-01"), str(r.get("NextStartDate") or "9999-12-31"),
                 float(r["ConversionRate"])))
        rates = {str(t["IsoCode"]): float(t["ConversionRate"]) for t in types if t.get("ConversionRate")}
        self.mapper.currency = CurrencyRates(corporate, rates, dated)
        line = self.mapper.currency.summary()
        log.info(line)
        warnings.setdefault(money[0], []).append(line)
        return True

    def _sobjects(self) -> set[str]:
        return {spec.table for spec in object_specs(self.config)} | (
            {"Account"} if "AccountHistory" in self.config.objects else set())

    def id_scans(self) -> list[IdScan]:
        """What an id scan covers: accounts, contacts, opportunities, Task/Event touches, campaign members."""
        configured = set(self.config.objects)
        scans = [IdScan(name, kind, (name,)) for name, kind in
                 (("Account", "accounts"), ("Contact", "contacts"), ("Opportunity", "opportunities"))
                 if name in configured]
        activities = tuple(name for name in ("Task", "Event") if name in configured)
        if activities:
            scans.append(IdScan("+".join(activities), "activities", activities, sales_types()))
        if "CampaignMember" in configured:
            scans.append(IdScan("CampaignMember", "activities", ("CampaignMember",), marketing_types(),
                                lambda stored: stored.split(":")[0]))
        return scans

    def list_ids(self, scan: IdScan) -> Iterator[str]:
        """Every live id (archived activities included: ``queryAll`` with ``IsDeleted = false``)."""
        headers = {"Sforce-Query-Options": "batchSize=2000"}
        timeout = self.config.retry.timeout
        for name in scan.objects:
            soql = f"SELECT Id FROM {name} WHERE IsDeleted = false"
            result = self._call(
                lambda sf, q=soql: sf.query(q, include_deleted=True, headers=headers, timeout=timeout),
                f"list {name} ids",
            )
            while True:
                yield from (str(r["Id"]) for r in result.get("records", []))
                if result.get("done", True):
                    break
                result = self._call(
                    lambda sf, url=result["nextRecordsUrl"]: sf.query_more(
                        url, identifier_is_url=True, headers=headers, timeout=timeout
                    ),
                    f"list {name} ids",
                )

    def object_pages(
        self,
        spec: ObjectSpec,
        cursor: dt.datetime | None,
        sync_start: dt.datetime,
        job: BulkState | None = None,
    ) -> Iterator[Page]:
        """One object's pages between ``cursor - overlap`` and ``sync_start`` (or an unfinished bulk job's)."""
        if spec.name == "AccountHistory":
            self.mapper.integration_users |= self.integration_user()
        if job is not None and not job.done:
            yield from self._bulk_pages(spec, job)
            return
        lower = cursor - dt.timedelta(seconds=self.config.overlap_seconds) if cursor else None
        if self._use_bulk(spec, lower, sync_start):
            yield from self._bulk_pages(spec, self._start_bulk(spec, lower, sync_start))
            return
        soql = build_soql(spec, lower, sync_start)
        headers = {"Sforce-Query-Options": f"batchSize={self.config.page_size}"}
        timeout = self.config.retry.timeout
        result = self._call(
            lambda sf: sf.query(soql, include_deleted=True, headers=headers, timeout=timeout),
            f"query {spec.name}",
        )
        while True:
            records = [flatten(record) for record in result.get("records", [])]
            if records:
                cursor_value = max(parse_time(r[spec.cursor_field]) for r in records)
                yield from self._with_list(spec, records,
                                           self.mapper.pages(spec, records, cursor_text(min(cursor_value, sync_start))))
            if result.get("done", True):
                return
            next_url = result["nextRecordsUrl"]
            result = self._call(
                lambda sf, url=next_url: sf.query_more(
                    url, identifier_is_url=True, headers=headers, timeout=timeout
                ),
                f"query {spec.name}",
            )

    def _with_list(self, spec: ObjectSpec, records: list[dict], pages: list[Page]) -> list[Page]:
        """An Account page's pages plus, with ``tal_field``, the target account list periods of its accounts
        (the page's cursor moves to that last page, so a resumed sync never skips it)."""
        if spec.name != "Account" or not self.config.tal_field or not records:
            return pages
        listed = self._list_page([r for r in records if not to_bool(r.get("IsDeleted"))])
        listed.cursor, pages[-1].cursor = pages[-1].cursor, None
        return [*pages, listed]

    def _list_page(self, accounts: list[dict]) -> Page:
        """``target_accounts`` rows of ``accounts`` from the whole AccountHistory of ``tal_field`` (a change of
        the checkbox moves the Account's SystemModstamp, so the account is on a page whenever it changed).
        Salesforce records no field history when a record is created, so a box ticked at creation shows
        as the first change's OldValue, or (no change at all) as the field's current value: a period
        without ``added_at``."""
        field = self.config.tal_field
        changes: dict[str, list[dict]] = {}
        for start in range(0, len(accounts), TAL_HISTORY_BATCH):
            ids = ", ".join(f"'{r['Id']}'" for r in accounts[start:start + TAL_HISTORY_BATCH])
            soql = (f"SELECT AccountId, OldValue, NewValue, CreatedDate FROM AccountHistory "
                    f"WHERE Field = '{field}' AND AccountId IN ({ids}) ORDER BY CreatedDate, Id")
            for record in self._query_all(soql, "read the target account list history"):
                changes.setdefault(str(record["AccountId"]), []).append(record)
        rows, raws = [], []
        for account in accounts:
            history = changes.get(str(account["Id"]), [])
            initially = to_bool(history[0].get("OldValue") if history else account.get(field)) is True
            periods = list_periods(str(account["Id"]), [(c.get("CreatedDate"), c.get("NewValue")) for c in history],
                                   initially)
            rows += periods
            raws += [{"Id": account["Id"], field: account.get(field), "history": history}] * len(periods)
        return Page(self.name, "Account", "target_accounts", conform("target_accounts", rows, raws))

    def _query_all(self, soql: str, what: str) -> Iterator[dict]:
        """Every record of a small SOQL query, page after page."""
        timeout = self.config.retry.timeout
        result = self._call(lambda sf: sf.query(soql, timeout=timeout), what)
        while True:
            yield from (flatten(record) for record in result.get("records", []))
            if result.get("done", True):
                return
            result = self._call(lambda sf, url=result["nextRecordsUrl"]: sf.query_more(
                url, identifier_is_url=True, timeout=timeout), what)

    # ---- bulk ----

    def _use_bulk(self, spec: ObjectSpec, lower: dt.datetime | None, upper: dt.datetime) -> bool:
        threshold = self.config.bulk_threshold
        if threshold is None:
            return False
        soql = build_soql(spec, lower, upper, count=True)
        result = self._call(
            lambda sf: sf.query(soql, include_deleted=True, timeout=self.config.retry.timeout),
            f"count {spec.name}",
        )
        return int(result.get("totalSize", 0)) > threshold

    def _start_bulk(self, spec: ObjectSpec, lower: dt.datetime | None, upper: dt.datetime) -> BulkState:
        """Create a Bulk 2.0 queryAll job and wait for it, each poll one counted call."""
        soql = build_soql(spec, lower, upper, order=False)
        log.info("reading %s with Bulk API 2.0", spec.name)
        job = self._call(
            lambda sf: bulk_client(sf, spec).create_job(Operation.query_all, soql), f"bulk query {spec.name}"
        )
        job_id = str(job["id"])
        while True:
            info = self._call(lambda sf: bulk_client(sf, spec).get_job(job_id, True), f"bulk query {spec.name}")
            state = info.get("state")
            if state == "JobComplete":
                return BulkState(job_id, "", cursor_text(upper))
            if state in ("Failed", "Aborted"):
                message = redact(str(info.get("errorMessage") or state), self.config.credentials.secrets())
                raise SourceError(f"Salesforce bulk query {spec.name} failed: Job failure: {message}")
            self.policy.sleep(self.config.bulk_poll_seconds)

    def _bulk_pages(self, spec: ObjectSpec, job: BulkState) -> Iterator[Page]:
        """A finished job's result pages, streamed: each stored with the next locator, so a stopped sync
        resumes at the page after the last stored one; the object's cursor moves once the last page is in.

        Results are unordered, so the watermark waits for the end; like the REST path's, it is the newest
        SystemModstamp the server returned (kept in the state with the job, so a resumed read still knows
        it), never the local clock: a clock ahead of the org's would move the watermark past rows the org
        stamps later. Result pages stay available for days after the job completed; if the job is gone,
        the object is read again from its cursor.
        """
        upper = parse_time(job.upper)
        newest = parse_time(job.newest) if job.newest else None
        locator, first = job.locator, True
        while True:
            try:
                result = self._call(
                    lambda sf, loc=locator: bulk_client(sf, spec).get_query_results(
                        job.job_id, loc, self.config.bulk_page_size
                    ),
                    f"bulk query {spec.name}",
                )
            except SourceError as error:
                if not (first and job.locator):
                    raise
                log.warning("Salesforce bulk job %s cannot be resumed (%s); starting again", job.job_id, error)
                yield Page(self.name, bulk_object(spec), spec.kind, conform(spec.kind, []),
                           cursor=BulkState(job.job_id, "", job.upper, done=True).text())
                return
            first = False
            locator = result["locator"] or ""
            records = parse_csv(result["records"])
            stamps = [parse_time(r.get(spec.cursor_field)) for r in records if r.get(spec.cursor_field)]
            newest = max([newest, *stamps] if newest else stamps, default=None)
            state = BulkState(job.job_id, locator, job.upper, done=not locator,
                              newest=cursor_text(newest) if newest else "")
            pages = self._with_list(spec, records, self.mapper.pages(spec, records, None)) if records else []
            for page in pages:
                page.object_name = bulk_object(spec)
            pages = pages or [Page(self.name, bulk_object(spec), spec.kind, conform(spec.kind, []))]
            pages[-1].cursor = state.text()
            yield from pages
            if state.done:
                cursor = cursor_text(min(newest, upper)) if newest else None  # no rows: the cursor stays
                yield Page(self.name, spec.name, spec.kind, conform(spec.kind, []), cursor=cursor)
                return

    # ---- calls ----

    def _sf(self) -> Salesforce:
        if self._client is None:
            self._client = self.factory()
            hooks = self._client.session.hooks.setdefault("response", [])
            if self._track_usage not in hooks:
                hooks.append(self._track_usage)
        return self._client

    def integration_user(self) -> set[str]:
        """The logged-in user (``GET /services/oauth2/userinfo`` → ``user_id``), whose changes are the
        integration's (an expired session answers 403 ``Bad_OAuth_Token`` there and is renewed like any
        call's); empty (with a warning) when the org does not say, then only the configured
        ``integration_user_ids`` and the write-back values count."""

        def who(sf: Salesforce) -> Any:
            url = f"https://{sf.sf_instance}/services/oauth2/userinfo"
            response = sf.session.get(url, headers=sf.headers, timeout=self.config.retry.timeout)
            if response.status_code == 401 or "Bad_OAuth_Token" in response.text[:200]:
                # an expired session: renewed through the same re-login as every other call
                raise SalesforceExpiredSession(url, response.status_code, "userinfo", response.content)
            response.raise_for_status()
            return response.json()

        try:
            user = str(self._call(who, "read the logged-in user").get("user_id") or "")
        except (SourceError, requests.RequestException, ValueError) as error:
            log.warning("Salesforce: cannot tell the integration user (%s); set integration_user_ids", error)
            return set()
        return {user} if user else set()

    def _track_usage(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        """Every response's ``Sforce-Limit-Info: api-usage=U/M``, Bulk 2.0 calls included (simple-salesforce
        reads it only from its REST calls, so bulk job polls and result pages would go unseen)."""
        match = re.search(r"api-usage=(\d+)/(\d+)", response.headers.get("Sforce-Limit-Info", ""))
        if match:
            self._usage = (int(match.group(1)), int(match.group(2)))

    def _guard_quota(self) -> None:
        if self._usage is None:
            usage = getattr(self._client, "api_usage", {}).get("api-usage") if self._client else None
            self._usage = (usage.used, usage.total) if usage is not None else None
        used, total = self._usage or (0, 0)
        if total and used >= self.config.quota_share * total:
            raise SourceError(
                f"Salesforce sync stopped: the org has used {used} of its {total} daily API "
                f"requests, at or above the configured share of {self.config.quota_share:.0%}; "
                "the pages read so far are kept and the next sync resumes from there"
            )

    def _call(self, call: Callable[[Salesforce], Any], what: str) -> Any:
        """One API call with quota guard, retries, re-login on an expired session and clean errors."""
        self._guard_quota()
        relogins = 0

        def attempt() -> Any:
            self.calls += 1
            return call(self._sf())

        def classify(error: BaseException) -> Retry | None:
            nonlocal relogins
            if isinstance(error, SalesforceExpiredSession) and relogins == 0:
                relogins += 1
                self._client = None
                return Retry("session expired; logging in again", after=0)
            return classify_error(error)

        try:
            return call_with_retry(attempt, classify, self.policy, what=f"Salesforce {what}")
        except SourceError:
            raise
        except SalesforceError as error:
            raise SourceError(self._message(error, what)) from None
        except SalesforceOperationError as error:
            message = redact(str(error), self.config.credentials.secrets())
            raise SourceError(f"Salesforce {what} failed: {message}") from None
        except requests.RequestException as error:
            raise SourceError(
                f"Salesforce {what} failed: {type(error).__name__} (gave up after retries)"
            ) from None

    def _message(self, error: SalesforceError, what: str) -> str:
        code, message = error_code(error)
        if isinstance(error, SalesforceExpiredSession):
            text = "Salesforce session expired or invalid and a new login did not help; check the credentials"
        elif code == "REQUEST_LIMIT_EXCEEDED":
            text = (
                f"Salesforce refused {what}: the org's API request limit is exceeded "
                f"(REQUEST_LIMIT_EXCEEDED: "
                f"{message}); the pages read so far are kept, sync again later"
            )
        else:
            status = getattr(error, "status", "?")
            text = f"Salesforce {what} failed: HTTP {status} {code or ''} {message or ''}".strip()
        return redact(text, self.config.credentials.secrets())



def error_code(error: SalesforceError) -> tuple[str | None, str | None]:
    """``(errorCode, message)`` of a Salesforce error body (a JSON list of errors); a message of several lines
    (a SOQL error quotes the query, a caret and a row/column) is its last line's first sentence."""
    content = getattr(error, "content", None)
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return content[0].get("errorCode"), _one_line(content[0].get("message"))
    return None, None


def _one_line(message: str | None) -> str | None:
    lines = [line.strip() for line in str(message or "").splitlines() if line.strip()]
    if not lines:
        return message
    return lines[-1].split(" If you are attempting")[0] if len(lines) > 1 else lines[0]


def classify_error(error: BaseException) -> Retry | None:
    """Transient Salesforce faults: 5xx, 429, concurrent-request limits, timeouts, dropped connections."""
    if isinstance(error, (requests.Timeout, requests.ConnectionError)):
        return Retry(type(error).__name__)
    if isinstance(error, SalesforceRefusedRequest):
        code, message = error_code(error)
        if code == "REQUEST_LIMIT_EXCEEDED" and "concurrent" in str(message).lower():
            return Retry("concurrent request limit")
        return None
    status = getattr(error, "status", None)
    if isinstance(error, SalesforceError) and isinstance(status, int) and (status >= 500 or status == 429):
        return Retry(f"HTTP {status}")
    return None
