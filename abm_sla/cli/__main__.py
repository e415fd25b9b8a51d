"""``python -m abm_sla.cli``: the ``abm-sla`` command line."""

import sys

from abm_sla.cli import main

sys.exit(main())
