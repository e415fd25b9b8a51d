"""The whole SLA policy (:class:`SlaPolicy`, SPEC section 6) and its validation (:func:`parse_policy`);
the default is ``config/sla.yaml`` (:data:`DEFAULT_PATH`)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator, model_validator

from abm_sla.domain.freshness import Freshness
from abm_sla.domain.policy.base import Strict
from abm_sla.domain.policy.clocks import BusinessHours, Clocks
from abm_sla.domain.policy.dispositions import Dispositions
from abm_sla.domain.policy.escalation import Alerts, ClockEscalation, Disputes, Escalation
from abm_sla.domain.policy.marketing import Marketing
from abm_sla.domain.policy.regions import Region, _owners
from abm_sla.domain.policy.reports import (
    CrmUpdates,
    IntentList,
    Leads,
    Money,
    MonthlyReview,
    PipelineCredit,
    RoutedRecord,
    ScoringRefresh,
    Signoff,
)
from abm_sla.domain.policy.target_accounts import TargetAccountList, Tier1Commitments
from abm_sla.domain.policy.targets import Targets
from abm_sla.domain.policy.teams import (
    CampaignPlan,
    ContentSupport,
    Coordination,
    HotAccounts,
    Requests,
    ReviewAttendance,
)
from abm_sla.errors import ConfigError

DEFAULT_PATH = Path(__file__).resolve().parents[3] / "config" / "sla.yaml"


class SlaPolicy(Strict):
    """The whole SLA policy; see ``config/sla.yaml`` for the default (SPEC section 6)."""

    name: str = "default"
    business_hours: BusinessHours = Field(default_factory=BusinessHours)
    end_statuses: list[str] = Field(default_factory=lambda: ["rejected", "nurture"], min_length=1)
    clocks: Clocks
    escalation: Escalation = Field(default_factory=Escalation)
    dispositions: Dispositions = Field(default_factory=Dispositions)
    escalations: list[ClockEscalation] = Field(default_factory=list)
    disputes: Disputes = Field(default_factory=Disputes)
    targets: Targets | None = None
    marketing: Marketing | None = None
    target_account_list: TargetAccountList | None = None
    tier1_commitments: Tier1Commitments | None = None
    alerts: Alerts = Field(default_factory=Alerts)
    freshness: Freshness = Field(default_factory=Freshness)
    pipeline_credit: PipelineCredit = Field(default_factory=PipelineCredit)
    money: Money = Field(default_factory=Money)
    signoff: Signoff = Field(default_factory=Signoff)
    scoring_refresh: ScoringRefresh = Field(default_factory=ScoringRefresh)
    leads: Leads | None = None
    intent_list: IntentList | None = None
    monthly_review: MonthlyReview | None = None
    #: issue 26 (ABM template): every meeting, call and engaged-lead touch logged within 24 h, the listed
    #: accounts updated weekly; absent = off
    crm_updates: CrmUpdates | None = None
    #: issue 26 (one-page SLA, seven commitments): the routed MQA's record complete; absent = off
    routed_record: RoutedRecord | None = None
    #: issue 26 (ABM template): answers to requests between the teams, hot accounts; absent = off
    requests: Requests | None = None
    hot_accounts: HotAccounts | None = None
    #: issue 26 (ABM template, seven commitments, implementation guide): outreach collisions, content before
    #: sales' first touch, the quarter's campaigns per tier, attendance of the quarterly review; absent = off
    coordination: Coordination | None = None
    content_support: ContentSupport | None = None
    campaign_plan: CampaignPlan | None = None
    review_attendance: ReviewAttendance | None = None
    #: who owns each commitment (a person or role, shown beside it on every scorecard): keyed by the commitment's
    #: name (``first_touch_met_pct``, ``custom:<metric>``...) or by a side (``marketing``, ``sales``, ``joint``)
    #: as the default of its commitments; empty = no owner shown (not part of SPEC)
    owners: dict[str, str] = Field(default_factory=dict)
    #: the regional appendix (not part of SPEC; empty = off): region name → its countries, windows and targets
    regions: dict[str, Region] = Field(default_factory=dict)

    @field_validator("owners")
    @classmethod
    def _owner_names(cls, owners: dict[str, str]) -> dict[str, str]:
        return _owners(owners)

    @field_validator("regions")
    @classmethod
    def _disjoint_regions(cls, regions: dict[str, Region]) -> dict[str, Region]:
        seen: dict[str, str] = {}
        for name, region in regions.items():
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9 _.-]*", name):
                raise ValueError(f"region name {name!r}: use letters, digits, spaces, '_', '.' or '-'")
            for code in region.countries:
                if code in seen:
                    raise ValueError(f"country {code} is in two regions ({seen[code]} and {name})")
                seen[code] = name
        return regions

    @model_validator(mode="after")
    def _one_ladder_per_clock(self) -> SlaPolicy:
        clocks = [ladder.clock for ladder in self.ladders]
        twice = sorted({clock for clock in clocks if clocks.count(clock) > 1})
        if twice:
            raise ValueError(f"the {twice[0]} ladder is given twice (escalation and escalations)")
        return self

    @property
    def ladders(self) -> list[Escalation]:
        """Every clock's ladder with levels: ``escalation`` (SPEC's first-touch ladder) then ``escalations``."""
        return [ladder for ladder in (self.escalation, *self.escalations) if ladder.levels]

    @field_validator("end_statuses")
    @classmethod
    def _lower(cls, statuses: list[str]) -> list[str]:
        return [status.strip().lower() for status in statuses]

    def episode_end_statuses(self) -> tuple[str, ...]:
        """Raw statuses that end an episode: ``end_statuses`` plus those of ``dispositions.end``."""
        extra = self.dispositions.statuses_of(self.dispositions.end)
        spaced = [status for raw in extra for status in {raw, raw.replace(" ", "_"), raw.replace(" ", "-")}]
        return tuple(dict.fromkeys([*self.end_statuses, *sorted(spaced)]))


def parse_policy(data: Any, source: str = "SLA policy") -> SlaPolicy:
    """Validate already-parsed policy data."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the policy must be a mapping of settings, got {type(data).__name__}")
    try:
        return SlaPolicy.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "(top level)"
        message = first["msg"].replace("\n", " ")
        raise ConfigError(f"{source}: {field}: {message}") from None
