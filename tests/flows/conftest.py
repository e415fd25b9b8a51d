"""Flow tests: a small synthetic CRM export shared by the session, and the warehouse URL in the environment."""

from __future__ import annotations

import json
import threading
import warnings
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest

from abm_sla.infra.settings import database_url_env
from abm_sla.services import exports, synthetic
from abm_sla.warehouse import Warehouse

CRM_START = "2026-01-01T00:00:00Z"
CRM_DAYS = 30


@pytest.fixture(scope="session")
def crm_export(tmp_path_factory) -> Path:
    """150 accounts over 30 days (with a few dirty rows), written once as an export folder."""
    crm = synthetic.generate_crm(n_accounts=150, start=CRM_START, days=CRM_DAYS, seed=11)
    return synthetic.write_export_folder(crm, tmp_path_factory.mktemp("crm") / "export", dirty=True)


@pytest.fixture
def env_db(monkeypatch, sqlite_url: str) -> str:
    """The warehouse URL the deployments read (ABM_SLA_DATABASE_URL), on SQLite."""
    monkeypatch.setenv("ABM_SLA_DATABASE_URL", sqlite_url)
    return sqlite_url


@dataclass
class Chat:
    """A loopback chat webhook: the JSON bodies it accepted, and how many of the next posts it refuses (500)."""

    url: str
    received: list[dict] = field(default_factory=list)
    refuse: int = 0


@pytest.fixture
def chat():
    """A loopback HTTP server standing in for a chat webhook (Slack, Teams...): it records every JSON body
    posted to it, and answers 500 to the next ``chat.refuse`` posts."""
    hook = Chat(url="")

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            refused = hook.refuse > 0
            hook.refuse -= refused
            if not refused:
                hook.received.append(body)
            self.send_response(500 if refused else 200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    hook.url = f"http://127.0.0.1:{server.server_port}/hook"
    yield hook
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def _quiet_pandas():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        yield


def run_live(db_url: str, **fields) -> dict:
    """One in-process pipeline run on ``db_url`` (as the CLI does it: the URL in the environment, not a parameter)."""
    from flows.pipeline import run_pipeline

    with database_url_env(db_url):
        return run_pipeline(**fields)


def outcome(db_url: str) -> dict[str, pd.DataFrame]:
    """The MQAs, clocks and escalations exports of a warehouse (what a live run and a backfill must agree on)."""
    store = Warehouse(db_url)
    return {kind: exports.EXPORTS[kind](store).reset_index(drop=True) for kind in ("mqas", "sla", "escalations")}
