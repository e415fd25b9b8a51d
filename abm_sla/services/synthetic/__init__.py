"""A seeded synthetic CRM: accounts, people, signals and the sales follow-up, realistic and fast.

:func:`generate_crm` returns the normalized frames of :mod:`abm_sla.domain.frames`;
:func:`write_export_folder` writes them as a SPEC section 2 export folder, optionally
with bad rows for the quarantine. Everything is vectorized numpy, so 200k accounts with
~10M signals take seconds. The same arguments give the same data.

The story per account: background marketing noise and low intent all quarter; some
accounts have *bursts* (a campaign answered: opens, clicks, pricing/demo visits, a form,
high-score intent on a few topics) that take a share of them over the hand-off; the
owner (or, when the owner is gone, another rep) follows up in business hours of their
own calendar, mostly fast, sometimes slowly or never; the sales status moves to
working and then accepted, nurture or rejected; some accepted accounts open deals.

The parts: ``common`` (ids, vocabulary, calendar), ``people`` (users, contacts), ``accounts``
(firmographics, owners), ``signals`` (marketing noise, bursts, intent), ``sales`` (follow-up, statuses,
feedback, tier decisions), ``deals`` (opportunities, the outcome truth), ``marketing`` (the program and
target account list), ``team_requests``, ``crm`` (:func:`generate_crm`) and ``export`` (the folder).
"""

from abm_sla.services.synthetic.common import DEFAULT_START
from abm_sla.services.synthetic.crm import generate_crm
from abm_sla.services.synthetic.deals import TRUTH_SIGNALS
from abm_sla.services.synthetic.export import write_export_folder
from abm_sla.services.synthetic.marketing import add_marketing_program
from abm_sla.services.synthetic.sales import sales_tier_decisions
from abm_sla.services.synthetic.team_requests import add_team_requests

__all__ = ["DEFAULT_START", "TRUTH_SIGNALS", "add_marketing_program", "add_team_requests", "generate_crm",
           "sales_tier_decisions", "write_export_folder"]
