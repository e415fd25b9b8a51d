"""``abm-sla propose model``: read the warehouse, run :func:`abm_sla.domain.learning.propose_model`, write the
diff and the model card. The adapter around the pure learning module (the CLI and the flow share it)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from abm_sla.domain import learning, model_card
from abm_sla.domain.model import DEFAULT_PATH
from abm_sla.domain.scorecard import SlaData
from abm_sla.domain.scoring import utc_timestamp
from abm_sla.errors import AbmSlaError
from abm_sla.services.config_files import load_model
from abm_sla.warehouse import Warehouse
from abm_sla.warehouse.view import CrmView

KINDS = ("accounts", "contacts", "activities", "intent_signals", "opportunities")


def read_crm(warehouse: Warehouse) -> SlaData:
    """The CRM frames the training rows read, from the warehouse (unified across sources)."""
    view = CrmView(warehouse)
    return SlaData.of(**{kind: view.read_kind(kind) for kind in KINDS})


def data_end(crm: SlaData) -> pd.Timestamp | None:
    """The latest signal or opportunity creation in the data (None without any)."""
    times = [crm.activities["occurred_at"], crm.intent_signals["observed_at"], crm.opportunities["created_at"]]
    latest = [pd.to_datetime(column, utc=True).max() for column in times if len(column)]
    latest = [moment for moment in latest if pd.notna(moment)]
    return max(latest) if latest else None


def propose(source: str | Warehouse | SlaData, train_until: pd.Timestamp | str | None, out_dir: str | Path,
            model_path: str | Path | None = None, horizon_days: int = learning.DEFAULT_HORIZON_DAYS,
            outcome: str = "won", volume_factor: float = 1.0,
            until: pd.Timestamp | str | None = None) -> tuple[learning.ModelProposal, dict[str, Path]]:
    """Propose the points from the warehouse's history and write ``scoring.yaml.diff`` (empty when nothing
    is proposed), ``model-card.md`` and ``model-card.json`` into ``out_dir``. ``train_until`` None: the
    end of the data less twice the horizon (one horizon of as-ofs held back)."""
    model_file = Path(model_path) if model_path is not None else DEFAULT_PATH
    load_model(model_file)  # a bad model file is one line, before the warehouse is read
    if outcome not in learning.OUTCOMES:
        raise AbmSlaError(f"--outcome must be one of {', '.join(learning.OUTCOMES)}, got {outcome!r}")
    if horizon_days <= 0 or volume_factor <= 0:
        raise AbmSlaError("--horizon-days and --volume-factor must be positive")
    crm = source if isinstance(source, SlaData) else read_crm(
        Warehouse(source) if isinstance(source, str) else source)
    end = utc_timestamp(until) if until is not None else data_end(crm)
    if end is None:
        raise AbmSlaError("the warehouse holds no activity, intent or opportunity: nothing to learn from")
    split = utc_timestamp(train_until) if train_until is not None else end - 2 * pd.Timedelta(days=horizon_days)
    if not split < end:
        raise AbmSlaError(f"--train-until {split.isoformat()} must be before the end of the data ({end.isoformat()})")
    proposal = learning.propose_model(crm, model_file.read_text(encoding="utf-8"), split, end, horizon_days,
                                      outcome=outcome, volume_factor=volume_factor,
                                      model_path=_relative(model_file))
    return proposal, write(proposal, out_dir)


def write(proposal: learning.ModelProposal, out_dir: str | Path) -> dict[str, Path]:
    """The three files of a proposal; the diff is written empty when the proposal is not worth agreeing."""
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    texts = {"diff": proposal.diff if proposal.proposed else "", "markdown": model_card.card_markdown(proposal),
             "json": model_card.card_json(proposal)}
    paths = {}
    for name, text in texts.items():
        paths[name] = folder / model_card.CARD_FILES[name]
        paths[name].write_text(text, encoding="utf-8")
    return paths


def _relative(path: Path) -> str:
    """The model file's path as ``patch -p1`` sees it from the project folder (else its name)."""
    try:
        return path.resolve().relative_to(DEFAULT_PATH.parents[1]).as_posix()
    except ValueError:
        return f"config/{path.name}"
