"""The scoring model file: the default matches SPEC, bad files fail with one line naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from abm_sla.domain.model import DEFAULT_PATH, ActivityRule, BandRule, IntentRule, ListRule, UrlRule
from abm_sla.errors import ConfigError
from abm_sla.services.config_files import load_model

DEFAULT = yaml.safe_load(DEFAULT_PATH.read_text(encoding="utf-8"))


def write(tmp_path: Path, data: object, name: str = "x.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data), encoding="utf-8")
    return path


def edited(**changes: object) -> dict:
    """The default model with dotted-path changes (``None`` deletes the key)."""
    data = yaml.safe_load(DEFAULT_PATH.read_text(encoding="utf-8"))
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node = data
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        key = int(last) if isinstance(node, list) else last
        if value is None:
            del node[key]
        else:
            node[key] = value
    return data


def test_default_model_is_spec_sections_3_and_4() -> None:
    model = load_model()
    assert model.version == "2026.1" and model.window_days == 30
    assert [model.category(c).cap for c in ("firmographic", "engagement", "intent")] == [40, 30, 30]
    kinds = {rule.name: type(rule) for _, rule in model.rules()}
    assert kinds["employees"] is BandRule and kinds["icp_industry"] is ListRule
    assert kinds["pricing_page_visit"] is UrlRule and kinds["intent_topic"] is IntentRule
    engagement = {
        r.name: (r.types, r.points, r.max)
        for r in model.categories.engagement.rules
        if isinstance(r, ActivityRule)
    }
    assert engagement["email_open"] == (["email_open"], 3, 9)
    assert engagement["web_visit"] == (["web_visit"], 8, 16)
    assert model.gates.min_total == 50
    assert model.gates.min_category == {"firmographic": 20, "engagement": 15, "intent": 15}
    assert model.gates.min_marketing_touches == 2


def test_load_model_none_and_path_agree(tmp_path: Path) -> None:
    assert load_model(None) == load_model(write(tmp_path, DEFAULT)) == load_model(str(DEFAULT_PATH))


def test_list_values_are_normalized(tmp_path: Path) -> None:
    model = load_model(write(tmp_path, edited(categories__firmographic__rules__1__values=[" SoftWare "])))
    rule = model.categories.firmographic.rules[1]
    assert isinstance(rule, ListRule) and rule.values == ["software"]


@pytest.mark.parametrize(
    ("title", "matches"),
    [
        ("VP Sales", True),
        ("SVP, Ops", True),
        ("Vpn Admin", False),
        ("Head of Growth", True),
        ("Headless", False),
        ("CISO", True),
        ("chief of staff", True),
        ("Vice-President", True),
        ("Vice Principal", False),
    ],
)
def test_decision_maker_pattern(title: str, matches: bool) -> None:
    assert bool(load_model().decision_maker_pattern.search(title)) == matches


def test_no_decision_maker_titles_turns_the_gate_off(tmp_path: Path) -> None:
    model = load_model(write(tmp_path, edited(gates__decision_maker_titles=[])))
    assert model.decision_maker_pattern is None


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        (
            {"categories__engagement__cap": "thirty"},
            "categories.engagement.cap: Input should be a valid integer",
        ),
        ({"categories__engagement__cap": -1}, "categories.engagement.cap:"),
        ({"window_days": 0}, "window_days:"),
        ({"version": None}, "version: Field required"),
        ({"categories__intent": None}, "categories.intent: Field required"),
        ({"colour": "blue"}, "colour: Extra inputs are not permitted"),
        ({"gates__min_score": 3}, "gates.min_score: Extra inputs are not permitted"),
        ({"gates__min_category": {"fit": 20}}, "gates.min_category.fit"),
        ({"categories__intent__rules__0__kind": "magic"}, "categories.intent.rules.0"),
        ({"categories__intent__rules__2__points": 1.5}, "categories.intent.rules.2.intent_topics.points"),
        (
            {"categories__firmographic__rules__0__bands__0__min": 6000},
            "categories.firmographic.rules.0.band.bands.0: Value error, min must not be greater than max",
        ),
        ({"categories__engagement__rules__1__name": "email_open"}, "rule name 'email_open' is used twice"),
    ],
)
def test_invalid_field_is_named_on_one_line(tmp_path: Path, changes: dict, field: str) -> None:
    path = write(tmp_path, edited(**changes))
    with pytest.raises(ConfigError) as error:
        load_model(path)
    message = str(error.value)
    assert message.startswith(f"invalid scoring model {path}: ")
    assert field in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("version: [unclosed\n", "not valid YAML at line"),
        ("- a\n- b\n", "must be a mapping"),
        ("", "mapping"),
    ],
)
def test_invalid_yaml(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        load_model(write(tmp_path, text))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"invalid scoring model .*nope\.yaml: cannot read the file"):
        load_model(tmp_path / "nope.yaml")
