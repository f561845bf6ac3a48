import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from twin.catalog import loss_curve, loss_curve_names
from twin.physics.power import (
    battery_capacity_for_runtime_j,
    battery_empty_offset_s,
    battery_step_j,
    battery_time_to_empty_s,
    battery_time_to_full_s,
    quadratic_loss_w,
    tabulated_loss_w,
)

TITANIUM = loss_curve("80plus-titanium-230v-redundant")


@pytest.mark.parametrize(("x", "eta"), [(0.10, 0.90), (0.20, 0.94), (0.50, 0.96), (1.00, 0.91)])
def test_titanium_points_reproduced(x, eta):
    # 80 PLUS Titanium 230 V internal redundant minima (parameters.md 2).
    rated = 3300.0
    out = x * rated
    loss = float(tabulated_loss_w(out, rated, TITANIUM.load_fraction, TITANIUM.efficiency))
    assert out / (out + loss) == pytest.approx(eta, abs=1e-12)


def test_quadratic_hand_calculation():
    # UPS curve at 25 % of 1 MW: 0.015*1e6 + 0.025*250e3 + 0.010*250e3**2/1e6 = 15000 + 6250 + 625
    c = loss_curve("ups-double-conversion")
    assert float(quadratic_loss_w(250e3, 1e6, c.a, c.b, c.c)) == pytest.approx(21875.0)
    # ... giving 91.9 % efficiency, the low-load collapse of parameters.md 2
    assert pytest.approx(0.9195, abs=1e-4) == 250e3 / (250e3 + 21875.0)


@pytest.mark.parametrize("name", ["transformer-mv-default", "pdu-with-transformer", "busway", "ups-double-conversion"])
def test_efficiencies_at_half_load_in_published_ranges(name):
    c = loss_curve(name)
    loss = float(quadratic_loss_w(0.5, 1.0, c.a, c.b, c.c))
    eta = 0.5 / (0.5 + loss)
    lo, hi = {
        "transformer-mv-default": (0.988, 0.993),  # MV transformer at 50 %
        "pdu-with-transformer": (0.97, 0.985),
        "busway": (0.995, 1.0),
        "ups-double-conversion": (0.94, 0.96),
    }[name]
    assert lo <= eta <= hi


@given(load=st.floats(0, 2e6), extra=st.floats(0, 1e6), name=st.sampled_from(loss_curve_names()))
def test_losses_nonnegative_and_monotone(load, extra, name):
    c = loss_curve(name)
    rated = 1e6
    if c.kind == "table":
        f = lambda p: float(tabulated_loss_w(p, rated, c.load_fraction, c.efficiency))  # noqa: E731
    else:
        f = lambda p: float(quadratic_loss_w(p, rated, c.a, c.b, c.c))  # noqa: E731
    assert f(load) >= 0
    assert f(load + extra) >= f(load) - 1e-6


def test_scalar_equals_vector():
    loads = np.linspace(0, 4000, 9)
    vec = tabulated_loss_w(loads, 3300, TITANIUM.load_fraction, TITANIUM.efficiency)
    assert [
        float(tabulated_loss_w(x, 3300, TITANIUM.load_fraction, TITANIUM.efficiency)) for x in loads
    ] == pytest.approx(vec)


def test_battery_conserves_energy():
    stored, delivered = battery_step_j(3.6e6, 6000.0, 300.0, 7.2e6, 1.0, 0.9)
    # Delivering 6 kW for 300 s = 1.8 MJ at the terminals costs 1.8/0.9 = 2 MJ of storage.
    assert float(delivered) == pytest.approx(1.8e6)
    assert float(stored) == pytest.approx(1.6e6)
    # Time to empty at 12 kW from 1 kWh at 100 %: 300 s (hand calculation).
    assert float(battery_time_to_empty_s(3.6e6, 12e3, 1.0)) == pytest.approx(300.0)
    # Cannot deliver more than stored.
    stored, delivered = battery_step_j(1e5, 1e4, 100.0, 1e6, 1.0, 1.0)
    assert float(delivered) == pytest.approx(1e5) and float(stored) == 0.0


def test_battery_cutoff_matches_a_fine_step_integration():
    # Piecewise-constant draw; the exact crossing agrees with battery_step_j stepped at 1 ms.
    power = np.array([5e3, 20e3, 8e3, 30e3])
    dts = np.array([10.0, 5.0, 20.0, 10.0])
    usable, eta = 3.0e5, 0.9
    t = battery_empty_offset_s(usable, power, dts, eta)
    stored, elapsed = usable, 0.0
    for p, dt in zip(power, dts, strict=True):
        n = round(dt / 1e-3)
        for _ in range(n):
            if stored <= 0:
                break
            stored = float(battery_step_j(stored, p, 1e-3, 1e9, 1.0, eta)[0])
            elapsed += 1e-3
    assert t == pytest.approx(elapsed, abs=2e-3)
    # Hand value: 5 kW x 10 s + 20 kW x 5 s = 150 kJ at the terminals, 166.7 kJ stored; the
    # remaining 133.3 kJ last 0.9 x 133.3 kJ / 8 kW = 15 s into the third tick.
    assert t == pytest.approx(30.0, rel=1e-12)
    assert battery_empty_offset_s(1e9, power, dts, eta) == np.inf
    assert battery_empty_offset_s(0.0, power, dts, eta) == 0.0


def test_battery_sizing_and_recharge_time():
    # Runtime 300 s at 1 MW with 95 % discharge efficiency and a 10 % floor.
    e = float(battery_capacity_for_runtime_j(300.0, 1e6, 0.1, 0.95))
    assert e == pytest.approx(300.0 * 1e6 / (0.95 * 0.9))
    assert float(battery_time_to_empty_s(e * 0.9, 1e6, 0.95)) == pytest.approx(300.0)
    # Recharge from the floor at 100 kW, 95 % efficient.
    full = battery_time_to_full_s([0.1 * e, e], e, 1e5, 0.95)
    np.testing.assert_allclose(full, [0.9 * e / (0.95 * 1e5), 0.0])
    assert float(battery_time_to_full_s(0.0, e, 0.0)) == np.inf
