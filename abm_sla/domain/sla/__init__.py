"""SLA clocks and the escalation ladder (moved whole into :mod:`abm_sla.domain.sla.escalation`; the next commit
splits it by concept)."""

from abm_sla.domain.sla.escalation import *  # noqa: F403
from abm_sla.domain.sla.escalation import _owner_calendar  # noqa: F401
