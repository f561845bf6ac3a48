"""Facility cooling plant: hand calculation, conservation, monotone trends, presets."""

from __future__ import annotations

import math
from dataclasses import fields

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.catalog.cooling import chiller_curve, chiller_names
from twin.errors import UnknownNameError
from twin.physics import heat_rejection as hr
from twin.physics.cooling_plant import PlantResult, plant_power
from twin.physics.plant_params import ASHRAE_AIR_CLASSES, ASHRAE_LIQUID_CLASSES, PlantParams
from twin.weather import builtin_weather

FLAT = (1.0, 0.0, 0.0, 0.0, 0.0, 0.0)
LINEAR = (0.0, 1.0, 0.0)
DESIGN_W = 10e6
POWER_FIELDS = (
    "chiller_power_w",
    "tower_fan_power_w",
    "dry_cooler_fan_power_w",
    "pump_power_w",
    "cdu_pump_power_w",
    "crah_fan_power_w",
)


# Chillers whose EIRFPLR rises with part load over [PLR_min, 1], so power rises with load. The
# York YT's (0.520 - 0.778 PLR + 1.255 PLR^2) falls from PLR 0.09 to 0.31: there a larger load
# draws less power, so no plant built on it can be monotone in the weather at every hour.
MONOTONE_PLR_CHILLERS = [n for n in chiller_names() if not n.startswith("York YT")]


def _flat_plant(**overrides: object) -> PlantParams:
    """A chiller with COP 5 at every condition and part load (EIRFPLR(p) = p)."""
    values: dict[str, object] = {
        "design_heat_w": 1e6,
        "chiller_q_ref_w": 1e6,
        "chiller_cop_ref": 5.0,
        "chiller_capft": FLAT,
        "chiller_eirft": FLAT,
        "chiller_eirfplr": LINEAR,
        "chiller_plr_min": 0.1,
    }
    values.update(overrides)
    return PlantParams(**values)  # type: ignore[arg-type]


def _preset(index: int = 0, liquid_class: str = "W32", **overrides: object) -> PlantParams:
    chiller = chiller_curve(chiller_names()[index])
    return PlantParams.from_presets(liquid_class, "A1", chiller=chiller, design_heat_w=DESIGN_W, **overrides)


def test_hand_calculated_plant() -> None:
    # 1 MW of liquid heat, no economiser, flat COP-5 chiller, tower, defaults elsewhere.
    p = _flat_plant(economiser_enabled=False)
    r = plant_power(1e6, 0.0, 30.0, 24.0, p)
    # chiller: 1 MW / 5 = 200 kW; rejected 1.2 MW = the rated 1.2 x 1 MW -> fans at full speed:
    # 1.2e6 / (3.23e-3 m3/s/kW x 997.05 x 4181.3 x 5.5556 K) = 1.2e6 / 74.810 = 16 040.6 W
    assert float(r.chiller_power_w) == pytest.approx(200e3)
    assert float(r.heat_rejected_w) == pytest.approx(1.2e6)
    assert float(r.tower_fan_power_w) == pytest.approx(16_040.6, rel=1e-4)
    assert float(r.dry_cooler_fan_power_w) == 0.0
    # pumps: facility 1e6/(997.05 x 4181.3 x 10 K) = 0.0239863 m3/s; chilled water carries the
    # 1 MW trim at 6 K: 0.0399772 m3/s; at 22 W/gpm = 348 707 W per m3/s -> 22 304.5 W.
    # condenser 1.2e6/(997.05 x 4181.3 x 5.5556) = 0.0518146 m3/s at 19 W/gpm = 301 156 W per
    # m3/s -> 15 604.3 W. Sum 37 908.8 W.
    assert float(r.pump_power_w) == pytest.approx(37_908.8, rel=1e-4)
    # CDU: 1000 kW x 1.5 L/min = 0.025 m3/s x 225 kPa / 0.6 = 9375 W
    assert float(r.cdu_pump_power_w) == pytest.approx(9375.0)
    assert float(r.crah_fan_power_w) == 0.0
    # water: the evaporated share f of 30 C / 24 C air on 28 C water (tests/test_tower_water.py
    # checks it by hand); evaporation f x 1.2e6/2.442e6 = f x 0.491400; blowdown /4 = f x 0.122850;
    # drift 1e-5 x 1.2e6/(4181.3 x 5.5556) = 0.000517 kg/s
    f = float(hr.tower_evaporated_fraction(30.0, 24.0, 28.0))
    assert float(r.water_kg_s) == pytest.approx(f * 0.614250 + 0.000517, rel=1e-3)
    assert float(r.heat_rejected_evaporative_w) == pytest.approx(f * 1.2e6)
    assert float(r.chiller_load_w) == pytest.approx(1e6)
    assert float(r.free_cooling_fraction) == 0.0
    assert float(r.unmet_heat_w) == 0.0
    assert float(r.chillers_running) == 1.0
    assert float(r.facility_supply_c) == 32.0
    assert float(r.tcs_supply_c) == 32.0 + 5.0
    assert float(r.heat_rejection_leaving_c) == 24.0 + 4.0
    assert float(r.total_power_w) == pytest.approx(200e3 + 16_040.6 + 37_908.8 + 9375.0, rel=1e-4)


