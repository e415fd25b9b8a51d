"""The ``abm-sla`` command line (SPEC section 7). Errors end as one line and a non-zero exit.

:data:`app` is the Typer app (``common``); each module adds its commands to it: ``pipeline`` (run, backfill,
sync), ``exports`` (export, report), ``runs`` (demo, runs, undo), ``docs``, ``reviews`` (signoff, dispute,
decision, review), ``proposals`` (propose) and ``entry`` (serve, and :func:`main`, the console script).
"""

# isort: off
# The order of these imports is the order of the commands in ``abm-sla --help``.
from abm_sla.cli import pipeline, exports, runs, docs, reviews, proposals  # noqa: F401
from abm_sla.cli.common import app
from abm_sla.cli.entry import main
# isort: on

__all__ = ["app", "main"]
