"""Learning the scoring points from outcomes (moved whole into :mod:`abm_sla.domain.learning.proposal`; the next
commit splits it)."""

from abm_sla.domain.learning.proposal import *  # noqa: F403