def test_hand_calculated_crah_fans() -> None:
    # 100 kW of air heat at a 12 K rise: 100e3/(1.204 x 1006 x 12) = 6.8800 m3/s. Rated flow =
    # 1e6 x 0.1/(1.204 x 1006 x 12) x 1.25 = 8.6001 m3/s at 500 Pa / 0.6 -> 7166.8 W; the fans run
    # at 1/1.25 = 80 % -> 0.512 x 7166.8 = 3669.4 W.
    p = _flat_plant()
    r = plant_power(0.0, 100e3, 5.0, 0.0, p)
    assert p.crah_rated_flow_m3_s == pytest.approx(8.6001, rel=1e-4)
    assert float(r.crah_fan_power_w) == pytest.approx(3669.4, rel=1e-4)
    # wet-bulb 0 C: tower water at 4 C + 2 K HX < 16 C chilled water: all free cooling
    assert float(r.free_cooling_fraction) == 1.0
    assert float(r.chiller_power_w) == 0.0


def test_staging_picks_the_least_power() -> None:
    # 3 x 742 kW Carrier VSD chillers, no economiser: at 0.7 MW the plant compares 1, 2, 3 units
    # and runs 2 (two at PLR ~0.5 beat one near full load for this VSD machine).
    index = chiller_names().index("Carrier 19XR 742kW/5.42COP/VSD")
    p = _preset(index, n_chillers=3, economiser_enabled=False)
    t_source = 26.0 + p.tower_approach_k
    r = plant_power(0.7e6, 0.0, 35.0, 26.0, p, chillers_available=3)
    assert float(r.chiller_load_w) == pytest.approx(0.7e6)
    candidates = {
        k: k * float(p.unit_power_w(0.7e6 / k, t_source))
        for k in (1, 2, 3)
        if k * float(p.unit_capacity_w(t_source)) >= 0.7e6
    }
    assert min(candidates, key=candidates.__getitem__) == 2
    assert float(r.chillers_running) == 2.0
    assert float(r.chiller_power_w) == pytest.approx(candidates[2])
    # with one chiller available the plant must run it at full load
    one = plant_power(0.7e6, 0.0, 35.0, 26.0, p, chillers_available=1)
    assert float(one.chillers_running) == 1.0
    assert float(one.chiller_power_w) == pytest.approx(candidates[1])


def _scan_by_the_rule(power_w, ks, best_w, running):
    """The staging rule as a plain loop, cell by cell (the specification of ``_scan_least``)."""
    best, run = best_w.copy(), running.copy()
    for c in range(best.size):
        for i, k in enumerate(ks):
            if not np.isnan(power_w[i, c]) and power_w[i, c] < best[c] * (1.0 - 1e-9):
                best[c], run[c] = power_w[i, c], k
    return best, run


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.lists(
            st.sampled_from([np.nan, 1.0, 2.0, 3.0, 2.0 * (1 - 5e-10), 2.0 * (1 - 2e-9), 7.5]), min_size=3, max_size=3
        ),
        min_size=1,
        max_size=12,
    ),
    st.sampled_from([np.inf, 2.0, 0.0]),
)
def test_staging_scan_keeps_the_rule_to_the_bit(rows: list[list[float]], start: float) -> None:
    # Exact ties go to the fewer chillers, near ties (within 1e-9) keep the unit held: the
    # argmin shortcut and its cell-by-cell fallback give what the loop does, to the bit.
    from twin.physics.chiller_staging import _scan_least

    power_w = np.array(rows)
    ks = np.arange(1.0, power_w.shape[0] + 1.0)
    best_w, running = np.full(3, start), np.zeros(3)
    got = _scan_least(power_w, ks, best_w, running)
    want = _scan_by_the_rule(power_w, ks, best_w, running)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])


