"""Heat-rejection water from the weather: tower evaporation (Merkel), blowdown, drift, dry and adiabatic coolers."""

from __future__ import annotations

import numpy as np
import pytest

from twin.catalog.cooling import chiller_curve
from twin.errors import ScenarioError
from twin.facility import build_facility
from twin.physics import heat_rejection as hr
from twin.physics import psychrometrics as psy
from twin.physics.cooling_plant import plant_power
from twin.physics.plant_params import PlantParams
from twin.scenario import load_scenario
from twin.units import WATER_LATENT_HEAT_J_KG
from twin.weather import builtin_weather

CHILLER = "Carrier 19XR 742kW/5.42COP/VSD"
#: The old all-evaporative tower with 5 cycles: 1/2.442e6 x 1.25 x 3.6e6 = 1.843 L per kWh of heat.
ALL_EVAPORATIVE_L_PER_KWH = 1.25 * 3.6e6 / WATER_LATENT_HEAT_J_KG


def _plant(kind: str = "tower", **overrides: object) -> PlantParams:
    """A 1.1 MW W32 liquid plant (1 MW of IT heat at design margin) on the catalog chiller."""
    return PlantParams.from_presets(
        "W32", "A1", chiller=chiller_curve(CHILLER), design_heat_w=1.1e6, heat_rejection=kind, **overrides
    )


def _fraction_at(dry_bulb_c: float, rh: float) -> float:
    """Evaporated share for air at a dry-bulb and relative humidity, water at wet-bulb + 4 K."""
    wet = float(psy.wet_bulb_from_rh_c(dry_bulb_c, rh))
    return float(hr.tower_evaporated_fraction(dry_bulb_c, wet, wet + hr.TOWER_APPROACH_K))


def test_evaporated_share_by_hand() -> None:
    # Air 30 C dry-bulb, 24 C wet-bulb at 101 325 Pa; water 33.56 -> 28 C; L/G 1.2.
    # ASHRAE 2017 ch. 1 Table 3: p_ws(24 C) = 2985 Pa, so W_s* = 0.621945 x 2985 / 98 340 = 0.018879;
    # eq. 33: W = ((2501 - 2.326 x 24) 0.018879 - 1.006 x 6) / (2501 + 1.86 x 30 - 4.186 x 24) = 0.016336;
    # eq. 30: h_in = 1.006 x 30 + 0.016336 (2501 + 1.86 x 30) = 71.95 kJ/kg.
    # Merkel: dh = L/G cp_w range = 1.2 x 4.1813 x 5.5556 = 27.875 kJ/kg -> h_out = 99.82 kJ/kg.
    # Saturated air (Table 3: p_ws(30 C) = 4246.7 Pa, p_ws(30.1 C) ~ 4271.1 Pa) has 99.74 kJ/kg at
    # 30.0 C (W_s = 0.027207) and 100.27 kJ/kg at 30.1 C (W_s = 0.027370): t_out = 30.015 C,
    # W_out = 0.027232, below the 33.56 C hot water (no cap).
    # f = h_fg (W_out - W_in) / dh = 2442 x 0.010896 / 27.875 = 0.9545.
    assert float(hr.tower_evaporated_fraction(30.0, 24.0, 28.0)) == pytest.approx(0.9545, rel=2e-3)


def test_cold_air_leaves_no_warmer_than_the_hot_water() -> None:
    # 0 C air, -2 C wet-bulb, water 2 -> 7.56 C: Merkel's 27.9 kJ/kg would saturate the air at
    # about 12 C, above the hottest water it meets, so it leaves saturated at 7.56 C instead.
    t_hot = 2.0 + hr.TOWER_RANGE_K
    w_in = psy.humidity_ratio_from_wet_bulb(0.0, -2.0)
    w_out = psy.humidity_ratio(psy.saturation_vapor_pressure_pa(t_hot))
    dh = psy.saturated_air_enthalpy_j_kg(t_hot) - psy.moist_air_enthalpy_j_kg(0.0, w_in)
    assert float(dh) < hr.TOWER_WATER_AIR_RATIO * 4181.3 * hr.TOWER_RANGE_K
    expected = WATER_LATENT_HEAT_J_KG * float(w_out - w_in) / float(dh)
    assert float(hr.tower_evaporated_fraction(0.0, -2.0, 2.0)) == pytest.approx(expected, rel=1e-9)
    assert 0.4 < expected < 0.7  # about half the heat leaves sensibly in freezing air


