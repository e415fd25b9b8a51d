"""Prefect flows: orchestration only, one flow per business process, composed by ``pipeline``.

Importing the package makes a run that fails on bad input log its one-line error without a traceback
(:func:`tasks.common.quiet_expected_failures`): workers import the flows through here.
"""

from tasks.common import quiet_expected_failures

quiet_expected_failures()
