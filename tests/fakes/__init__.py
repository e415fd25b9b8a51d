"""Fake CRM servers: real HTTP servers on 127.0.0.1 that mimic the Salesforce and HubSpot wire formats.

Both are seeded from normalized frames (``abm_sla.domain.frames`` kinds), count every
request, mutate records (to test incremental sync) and inject faults (429 with or
without Retry-After, 5xx on the Nth request, expired sessions, quota refusals).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Fault:
    """Answer ``times`` matching requests (after skipping ``after`` of them) with this response."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    times: int = 1
    after: int = 0
    path: str | None = None
    method: str | None = None
    commit: bool = False  # handle the request first (the write happens), then answer with the fault
    drop: bool = False  # answer nothing: close the connection (a lost answer, like a timeout)

    def matches(self, method: str, path: str) -> bool:
        return (self.path is None or self.path in path) and (self.method is None or self.method == method)


@dataclass
class Request:
    """One request as the fake saw it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


@dataclass
class Response:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json;charset=UTF-8"


class FakeServer:
    """A ThreadingHTTPServer in a background thread; subclasses implement :meth:`handle`."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.faults: list[Fault] = []
        self.lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle ----

    def start(self) -> FakeServer:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out in separate writes

            def _serve(self) -> None:
                fake._serve(self)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server, "start() the fake first"
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ---- faults and counting ----

    def inject(
        self,
        status: int,
        body: Any = None,
        headers: dict[str, str] | None = None,
        *,
        times: int = 1,
        after: int = 0,
        path: str | None = None,
        method: str | None = None,
        commit: bool = False,
        drop: bool = False,
    ) -> Fault:
        """Answer the next ``times`` matching requests (after ``after`` of them) with ``status``.

        ``commit``: the request is carried out before the fault is answered (a write that succeeded
        server-side whose answer was lost: a gateway 502/504 after the backend committed). ``drop``: no
        answer at all, the connection is closed (what a client sees when its read times out).
        """
        fault = Fault(status, body, headers or {}, times, after, path, method, commit, drop)
        with self.lock:
            self.faults.append(fault)
        return fault

    def count(self, path: str | None = None, method: str | None = None) -> int:
        """How many requests (whose path contains ``path``) the fake has served."""
        with self.lock:
            return sum(
                1
                for r in self.requests
                if (path is None or path in r.path) and (method is None or r.method == method)
            )

    def _fault_for(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.times <= 0 or not fault.matches(method, path):
                    continue
                if fault.after > 0:
                    fault.after -= 1
                    continue
                fault.times -= 1
                return fault
        return None

    # ---- plumbing ----

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        request = Request(
            handler.command,
            parts.path,
            parse_qs(parts.query, keep_blank_values=True),
            {k.lower(): v for k, v in handler.headers.items()},
            body,
        )
        with self.lock:
            self.requests.append(request)
        fault = self._fault_for(request.method, request.path)
        try:
            if fault and fault.commit:
                self.handle(request)
            if fault and fault.drop:
                handler.close_connection = True
                return
            response = (
                Response(fault.status, fault.body, dict(fault.headers)) if fault else self.handle(request)
            )
        except Exception as error:  # a bug in the fake: answer 500 with the reason
            response = Response(500, self.error_body(500, f"fake failed: {error!r}"))
        self.decorate(request, response)
        self._write(handler, response)

    def _write(self, handler: BaseHTTPRequestHandler, response: Response) -> None:
        body = response.body
        if body is None:
            payload = b""
        elif isinstance(body, bytes):
            payload = body
        elif isinstance(body, str):
            payload = body.encode()
        else:
            payload = json.dumps(body).encode()
        handler.send_response(response.status)
        if payload or response.status not in (204, 304):
            handler.send_header("Content-Type", response.content_type)
        for key, value in response.headers.items():
            handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    # ---- for subclasses ----

    def handle(self, request: Request) -> Response:
        raise NotImplementedError

    def decorate(self, request: Request, response: Response) -> None:
        """Add per-response headers (limit info)."""

    def error_body(self, status: int, message: str) -> Any:
        return {"message": message}


def json_body(request: Request) -> Any:
    return json.loads(request.body or b"{}")


Seeder = Callable[..., None]


class MemoryStore:
    """A dict-based stand-in for the warehouse: rows merged by id per kind, deletes, cursors per object."""

    def __init__(self) -> None:
        self.cursors: dict[tuple[str, str], str] = {}
        self.rows: dict[str, dict[str, dict]] = {}
        self.deleted: dict[str, set[str]] = {}
        self.pages = 0

    def get_cursor(self, source: str, object_name: str) -> str | None:
        return self.cursors.get((source, object_name))

    def store(self, page: Any) -> None:
        """What ``Warehouse.store_page`` does, in memory: upsert rows, apply deletes, keep the cursor."""
        from abm_sla.domain import frames

        id_column = frames.COLUMNS[page.kind][0]
        kind_rows = self.rows.setdefault(page.kind, {})
        for row in page.rows.to_dict(orient="records"):
            kind_rows[row[id_column]] = row
        for deleted in page.deleted_ids:
            kind_rows.pop(deleted, None)
            self.deleted.setdefault(page.kind, set()).add(deleted)
        if page.cursor is not None:
            self.cursors[(page.source, page.object_name)] = page.cursor
        self.pages += 1

    def sync(self, pages: Any, stop_after: int | None = None) -> list[Any]:
        """Store pages (all, or only the first ``stop_after``, as if the sync were killed then)."""
        seen = []
        for page in pages:
            if stop_after is not None and len(seen) >= stop_after:
                break
            self.store(page)
            seen.append(page)
        return seen

    def ids(self, kind: str) -> set[str]:
        return set(self.rows.get(kind, {}))

    def live_ids(self, source: str, kind: str, types: Any = None) -> set[str]:
        """Stored ids of ``kind`` (of those activity ``types``), as the warehouse's reconciliation reads them."""
        rows = self.rows.get(kind, {})
        return {i for i, row in rows.items() if types is None or row.get("type") in types}
