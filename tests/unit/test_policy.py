"""SLA policy files: the default matches SPEC section 6, presets load, bad files give one-line errors."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from abm_sla.domain.policy import DEFAULT_PATH
from abm_sla.errors import ConfigError
from abm_sla.services.config_files import load_policy

PRESETS = DEFAULT_PATH.parent / "presets"


def test_default_policy_is_spec() -> None:
    policy = load_policy()
    assert policy.business_hours.weekdays == (0, 1, 2, 3, 4)
    assert (policy.business_hours.open, policy.business_hours.close) == (dt.time(9), dt.time(17))
    assert policy.end_statuses == ["rejected", "nurture"]
    clocks = policy.clocks
    assert (clocks.routing_time.kind, clocks.routing_time.amount) == ("hours", 24)
    assert {tier: (w.kind, w.amount) for tier, w in clocks.first_touch.windows.items()} == {
        1: ("business_hours", 2), 2: ("business_hours", 4), 3: ("business_hours", 24)}
    assert clocks.first_touch.overrides == []
    assert (clocks.status_update.kind, clocks.status_update.amount) == ("hours", 48)
    cadence = clocks.cadence
    assert (cadence.touches, cadence.window.kind, cadence.window.amount) == (6, "days", 14)
    ladder = [(lv.level, lv.after.kind, lv.after.amount, lv.base, lv.to) for lv in policy.escalation.levels]
    assert ladder == [
        (1, "business_hours", 0, "due_at", "revops"),
        (2, "business_hours", 24, "due_at", "owner_manager"),
        (3, "business_hours", 48, "due_at", "cro"),
    ]
    assert policy.targets is not None and policy.targets.first_touch_met_pct == {1: 95, 2: 90}


def test_default_preset_is_identical_to_the_default_file() -> None:
    assert (PRESETS / "default.yaml").read_text() == DEFAULT_PATH.read_text()


def test_presets_load() -> None:
    signal = load_policy(PRESETS / "signal-based.yaml")
    assert signal.clocks.first_touch.windows[3].kind == "hours"
    override = signal.clocks.first_touch.overrides[0]
    assert (override.tier, override.signal, override.window.kind) == (1, "pricing_visit", "same_business_day")
    assert "vp_sales" in [level.to for level in signal.escalation.levels]
    basic = load_policy(str(PRESETS / "basic.yaml"))
    assert {w.amount for w in basic.clocks.first_touch.windows.values()} == {16}
    assert basic.clocks.status_update.amount == 168


def write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "sla.yaml"
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def default_data() -> dict:
    return yaml.safe_load(DEFAULT_PATH.read_text())


@pytest.mark.parametrize(("change", "field"), [
    (lambda d: d["clocks"]["first_touch"]["windows"].pop(2), "clocks.first_touch.windows"),
    (lambda d: d["clocks"]["first_touch"]["windows"].__setitem__(1, {"business_hours": -1}),
     "clocks.first_touch.windows.1.business_hours"),
    (lambda d: d["clocks"]["status_update"].__setitem__("days", 2), "clocks.status_update"),
    (lambda d: d["clocks"].__setitem__("cadense", {}), "clocks.cadense"),
    (lambda d: d["business_hours"].__setitem__("days", ["monday"]), "business_hours.days.0"),
    (lambda d: d["business_hours"].__setitem__("close", "08:00"), "business_hours"),
    (lambda d: d["business_hours"].__setitem__("open", 540), "business_hours.open"),
    (lambda d: d["escalation"]["levels"].pop(0), "escalation.levels"),
    (lambda d: d["escalation"]["levels"][0].__setitem__("after", {"same_business_day": True}),
     "escalation.levels.0.after"),
    (lambda d: d["clocks"]["first_touch"].__setitem__(
        "overrides", [{"tier": 1, "signal": "pricing", "window": {"hours": 1}}]),
     "clocks.first_touch.overrides.0.signal"),
    (lambda d: d["targets"].__setitem__("tier1_win_rate_pct", 250), "targets.tier1_win_rate_pct"),
    (lambda d: d.pop("clocks"), "clocks"),
])
def test_invalid_policy_names_the_field(tmp_path: Path, change, field: str) -> None:
    data = default_data()
    change(data)
    with pytest.raises(ConfigError) as raised:
        load_policy(write(tmp_path, data))
    message = str(raised.value)
    assert f": {field}: " in message
    assert "\n" not in message


def test_unknown_target_keys_are_kept(tmp_path: Path) -> None:
    data = default_data()
    data["targets"]["meetings_per_month"] = 12
    assert load_policy(write(tmp_path, data)).targets.model_extra == {"meetings_per_month": 12}


def test_targets_are_optional(tmp_path: Path) -> None:
    data = default_data()
    del data["targets"]
    assert load_policy(write(tmp_path, data)).targets is None


@pytest.mark.parametrize("text", ["clocks: [1, 2", "- just a list", ""])
def test_unreadable_yaml_is_a_config_error(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_policy(write(tmp_path, text))
    assert "\n" not in str(raised.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_policy(tmp_path / "nope.yaml")
