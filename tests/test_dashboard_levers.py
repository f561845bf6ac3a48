"""The dashboard's lever table: widget values → scenario overrides (no Streamlit)."""

from __future__ import annotations

import shlex
from datetime import date
from typing import Any

import pytest
import yaml

import twin
from twin.cli import _parse_sets
from twin.dashboard import levers as lv
from twin.errors import ScenarioError

SHORT = {"duration_s": 3600, "step_s": 10, "report_interval_s": 300}


@pytest.fixture(scope="module")
def base() -> twin.Scenario:
    return twin.load_scenario("default")


def test_baseline_values_give_no_overrides(base: twin.Scenario) -> None:
    values = lv.baseline_values(base)
    assert values["rows"] == 4
    assert values["accelerator"] == "H100-SXM"
    assert values["power_cap_w"] is None
    assert values["start_date"] == date(2024, 7, 15)
    assert lv.what_if_overrides(base, values) == {}
    assert lv.what_if_overrides(base, {}) == {}


def test_unknown_lever_is_named(base: twin.Scenario) -> None:
    with pytest.raises(KeyError, match="bogus"):
        lv.what_if_overrides(base, {"bogus": 1})


def _variants(lever: lv.Lever, base: twin.Scenario) -> list[Any]:
    if lever.kind == "choice":
        return [o for o in lv.lever_options(lever, base) if o != lever.read(base)]
    if lever.kind == "bool":
        return [not lever.read(base)]
    if lever.kind == "date":
        return [date(2024, 1, 10)]
    assert lever.min_value is not None
    assert lever.max_value is not None
    if lever.kind == "int":
        return [int(lever.min_value), int(lever.max_value)]
    return [lever.min_value, lever.max_value]


@pytest.mark.parametrize("lever", lv.LEVERS, ids=lambda lever: lever.key)
def test_every_lever_value_makes_a_valid_scenario(lever: lv.Lever, base: twin.Scenario) -> None:
    """Each lever points at real fields: its limits and options all validate."""
    for value in _variants(lever, base):
        values = {lever.key: value}
        if lever.key in ("dry_bulb_c", "wet_bulb_c"):
            values["weather_source"] = "diurnal"  # they act on the synthetic climates only
        overrides = lv.what_if_overrides(base, values)
        assert overrides, (lever.key, value)
        sc = twin.load_scenario("default", overrides)
        assert sc != base


def test_fleet_size_scales_pools_and_rates_with_the_servers(base: twin.Scenario) -> None:
    ov = lv.what_if_overrides(base, {"rows": 2})
    assert ov == {
        "fleet.rows": 2,
        "workloads.0.servers": 48,
        "workloads.1.servers": 16,
        "workloads.0.arrivals.requests_per_s": 450.0,
        "workloads.1.arrivals.requests_per_s": 1000.0,
    }
    # The load per server is the baseline's, so the IT work and the tokens halve exactly.
    full = twin.simulate(twin.load_scenario("default", SHORT)).kpis
    half = twin.simulate(twin.load_scenario("default", {**SHORT, **ov})).kpis
    assert half["tokens_out"] == pytest.approx(full["tokens_out"] / 2, rel=1e-9)
    assert half["energy_accelerators_j"] == pytest.approx(full["energy_accelerators_j"] / 2, rel=1e-9)


def test_rate_scale_multiplies_on_top_of_the_fleet_scaling(base: twin.Scenario) -> None:
    ov = lv.what_if_overrides(base, {"rows": 2, "rate_scale": 2.0})
    # Half the servers at twice the load per server: the baseline's total request rate.
    assert "workloads.0.arrivals.requests_per_s" not in ov
    assert ov["workloads.0.servers"] == 48
    ov = lv.what_if_overrides(base, {"rate_scale": 1.5})
    assert ov == {"workloads.0.arrivals.requests_per_s": 1350.0, "workloads.1.arrivals.requests_per_s": 3000.0}


