"""CRM sync throughput against the fakes on 127.0.0.1 (prints one JSON line per benchmark).

* ``hubspot``: N companies synced through the search API while the fake enforces
  100 requests per rolling 10 s; achieved records/s against the limit's ceiling
  (100 requests / 10 s x page size).
* ``salesforce``: N accounts synced through Bulk API 2.0, each result page stored as it
  arrives (``Account:bulk`` pages); records/s and peak memory.

The fake runs in a child process, so the peak RSS (``resource.getrusage``) is the
client's and the warehouse writer's alone. Rows go to a SQLite warehouse in a temp
dir. Usage::

    python benchmarks/bench_crm_sync.py hubspot --companies 100000
    python benchmarks/bench_crm_sync.py salesforce --rows 1000000
"""

from __future__ import annotations

import argparse
import bisect
import datetime as dt
import json
import multiprocessing as mp
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._measure import peak_rss_mib

NOW = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)
LIMIT_REQUESTS, LIMIT_PERIOD = 100, 10.0


def _stamps(n: int) -> list[dt.datetime]:
    """Distinct modification times spread over the 100 days before NOW (ascending)."""
    step = dt.timedelta(days=100) / max(n, 1)
    return [NOW - dt.timedelta(days=100) + step * i for i in range(n)]


# -- fakes (child process) ------------------------------------------------------------------------------


def _hubspot_fake(n: int):
    """A FakeHubSpot with ``n`` companies whose search is indexed (the stock fake scans every record)."""
    from tests.fakes.hubspot import FakeHubSpot, Response, hs_time, json_body, parse_hs_time

    class IndexedHubSpot(FakeHubSpot):
        def index(self) -> None:
            rows = sorted(self.objects["companies"].values(), key=lambda r: r["properties"]["hs_lastmodifieddate"])
            self.sorted_rows = rows
            self.keys = [parse_hs_time(r["properties"]["hs_lastmodifieddate"]) for r in rows]

        def _search(self, request, obj):
            body = json_body(request)
            limit, after = int(body.get("limit") or 10), int(body.get("after") or 0)
            if after + limit > self.search_cap:
                return Response(400, self.error_body(400, "paging past the cap", "VALIDATION_ERROR"))
            bounds = {f["operator"]: parse_hs_time(f["value"]) for f in body["filterGroups"][0]["filters"]}
            low = bisect.bisect_left(self.keys, bounds["GTE"]) if "GTE" in bounds else 0
            high = bisect.bisect_right(self.keys, bounds["LTE"])
            matching = self.sorted_rows[low:high][: self.search_cap]
            chunk = matching[after : after + limit]
            out = {"total": high - low, "results": [self._view(obj, r, body.get("properties")) for r in chunk]}
            if after + limit < len(matching) or (after + limit == self.search_cap and high - low > self.search_cap):
                out["paging"] = {"next": {"after": str(after + limit)}}
            return Response(200, out)

    fake = IndexedHubSpot(burst=(LIMIT_REQUESTS, LIMIT_PERIOD), search_rate=(LIMIT_REQUESTS, LIMIT_PERIOD), now=NOW)
    for i, stamp in enumerate(_stamps(n)):
        text = hs_time(stamp)
        fake.objects["companies"][str(1000 + i)] = {
            "id": str(1000 + i),
            "properties": {
                "name": f"Company {i}", "domain": f"company{i}.com", "industry": "Software",
                "numberofemployees": str(50 + i % 5000), "country": "US", "hubspot_owner_id": "501",
                "hs_ideal_customer_profile": f"tier_{1 + i % 3}", "hs_object_id": str(1000 + i),
                "createdate": text, "hs_lastmodifieddate": text,
            },
            "createdAt": text, "updatedAt": text, "archived": False,
        }
    fake.index()
    return fake


def _salesforce_fake(n: int):
    from tests.fakes.salesforce import FIELDS, FakeSalesforce

    fake = FakeSalesforce(now=NOW, bulk_polls=0)
    template = dict.fromkeys(FIELDS["Account"])
    for i, stamp in enumerate(_stamps(n)):
        text = stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}+0000"
        record_id = f"001B{i:014d}"
        fake.records["Account"][record_id] = {
            **template, "Id": record_id, "Name": f"Company {i}", "Website": f"https://www.company{i}.com",
            "Industry": "Software", "NumberOfEmployees": 50 + i % 5000, "AnnualRevenue": 1e6,
            "BillingCountry": "US", "OwnerId": "005U1", "Tier__c": str(1 + i % 3), "CreatedDate": text,
            "LastModifiedDate": text, "SystemModstamp": text, "IsDeleted": False,
        }
    return fake


def _serve(kind: str, n: int, pipe) -> None:
    """Child: seed and start the fake, send its URL and token, serve until told to stop, send its counts."""
    fake = (_hubspot_fake if kind == "hubspot" else _salesforce_fake)(n)
    fake.start()
    pipe.send({"url": fake.url, "token": fake.token})
    pipe.recv()
    pipe.send({"requests": fake.count(), "rate_limited": getattr(fake, "rate_limited", 0)})
    fake.stop()