@settings(max_examples=300, deadline=None)
@given(
    heat_liquid=st.floats(0.0, 1.5 * DESIGN_W),
    heat_air=st.floats(0.0, 0.5 * DESIGN_W),
    wet_bulb=st.floats(-30.0, 35.0),
    depression=st.floats(0.0, 25.0),
    available=st.integers(0, 7),
    index=st.integers(0, 4),
    kind=st.sampled_from(["tower", "dry_cooler"]),
    economiser=st.booleans(),
)
def test_heat_is_conserved_and_powers_are_non_negative(
    heat_liquid: float,
    heat_air: float,
    wet_bulb: float,
    depression: float,
    available: int,
    index: int,
    kind: str,
    economiser: bool,
) -> None:
    p = _preset(index, heat_rejection=kind, economiser_enabled=economiser)
    r = plant_power(heat_liquid, heat_air, wet_bulb + depression, wet_bulb, p, chillers_available=available)
    removed = float(r.free_cooling_w + r.chiller_load_w)
    assert removed + float(r.unmet_heat_w) == pytest.approx(heat_liquid + heat_air, rel=1e-9, abs=1e-6)
    for name in POWER_FIELDS:
        assert float(getattr(r, name)) >= 0.0, name
    assert float(r.unmet_liquid_w) >= 0.0
    assert float(r.unmet_air_w) >= 0.0
    assert 0.0 <= float(r.free_cooling_fraction) <= 1.0
    assert float(r.water_kg_s) >= 0.0
    assert 0.0 <= float(r.chillers_running) <= available
    # the condenser side rejects the heat removed plus the compressor work
    assert float(r.heat_rejected_w) == pytest.approx(removed + float(r.chiller_power_w), rel=1e-9, abs=1e-6)


@settings(max_examples=300, deadline=None)
@given(
    heat_liquid=st.floats(0.0, DESIGN_W * 0.9),
    air_share=st.floats(0.0, 0.1),
    wb_a=st.floats(-20.0, 32.0),
    wb_b=st.floats(-20.0, 32.0),
    name=st.sampled_from(MONOTONE_PLR_CHILLERS),
    kind=st.sampled_from(["tower", "dry_cooler"]),
    liquid_class=st.sampled_from(sorted(ASHRAE_LIQUID_CLASSES)),
)
def test_hotter_wet_bulb_costs_more_chiller_energy(
    heat_liquid: float,
    air_share: float,
    wb_a: float,
    wb_b: float,
    name: str,
    kind: str,
    liquid_class: str,
) -> None:
    # The composition (economiser shares, capacity, staging, clamping) must be monotone. To test
    # it apart from the regression artefacts of the dataset's capacity curves (see plant_power
    # Notes), each chiller keeps its EIRFT and EIRFPLR but gets a flat CAPFT; its COP then falls
    # with condenser temperature at every part load (test_cooling).
    p = _preset(chiller_names().index(name), liquid_class, heat_rejection=kind, chiller_capft=FLAT)
    cold, hot = sorted((wb_a, wb_b))
    heat_air = air_share * heat_liquid
    r_cold = plant_power(heat_liquid, heat_air, cold + 8.0, cold, p)
    r_hot = plant_power(heat_liquid, heat_air, hot + 8.0, hot, p)
    assert float(r_hot.chiller_power_w) >= float(r_cold.chiller_power_w) * (1.0 - 1e-9)
    assert float(r_hot.chiller_load_w) >= float(r_cold.chiller_load_w)
    assert float(r_hot.free_cooling_fraction) <= float(r_cold.free_cooling_fraction) + 1e-12


