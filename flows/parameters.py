"""Typed parameters of the rev-ops deployments: one pydantic model per flow, rendered as a form in the Prefect UI.

Every model is validated before a flow does any work; a bad value fails the run with one
sentence a rev-ops user can act on. The warehouse URL is never a parameter: it comes from
``ABM_SLA_DATABASE_URL`` on the worker, or from a Prefect Secret block named in ``database_secret``.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    WithJsonSchema,
    field_serializer,
    field_validator,
    model_validator,
)

from abm_sla.errors import AbmSlaError, ConfigError
from abm_sla.infra import settings
from abm_sla.infra.shards import SHARD_SPACE

SOURCES = ("files", "salesforce", "hubspot")
#: Optional text: a plain text box in the Prefect UI (no str/None toggle to flip first; empty = not given),
#: ``None`` in Python once validated (``FlowParameters._blank_is_none``).
OptionalText = Annotated[str | None, WithJsonSchema({"type": "string"}),
                         PlainSerializer(lambda value: value or "", return_type=str, when_used="json")]
#: An optional moment, typed as text in the form (ISO 8601; empty = not given).
OptionalMoment = Annotated[dt.datetime | None, WithJsonSchema({"type": "string"}),
                           PlainSerializer(lambda value: value.isoformat() if value else "", return_type=str,
                                           when_used="json")]
M = TypeVar("M", bound=BaseModel)
Source = Literal["files", "salesforce", "hubspot"]

_DB_SECRET = Field(
    default="",
    title="Database secret block",
    description="Name of a Prefect Secret block that holds the warehouse URL. "
    "Leave empty to use ABM_SLA_DATABASE_URL on the worker.",
)
_MODEL_PATH = Field(
    default="",
    title="Scoring model file",
    description="YAML scoring model on the worker: a copy of config/scoring.yaml with its own version "
    "(e.g. config/scoring-2026-q2.yaml). Empty = config/scoring.yaml.",
)
_POLICY_PATH = Field(
    default="",
    title="SLA policy file",
    description="YAML SLA policy on the worker (e.g. config/presets/basic.yaml). Empty = config/sla.yaml.",
)

_SOURCE = Field(default="files", title="CRM source", description="Where the CRM data comes from.")
_CONFIG_PATH = Field(
    default="",
    title="abm-sla.yaml",
    description="CRM sources, system of record and write-back on the worker. Empty = ./abm-sla.yaml if present.",
)


#: The one folder reports and what-if CSVs go to on the worker (absolute, or relative to its working directory).
OUTPUT_DIR_ENV = "ABM_SLA_OUTPUT_DIR"
DEFAULT_OUTPUT_DIR = "abm-sla-output"  # git-ignored when it lands inside the checkout


def output_root() -> Path:
    """``$ABM_SLA_OUTPUT_DIR``, else ``./abm-sla-output``, as an absolute path."""
    return Path(os.environ.get(OUTPUT_DIR_ENV) or DEFAULT_OUTPUT_DIR).expanduser().resolve()


def _out_dir_field(what: str, subfolder: str) -> Any:
    return Field(default="", title="Output folder",
                 description=f"Folder on the worker for {what}. Empty = {subfolder}/ in the output folder "
                 f"(${OUTPUT_DIR_ENV} on the worker, else ./{DEFAULT_OUTPUT_DIR}).")


class InvalidParameters(AbmSlaError):
    """A deployment was started with parameters that cannot work; the message says which and why."""


#: Fields a form shows last: how the work is spread and where the warehouse URL comes from.
ADVANCED_FIELDS = ("full", "shards", "dask_address", "database_secret")


def _required_first(schema: dict[str, Any], *_: Any) -> None:
    """A form's fields in the order the UI lists them: the required ones (no default) first, the advanced
    ones (:data:`ADVANCED_FIELDS`) last, the rest as declared between."""
    properties = schema.get("properties", {})
    def rank(name: str) -> tuple[int, int]:
        if name in schema.get("required", []):
            return (0, 0)
        return (2, ADVANCED_FIELDS.index(name)) if name in ADVANCED_FIELDS else (1, 0)

    schema["properties"] = {name: properties[name] for name in sorted(properties, key=rank)}


class FlowParameters(BaseModel):
    """Fields every rev-ops flow shares."""

    # an empty default "" is None in Python; the form lists its required fields first
    model_config = ConfigDict(extra="forbid", validate_default=True, json_schema_extra=_required_first)

    database_secret: OptionalText = _DB_SECRET
    #: Where an empty ``out_dir`` points, under :func:`output_root` (forms with an ``out_dir``).
    output_subfolder: ClassVar[str] = ""

    @field_validator("*", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        """An emptied UI field arrives as ``""``: treat it as not given."""
        return None if isinstance(value, str) and not value.strip() else value

    # Checks shared by every form that has the field (check_fields=False: not every form has each one).
    @field_validator("source", mode="before", check_fields=False)
    @classmethod
    def _known_source(cls, value: object) -> object:
        if value not in SOURCES:
            raise ValueError(f"unknown source {value!r}: choose one of {', '.join(SOURCES)}")
        return value

    @field_validator("start", "end", "as_of", mode="before", check_fields=False)
    @classmethod
    def _timestamp(cls, value: object, info) -> dt.datetime | None:
        blank = value is None or (isinstance(value, str) and not value.strip())
        return None if blank and info.field_name == "as_of" else _utc(value, info.field_name)

    @field_validator("model_path", "baseline_model_path", check_fields=False)
    @classmethod
    def _model_exists(cls, value: str | None) -> str | None:
        return _existing_file(value, "scoring model file")

    @field_validator("policy_path", check_fields=False)
    @classmethod
    def _policy_exists(cls, value: str | None) -> str | None:
        return _existing_file(value, "SLA policy file")

    @field_validator("baseline_policy_path", check_fields=False)
    @classmethod
    def _baseline_policy_exists(cls, value: str | None) -> str | None:
        return _existing_file(value, "SLA policy file to compare with")

    @field_validator("out_dir", check_fields=False)
    @classmethod
    def _output_folder(cls, value: str | None) -> str:
        """An absolute folder; empty = the form's subfolder of :func:`output_root`."""
        folder = Path(value).expanduser() if value else output_root() / cls.output_subfolder
        return str(folder.resolve())

    @field_serializer("out_dir", when_used="json", check_fields=False)
    def _output_folder_text(self, value: str) -> str:
        """The default folder shows as empty in forms and deployments: each worker resolves its own."""
        return "" if value == str(output_root() / self.output_subfolder) else value

    @field_validator("config_path", check_fields=False)
    @classmethod
    def _config_exists(cls, value: str | None) -> str | None:
        return _existing_file(value, "abm-sla.yaml file")


