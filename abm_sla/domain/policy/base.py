"""The policy models' bases: strict sections (unknown keys are errors) and open report settings."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """A policy section: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Open(BaseModel):
    """Report settings: known fields are checked, unknown ones are kept for later reports."""

    model_config = ConfigDict(extra="allow", frozen=True)
