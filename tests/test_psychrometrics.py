"""Psychrometrics against ASHRAE 2017 values, an independent formula, limits and properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.physics import psychrometrics as psy

SEA_LEVEL_PA = 101_325.0


# ASHRAE Handbook Fundamentals 2017, ch. 1, Table 3 (saturation pressure over ice / water);
# the Hyland-Wexler fit is stated to be within 300 ppm of the table.
@pytest.mark.parametrize(
    ("temp_c", "table_pa"),
    [
        (-20.0, 103.24),
        (-5.0, 401.74),
        (5.0, 872.6),
        (25.0, 3169.7),
        (50.0, 12351.3),
        (100.0, 101418.0),
    ],
)
def test_saturation_pressure_matches_ashrae_table_3(temp_c: float, table_pa: float) -> None:
    assert float(psy.saturation_vapor_pressure_pa(temp_c)) == pytest.approx(table_pa, rel=3e-4)


def test_ashrae_example_1() -> None:
    # ASHRAE 2017 ch. 1 Example 1: 40 C dry-bulb, 20 C wet-bulb, 101.325 kPa ->
    # W = 0.0065 kg/kg (with the tabulated W_s*), RH = 14 %.
    w = float(psy.humidity_ratio_from_wet_bulb(40.0, 20.0, SEA_LEVEL_PA))
    assert w == pytest.approx(0.0065, abs=1.5e-4)
    p_w = psy.vapor_pressure_from_humidity_ratio_pa(w, SEA_LEVEL_PA)
    rh = float(p_w / psy.saturation_vapor_pressure_pa(40.0))
    assert rh == pytest.approx(0.14, abs=0.01)
    # ... and back: the wet-bulb from the dew point or from RH is 20 C again.
    dew = psy.dew_point_c(p_w)
    assert float(psy.wet_bulb_c(40.0, dew, SEA_LEVEL_PA)) == pytest.approx(20.0, abs=0.01)
    assert float(psy.wet_bulb_from_rh_c(40.0, rh, SEA_LEVEL_PA)) == pytest.approx(20.0, abs=0.01)


def test_chart_value_30c_50pct() -> None:
    # Sea-level psychrometric chart: 30 C dry-bulb, 50 % RH -> wet-bulb 22.0 C.
    assert float(psy.wet_bulb_from_rh_c(30.0, 0.5, SEA_LEVEL_PA)) == pytest.approx(22.0, abs=0.05)


def _stull_wet_bulb_c(t_c: float, rh_pct: float) -> float:
    """Stull (2011), J. Appl. Meteor. Climatol. 50, 2267, eq. (1): sea level, RH 5-99 %."""
    return (
        t_c * math.atan(0.151977 * math.sqrt(rh_pct + 8.313659))
        + math.atan(t_c + rh_pct)
        - math.atan(rh_pct - 1.676331)
        + 0.00391838 * rh_pct**1.5 * math.atan(0.023101 * rh_pct)
        - 4.686035
    )


def test_stull_published_example() -> None:
    # Stull (2011): "T = 20 C and RH = 50 % gives Tw = 13.7 C".
    assert float(psy.wet_bulb_from_rh_c(20.0, 0.5, SEA_LEVEL_PA)) == pytest.approx(13.7, abs=0.1)


@pytest.mark.parametrize("t_c", [0.0, 10.0, 20.0, 30.0, 40.0])
@pytest.mark.parametrize("rh_pct", [10.0, 30.0, 50.0, 70.0, 95.0])
def test_agrees_with_stull_independent_formula(t_c: float, rh_pct: float) -> None:
    # Stull states his fit is within -1 .. +0.65 K of the psychrometric solution.
    ours = float(psy.wet_bulb_from_rh_c(t_c, rh_pct / 100.0, SEA_LEVEL_PA))
    assert ours == pytest.approx(_stull_wet_bulb_c(t_c, rh_pct), abs=1.0)


@pytest.mark.parametrize("t_c", [-10.0, 0.5, 25.0, 45.0])
def test_saturated_air_wet_bulb_equals_dry_bulb(t_c: float) -> None:
    assert float(psy.wet_bulb_c(t_c, t_c)) == pytest.approx(t_c, abs=1e-6)
    assert float(psy.relative_humidity(t_c, t_c)) == pytest.approx(1.0)


def test_dew_point_above_dry_bulb_is_taken_as_saturated() -> None:
    assert float(psy.wet_bulb_c(20.0, 21.0)) == pytest.approx(20.0, abs=1e-6)


def test_lower_pressure_lowers_humidity_ratio_denominator() -> None:
    # Same vapour pressure at altitude (84 kPa) gives a larger humidity ratio: 0.621945 pw/(p-pw).
    assert float(psy.humidity_ratio(2000.0, 84_000.0)) == pytest.approx(0.621945 * 2000 / 82_000)
    assert float(psy.humidity_ratio(2000.0, 84_000.0)) > float(psy.humidity_ratio(2000.0))


def test_scalar_equals_vector() -> None:
    dry = np.array([-5.0, 10.0, 25.0, 38.0])
    dew = np.array([-12.0, 2.0, 18.0, 10.0])
    pressure = np.array([101_325.0, 95_000.0, 99_000.0, 85_000.0])
    vector = psy.wet_bulb_c(dry, dew, pressure)
    for i in range(len(dry)):
        assert float(psy.wet_bulb_c(dry[i], dew[i], pressure[i])) == pytest.approx(vector[i], abs=1e-9)


def test_no_warnings_at_edges() -> None:
    # Warnings are errors: zero humidity, extreme temperatures, vapour pressure = total pressure.
    assert float(psy.dew_point_c(0.0)) == pytest.approx(-100.0, abs=1e-6)
    assert np.isinf(psy.humidity_ratio(1000.0, 1000.0))
    assert np.all(np.isfinite(psy.wet_bulb_from_rh_c(np.array([-40.0, 60.0]), np.array([0.0, 1.0]))))


@settings(max_examples=200, deadline=None)
@given(
    dry=st.floats(-30.0, 50.0),
    depression=st.floats(0.0, 40.0),
    pressure=st.floats(70_000.0, 105_000.0),
)
def test_wet_bulb_lies_between_dew_point_and_dry_bulb(dry: float, depression: float, pressure: float) -> None:
    dew = dry - depression
    wet = float(psy.wet_bulb_c(dry, dew, pressure))
    assert dew - 1e-6 <= wet <= dry + 1e-6


@settings(max_examples=200, deadline=None)
@given(dry=st.floats(-20.0, 45.0), dew_a=st.floats(-40.0, 45.0), dew_b=st.floats(-40.0, 45.0))
def test_wet_bulb_rises_with_dew_point(dry: float, dew_a: float, dew_b: float) -> None:
    lo, hi = sorted((min(dew_a, dry), min(dew_b, dry)))
    assert float(psy.wet_bulb_c(dry, lo)) <= float(psy.wet_bulb_c(dry, hi)) + 1e-9


@settings(max_examples=200, deadline=None)
@given(temp=st.floats(-90.0, 190.0))
def test_dew_point_inverts_saturation_pressure(temp: float) -> None:
    assert float(psy.dew_point_c(psy.saturation_vapor_pressure_pa(temp))) == pytest.approx(temp, abs=1e-6)


@settings(max_examples=100, deadline=None)
@given(dry=st.floats(-20.0, 45.0), rh=st.floats(0.01, 1.0))
def test_rh_and_dew_point_round_trip(dry: float, rh: float) -> None:
    dew = psy.dew_point_from_rh_c(dry, rh)
    assert float(psy.relative_humidity(dry, dew)) == pytest.approx(rh, rel=1e-6)