class ScaleParameters(BaseModel):
    """How a run spends its work: only what changed (default) or everything, in how many shards, where."""

    full: bool = Field(
        default=False, title="Full recompute",
        description="Off: recompute only the accounts whose data changed since the last run (the same results). "
        "On: recompute every account.",
    )
    shards: int = Field(
        default=0, ge=0, le=SHARD_SPACE, title="Shards",
        description="Split the accounts into this many shards, one task each. "
        "0 = ABM_SLA_SHARDS on the worker, else one shard per 50,000 accounts.",
    )
    dask_address: OptionalText = Field(
        default="", title="Dask scheduler",
        description="Run the shard tasks on this Dask cluster (e.g. tcp://10.0.0.5:8786). "
        "Empty = ABM_SLA_DASK_ADDRESS on the worker, else in the flow's own process.",
    )

    def scale(self) -> dict:
        """The keyword arguments the stage tasks take."""
        return {"full": self.full, "shards": self.shards or None, "dask_address": self.dask_address or None}


class AsOfParameters(FlowParameters):
    """A flow that computes for one moment (empty = now)."""

    as_of: OptionalMoment = Field(
        default="", title="As of", description="The moment to compute for, ISO 8601 (no offset = UTC). Empty = now."
    )

    allow_future: bool = Field(
        default=False, title="Allow a future as of",
        description="Compute for an as of more than ABM_SLA_FUTURE_TOLERANCE_MINUTES (10) ahead of the clock; "
        "off, such a run is refused as a likely typo.",
    )

    def as_of_or_now(self) -> pd.Timestamp:
        return pd.Timestamp(self.as_of) if self.as_of else pd.Timestamp.now(tz="UTC")


def _utc(value: object, name: str) -> dt.datetime:
    """An ISO 8601 text or datetime as an aware UTC datetime (no offset = UTC)."""
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError):
        stamp = pd.NaT
    if pd.isna(stamp):
        raise ValueError(f"{name} {value!r} is not a date/time like 2026-03-31T12:00:00Z")
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.to_pydatetime()


def _existing_file(path: str | None, what: str) -> str | None:
    if path is not None and not Path(path).is_file():
        raise ValueError(f"{what} {path} does not exist on the worker (paths are relative to {Path.cwd()})")
    return path


