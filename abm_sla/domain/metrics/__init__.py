"""The metrics catalog (moved whole into :mod:`abm_sla.domain.metrics.catalog`; the next commit splits it)."""

from abm_sla.domain.metrics.catalog import *  # noqa: F403
