"""The SLA policy (SPEC section 6) as validated data, loaded from YAML.

Every preset in ``config/presets`` runs through the same engine: windows are
business hours, calendar hours, calendar days or "same business day"; first-touch
windows are per tier with optional overrides keyed on a hand-off signal; the
escalation ladder lists levels with an offset and a recipient.

The sections live by concept: ``clocks``, ``escalation`` (ladders, disputes, alerts), ``targets``,
``marketing``, ``target_accounts`` (the list, Tier 1 commitments), ``dispositions``, ``teams``,
``regions`` (owners, the regional appendix), ``reports`` (what else the reports show) and ``root``
(:class:`SlaPolicy`, :func:`parse_policy`). Below: the names most modules use.
"""

from abm_sla.domain.policy.clocks import Window
from abm_sla.domain.policy.dispositions import DISPOSITIONS
from abm_sla.domain.policy.escalation import OWNER_MANAGER, EscalationLevel
from abm_sla.domain.policy.regions import OWNER_SIDES
from abm_sla.domain.policy.reports import IntentList, Leads
from abm_sla.domain.policy.root import DEFAULT_PATH, SlaPolicy, parse_policy
from abm_sla.domain.policy.targets import Targets
from abm_sla.domain.policy.teams import CampaignPlan, ContentSupport

__all__ = ["DEFAULT_PATH", "DISPOSITIONS", "OWNER_MANAGER", "OWNER_SIDES", "CampaignPlan", "ContentSupport",
           "EscalationLevel", "IntentList", "Leads", "SlaPolicy", "Targets", "Window", "parse_policy"]
