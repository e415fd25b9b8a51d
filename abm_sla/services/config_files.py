"""Reading the policy and scoring-model YAML files (the domain validates their content, this reads them)."""
from __future__ import annotations

import copy
import csv
import functools
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from abm_sla.domain.model import DEFAULT_PATH as DEFAULT_MODEL_PATH
from abm_sla.domain.model import ScoringModel, parse_model
from abm_sla.domain.policy import DEFAULT_PATH as DEFAULT_POLICY_PATH
from abm_sla.domain.policy import SlaPolicy, parse_policy
from abm_sla.domain.policy.reports import SpendRow
from abm_sla.errors import ConfigError


def load_model(path: str | Path | None = None) -> ScoringModel:
    """Read and validate a scoring model (default ``config/scoring.yaml``); errors are one-line."""
    source = Path(path) if path is not None else DEFAULT_MODEL_PATH
    prefix = f"invalid scoring model {source}"
    try:
        text = source.read_text(encoding="utf-8")
        _yaml_of(text)
    except UnicodeDecodeError as error:
        raise ConfigError(f"{prefix}: not a YAML text file (binary content at byte {error.start})") from None
    except OSError as error:
        raise ConfigError(f"{prefix}: cannot read the file ({error.strerror or error})") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{prefix}: not valid YAML{where}") from None
    return _model_of(text, prefix)


def load_policy(path: str | Path | None = None) -> SlaPolicy:
    """Read and validate a policy file (default ``config/sla.yaml``); errors are one-line ConfigErrors."""
    source = Path(path) if path is not None else DEFAULT_POLICY_PATH
    try:
        text = source.read_text(encoding="utf-8")
        _yaml_of(text)
    except UnicodeDecodeError as error:
        raise ConfigError(f"SLA policy {source}: not a YAML text file (binary content at byte {error.start})") from None
    except OSError as error:
        raise ConfigError(f"SLA policy {source}: cannot read the file ({error.strerror or error})") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"SLA policy {source}: not valid YAML{where}") from None
    return _with_spend_file(_policy_of(text, str(source)), source)


@functools.lru_cache(maxsize=16)
def _policy_of(text: str, source: str) -> SlaPolicy:
    """The policy a text holds, validated once per text (the model is frozen: every load of the same text shares
    it; a changed file is another text). A text that does not validate raises each time (nothing is cached)."""
    return parse_policy(_parsed_yaml(text), source)


@functools.lru_cache(maxsize=16)
def _model_of(text: str, prefix: str) -> ScoringModel:
    """The scoring model a text holds, validated once per text (frozen, shared as :func:`_policy_of`)."""
    return parse_model(_parsed_yaml(text), prefix)


def _parsed_yaml(text: str) -> Any:
    """``yaml.safe_load(text)``, a fresh copy each call: a text parsed before is not parsed again (a backfill's
    every step and shard task loads the same policy and model; the pure-Python YAML parser costs more than the
    stage)."""
    return copy.deepcopy(_yaml_of(text))


@functools.lru_cache(maxsize=8)
def _yaml_of(text: str) -> Any:
    return yaml.safe_load(text)


def _with_spend_file(policy: SlaPolicy, source: Path) -> SlaPolicy:
    """The policy with ``money.spend_file``'s rows added to ``money.spend`` (the file relative to the policy)."""
    name = policy.money.spend_file
    if not name:
        return policy
    path = Path(name) if Path(name).is_absolute() else source.parent / name
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as error:
        raise ConfigError(f"SLA policy {source}: money.spend_file {path}: {error.strerror or error}") from None
    spend = list(policy.money.spend)
    for line, row in enumerate(rows, start=2):
        try:
            spend.append(SpendRow.model_validate(row))
        except ValidationError as error:
            first = error.errors()[0]
            field = ".".join(str(part) for part in first["loc"]) or "(row)"
            raise ConfigError(f"SLA policy {source}: money.spend_file {path} line {line}: {field}: "
                              f"{first['msg']}") from None
    money = policy.money.model_copy(update={"spend": tuple(spend)})
    return policy.model_copy(update={"money": money})
