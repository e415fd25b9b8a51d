"""The catalog's entries for the last report tables of issue 22 (22e): the MQAs without a verdict (the marketing
quality tables), the four SLA clocks missed and pending (the weekly four numbers), each part's share of the
pipeline created (the monthly pipeline by source) and the reassignments on breach per clock. :data:`CATALOG`
(``catalog``) ends with :data:`REPORT_TABLE_METRICS`."""

from __future__ import annotations

from abm_sla.domain.metrics.base import SHARE, Metric

_MQA = "mqas.trigger_at"
_REASSIGNED = "reassignments.reassigned_at"

REPORT_TABLE_METRICS: tuple[Metric, ...] = (
    Metric("mqas_without_verdict", "MQAs without a verdict", "MQAs of the period whose episode has no accepted or "
           "rejected disposition yet (the policy's verdict classes): MQAs fired less MQAs with a verdict.", "count",
           "mqas", "MQAs without a verdict", "", ("tier", "owner", "list"), _MQA, "", "count", "no_verdict"),
    *(Metric(f"sla_clocks_{status}", f"SLA clocks {status} (the four clocks)", f"Clocks of the four SLA clocks "
             f"(routing time, first touch, cadence, status update) due in the period whose status is {status} (the "
             "weekly four numbers' total).", "count", "clocks", f"SLA clocks {status}", "",
             ("tier", "owner", "region"), "sla_clocks.due_at", "", "count", f"sla_{status}")
      for status in ("missed", "pending")),
    Metric("pipeline_created_share", "Share of the pipeline created", "Amount of the opportunities created in the "
           "period credited to the segment's part of the pipeline-credit rule (source=marketing, influenced, "
           "sales), of the amount of all opportunities created in it; all: the joint pipeline (100 when any was "
           "created).", "pct", "created", "amount of the part", "amount created", ("source",),
           "opportunities.created_at", "", SHARE, "amount", "amount"),
    Metric("reassignments_made", "MQAs reassigned on breach", "Reassignments on breach in the period that moved the "
           "MQA to another rep (status reassigned).", "count", "reassignments", "MQAs reassigned", "", ("clock",),
           _REASSIGNED, "", "count", "reassigned"),
    Metric("reassignments_kept", "Reassignments kept (no other rep)", "Reassignments on breach in the period that "
           "kept the MQA with its owner: no other rep to move it to (status kept).", "count", "reassignments",
           "reassignments kept", "", ("clock",), _REASSIGNED, "", "count", "kept"),
    Metric("reassignments_written_back", "Reassignments written back", "Reassignments on breach in the period "
           "written back to the CRM (reassignments.writeback_done_at set).", "count", "reassignments",
           "reassignments written back", "", ("clock",), _REASSIGNED, "", "count", "written_back"),
)
