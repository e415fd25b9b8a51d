"""Sales' verdicts: raw CRM status values mapped to dispositions, which end an episode and need a reason."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from abm_sla.domain.policy.base import Strict

DISPOSITIONS = (
    "accepted", "rejected", "nurture", "contacted", "interested", "not_ready", "meeting_held", "no_show",
    "unqualified",
)
#: Raw CRM status value (compared trimmed, lower case, runs of spaces/_/- as one space) → disposition.
#: ``working`` is Salesforce's standard "Working - Contacted"; ``disqualified`` is its "Unqualified".
DEFAULT_DISPOSITION_MAP = {
    **{name.replace("_", " "): name for name in DISPOSITIONS},
    "working": "contacted", "working contacted": "contacted", "disqualified": "unqualified",
    "no show": "no_show", "noshow": "no_show", "meeting booked": "interested",
}


def status_key(value: object) -> str:
    """How a raw status value is compared: trimmed, lower case, runs of spaces, ``_`` and ``-`` as one space."""
    return " ".join(str(value).strip().lower().replace("_", " ").replace("-", " ").split())


class Dispositions(Strict):
    """Sales' verdicts: raw status → disposition, which dispositions end an episode and need a reason.

    ``map`` entries are added to (and override) :data:`DEFAULT_DISPOSITION_MAP`; a status in neither is
    *unknown*: kept, reported, never dropped. ``end`` adds the raw statuses of these dispositions to
    ``end_statuses`` (empty = SPEC: only ``end_statuses`` end an episode).
    """

    map: dict[str, str] = Field(default_factory=dict)
    end: list[str] = Field(default_factory=list)
    feedback: list[str] = Field(default_factory=lambda: ["rejected", "unqualified"])
    #: The verdict classes: an MQA whose episode's latest verdict disposition is in ``accepted`` is
    #: accepted, in ``rejected`` rejected (the rejection rate's numerator); others have no verdict.
    accepted: list[str] = Field(default_factory=lambda: ["accepted"], min_length=1)
    rejected: list[str] = Field(default_factory=lambda: ["rejected", "unqualified"], min_length=1)

    @field_validator("map")
    @classmethod
    def _keys(cls, mapping: dict[str, str]) -> dict[str, str]:
        return {status_key(raw): status_key(value).replace(" ", "_") for raw, value in mapping.items()}

    @model_validator(mode="after")
    def _disjoint_verdicts(self) -> Dispositions:
        both = sorted(set(self.accepted) & set(self.rejected))
        if both:
            raise ValueError(f"disposition {both[0]!r} is both accepted and rejected")
        return self

    @field_validator("end", "feedback", "accepted", "rejected")
    @classmethod
    def _names(cls, names: list[str]) -> list[str]:
        return [status_key(name).replace(" ", "_") for name in names]

    @property
    def mapping(self) -> dict[str, str]:
        """The effective raw status (``status_key``) → disposition map."""
        return {**DEFAULT_DISPOSITION_MAP, **self.map}

    def statuses_of(self, dispositions: list[str]) -> list[str]:
        """The raw status keys that map to any of ``dispositions``."""
        return sorted(raw for raw, name in self.mapping.items() if name in set(dispositions))
