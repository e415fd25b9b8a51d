"""HubSpot login: a private app token, or an OAuth app's refresh token exchanged for a new access token."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import requests
from hubspot import HubSpot

from abm_sla.crm.limits import redact
from abm_sla.crm.mapping import HubSpotConfig
from abm_sla.errors import SourceError

ClientFactory = Callable[[], HubSpot]
DEFAULT_HOST = "https://api.hubapi.com"


def client_factory(config: HubSpotConfig, host: str | None = None) -> ClientFactory:
    """Builds a client from the credentials the config names; urllib3 retries are off (ours apply).

    With an OAuth app's refresh token, client id and secret, every call (the first, and each after a
    401) gets a new access token from the v3 token endpoint (``POST /oauth/v3/token``, form body,
    grant_type=refresh_token; HubSpot OAuth access tokens live 30 minutes), so a long sync survives
    expiry. Otherwise the private app token (or a static OAuth access token) is read from the environment
    again.
    """

    def make() -> HubSpot:
        creds = config.credentials.resolve()
        base = host or config.host
        if {"refresh_token", "client_id", "client_secret"} <= creds.keys():
            token = refresh_access_token(base or DEFAULT_HOST, creds, config)
        else:
            token = creds.get("access_token")
        if not token:
            raise SourceError(f"no HubSpot access token: set {missing_token_hint(config)}")
        kwargs: dict[str, Any] = {"access_token": token, "retry": False}
        if base:
            kwargs["host"] = base
        return HubSpot(**kwargs)

    return make


def missing_token_hint(config: HubSpotConfig) -> str:
    """The variable of the private app token, and the OAuth app's variables when the config names them."""
    env = config.credentials.env
    text = env.get("access_token", "access_token")
    oauth = [env[key] for key in ("refresh_token", "client_id", "client_secret") if key in env]
    return f"{text} (or the OAuth app's {', '.join(oauth)})" if len(oauth) == 3 else text


def refresh_access_token(base: str, creds: dict[str, str], config: HubSpotConfig) -> str:
    """A new OAuth access token for the refresh token from the v3 token endpoint, parameters in the form body
    (https://developers.hubspot.com/docs/api-reference/legacy/authentication/manage-oauth-tokens)."""
    data = {
        "grant_type": "refresh_token",
        "refresh_token": creds["refresh_token"],
        "client_id": creds["client_id"],
        "client_secret": creds["client_secret"],
    }
    timeout = (min(10.0, config.retry.timeout), config.retry.timeout)
    try:
        response = requests.post(f"{base.rstrip('/')}{config.oauth_token_path}", data=data, timeout=timeout)
    except requests.RequestException as error:
        raise SourceError(f"HubSpot token refresh failed: {type(error).__name__}") from None
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code != 200 or not body.get("access_token"):
        detail = oauth_error_detail(body)
        message = f"HubSpot token refresh refused: HTTP {response.status_code} {detail}".strip()
        raise SourceError(redact(message, config.credentials.secrets()))
    return str(body["access_token"])


def oauth_error_detail(body: dict) -> str:
    """RFC 6749 ``error``/``error_description`` (v3), else HubSpot's ``status``/``category`` and ``message``."""
    code = body.get("error") or body.get("status") or body.get("category")
    text = body.get("error_description") or body.get("message")
    return " ".join(str(part) for part in (code, text) if part)