def test_colder_air_evaporates_a_smaller_share() -> None:
    for rh in (0.3, 0.6, 0.9):
        shares = [_fraction_at(t, rh) for t in (-10.0, 0.0, 10.0, 20.0, 30.0)]
        assert np.all(np.diff(shares) > 0), (rh, shares)
    # and so fewer litres per kWh, as evaporation and blowdown scale with the share
    water = [float(hr.tower_water_kg_s(1e6, _fraction_at(t, 0.6))) for t in (0.0, 15.0, 30.0)]
    assert np.all(np.diff(water) > 0)


def test_humid_hot_air_is_near_the_all_evaporative_bound_and_dry_hot_air_exceeds_it() -> None:
    assert 0.85 < _fraction_at(32.0, 0.75) < 1.0  # humid 32 C: ~0.91
    # At one dry-bulb, drier air takes up more vapour per joule: the tower water cools it (a
    # negative sensible share), so desert air evaporates more than the heat alone would.
    shares = [_fraction_at(30.0, rh) for rh in (0.9, 0.7, 0.5, 0.2)]
    assert np.all(np.diff(shares) > 0), shares
    assert _fraction_at(40.0, 0.1) > 1.2


def test_rejected_heat_is_split_without_loss() -> None:
    w = builtin_weather("greensboro-nc")[0]
    n = len(w)
    r = plant_power(
        np.full(n, 0.9e6), np.full(n, 0.1e6), w["dry_bulb_c"], w["wet_bulb_c"], _plant(),
        pressure_pa=w["pressure_pa"],
    )  # fmt: skip
    np.testing.assert_allclose(r.heat_rejected_evaporative_w + r.heat_rejected_sensible_w, r.heat_rejected_w)
    # the evaporative heat is the latent heat of the water evaporated: make-up minus drift, over 1.25
    p = _plant()
    drift = p.drift_fraction * r.heat_rejected_w / (4181.3 * p.tower_range_k)
    evaporated = (r.water_kg_s - drift) / (1.0 + 1.0 / (p.cycles_of_concentration - 1.0))
    np.testing.assert_allclose(evaporated * WATER_LATENT_HEAT_J_KG, r.heat_rejected_evaporative_w, rtol=1e-9)
    # Greensboro's year has both: freezing hours reject a good part sensibly (air warmed), humid
    # summer hours nearly all by evaporation
    share = r.heat_rejected_evaporative_w / r.heat_rejected_w
    assert share.min() < 0.6 < 0.85 < share.max()


@pytest.mark.parametrize(("cycles", "blowdown_per_evaporation"), [(2.0, 1.0), (3.0, 0.5), (5.0, 0.25), (11.0, 0.1)])
def test_blowdown_from_cycles_by_hand(cycles: float, blowdown_per_evaporation: float) -> None:
    # 1 MW, 80 % evaporative: E = 0.8 x 1e6 / 2.442e6 = 0.327600 kg/s; B = E / (C - 1); no drift.
    evaporation = 0.8e6 / 2.442e6
    got = float(hr.tower_water_kg_s(1e6, 0.8, cycles, 0.0))
    assert got == pytest.approx(evaporation * (1.0 + blowdown_per_evaporation), rel=1e-9)


def test_drift_is_a_fraction_of_the_circulating_water() -> None:
    # 1 MW over a 5.556 K range circulates 1e6 / (4181.3 x 5.5556) = 43.05 kg/s; 0.001 % of it
    # is 4.305e-4 kg/s, whatever the weather (it is liquid carried out, not evaporation).
    dry = float(hr.tower_water_kg_s(1e6, 0.0, 5.0, 1e-5))
    assert dry == pytest.approx(4.305e-4, rel=1e-3)
    assert hr.DRIFT_FRACTION == 1e-5


def test_dry_cooler_uses_no_water() -> None:
    w = builtin_weather("greensboro-nc")[0]
    r = plant_power(1e6, 0.1e6, w["dry_bulb_c"], w["wet_bulb_c"], _plant("dry_cooler"), pressure_pa=w["pressure_pa"])
    assert np.all(r.water_kg_s == 0.0)
    assert np.all(r.heat_rejected_evaporative_w == 0.0)