@pytest.mark.parametrize("index", range(5))
def test_warmer_year_costs_more_chiller_energy_with_dataset_curves(index: int) -> None:
    # With the real curves: the Greensboro year, and the same year 2 K warmer (dry- and
    # wet-bulb), for every catalog chiller, tower and dry cooler.
    weather, _ = builtin_weather("greensboro-nc")
    dry, wet = weather["dry_bulb_c"].to_numpy(), weather["wet_bulb_c"].to_numpy()
    for kind in ("tower", "dry_cooler"):
        p = _preset(index, heat_rejection=kind)
        base = plant_power(9e6, 1e6, dry, wet, p).chiller_power_w.sum()
        warm = plant_power(9e6, 1e6, dry + 2.0, wet + 2.0, p).chiller_power_w.sum()
        assert warm > 1.05 * base


def test_free_cooling_fraction_limits_and_trend() -> None:
    # W32 with a tower: facility supply 32 C (return 42), chilled water 16 C (return 22); source =
    # wet-bulb + 4 K, HX approach 2 K. All free while wet-bulb + 6 <= 16, i.e. wet-bulb <= 10 C;
    # none once wet-bulb + 6 >= 42, i.e. wet-bulb >= 36 C.
    p = _preset()
    assert p.chw_supply_c == 16.0
    wet_bulb = np.linspace(-10.0, 40.0, 501)
    r = plant_power(9e6, 1e6, wet_bulb + 8.0, wet_bulb, p)
    frac = r.free_cooling_fraction
    np.testing.assert_array_equal(frac[wet_bulb <= 10.0], 1.0)
    np.testing.assert_array_equal(frac[wet_bulb >= 36.0], 0.0)
    assert np.all(np.diff(frac) <= 1e-12)
    assert np.all(r.chiller_power_w[wet_bulb <= 10.0] == 0.0)
    # at zero load the fraction is what the economiser could carry
    idle = plant_power(0.0, 0.0, np.array([0.0, 50.0]), np.array([-5.0, 38.0]), p)
    np.testing.assert_array_equal(idle.free_cooling_fraction, [1.0, 0.0])


def test_raising_the_facility_water_setpoint_lowers_chiller_energy() -> None:
    weather, _ = builtin_weather("greensboro-nc")
    dry, wet = weather["dry_bulb_c"].to_numpy(), weather["wet_bulb_c"].to_numpy()
    energy = {}
    for name in ASHRAE_LIQUID_CLASSES:
        r = plant_power(9e6, 0.0, dry, wet, _preset(0, name))
        energy[name] = float(r.chiller_power_w.sum())
    assert energy["W17"] > energy["W27"] > energy["W32"] > energy["W40"]
    assert energy["W40"] >= energy["W45"]
    assert energy["W45"] == 0.0  # wet-bulb + 6 K never reaches 45 C in Greensboro


def test_colder_climate_needs_less_chiller_energy() -> None:
    p = _preset()
    totals = {}
    for site in ("greensboro-nc", "sand-point-ak"):
        weather, _ = builtin_weather(site)
        r = plant_power(9e6, 1e6, weather["dry_bulb_c"], weather["wet_bulb_c"], p)
        totals[site] = float(r.chiller_power_w.sum())
    assert totals["sand-point-ak"] < 0.1 * totals["greensboro-nc"]


def test_scalar_equals_vector() -> None:
    p = _preset(1)
    heat_liquid = np.array([0.0, 2e6, 9e6, 12e6, 5e6])
    heat_air = np.array([0.0, 3e5, 1e6, 2e6, 8e5])
    dry = np.array([-5.0, 12.0, 30.0, 38.0, 25.0])
    wet = np.array([-8.0, 9.0, 24.0, 28.0, 20.0])
    available = np.array([6, 6, 6, 2, 0])
    vector = plant_power(heat_liquid, heat_air, dry, wet, p, chillers_available=available)
    for i in range(len(dry)):
        scalar = plant_power(heat_liquid[i], heat_air[i], dry[i], wet[i], p, chillers_available=available[i])
        for f in fields(PlantResult):
            assert float(getattr(scalar, f.name)) == pytest.approx(getattr(vector, f.name)[i], rel=1e-12)


