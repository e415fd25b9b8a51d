"""SLA clocks and the escalation ladder (SPEC section 6), point-in-time as of ``as_of``.

Only activities and status changes at or before ``as_of`` count. A clock is
``met`` when met_at <= due_at, ``missed`` when met_at > due_at or when nothing
met it and ``as_of`` is strictly past due_at, else ``pending`` (so at
``as_of == due_at`` an unmet clock is still pending). met_at is reported whenever
it exists by ``as_of``, also for a missed clock. Business-hour windows use the
owner's time zone and country (no owner: UTC, no holidays).

The package holds it by concept: ``common`` (clock names and columns, status, the event index, episodes, windows,
UTC helpers), ``clocks`` (:func:`evaluate_clocks`, SPEC's four and marketing's response), ``optional_clocks``
(the clocks the policy switches on) and ``escalation`` (the ladder, reassignments). Below: every public name, and
the owner calendar :mod:`abm_sla.domain.commitments` reads.
"""

from abm_sla.domain.sla.clocks import assignment_at, evaluate_clocks, first_touch_windows, routing_end
from abm_sla.domain.sla.common import (
    AFTER_EPISODE_CLOCKS,
    CLOCK_COLUMNS,
    CLOCK_ORDER,
    CLOCKS,
    CRM_HYGIENE,
    ESCALATION_COLUMNS,
    MARKETING_RESPONSE,
    NAT,
    NON_SQL_CONTACT,
    OPTIONAL_CLOCKS,
    OWNER_ASSIGNED,
    SQL_CONTACT,
    UTC,
    EventIndex,
    _owner_calendar,  # noqa: F401  (read by domain.commitments)
    apply_windows,
    clock_start,
    clock_status,
    nth_at_or_after,
    sales_touches,
)
from abm_sla.domain.sla.escalation import Level, evaluate_escalations, ladder_times, reassignments_due
from abm_sla.domain.sla.optional_clocks import (
    accepted_at,
    crm_hygiene_clocks,
    feedback_clocks,
    first_change_in_episode,
    non_sql_contact_clocks,
    recurring_clocks,
    sql_contact_clocks,
)

__all__ = [
    "AFTER_EPISODE_CLOCKS",
    "CLOCKS",
    "CLOCK_COLUMNS",
    "CLOCK_ORDER",
    "CRM_HYGIENE",
    "ESCALATION_COLUMNS",
    "MARKETING_RESPONSE",
    "NAT",
    "NON_SQL_CONTACT",
    "OPTIONAL_CLOCKS",
    "OWNER_ASSIGNED",
    "SQL_CONTACT",
    "UTC",
    "EventIndex",
    "Level",
    "accepted_at",
    "apply_windows",
    "assignment_at",
    "clock_start",
    "clock_status",
    "crm_hygiene_clocks",
    "evaluate_clocks",
    "evaluate_escalations",
    "feedback_clocks",
    "first_change_in_episode",
    "first_touch_windows",
    "ladder_times",
    "non_sql_contact_clocks",
    "nth_at_or_after",
    "reassignments_due",
    "recurring_clocks",
    "routing_end",
    "sales_touches",
    "sql_contact_clocks",
]
