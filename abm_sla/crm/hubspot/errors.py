"""HubSpot errors: what is retried, what a failed call says, and the errors the source raises."""

from __future__ import annotations

import json
from typing import Any

import requests
import urllib3

from abm_sla.crm.limits import Retry, parse_retry_after
from abm_sla.errors import SourceError


class AmbiguousWrite(SourceError):
    """A write whose outcome is unknown (timeout, dropped connection, 5xx): look before writing again."""


class EntitlementError(SourceError):
    """HubSpot answered 403: the portal's edition or the token's scopes do not allow this API."""

    def __init__(self, message: str, detail: str) -> None:
        super().__init__(message)
        self.detail = detail


class HttpStatusError(Exception):
    """A non-2xx answer to a raw request, shaped like the client's ``ApiException`` (status, body, headers)."""

    def __init__(self, status: int, body: str, headers: Any) -> None:
        super().__init__(f"HTTP {status}")
        self.status, self.body, self.headers = status, body, headers



def error_body(error: BaseException) -> dict:
    body = getattr(error, "body", None)
    try:
        parsed = json.loads(body) if body else {}
    except (TypeError, ValueError):
        return {}
    return parsed if isinstance(parsed, dict) else {}


def classify_error(error: BaseException) -> Retry | None:
    """Transient HubSpot faults: 429 (not the daily limit), 5xx, timeouts, dropped connections."""
    if isinstance(error, (urllib3.exceptions.HTTPError, requests.Timeout, requests.ConnectionError)):
        return Retry(type(error).__name__)
    status = getattr(error, "status", None)
    if status == 429:
        body = error_body(error)
        if body.get("policyName") == "DAILY":
            return None
        headers = getattr(error, "headers", None) or {}
        return Retry(
            f"HTTP 429 {body.get('policyName') or 'rate limit'}",
            parse_retry_after(headers.get("Retry-After")),
        )
    if isinstance(status, int) and status >= 500:
        return Retry(f"HTTP {status}")
    return None


def error_message(error: BaseException, what: str) -> str:
    status = getattr(error, "status", None)
    body = error_body(error)
    if status == 401:
        return "HubSpot rejected the access token (401); check the token and its scopes"
    if status == 429 and body.get("policyName") == "DAILY":
        return "HubSpot daily API limit reached; the pages read so far are kept, sync again tomorrow"
    detail = " ".join(str(part) for part in (body.get("category"), body.get("message")) if part)
    return f"HubSpot {what} failed: HTTP {status} {detail}".strip()