def test_adiabatic_cooler_uses_water_only_above_its_switch_point() -> None:
    p = _plant("adiabatic_dry_cooler", adiabatic_switch_c=26.0, economiser_enabled=False)
    dry = np.array([10.0, 20.0, 26.0, 26.5, 30.0, 35.0])
    wet = dry - 8.0
    r = plant_power(1e6, 0.0, dry, wet, p)
    assert np.all(r.water_kg_s[dry <= 26.0] == 0.0)
    assert np.all(r.water_kg_s[dry > 26.0] > 0.0)
    # its coil sees the pre-cooled air: 35 - 0.8 x 8 = 28.6 C, + 10 K approach
    assert float(r.heat_rejection_leaving_c[-1]) == pytest.approx(35.0 - 0.8 * 8.0 + 10.0)
    assert float(r.heat_rejection_leaving_c[0]) == pytest.approx(20.0)  # dry below the switch
    # by hand at 35 C / 20 C, 1 MW: air 1e6 / (1006 x 10 K) = 99.404 kg/s; the pads cool it 12 K along
    # its wet-bulb line (ASHRAE 2017 ch. 1 eq. 33, W_s*(20 C) = 0.621945 x 2339.3 / 98 985.7 = 0.014698):
    # W(35, 20) = (2454.48 x 0.014698 - 1.006 x 15) / 2482.38 = 0.008454,
    # W(23, 20) = (2454.48 x 0.014698 - 1.006 x 3) / 2460.06 = 0.013438, dW = 0.004984;
    # E = 99.404 x 0.004984 = 0.4954 kg/s; with 5 cycles x 1.25 = 0.6193 kg/s.
    assert float(hr.adiabatic_water_kg_s(1e6, 35.0, 20.0, 0.8, 26.0, 5.0)) == pytest.approx(0.6193, rel=1e-3)


def _annual_wue(site: str, kind: str = "tower") -> float:
    """Litres per IT kWh over a weather year for 1 MW of IT heat (0.9 liquid, 0.1 air)."""
    w = builtin_weather(site)[0]
    n = len(w)
    r = plant_power(
        np.full(n, 0.9e6), np.full(n, 0.1e6), w["dry_bulb_c"], w["wet_bulb_c"], _plant(kind),
        pressure_pa=w["pressure_pa"],
    )  # fmt: skip
    return float(r.water_kg_s.sum()) * 3600.0 / 0.99705 / (1e3 * n)


def test_the_climate_now_sets_the_tower_water() -> None:
    # Same plant, both shipped years: all-evaporative gave 1.862 (Greensboro) and 1.849 L/kWh
    # (Sand Point); with the weather's evaporated share, 1.39 and 1.10 L/kWh.
    humid, cold = _annual_wue("greensboro-nc"), _annual_wue("sand-point-ak")
    assert humid == pytest.approx(1.39, abs=0.02)
    assert cold == pytest.approx(1.10, abs=0.02)
    assert cold < 0.85 * humid
    assert humid < ALL_EVAPORATIVE_L_PER_KWH  # an annual figure below the old upper bound
    # adiabatic coolers wet their pads only on the warm hours: none in Sand Point's year (max 19.4 C)
    assert _annual_wue("sand-point-ak", "adiabatic_dry_cooler") == 0.0
    assert 0.0 < _annual_wue("greensboro-nc", "adiabatic_dry_cooler") < 0.2 * humid


def test_scenario_chooses_the_heat_rejection_and_refuses_bad_values() -> None:
    sc = load_scenario(
        "default",
        {
            "cooling.heat_rejection": "adiabatic_dry_cooler",
            "cooling.plant_overrides": {"adiabatic_effectiveness": 0.9, "adiabatic_switch_c": 24.0},
        },
    )
    params = build_facility(sc).cooling.params  # type: ignore[union-attr]
    assert (params.heat_rejection, params.adiabatic_effectiveness, params.adiabatic_switch_c) == (
        "adiabatic_dry_cooler",
        0.9,
        24.0,
    )
    for overrides, message in (
        ({"cycles_of_concentration": 1.0}, "cycles_of_concentration must be > 1"),
        ({"adiabatic_effectiveness": 1.5}, "adiabatic_effectiveness must be within 0..1"),
        ({"drift_fraction": -1e-5}, "drift_fraction must be within 0..1"),
        ({"tower_water_air_ratio": 0.0}, "tower_water_air_ratio must be > 0"),
    ):
        with pytest.raises(ScenarioError, match=message) as info:
            build_facility(load_scenario("default", {"cooling.plant_overrides": overrides}))
        assert "cooling.plant_overrides" in str(info.value)
    with pytest.raises(ScenarioError, match="heat_rejection"):
        load_scenario("default", {"cooling.heat_rejection": "spray_pond"})
