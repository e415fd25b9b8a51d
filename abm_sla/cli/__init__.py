"""The ``abm-sla`` command line (moved whole into :mod:`abm_sla.cli.common`; the next commit splits it)."""

from abm_sla.cli.common import app, main

__all__ = ["app", "main"]
