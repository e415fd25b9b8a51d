"""Commitments between the teams (issue 26, ABM template; absent = off): answers to requests, hot accounts,
outreach coordination, content support, the joint campaign plan and review attendance."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from abm_sla.domain.frames import ACTIVITY_TYPES, HOT_FLAG, MARKETING_SIDE
from abm_sla.domain.policy.base import Strict
from abm_sla.domain.policy.clocks import Window


class Requests(Strict):
    """Answers owed between the teams (issue 26, ABM template; ``requests.csv``): a window per request kind,
    absent = that kind's clock is off. ``materials``: marketing answers sales' requests for materials;
    ``account_info``: sales answers marketing's requests for account information."""

    materials: Window | None = None
    account_info: Window | None = None


class HotAccounts(Strict):
    """Sales flags an account hot (an activity of type ``hot_flag``) and marketing coordinates within
    ``window``: the first activity of a ``coordinated_by`` type on the account at or after the flag."""

    window: Window = Field(default_factory=lambda: Window(business_hours=8))
    coordinated_by: list[str] = Field(default_factory=lambda: ["account_research"], min_length=1)

    @field_validator("coordinated_by")
    @classmethod
    def _known_types(cls, types: list[str]) -> list[str]:
        lowered = [value.strip().lower() for value in types]
        unknown = [value for value in lowered if value not in ACTIVITY_TYPES or value == HOT_FLAG]
        if unknown:
            raise ValueError(f"not an activity type marketing logs: {', '.join(unknown)}")
        return lowered


def _marketing_types(types: list[str]) -> list[str]:
    """Activity types, lower-cased; each must be a marketing-side type."""
    lowered = [kind.strip().lower() for kind in types]
    unknown = [kind for kind in lowered if kind not in MARKETING_SIDE]
    if unknown:
        raise ValueError(f"{unknown[0]!r} is not a marketing activity type")
    return lowered


class Coordination(Strict):
    """1:1 outreach coordinated with marketing's campaigns (ABM template; not part of SPEC; absent by default: not
    shown): a sales touch and a marketing touch to the same contact (the same account when either has no contact)
    within ``window_hours`` of each other is a collision (a duplicate or conflicting message)."""

    window_hours: float = Field(default=24, gt=0)
    #: marketing's messages that collide with a sales touch (default: its emails, opened or clicked, and its ads;
    #: the contact's own visits, forms, downloads and attendance are not messages)
    marketing_types: list[str] = Field(default_factory=lambda: ["email_open", "email_click", "ad_click"],
                                       min_length=1)

    @field_validator("marketing_types")
    @classmethod
    def _known(cls, types: list[str]) -> list[str]:
        return _marketing_types(types)


class ContentSupport(Strict):
    """Marketing's content for sales' touches (seven commitments; not part of SPEC; absent by default: not shown):
    an MQA is covered when its account received a marketing touch of a ``types`` type in the ``lookback_days``
    before sales' first touch of the episode (before the MQA's as-of moment while sales has not touched it)."""

    types: list[str] = Field(default_factory=lambda: ["content_download"], min_length=1)
    lookback_days: float = Field(default=90, gt=0)

    @field_validator("types")
    @classmethod
    def _known(cls, types: list[str]) -> list[str]:
        return _marketing_types(types)


class PlannedCampaign(Strict):
    """One campaign of the joint plan: the tiers it is assigned to and the personas it addresses (free text)."""

    tiers: list[Literal[1, 2, 3]] = Field(min_length=1)
    personas: list[str] = Field(default_factory=list)


class CampaignPlan(Strict):
    """Campaigns planned each quarter per tier (ABM template; not part of SPEC; absent by default: not shown): the
    quarter's campaigns are the subjects of ``campaign_start`` activities, per tier of the accounts they started
    on; every tier of ``tiers`` without one is flagged. ``campaigns``: the joint plan (in the signed policy), by
    campaign name (the ``campaign_start`` subject): each planned campaign is checked against its starts."""

    tiers: list[Literal[1, 2, 3]] = Field(default_factory=lambda: [1, 2, 3], min_length=1)
    campaigns: dict[str, PlannedCampaign] = Field(default_factory=dict)

    @field_validator("campaigns")
    @classmethod
    def _trimmed(cls, campaigns: dict[str, PlannedCampaign]) -> dict[str, PlannedCampaign]:
        return {name.strip(): plan for name, plan in campaigns.items()}


class ReviewAttendance(Strict):
    """Attendance of the quarterly account review (implementation guide; not part of SPEC; absent by default: not
    shown): the quarterly report shows who attended per side (``abm-sla review attend``) and warns when a side of
    ``required`` has nobody."""

    required: list[Literal["sales", "marketing"]] = Field(default_factory=lambda: ["sales", "marketing"],
                                                          min_length=1)
