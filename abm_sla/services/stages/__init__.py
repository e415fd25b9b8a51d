"""The pipeline stages (moved whole into :mod:`abm_sla.services.stages.clocks`; the next commit splits it)."""

from abm_sla.services.stages.clocks import *  # noqa: F403