class BackfillParameters(ScaleParameters, FlowParameters):
    """Run the pipeline as of every step from start to end, in order; a re-run resumes where it failed.

    A backfill recomputes every account at every step unless ``full`` is switched off.
    """

    full: bool = Field(
        default=True, title="Full recompute",
        description="On: recompute every account at every step. Off: each step recomputes what changed since "
        "the step before (the same results, faster).",
    )

    start: dt.datetime = Field(
        title="First as-of",
        description="The first moment to compute for, ISO 8601 (no offset = UTC). A start after the data's "
        "beginning fires, on the first step, every account already qualified by the history before it, all at "
        "once (their clocks start then, many breach at once): switch on 'Start at the data's beginning' to fire "
        "each MQA at the step it qualified.",
    )
    end: dt.datetime = Field(
        title="Last as-of", description="The last moment to compute for (inclusive), ISO 8601 (no offset = UTC)."
    )
    step_hours: float = Field(
        default=24, title="Step (hours)", description="Hours between two as-of moments: 24 = daily, 1 = hourly."
    )
    start_at_data_beginning: bool = Field(
        default=False, title="Start at the data's beginning",
        description="On: the first step is the last step (of the grid through the first as-of) at or before the "
        "oldest activity or intent signal, so every MQA fires when it qualified. Off: start at the first as-of.",
    )
    source: Source = _SOURCE
    path: OptionalText = Field(
        default="",
        title="CRM export folder",
        description="Folder with accounts.csv etc., loaded once before the first step. "
        "Empty = use the CRM data already in the warehouse.",
    )
    config_path: OptionalText = Field(
        default="",
        title="abm-sla.yaml",
        description="CRM sources, system of record and write-back on the worker. Empty = ./abm-sla.yaml if "
        "present. Salesforce and HubSpot are synced once before the first step.",
    )
    model_path: OptionalText = _MODEL_PATH
    policy_path: OptionalText = _POLICY_PATH
    dry_run: bool = Field(
        default=False,
        title="Dry run",
        description="Only list the steps that would run (and those already done); write nothing.",
    )
    engine: Literal["steps", "one-pass"] = Field(
        default="steps",
        title="Engine",
        description="steps: the whole pipeline as of each step in turn. one-pass: each shard's signals read once, "
        "its scores and hand-offs computed for every step at once, then routing, clocks and tier moves step by "
        "step (the same results; the backfill is one run, undone as one unit).",
    )

    @model_validator(mode="after")
    def _consistent(self) -> BackfillParameters:
        if self.end < self.start:
            raise ValueError(f"end ({self.end.isoformat()}) is before start ({self.start.isoformat()})")
        if not self.step_hours > 0:
            raise ValueError(f"step_hours must be more than 0 (24 = daily), got {self.step_hours:g}")
        if self.source == "files" and self.path is not None:
            check_export_folder(self.path)
        return self

    def steps(self, data_start: pd.Timestamp | None = None) -> list[pd.Timestamp]:
        """Every as-of from start to end inclusive, ``step_hours`` apart; with ``start_at_data_beginning``
        and a ``data_start`` before ``start``, the grid reaches back to the last step at or before it."""
        step = pd.Timedelta(hours=self.step_hours)
        first = pd.Timestamp(self.start)
        if self.start_at_data_beginning and data_start is not None and data_start < first:
            first -= step * -((data_start - first) // step)  # whole steps back: at or before data_start
        return list(pd.date_range(first, pd.Timestamp(self.end), freq=step))


class RecalculateParameters(AsOfParameters):
    """Re-score accounts with a scoring model as of a moment; a dry run only reports what would change."""

    accounts: list[str] = Field(
        default_factory=list,
        title="Accounts",
        description="CRM account ids to re-score. Leave empty to re-score every account.",
    )
    model_path: OptionalText = _MODEL_PATH
    baseline_model_path: OptionalText = Field(
        default="",
        title="Compare with model file",
        description="The model the diff compares against. Empty = config/scoring.yaml (the live model).",
    )
    policy_path: OptionalText = _POLICY_PATH
    baseline_policy_path: OptionalText = Field(
        default="",
        title="Compare with policy file",
        description="A policy what-if: the stored MQAs' clocks under the SLA policy file above vs this one. "
        "Empty = no policy what-if when the policy file is empty too, else config/sla.yaml (the live policy).",
    )
    dry_run: bool = Field(
        default=True,
        title="Dry run",
        description="On: only report the differences (table + CSV), write nothing. "
        "Off: store the new scores under the model's version.",
    )
    period_start: OptionalMoment = Field(
        default="", title="Period start",
        description="A what-if over a period: the first as-of; the model is compared at every step from it to the "
        "as-of above, with the MQAs the stored runs fired beside those it would fire. Empty = one moment.",
    )
    step_hours: float = Field(
        default=24, title="Period step (hours)", description="Hours between two as-ofs of the period (24 = daily).")
    output_subfolder: ClassVar[str] = "whatif"
    out_dir: OptionalText = _out_dir_field("the what-if diff CSV", "whatif")

    @model_validator(mode="after")
    def _period(self) -> RecalculateParameters:
        if not self.step_hours > 0:
            raise ValueError(f"step_hours must be more than 0 (24 = daily), got {self.step_hours:g}")
        if self.period_start and self.as_of and pd.Timestamp(self.as_of) < pd.Timestamp(self.period_start):
            raise ValueError(f"as_of ({pd.Timestamp(self.as_of).isoformat()}) is before period_start "
                             f"({pd.Timestamp(self.period_start).isoformat()})")
        return self

    def period(self) -> list[pd.Timestamp]:
        """The as-ofs of a what-if over a period (``period_start`` to ``as_of``), else none."""
        if not self.period_start:
            return []
        step = pd.Timedelta(hours=self.step_hours)
        first, last = (pd.Timestamp(moment).tz_convert("UTC") for moment in (self.period_start, self.as_of_or_now()))
        return list(pd.date_range(first, last, freq=step))

    @field_validator("accounts")
    @classmethod
    def _clean_ids(cls, values: list[str]) -> list[str]:
        return list(dict.fromkeys(value.strip() for value in values if value.strip()))


class SyncParameters(FlowParameters):
    """Bring the CRM's changes since the last sync into the warehouse (an interrupted sync resumes)."""

    source: Source = _SOURCE
    path: OptionalText = Field(
        default="",
        title="CRM export folder",
        description="Folder with accounts.csv etc. (source files). Empty = sources.files.path in abm-sla.yaml.",
    )
    config_path: OptionalText = _CONFIG_PATH

    @model_validator(mode="after")
    def _readable(self) -> SyncParameters:
        if self.source == "files" and self.path is not None:
            check_export_folder(self.path)
        return self


class ScoreParameters(ScaleParameters, AsOfParameters):
    """Score every account, fire the hand-offs and route the new MQAs as of a moment."""

    model_path: OptionalText = _MODEL_PATH
    policy_path: OptionalText = _POLICY_PATH


class MonitorParameters(ScaleParameters, AsOfParameters):
    """Evaluate every SLA clock and open the escalations that are due as of a moment."""

    policy_path: OptionalText = _POLICY_PATH


class UndoParameters(FlowParameters):
    """Undo one run: remove the scores, MQAs, clock evaluations and escalations it wrote and restore the state
    before it."""

    run_id: str | None = Field(default=None, validate_default=True, title="Run id",
                               description="The run to undo: its warehouse run id (in every run's log and report, "
                               "'warehouse run id') or the id of the Prefect flow run that made it (a backfill's: "
                               "every step it ran).")
    and_later: bool = Field(
        default=False, title="And every later run",
        description="Also undo every run started after it (newest first); without it, a run followed by "
        "later runs is refused.",
    )

    @field_validator("run_id")
    @classmethod
    def _run_id(cls, value: str | None) -> str:
        if value is None:
            raise ValueError("run_id is required: the id of the run to undo")
        return value.strip()


class DisputeParameters(FlowParameters):
    """A dispute on an account: open one, add a note, close it with a resolution, or reopen it."""

    action: Literal["open", "note", "close", "reopen"] = Field(
        default="open", title="Action", description="open a dispute, add a note, close it, or reopen a closed one.")
    account_id: OptionalText = Field(default=None, title="Account",
                                     description="open: the account's CRM id.")
    disagreement: OptionalText = Field(default=None, title="Disagreement",
                                       description="open: what the sides disagree on.")
    raised_by: OptionalText = Field(default=None, title="Raised by / by",
                                    description="Who does it: raised the dispute, wrote the note, closed or reopened.")
    requested_resolution: OptionalText = Field(default=None, title="Requested resolution",
                                               description="open: the resolution asked for.")
    dispute_id: int | None = Field(default=None, ge=1, title="Dispute id",
                                   description="note, close, reopen: the dispute (`abm-sla dispute list`).")
    text: OptionalText = Field(default=None, title="Text",
                               description="note: the note; close: the resolution; reopen: the reason.")
    outcome: Literal["agreed", "upheld", "overturned", "sla_changed", "withdrawn"] = Field(
        default="agreed", title="Outcome", description="close: how it ended.")

    @model_validator(mode="after")
    def _complete(self) -> DisputeParameters:
        needed = {"open": ("account_id", "disagreement", "raised_by", "requested_resolution"),
                  "note": ("dispute_id", "text", "raised_by"), "close": ("dispute_id", "text", "raised_by"),
                  "reopen": ("dispute_id", "text", "raised_by")}[self.action]
        missing = [name for name in needed if getattr(self, name) is None]
        if missing:
            raise ValueError(f"{self.action} needs {', '.join(missing)}")
        return self


class ReportParameters(FlowParameters):
    """Write the weekly SLA dashboard, the monthly review or the quarterly renegotiation report."""

    period: OptionalText = Field(
        default="",
        title="Period",
        description="2026-W14 (week), 2026-Q1 (quarter) or 2026-03 (month). "
        "Empty = the last full week (weekly), month (monthly) or quarter (quarterly).",
    )
    output_subfolder: ClassVar[str] = "reports"
    out_dir: OptionalText = _out_dir_field("the report files", "reports")
    policy_path: OptionalText = _POLICY_PATH
    model_path: OptionalText = _MODEL_PATH
    notify_block: OptionalText = Field(
        default="",
        title="Post the headline to",
        description="A Prefect notification block as <block type>/<name>, e.g. slack-webhook/sla-channel, "
        "ms-teams-webhook/revops or custom-webhook/chat. Empty = no post (the headline is still an artifact).",
    )
    only_on_first_business_day: bool = Field(
        default=False,
        title="Only on the first business day",
        description="Skip unless today is the first business day of the quarter (quarterly) or month (monthly); "
        "set by the schedule.",
    )
    holiday_country: str = Field(
        default="US", title="Holiday calendar", description="ISO country code whose holidays are not business days."
    )
    calendar_time_zone: str = Field(
        default="UTC", title="Time zone", description="IANA time zone that decides what 'today' is (e.g. UTC)."
    )

    @field_validator("calendar_time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name like America/New_York)") from None
        return value


def check_export_folder(path: str) -> None:
    """An export folder the files source can read: a folder with accounts.csv."""
    folder = Path(path)
    if not folder.is_dir():
        raise ValueError(f"CRM export folder {path} does not exist on the worker")
    if not (folder / "accounts.csv").is_file():
        raise ValueError(f"CRM export folder {path} has no accounts.csv (the one required file)")


def validated(model: type[M], value: M | dict) -> M:
    """``value`` as ``model``, re-validated; a bad value raises one readable line."""
    try:
        return model.model_validate(value.model_dump() if isinstance(value, BaseModel) else value)
    except ValidationError as error:
        raise InvalidParameters(f"invalid parameters: {explain(error)}") from None


def explain(error: ValidationError) -> str:
    """Pydantic's errors as one sentence per problem, joined."""
    parts = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)