# -- clients (this process) -----------------------------------------------------------------------------


def _sync(source, label: str) -> tuple[dict, float, int]:
    """Sync into a fresh SQLite warehouse: the summary, the seconds taken and the accounts stored."""
    import sqlalchemy as sa

    from abm_sla.crm.sync import sync_source
    from abm_sla.warehouse import Warehouse, schema

    with tempfile.TemporaryDirectory() as folder:
        warehouse = Warehouse(f"sqlite:///{Path(folder) / 'bench.db'}")
        start = time.perf_counter()
        summary = sync_source(warehouse, source, f"bench-{label}", NOW)
        seconds = time.perf_counter() - start
        with warehouse.engine.connect() as connection:
            stored = connection.execute(sa.select(sa.func.count()).select_from(schema.accounts)).scalar_one()
        return summary, seconds, stored


def bench_hubspot(companies: int, page_size: int) -> dict:
    from hubspot import HubSpot

    from abm_sla.crm.hubspot.source import HubSpotSource
    from abm_sla.crm.mapping import HubSpotConfig

    parent, child = mp.Pipe()
    server = mp.Process(target=_serve, args=("hubspot", companies, child))
    server.start()
    fake = parent.recv()
    config = HubSpotConfig(
        objects=("companies",), page_size=page_size, status_property=None,
        requests_per_10s=LIMIT_REQUESTS, search_per_second=int(LIMIT_REQUESTS / LIMIT_PERIOD),
        retry={"max_attempts": 8, "base_delay": 0.5, "max_delay": 10, "timeout": 60},
    )
    source = HubSpotSource(config, lambda: HubSpot(access_token=fake["token"], host=fake["url"], retry=False),
                           now=lambda: NOW)
    summary, seconds, stored = _sync(source, "hubspot")
    parent.send("stop")
    counts = parent.recv()
    server.join()
    loaded = summary["companies"]["loaded"]  # re-windowing past the search cap re-reads one row per window
    assert stored == companies, f"stored {stored} of {companies} companies"
    ceiling = LIMIT_REQUESTS / LIMIT_PERIOD * page_size
    return {
        "benchmark": "hubspot-sync", "companies": companies, "rows_read": loaded, "page_size": page_size,
        "seconds": round(seconds, 1), "records_per_s": round(stored / seconds), "ceiling_records_per_s": ceiling,
        "share_of_ceiling": round(stored / seconds / ceiling, 3), "requests": counts["requests"],
        "rate_limited_429": counts["rate_limited"], "peak_rss_mib": round(peak_rss_mib()),
    }


def bench_salesforce(rows: int, bulk_page_size: int) -> dict:
    from abm_sla.crm.mapping import SalesforceConfig
    from abm_sla.crm.salesforce.source import SalesforceSource
    from tests.fakes.salesforce import VERSION, HttpsToHttp, timeout_session

    parent, child = mp.Pipe()
    server = mp.Process(target=_serve, args=("salesforce", rows, child))
    server.start()
    fake = parent.recv()
    config = SalesforceConfig(
        objects=("Account",), bulk_threshold=0, bulk_page_size=bulk_page_size, bulk_poll_seconds=0,
        retry={"max_attempts": 3, "base_delay": 0.5, "max_delay": 5, "timeout": 600},
    )

    def client():
        from simple_salesforce import Salesforce

        session = timeout_session(600, HttpsToHttp(600))
        return Salesforce(instance_url=fake["url"], session_id=fake["token"], session=session, version=VERSION)

    summary, seconds, stored = _sync(SalesforceSource(config, client, now=lambda: NOW), "salesforce")
    parent.send("stop")
    counts = parent.recv()
    server.join()
    loaded = sum(entry["loaded"] for name, entry in summary.items() if name.split(":")[0] == "Account")
    assert stored == rows, f"stored {stored} of {rows} accounts"
    return {
        "benchmark": "salesforce-bulk2-sync", "rows": rows, "loaded": loaded, "bulk_page_size": bulk_page_size,
        "seconds": round(seconds, 1), "records_per_s": round(stored / seconds), "requests": counts["requests"],
        "peak_rss_mib": round(peak_rss_mib()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="which", required=True)
    hs = sub.add_parser("hubspot")
    hs.add_argument("--companies", type=int, default=100_000)
    hs.add_argument("--page-size", type=int, default=200)
    sf = sub.add_parser("salesforce")
    sf.add_argument("--rows", type=int, default=1_000_000)
    sf.add_argument("--bulk-page-size", type=int, default=50_000)
    args = parser.parse_args()
    if args.which == "hubspot":
        print(json.dumps(bench_hubspot(args.companies, args.page_size)))
    else:
        print(json.dumps(bench_salesforce(args.rows, args.bulk_page_size)))


if __name__ == "__main__":
    main()