def test_pools_that_cannot_fit_are_a_scenario_error(base: twin.Scenario) -> None:
    # Two pools need at least one server each; every pool keeps at least one.
    assert lv.scaled_pool_servers(base, 4) == [3, 1]
    with pytest.raises(ScenarioError, match="cannot hold 2 workloads"):
        lv.scaled_pool_servers(base, 1)


def test_synthetic_weather_levers_act_only_on_synthetic_climates(base: twin.Scenario) -> None:
    assert lv.what_if_overrides(base, {"dry_bulb_c": 35.0}) == {}
    ov = lv.what_if_overrides(base, {"weather_source": "constant", "dry_bulb_c": 35.0, "wet_bulb_c": 24.0})
    assert ov == {"weather.source": "constant", "weather.dry_bulb_c": 35.0, "weather.wet_bulb_c": 24.0}


def test_changing_the_accelerator_drops_a_calibrated_file(base: twin.Scenario, tmp_path: Any) -> None:
    calibrated = base.model_copy(update={"fleet": base.fleet.model_copy(update={"accelerator_file": tmp_path})})
    ov = lv.what_if_overrides(calibrated, {"accelerator": "B200"})
    assert ov == {"fleet.accelerator": "B200", "fleet.accelerator_file": None}


def test_run_overrides_bound_the_report_rows(base: twin.Scenario) -> None:
    assert lv.run_overrides(base, 6) == {"duration_s": 21600.0}  # 360 one-minute rows
    assert lv.run_overrides(base, 24) == {"report_interval_s": 240.0}  # the preset's 24 h, 360 rows
    week = lv.run_overrides(base, 168)
    assert week["duration_s"] == 168 * 3600
    assert week["duration_s"] / week["report_interval_s"] <= lv.MAX_REPORT_POINTS
    assert week["report_interval_s"] % base.step_s == 0


def test_cli_command_and_cache_key_reproduce_the_overrides(base: twin.Scenario) -> None:
    ov = lv.what_if_overrides(
        base,
        {
            "rows": 3,
            "power_cap_w": 450.0,
            "cooling_type": "air",
            "weather_source": "sand-point-ak",
            "start_date": date(2024, 1, 15),
            "economiser": False,
        },
    )
    expected = twin.load_scenario("default", ov).model_dump()
    # `twin run ... --set k=v` as a shell would split it, parsed by the CLI's own parser.
    argv = shlex.split(lv.cli_command("default", ov))
    assert argv[:3] == ["twin", "run", "default"]
    sets = [argv[i + 1] for i, a in enumerate(argv) if a == "--set"]
    assert twin.load_scenario("default", _parse_sets(sets)).model_dump() == expected
    # The cache key is YAML that reads back to the same scenario.
    assert twin.load_scenario("default", yaml.safe_load(lv.overrides_key(ov))).model_dump() == expected
    assert lv.overrides_key(ov) == lv.overrides_key(dict(reversed(list(ov.items()))))


def test_scenario_choices_are_loadable() -> None:
    choices = lv.scenario_choices()
    assert choices[0].source == "default"
    labels = [c.label for c in choices]
    assert "scenarios/air-cooled.yaml" in labels
    for choice in choices:
        sc = twin.load_scenario(choice.source)
        assert lv.what_if_overrides(sc, lv.baseline_values(sc)) == {}


def test_scenario_choices_take_extra_folders_with_unique_labels(tmp_path: Any) -> None:
    extra = tmp_path / "scenarios"
    extra.mkdir()
    (extra / "air-cooled.yaml").write_text("base: default\nname: mine\nfleet: {accelerator: B200}\n")
    choices = lv.scenario_choices([extra])
    labels = [c.label for c in choices]
    assert len(set(labels)) == len(labels)
    mine = next(c for c in choices if c.source == str((extra / "air-cooled.yaml").resolve()))
    assert mine.label == str((extra / "air-cooled.yaml").resolve())
    assert twin.load_scenario(mine.source).fleet.accelerator == "B200"