def resolve_database_url(secret_block: str | None) -> str:
    """The warehouse URL: the Secret block's value if named, else ``ABM_SLA_DATABASE_URL``, else ./abm-sla.db."""
    if secret_block:
        from prefect.blocks.system import Secret

        try:
            value = Secret.load(secret_block).get()
        except ValueError as error:
            raise ConfigError(f"cannot load the Secret block {secret_block!r}: {error}") from None
        return str(value)
    return settings.database_url()


class ProposeModelParameters(FlowParameters):
    """Learn the scoring points from outcomes: a diff of the model file and its model card (never applied)."""

    train_until: OptionalText = Field(
        default="",
        title="Train until",
        description="Learn from the as-ofs whose outcome was known by this date, validate on the ones after it "
        "(ISO 8601, e.g. 2026-10-01). Empty = the end of the data less twice the horizon.",
    )
    horizon_days: int = Field(default=90, gt=0, title="Horizon (days)",
                              description="Days after an as-of in which an opportunity counts as its outcome.")
    outcome: Literal["won", "opportunity"] = Field(
        default="won", title="Outcome",
        description="What the score should predict: won (an opportunity created and won) or opportunity (created).")
    volume_factor: float = Field(
        default=1.0, gt=0, title="MQA volume factor",
        description="The MQA volume the proposed threshold aims at, relative to the current one (1 = the same).")
    model_path: OptionalText = _MODEL_PATH
    output_subfolder: ClassVar[str] = "model-proposals"
    out_dir: OptionalText = _out_dir_field("scoring.yaml.diff, model-card.md and model-card.json", "model-proposals")

    @field_validator("train_until", mode="before")
    @classmethod
    def _train_until(cls, value: object) -> object:
        blank = value is None or (isinstance(value, str) and not value.strip())
        return None if blank else _utc(value, "train_until").isoformat()
