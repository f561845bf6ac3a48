"""Why a changed lever changed nothing (twin.dashboard.explain), from real runs."""

from __future__ import annotations

import pytest

import twin
from twin.dashboard import explain

#: The default pod's first hour (its load is low at night: ~330 W per GPU at most).
SHORT = {"duration_s": 3600, "step_s": 10, "report_interval_s": 300}


@pytest.fixture(scope="module")
def base() -> twin.Result:
    return twin.simulate(twin.load_scenario("default", SHORT))


def run(**sets: object) -> twin.Result:
    return twin.simulate(twin.load_scenario("default", {**SHORT, **sets}))


def test_a_cap_and_a_site_limit_above_the_peaks_say_they_never_bind(base: twin.Result) -> None:
    sets = {"fleet.power_cap_w": 700.0, "controls.site_power_limit_w": 5e6}
    what_if = run(**sets)
    reasons = explain.no_effect(base, what_if, sets)
    peak_w, pool = explain.peak_gpu_power(what_if)
    # the peak is the highest interval mean of any pool's GPUs, by hand
    ts = what_if.timeseries
    assert peak_w == max(ts[f"{p}_gpu_power_mean_w"].max() for p in what_if.pool_names)
    assert pool in what_if.pool_names
    assert 100.0 < peak_w < 700.0  # a 700 W cap on H100s drawing less
    assert reasons[0] == (
        f"The 700 W GPU power cap never binds: GPU power peaks at {peak_w:,.0f} W ({pool}), "
        "the highest interval mean of the run."
    )
    peak_kw = what_if.kpis["peak_facility_power_w"] / 1e3
    assert peak_kw < 5000.0
    assert reasons[1] == f"The 5,000 kW site power limit never binds: the facility's power peaks at {peak_kw:,.0f} kW."
    assert len(reasons) == 2
    # and indeed nothing changed
    assert what_if.kpis["facility_energy_j"] == pytest.approx(base.kpis["facility_energy_j"], rel=1e-12)


def test_a_cap_that_binds_needs_no_explanation(base: twin.Result) -> None:
    what_if = run(**{"fleet.power_cap_w": 250.0})
    assert what_if.kpis["capped_gpu_h"] > 0
    assert explain.no_effect(base, what_if, ["fleet.power_cap_w"]) == []
    assert explain.no_effect(base, base, []) == []


def test_an_economiser_in_warm_air_never_runs() -> None:
    # 17 °C facility water cannot come from a tower in 30 °C wet-bulb air
    warm = {"weather": {"source": "constant", "dry_bulb_c": 38.0, "wet_bulb_c": 30.0}, "cooling.liquid_class": "W17"}
    base = run(**warm, **{"cooling.economiser": False})
    what_if = run(**warm, **{"cooling.economiser": True})
    assert what_if.kpis["free_cooling_h"] == 0.0
    (reason,) = explain.no_effect(base, what_if, ["cooling.economiser"])
    assert reason.startswith("The economiser never runs")
    assert "wet-bulb 30.0 °C" in reason and "dry-bulb 38.0 °C" in reason


def test_an_unexplained_change_that_changed_nothing_says_so(base: twin.Result) -> None:
    (reason,) = explain.no_effect(base, base, ["site.name"])
    assert "exactly as in the baseline" in reason


def test_a_start_date_in_a_synthetic_climate_changes_no_weather() -> None:
    constant = {"weather": {"source": "constant"}}
    base = run(**constant)
    what_if = run(**constant, start="2024-01-15T00:00:00")
    (reason,) = explain.no_effect(base, what_if, ["start"])
    assert reason.startswith("The start date picks the season of a weather file") and "(constant)" in reason