def test_chiller_outage_leaves_heat_unmet() -> None:
    p = _preset(economiser_enabled=False)
    r = plant_power(
        np.array([8e6, 8e6]),
        np.array([1e6, 1e6]),
        30.0,
        25.0,
        p,
        chillers_available=np.array([0, 1]),
    )
    np.testing.assert_allclose(r.unmet_heat_w[0], 9e6)
    assert float(r.chiller_power_w[0]) == 0.0
    # one chiller carries its capacity; the rest is unmet, shared 8:1 between liquid and air
    assert 0.0 < r.unmet_heat_w[1] < 9e6
    assert r.unmet_liquid_w[1] / r.unmet_air_w[1] == pytest.approx(8.0)


def test_crah_air_flow_limit() -> None:
    p = _flat_plant()
    crah_max_w = p.crah_rated_flow_m3_s * 1.204 * 1006.0 * p.crah_delta_t_k  # 125 kW
    r = plant_power(0.0, 200e3, 5.0, 0.0, p)
    assert float(r.unmet_air_w) == pytest.approx(200e3 - crah_max_w)
    assert float(r.crah_fan_power_w) == pytest.approx(p.crah_rated_fan_power_w)


def test_dry_cooler_uses_dry_bulb_and_no_water() -> None:
    p = _preset(heat_rejection="dry_cooler")
    r = plant_power(9e6, 1e6, np.array([10.0, 30.0]), np.array([5.0, 5.0]), p)
    np.testing.assert_allclose(r.heat_rejection_leaving_c, [20.0, 40.0])
    np.testing.assert_array_equal(r.water_kg_s, 0.0)
    np.testing.assert_array_equal(r.tower_fan_power_w, 0.0)
    assert np.all(r.dry_cooler_fan_power_w > 0.0)
    assert r.chiller_power_w[1] > r.chiller_power_w[0]


def test_economiser_off_sends_everything_to_the_chillers() -> None:
    p = _preset(economiser_enabled=False)
    r = plant_power(9e6, 1e6, -10.0, -12.0, p)
    assert float(r.free_cooling_w) == 0.0
    assert float(r.chiller_load_w) == pytest.approx(10e6)


def test_presets() -> None:
    chiller = chiller_curve("McQuay PFH 2124kW/6.03COP/Vanes")
    p = PlantParams.from_presets("W45", "A3", chiller=chiller, design_heat_w=DESIGN_W)
    assert p.facility_supply_c == 45.0
    assert (p.air_inlet_allowable_min_c, p.air_inlet_allowable_max_c) == ASHRAE_AIR_CLASSES["A3"]
    assert p.n_chillers == math.ceil(10e6 / 2.124e6) + 1 == 6
    assert p.design_chiller_capacity_w == 5 * 2.124e6 >= DESIGN_W
    assert p.chiller_t_cond_max_c == 29.44
    # W17: chilled water must sit an HX approach below the facility water: 17 - 2 = 15 C
    assert PlantParams.from_presets("W17", chiller=chiller, design_heat_w=DESIGN_W).chw_supply_c == 15.0
    custom = PlantParams.from_presets("W32", chiller=chiller, design_heat_w=DESIGN_W, n_chillers=9)
    assert custom.n_chillers == 9
    with pytest.raises(UnknownNameError, match="W45"):
        PlantParams.from_presets("W50", chiller=chiller, design_heat_w=DESIGN_W)
    with pytest.raises(UnknownNameError, match="A4"):
        PlantParams.from_presets("W32", "A9", chiller=chiller, design_heat_w=DESIGN_W)
    with pytest.raises(UnknownNameError, match="tower_approach_k"):
        PlantParams.from_presets("W32", chiller=chiller, design_heat_w=DESIGN_W, tower_aproach_k=3.0)
    with pytest.raises(UnknownNameError, match="dry_cooler"):
        PlantParams.from_presets("W32", chiller=chiller, design_heat_w=DESIGN_W, heat_rejection="lake")
    with pytest.raises(ValueError, match="design_heat_w"):
        _flat_plant(design_heat_w=0.0)
