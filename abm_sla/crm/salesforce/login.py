"""Salesforce login: the HTTP session with timeouts, the ways to log in (refresh token, JWT bearer, client
credentials, access token, password) and the refresh token kept across runs."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceAuthenticationFailed

from abm_sla.crm.limits import redact
from abm_sla.crm.mapping import SalesforceConfig
from abm_sla.crm.tokens import TokenStore, open_token_store
from abm_sla.errors import SourceError

log = logging.getLogger(__name__)
ClientFactory = Callable[[], Salesforce]


# -- HTTP session ------------------------------------------------------------------------------------


class TimeoutAdapter(requests.adapters.HTTPAdapter):
    """Gives every request a timeout (simple-salesforce sets none, bulk calls take no kwargs)."""

    def __init__(self, timeout: float, **kwargs: Any) -> None:
        self.timeout = timeout
        super().__init__(**kwargs)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        return super().send(request, **kwargs)


def timeout_session(timeout: float, adapter: requests.adapters.HTTPAdapter | None = None) -> requests.Session:
    """A requests session whose every call times out after ``timeout`` seconds."""
    session = requests.Session()
    mounted = adapter or TimeoutAdapter(timeout)
    session.mount("https://", mounted)
    session.mount("http://", mounted)
    return session


LOGIN_HINT = (
    "set a refresh token with a connected app (SF_REFRESH_TOKEN, SF_CONSUMER_KEY, SF_CONSUMER_SECRET), a JWT "
    "bearer key (SF_USERNAME, SF_CONSUMER_KEY, SF_PRIVATE_KEY_FILE or SF_PRIVATE_KEY), client credentials "
    "(SF_CONSUMER_KEY, SF_CONSUMER_SECRET and SF_DOMAIN set to your My Domain, e.g. acme.my) or an access token "
    "and instance URL (SF_ACCESS_TOKEN, SF_INSTANCE_URL); a username and password with SF_SECURITY_TOKEN "
    "(empty when your IP range is trusted) still works until Salesforce retires the login"
)
#: SOAP ``login()`` (simple-salesforce's username + password + security token login): Salesforce retires it in
#: Summer '27 and API version 65.0 and later no longer offer it (SOAP API Developer Guide, End-of-Life Policy).
SOAP_LOGIN_RETIREMENT = "Salesforce retires SOAP login() in Summer '27 and refuses it from API version 65.0"
SOAP_LOGIN_LAST_VERSION = 64.0
#: The OAuth username-password flow (username + password + connected app): retired on 2027-02-20 (Salesforce
#: Help 005461976, "Migrate from OAuth Username-Password to Client Credentials Flow").
OAUTH_PASSWORD_RETIREMENT = "Salesforce retires the OAuth username-password flow on 2027-02-20"
PASSWORD_ADVICE = "move to a refresh token, a JWT bearer key or client credentials (docs/crm/salesforce-hubspot.md)"


def is_my_domain(domain: str | None) -> bool:
    """``acme.my`` / ``acme--uat.sandbox.my`` (a My Domain), not the shared ``login`` / ``test`` hosts."""
    return bool(domain) and domain not in ("login", "test")


def jwt_audience(domain: str | None, configured: str | None = None) -> str:
    """The JWT bearer assertion's ``aud`` host: ``login`` or ``test`` (a sandbox), never the My Domain
    (Salesforce Help, "OAuth 2.0 JWT Bearer Flow for Server-to-Server Integration": aud is
    https://login.salesforce.com, https://test.salesforce.com or an Experience Cloud site URL)."""
    if configured:
        return configured
    return "test" if domain == "test" or "sandbox" in str(domain or "").split(".") else "login"


def login_kwargs(
    creds: dict[str, str], empty: set[str], audience: str | None = None
) -> list[tuple[str, dict[str, str]]]:
    """Every way to log in the credentials allow, best first, as ``(mode, Salesforce kwargs)``.

    A refresh token (OAuth 2.0 refresh token flow), a JWT bearer key and client credentials get a new
    token on every login; a static access token cannot, so after it expired the next login uses the
    others. JWT with a My Domain: ``aud`` stays login/test and the token request goes to the My Domain
    (simple-salesforce: ``domain`` makes the audience, ``instance_url`` the token host). Client
    credentials need a My Domain (simple-salesforce refuses ``login``/``test`` for them) and are used
    only without a username (with one, the username flows are what the app was set up for).
    ``security_token`` set but empty is kept (orgs that trust the caller's IP range need none).
    """
    has = lambda *names: all(name in creds for name in names)  # noqa: E731
    my_domain = creds.get("domain") if is_my_domain(creds.get("domain")) else None
    domain = {"domain": creds["domain"]} if "domain" in creds else {}
    modes: list[tuple[str, dict[str, str]]] = []
    if has("refresh_token", "consumer_key"):
        modes.append(("refresh_token", {k: creds[k] for k in ("refresh_token", "consumer_key", "consumer_secret")
                                         if k in creds} | domain))
    key = "privatekey_file" if "privatekey_file" in creds else "privatekey"
    if has("username", "consumer_key", key):
        token_host = {"instance_url": my_domain} if my_domain else {}
        modes.append(("jwt", {k: creds[k] for k in ("username", "consumer_key", key)}
                      | {"domain": jwt_audience(creds.get("domain"), audience)} | token_host))
    if has("consumer_key", "consumer_secret") and my_domain and "username" not in creds:
        modes.append(("client_credentials", {"consumer_key": creds["consumer_key"],
                                             "consumer_secret": creds["consumer_secret"], "domain": my_domain}))
    if has("session_id", "instance_url"):
        modes.append(("token", {"session_id": creds["session_id"], "instance_url": creds["instance_url"]}))
    if has("username", "password") and ("security_token" in creds or "security_token" in empty):
        token = creds.get("security_token", "")
        modes.append(("password", {"username": creds["username"], "password": creds["password"],
                                   "security_token": token} | domain))
    elif has("username", "password", "consumer_key", "consumer_secret"):
        modes.append(("oauth_password", {k: creds[k] for k in ("username", "password", "consumer_key",
                                                               "consumer_secret")} | domain))
    return modes


@dataclass(frozen=True)
class TokenGrant:
    """A token endpoint's answer: the session, its instance, and a new refresh token when rotation is on."""

    access_token: str
    instance_url: str
    refresh_token: str | None = None


def refresh_token_login(session: requests.Session, kwargs: dict[str, str]) -> TokenGrant:
    """OAuth 2.0 refresh token flow: ``POST https://{domain}.salesforce.com/services/oauth2/token``.

    Answers ``{"access_token", "instance_url", …}`` and, with refresh token rotation on, a new
    ``refresh_token`` (the one sent is invalid from then on) (Salesforce Help, "OAuth 2.0 Refresh Token
    Flow for Renewed Sessions"); a 400 ``{"error": "invalid_grant", …}`` means the refresh token was
    revoked, expired or, with rotation, already used.
    """
    domain = kwargs.get("domain", "login")
    data = {"grant_type": "refresh_token", "refresh_token": kwargs["refresh_token"],
            "client_id": kwargs["consumer_key"]}
    if kwargs.get("consumer_secret"):
        data["client_secret"] = kwargs["consumer_secret"]
    response = session.post(f"https://{domain}.salesforce.com/services/oauth2/token", data=data)
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code != 200 or "access_token" not in body:
        code = body.get("error") or f"HTTP {response.status_code}"
        raise SalesforceAuthenticationFailed(code, body.get("error_description") or "token refresh refused")
    return TokenGrant(body["access_token"], body["instance_url"], body.get("refresh_token"))


class RefreshTokens:
    """The refresh token to use next: the store's (a rotated one from an earlier run), else the configured
    one; a rotated token replaces it in memory and, with a store, in the store (never in a log)."""

    def __init__(self, store: TokenStore | None) -> None:
        self.store = store
        self.current: str | None = None
        self.warned = False

    def pick(self, configured: str | None) -> str | None:
        if self.current is None and self.store is not None:
            self.current = self.store.load()
        return self.current or configured

    def accepted(self, used: str, new: str | None) -> None:
        """Salesforce took ``used`` and answered ``new`` (rotation) or nothing: the token to use next is kept
        (the store is seeded with the first accepted token, and replaced on every rotation)."""
        token = new or used
        if token == self.current:
            return
        self.current = token
        if self.store is not None:
            self.store.save(token)
        elif new and new != used and not self.warned:
            self.warned = True
            log.warning("Salesforce rotated the refresh token (refresh token rotation is on) and no "
                        "sources.salesforce.token_store is set: the next run's SF_REFRESH_TOKEN is no longer "
                        "valid (invalid_grant); set token_store (kind file or prefect-secret)")

    def secrets(self) -> list[str]:
        return [self.current] if self.current else []


def _login_failure(mode: str, error: SalesforceAuthenticationFailed) -> str:
    code = str(getattr(error, "code", "") or "login refused")
    if mode == "refresh_token" and code == "invalid_grant":
        return (f"Salesforce login ({mode}) failed: {code}: the refresh token is revoked, expired or already "
                "used (with refresh token rotation on, keep the newest one with sources.salesforce.token_store)")
    return f"Salesforce login ({mode}) failed: {code}"


def client_factory(config: SalesforceConfig, session: requests.Session | None = None) -> ClientFactory:
    """Builds a client from the credentials the config names; called again to log in anew.

    The first call uses the best way the credentials allow (:func:`login_kwargs`); each further call
    (after a session expired) moves past a static access token that was already used, so a refresh
    token, JWT key, client credentials or password gets a fresh session instead of re-reading the
    expired token. A refresh token rotated by Salesforce is kept in ``token_store``. A password login
    logs its retirement date once.
    """
    used_tokens: set[str] = set()
    refresh = RefreshTokens(open_token_store(config.token_store))
    warned: set[str] = set()

    def make() -> Salesforce:
        creds = config.credentials.resolve()
        configured = creds.get("refresh_token")
        chosen = refresh.pick(configured)
        if chosen:
            creds["refresh_token"] = chosen
        secrets = [*config.credentials.secrets(), *refresh.secrets()]
        modes = login_kwargs(creds, config.credentials.set_empty(), config.jwt_audience)
        if not modes:
            raise SourceError(_no_login_message(config, creds))
        fresh = [mode for mode in modes if mode[0] != "token" or mode[1]["session_id"] not in used_tokens]
        mode, kwargs = (fresh or modes)[0]
        _check_password_login(mode, config, warned)
        http = session or timeout_session(config.retry.timeout)
        try:
            if mode == "refresh_token":
                kwargs, grant = _refresh(http, kwargs, configured)
                refresh.accepted(kwargs["refresh_token"], grant.refresh_token)
                kwargs = {"session_id": grant.access_token, "instance_url": grant.instance_url}
            elif mode == "token":
                used_tokens.add(kwargs["session_id"])
            return Salesforce(version=config.version, session=http, **kwargs)
        except SalesforceAuthenticationFailed as error:
            raise SourceError(redact(_login_failure(mode, error), [*secrets, *refresh.secrets()])) from None
        except requests.RequestException as error:
            raise SourceError(f"Salesforce is unreachable: {type(error).__name__}") from None

    return make


def _refresh(
    http: requests.Session, kwargs: dict[str, str], configured: str | None
) -> tuple[dict[str, str], TokenGrant]:
    """The refresh token flow with the token picked; when Salesforce refuses a stored token and the configured
    one differs (re-authorized since), the configured one is tried once."""
    try:
        return kwargs, refresh_token_login(http, kwargs)
    except SalesforceAuthenticationFailed as error:
        if getattr(error, "code", "") != "invalid_grant" or not configured or configured == kwargs["refresh_token"]:
            raise
    log.warning("Salesforce refused the stored refresh token; trying the configured one (SF_REFRESH_TOKEN)")
    kwargs = kwargs | {"refresh_token": configured}
    return kwargs, refresh_token_login(http, kwargs)


def _no_login_message(config: SalesforceConfig, creds: dict[str, str]) -> str:
    if {"username", "password"} <= creds.keys():
        return ("Salesforce username and password need a security token: set SF_SECURITY_TOKEN (to an empty "
                "value when your org trusts this IP range) or SF_CONSUMER_KEY and SF_CONSUMER_SECRET")
    if {"consumer_key", "consumer_secret"} <= creds.keys() and "username" not in creds:
        return ("Salesforce client credentials need SF_DOMAIN set to your My Domain (e.g. acme.my or "
                "acme--uat.sandbox.my): login.salesforce.com and test.salesforce.com do not serve that flow")
    names = ", ".join(sorted(config.credentials.env.values()))
    return f"no Salesforce credentials: {LOGIN_HINT} (variables: {names})"


def _check_password_login(mode: str, config: SalesforceConfig, warned: set[str]) -> None:
    """A password login is retired: refused (one line) on API versions without SOAP login(), else a warning
    with the date, once per factory."""
    if mode == "password" and float(config.version) > SOAP_LOGIN_LAST_VERSION:
        raise SourceError(f"Salesforce password login is not available on API version {config.version}: "
                          f"{SOAP_LOGIN_RETIREMENT}; {PASSWORD_ADVICE}")
    if mode in ("password", "oauth_password") and mode not in warned:
        warned.add(mode)
        retirement = SOAP_LOGIN_RETIREMENT if mode == "password" else OAUTH_PASSWORD_RETIREMENT
        log.warning("Salesforce: logging in with a username and password; %s: %s", retirement, PASSWORD_ADVICE)
