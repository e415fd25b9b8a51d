"""The marketing side (issue 15; every part optional): channels, touch tempo per tier, coverage, the
engaged-account stage and the ``marketing_response`` clock."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from abm_sla.domain.policy.base import Strict
from abm_sla.domain.policy.clocks import Window

Channel = Literal["email", "ads", "content", "events"]
DEFAULT_CHANNELS: dict[str, list[str]] = {
    "email": ["email_open", "email_click"],
    "ads": ["ad_click"],
    "content": ["content_download", "form_submit", "web_visit"],
    "events": ["webinar", "event_attended"],
}


class Tempo(Strict):
    """Marketing touches per account per ``per`` (month or quarter): at least ``min``, at most ``max``."""

    min: int = Field(ge=0)
    max: int | None = Field(default=None, ge=0)
    per: Literal["month", "quarter"] = "month"

    @model_validator(mode="after")
    def _ordered(self) -> Tempo:
        if self.max is not None and self.max < self.min:
            raise ValueError("max must not be below min")
        return self


class Coverage(Strict):
    """An engaged account is covered when its touches in the period span ``channels_min`` channels."""

    channels_min: int = Field(default=3, ge=1, le=4)


class EngagedAccount(Strict):
    """The stage before the MQA: ``contacts_min`` distinct contacts with a marketing touch in the
    ``within_days`` ending at the moment, on the target account list when one exists."""

    contacts_min: int = Field(default=2, ge=1)
    within_days: float = Field(default=30, gt=0)
    listed_only: bool = True


class MarketingResponse(Strict):
    """The ``marketing_response`` clock: a Tier-``tiers`` MQA whose account visited a pricing page in the
    ``lookback_days`` up to its trigger_at is owed marketing research within ``window`` of the first such
    visit, met by the first activity of a ``met_by`` type at or after that visit."""

    tiers: list[Literal[1, 2, 3]] = Field(default_factory=lambda: [1], min_length=1)
    page: str = Field(default="/pricing", min_length=1)
    lookback_days: float = Field(default=30, gt=0)
    window: Window = Field(default_factory=lambda: Window(business_hours=2))
    met_by: list[str] = Field(default_factory=lambda: ["account_research"], min_length=1)

    @field_validator("met_by")
    @classmethod
    def _lower(cls, types: list[str]) -> list[str]:
        return [kind.strip().lower() for kind in types]


class Marketing(Strict):
    """Marketing's commitments: touch tempo per tier, channel coverage, the engaged-account stage and
    (when ``response`` is set) the ``marketing_response`` clock."""

    channels: dict[Channel, list[str]] = Field(default_factory=lambda: dict(DEFAULT_CHANNELS))
    tempo: dict[Literal[1, 2, 3], Tempo] = Field(default_factory=dict)
    coverage: Coverage = Field(default_factory=Coverage)
    engaged_account: EngagedAccount = Field(default_factory=EngagedAccount)
    response: MarketingResponse | None = None

    @field_validator("channels")
    @classmethod
    def _types(cls, channels: dict[str, list[str]]) -> dict[str, list[str]]:
        return {name: [kind.strip().lower() for kind in kinds] for name, kinds in channels.items()}

    @property
    def touch_types(self) -> tuple[str, ...]:
        """Every activity type that counts as a marketing touch for tempo and coverage."""
        return tuple(dict.fromkeys(kind for kinds in self.channels.values() for kind in kinds))
