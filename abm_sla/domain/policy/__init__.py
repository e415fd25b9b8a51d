"""The SLA policy (moved whole into :mod:`abm_sla.domain.policy.reports`; the next commit splits it by concept)."""

from abm_sla.domain.policy.reports import *  # noqa: F403
