"""The SLA scorecard (moved whole into :mod:`abm_sla.domain.scorecard.commitment_table`; the next commit splits it
by concept)."""

from abm_sla.domain.scorecard.commitment_table import *  # noqa: F403
