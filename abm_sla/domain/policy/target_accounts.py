"""The target account list (its size and its top accounts) and the Tier 1 commitments (issue 26;
docs/designs/tier1-commitments.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from abm_sla.domain.policy.base import Strict
from abm_sla.domain.policy.clocks import Window


class TargetAccountList(Strict):
    """The target account list (``target_accounts.csv``): ``only_listed`` hands off only accounts on the
    list at the trigger moment (when any list row exists); ``agreement_days`` is how old the last
    recorded agreement may be before the reports flag it (monthly: 31)."""

    only_listed: bool = False
    agreement_days: float = Field(default=31, gt=0)
    size: ListSize | None = None
    top_accounts: TopAccounts | None = None


class QualifiedConversation(Strict):
    """At least one qualified conversation per account per quarter: an activity of a ``types`` type with a
    contact of the account who (``engaged_only``) had a marketing touch in the ``engaged_within_days`` up to it."""

    types: list[str] = Field(default_factory=lambda: ["meeting", "call"], min_length=1)
    engaged_only: bool = True
    engaged_within_days: float = Field(default=90, gt=0)

    @field_validator("types")
    @classmethod
    def _lower(cls, types: list[str]) -> list[str]:
        return [kind.strip().lower() for kind in types]


class SalesFollowUp(Strict):
    """Sales contacts the account within ``window`` of a marketing touch (the first touch not yet answered)."""

    window: Window = Field(default_factory=lambda: Window(business_hours=40))


class CampaignResearch(Strict):
    """Marketing's account research (an activity of a ``met_by`` type) within ``within_days`` of the account's
    campaign start (an activity of a ``started_by`` type; one per account and campaign subject)."""

    within_days: float = Field(default=30, gt=0)
    started_by: list[str] = Field(default_factory=lambda: ["campaign_start"], min_length=1)
    met_by: list[str] = Field(default_factory=lambda: ["account_research"], min_length=1)

    @field_validator("started_by", "met_by")
    @classmethod
    def _lower(cls, types: list[str]) -> list[str]:
        return [kind.strip().lower() for kind in types]


class Tier1Commitments(Strict):
    """The implementation guide's Tier 1 commitments, for the accounts of ``tiers`` (each part off when null)."""

    tiers: list[Literal[1, 2, 3]] = Field(default_factory=lambda: [1], min_length=1)
    conversation: QualifiedConversation | None = Field(default_factory=QualifiedConversation)
    sales_follow_up: SalesFollowUp | None = Field(default_factory=SalesFollowUp)
    research: CampaignResearch | None = Field(default_factory=CampaignResearch)


class ListSize(Strict):
    """The target account list's agreed size (ABM template: 50-300 accounts)."""

    min: int = Field(default=50, ge=0)
    max: int = Field(default=300, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> ListSize:
        if self.max < self.min:
            raise ValueError("max must not be below min")
        return self


class TopAccounts(Strict):
    """The top ``size`` accounts of the list (by ``target_accounts.priority``, 1 first; else by score): each
    reached personally by sales (an activity of a ``reach_types`` type with an owner) in the ``reach_days``
    up to the moment, and the top revisited (a list row of one of them agreed) within ``revisit_days``."""

    size: int = Field(default=50, ge=1)
    reach_days: float = Field(default=31, gt=0)
    reach_types: list[str] = Field(default_factory=lambda: ["call", "email_sent", "meeting", "linkedin_message"],
                                   min_length=1)
    revisit_days: float = Field(default=60, gt=0)
