"""The scoring model (SPEC sections 3 and 4) as validated data, loaded from YAML.

The model is generic: three capped categories, each a list of rules of five kinds
(``band`` and ``in_list`` on an account column, ``activity_count``, ``url_visit``,
``intent_topics``), plus the hand-off gates. ``config/scoring.yaml`` holds the default.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from abm_sla.domain.frames import MARKETING_TOUCHES
from abm_sla.errors import ConfigError

DEFAULT_PATH = Path(__file__).resolve().parents[2] / "config" / "scoring.yaml"
CATEGORIES = ("firmographic", "engagement", "intent")
Category = Literal["firmographic", "engagement", "intent"]


def normalize_text(value: str) -> str:
    """Case- and surrounding-space-insensitive form used for industry, country, topic, type, status."""
    return value.strip().lower()


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Band(Strict):
    """``min <= value <= max`` (either bound optional) earns ``points``."""

    min: float | None = None
    max: float | None = None
    points: int = Field(ge=0)
    name: str | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Band:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min must not be greater than max")
        return self


class BandRule(Strict):
    """Numeric bands on an account column; the first matching band wins; missing value → no points."""

    kind: Literal["band"]
    name: str = Field(min_length=1)
    column: str = Field(min_length=1)
    bands: list[Band] = Field(min_length=1)


class ListRule(Strict):
    """Membership of an account column's value in a list (case/space-insensitive)."""

    kind: Literal["in_list"]
    name: str = Field(min_length=1)
    column: str = Field(min_length=1)
    values: list[str] = Field(min_length=1)
    points: int = Field(ge=0)

    @field_validator("values")
    @classmethod
    def _normalized(cls, values: list[str]) -> list[str]:
        return [normalize_text(value) for value in values]


class ActivityRule(Strict):
    """``points`` per activity of one of ``types`` in the window, at most ``max``."""

    kind: Literal["activity_count"]
    name: str = Field(min_length=1)
    types: list[str] = Field(min_length=1)
    points: int = Field(ge=0)
    max: int | None = Field(default=None, ge=0)

    @field_validator("types")
    @classmethod
    def _normalized(cls, types: list[str]) -> list[str]:
        return [normalize_text(value) for value in types]


class UrlRule(Strict):
    """``points`` per visit whose URL path contains ``path_contains`` (ignoring case), at most ``max``."""

    kind: Literal["url_visit"]
    name: str = Field(min_length=1)
    path_contains: str = Field(min_length=1)
    activity_type: str = "web_visit"
    points: int = Field(ge=0)
    max: int | None = Field(default=None, ge=0)

    @field_validator("path_contains", "activity_type")
    @classmethod
    def _normalized(cls, value: str) -> str:
        return normalize_text(value)


class IntentRule(Strict):
    """``points`` per distinct topic with a score ``>= min_score`` observed in the window, at most ``max``."""

    kind: Literal["intent_topics"]
    name: str = Field(min_length=1)
    min_score: float
    points: int = Field(ge=0)
    max: int | None = Field(default=None, ge=0)


Rule = Annotated[BandRule | ListRule | ActivityRule | UrlRule | IntentRule, Field(discriminator="kind")]
SIGNAL_RULES = (ActivityRule, UrlRule, IntentRule)


class CategoryModel(Strict):
    cap: int = Field(ge=0)
    rules: list[Rule] = Field(default_factory=list)


class Categories(Strict):
    firmographic: CategoryModel
    engagement: CategoryModel
    intent: CategoryModel


class Gates(Strict):
    """SPEC section 4 items 1-4; an empty ``decision_maker_titles`` list turns gate 3 off."""

    min_total: int = Field(default=0, ge=0)
    min_category: dict[Category, int] = Field(default_factory=dict)
    decision_maker_titles: list[str] = Field(default_factory=list)
    min_marketing_touches: int = Field(default=0, ge=0)
    marketing_touch_types: list[str] = Field(default_factory=lambda: list(MARKETING_TOUCHES), min_length=1)

    @field_validator("decision_maker_titles")
    @classmethod
    def _phrases(cls, titles: list[str]) -> list[str]:
        cleaned = [" ".join(title.split()) for title in titles]
        if any(not title for title in cleaned):
            raise ValueError("a decision-maker title must not be empty")
        return cleaned

    @field_validator("marketing_touch_types")
    @classmethod
    def _normalized(cls, types: list[str]) -> list[str]:
        return [normalize_text(value) for value in types]


class ScoringModel(Strict):
    """The whole scoring model; see ``config/scoring.yaml``."""

    model_config = ConfigDict(extra="forbid", frozen=True, ignored_types=(cached_property,))

    version: str = Field(min_length=1)
    window_days: int = Field(gt=0)
    categories: Categories
    gates: Gates = Field(default_factory=Gates)

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int | float) else value

    @model_validator(mode="after")
    def _unique_rule_names(self) -> ScoringModel:
        seen: set[str] = set()
        for _, rule in self.rules():
            if rule.name in seen:
                raise ValueError(f"rule name {rule.name!r} is used twice")
            seen.add(rule.name)
        return self

    @property
    def window(self) -> pd.Timedelta:
        return pd.Timedelta(days=self.window_days)

    def category(self, name: str) -> CategoryModel:
        return getattr(self.categories, name)

    def rules(self) -> Iterator[tuple[str, BandRule | ListRule | ActivityRule | UrlRule | IntentRule]]:
        """Every (category, rule) in model order."""
        for name in CATEGORIES:
            for rule in self.category(name).rules:
                yield name, rule

    @property
    def signal_activity_types(self) -> list[str]:
        """Activity types that move a score or a gate (marketing touches plus those the rules count)."""
        types = list(self.gates.marketing_touch_types)
        for _, rule in self.rules():
            extra = rule.types if isinstance(rule, ActivityRule) else [getattr(rule, "activity_type", None)]
            types += [t for t in extra if t and t not in types]
        return types

    @cached_property
    def decision_maker_pattern(self) -> re.Pattern[str] | None:
        """Whole-word, case-insensitive regex of the decision-maker titles (None: gate off)."""
        if not self.gates.decision_maker_titles:
            return None
        phrases = [r"\s+".join(map(re.escape, t.split())) for t in self.gates.decision_maker_titles]
        return re.compile(r"(?<!\w)(?:" + "|".join(phrases) + r")(?!\w)", re.IGNORECASE)


def parse_model(data: Any, prefix: str = "invalid scoring model") -> ScoringModel:
    """Validate already-parsed model data."""
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix}: the model must be a mapping of settings, got {type(data).__name__}")
    try:
        return ScoringModel.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "(top level)"
        message = " ".join(first["msg"].split())
        raise ConfigError(f"{prefix}: {field}: {message}") from None
