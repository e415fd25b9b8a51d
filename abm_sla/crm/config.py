"""``abm-sla.yaml``: which CRM sources to read, which one is the system of record, write-back.

Credentials are *names* only: environment variables (``credentials.env``) or
Prefect Secret blocks (``credentials.blocks``), never values, so the file can be
committed. ``abm_sla`` never imports Prefect: a Prefect Secret loader is injected
with :func:`set_secret_loader` by the layer that has Prefect (flows, CLI).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from abm_sla.crm.mapping import DEFAULT_TIER_MAP, Credentials, HubSpotConfig, SalesforceConfig, check_tier_map
from abm_sla.errors import ConfigError

DEFAULT_FILE = "abm-sla.yaml"
CrmName = Literal["salesforce", "hubspot"]
SecretLoader = Callable[[str], str]
_secret_loader: SecretLoader | None = None


def set_secret_loader(loader: SecretLoader | None) -> None:
    """Install how a Prefect Secret block name becomes its value (e.g. ``Secret.load(n).get()``)."""
    global _secret_loader
    _secret_loader = loader


class SecretCredentials(Credentials):
    """Environment variable names plus Prefect Secret block names (argument → block); a set env var wins."""

    blocks: dict[str, str] = Field(default_factory=dict, description="argument → Prefect Secret block name")

    def resolve(self) -> dict[str, str]:
        values = super().resolve()
        missing = {key: block for key, block in self.blocks.items() if key not in values}
        if missing and _secret_loader is None:
            names = ", ".join(sorted(missing.values()))
            raise ConfigError(f"credentials come from Prefect Secret blocks ({names}) but no loader is installed")
        for key, block in missing.items():
            value = _secret_loader(block) if _secret_loader else None
            if value:
                values[key] = value
        return values


class SalesforceSection(SalesforceConfig):
    """``sources.salesforce``: the Salesforce source config, credentials from env vars or Secret blocks."""

    credentials: SecretCredentials = SecretCredentials(env=dict(SalesforceConfig().credentials.env))


class HubSpotSection(HubSpotConfig):
    """``sources.hubspot``: the HubSpot source config, credentials from env vars or Secret blocks."""

    credentials: SecretCredentials = SecretCredentials(env=dict(HubSpotConfig().credentials.env))


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FilesSection(_Model):
    """``sources.files``: a CRM export folder (SPEC section 2)."""

    path: str | None = None
    tier_map: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_TIER_MAP),
        description="accounts.csv tier value → tier 1, 2 or 3 (added to SPEC's values); others: no tier")

    @field_validator("tier_map", mode="before")
    @classmethod
    def _tiers(cls, value: object) -> object:
        return check_tier_map(value) if isinstance(value, dict) else value


class Sources(_Model):
    salesforce: SalesforceSection = SalesforceSection()
    hubspot: HubSpotSection = HubSpotSection()
    files: FilesSection = FilesSection()


class SystemOfRecord(_Model):
    """When both CRMs hold a company, whose owner and tier count."""

    owner: CrmName = "salesforce"
    tier: CrmName = "salesforce"


class WritebackConfig(_Model):
    """Tasks for newly routed MQAs and the account's status, written to one CRM (off by default)."""

    enabled: bool = False
    target: CrmName | None = Field(None, description="the CRM written to; default: system_of_record.owner")
    status_value: str = Field("MQA", description="value written to the account's status field")
    salesforce_status_field: str = "ABM_Status__c"
    hubspot_status_property: str = "abm_status"
    subject_prefix: str = "ABM MQA follow-up"
    priority: str = "High"
    max_age_hours: float = Field(72, gt=0, description="MQAs routed longer ago than this are not written back")


class AppConfig(_Model):
    """The whole ``abm-sla.yaml``."""

    sources: Sources = Sources()
    system_of_record: SystemOfRecord = SystemOfRecord()
    writeback: WritebackConfig = WritebackConfig()

    @model_validator(mode="before")
    @classmethod
    def _writeback_value_is_no_answer(cls, data: object) -> object:
        """Both CRM sources drop status changes carrying ``writeback.status_value`` (the write-back's own
        change must never meet the status-update clock), unless a source lists its own values."""
        if not isinstance(data, dict):
            return data
        writeback = data.get("writeback") if isinstance(data.get("writeback"), dict) else {}
        value = str(writeback.get("status_value") or WritebackConfig().status_value)
        sources = dict(data.get("sources") or {}) if isinstance(data.get("sources") or {}, dict) else None
        if sources is None:
            return data
        for name in ("salesforce", "hubspot"):
            section = sources.get(name) or {}
            if isinstance(section, dict) and "writeback_status_values" not in section:
                sources[name] = {**section, "writeback_status_values": [value]}
        return {**data, "sources": sources}

    def writeback_target(self) -> CrmName:
        return self.writeback.target or self.system_of_record.owner


def _one_line(error: ValidationError, where: str) -> str:
    first = error.errors()[0]
    field = ".".join(str(part) for part in first.get("loc", ())) or "(top level)"
    return f"invalid config {where}: {field}: {first.get('msg')}"


def parse_app_config(data: dict | None, where: str = "abm-sla.yaml") -> AppConfig:
    """A validated :class:`AppConfig`; anything wrong is one :class:`ConfigError` line naming the field."""
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"invalid config {where}: the top level must be a mapping")
    try:
        return AppConfig.model_validate(data or {})
    except ValidationError as error:
        raise ConfigError(_one_line(error, where)) from None


def load_app_config(path: str | Path | None = None) -> AppConfig:
    """``path``, else ``./abm-sla.yaml`` when present, else the defaults."""
    if path is None:
        default = Path.cwd() / DEFAULT_FILE
        if not default.is_file():
            return AppConfig()
        path = default
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(f"invalid config {path.name}: not a YAML text file (binary content at byte {error.start})") \
            from None
    except OSError as error:
        raise ConfigError(f"cannot read config {path}: {error.strerror or error}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        at = f" (line {mark.line + 1})" if mark else ""
        raise ConfigError(f"invalid config {path.name}: not valid YAML{at}") from None
    return parse_app_config(data, path.name)
