"""The deployment forms as the Prefect UI renders them: plain text boxes for optional text, examples that work."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from abm_sla.services.config_files import load_model
from flows import parameters as p

FORMS = [p.BackfillParameters, p.RecalculateParameters, p.SyncParameters, p.ScoreParameters, p.MonitorParameters,
         p.ReportParameters]


@pytest.mark.parametrize("form", FORMS, ids=lambda form: form.__name__)
def test_optional_text_is_a_plain_text_box_with_an_empty_default(form):
    """No ``anyOf [string, null]``: the UI would show a type toggle a user must flip before typing."""
    properties = form.model_json_schema()["properties"]
    assert "null" not in json.dumps(properties)
    optional = [name for name, info in form.model_fields.items()
                if any(getattr(meta, "json_schema", None) == {"type": "string"} for meta in info.metadata)]
    assert optional and all(properties[name] | {"type": "string", "default": ""} == properties[name]
                            for name in optional)


def test_empty_text_is_not_given_in_python():
    """An emptied box ("") and the default both mean "not given" (None) once validated."""
    assert p.ReportParameters().period is None
    assert p.validated(p.ReportParameters, {"period": "", "model_path": "", "notify_block": ""}).model_path is None
    assert p.validated(p.ScoreParameters, {"as_of": ""}).as_of is None
    assert p.ReportParameters().model_dump(mode="json")["period"] == ""  # what the form shows


def test_the_scoring_model_example_is_a_scoring_model():
    description = p.ScoreParameters.model_fields["model_path"].description
    example = re.search(r"config/\S+\.yaml", description)[0]
    assert example == "config/scoring.yaml"
    assert load_model(example).version  # following the example works


def test_reports_and_whatif_csvs_go_to_one_output_folder(monkeypatch, tmp_path):
    monkeypatch.delenv(p.OUTPUT_DIR_ENV, raising=False)
    assert p.ReportParameters().out_dir == str(Path.cwd() / "abm-sla-output" / "reports")
    assert "abm-sla-output/" in (Path(__file__).parents[2] / ".gitignore").read_text().splitlines()
    monkeypatch.setenv(p.OUTPUT_DIR_ENV, str(tmp_path / "out"))
    assert p.validated(p.ReportParameters, {"out_dir": ""}).out_dir == str(tmp_path / "out" / "reports")
    assert p.RecalculateParameters().out_dir == str(tmp_path / "out" / "whatif")
    assert p.ReportParameters(out_dir="elsewhere").out_dir == str(Path.cwd() / "elsewhere")  # absolute
    # forms and deployments show the default as empty: each worker resolves its own folder
    assert p.ReportParameters().model_dump(mode="json")["out_dir"] == ""
