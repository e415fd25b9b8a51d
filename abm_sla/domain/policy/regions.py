"""Who owns each commitment (``owners``) and the regional appendix: regions, their windows and targets."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator

from abm_sla.domain.policy.base import Strict
from abm_sla.domain.policy.clocks import CadenceClock, Window

#: Where a commitment's owner may be named besides its own name: a default per side of the scorecard.
OWNER_SIDES = ("marketing", "sales", "joint")


def _owners(owners: dict[str, str]) -> dict[str, str]:
    """``owners`` keys trimmed and lower case (a commitment name, ``custom:<metric>`` or a side), values trimmed."""
    out = {}
    for key, who in owners.items():
        name, person = str(key).strip().lower(), str(who).strip()
        if not re.fullmatch(r"[a-z][a-z0-9_]*(:[a-z][a-z0-9_]*)?", name):
            raise ValueError(f"owners: {key!r} is not a commitment name (e.g. first_touch_met_pct) or a side")
        if not person:
            raise ValueError(f"owners: {key!r} names nobody")
        out[name] = person
    return out


COUNTRY = r"^[A-Z]{2}$"


class RegionClocks(Strict):
    """A region's windows: each given one replaces the master policy's for the region's MQAs (first_touch per
    tier: the tiers not given keep the master window; the master's signal overrides still apply after)."""

    routing_time: Window | None = None
    first_touch: dict[Literal[1, 2, 3], Window] = Field(default_factory=dict)
    status_update: Window | None = None
    cadence: CadenceClock | None = None


class Region(Strict):
    """One region of the regional appendix: its countries (ISO 3166 alpha-2), windows and met-% targets."""

    countries: tuple[str, ...] = Field(min_length=1)
    clocks: RegionClocks = Field(default_factory=RegionClocks)
    #: clock name → minimum met % of the region's clocks due in a period (all tiers)
    targets: dict[str, float] = Field(default_factory=dict)

    @field_validator("countries", mode="before")
    @classmethod
    def _upper(cls, countries: Any) -> Any:
        if isinstance(countries, str):
            countries = [countries]
        if isinstance(countries, list | tuple):
            codes = tuple(dict.fromkeys(str(code).strip().upper() for code in countries))
            bad = [code for code in codes if not re.fullmatch(COUNTRY, code)]
            if bad:
                raise ValueError(f"{bad[0]!r} is not an ISO 3166 alpha-2 country code")
            return codes
        return countries

    @field_validator("targets")
    @classmethod
    def _met_pct(cls, targets: dict[str, float]) -> dict[str, float]:
        for clock, value in targets.items():
            if not re.fullmatch(r"[a-z][a-z0-9_]*", clock):
                raise ValueError(f"{clock!r} is not a clock name (e.g. first_touch)")
            if not 0 <= value <= 100:
                raise ValueError(f"the {clock} target must be a met % between 0 and 100")
        return targets
