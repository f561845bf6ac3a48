"""Temperature-dependent silicon: leakage beyond the fitted model and GPU Boost's bins, by hand and in a run."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hand_board import BOARD

from twin import catalog
from twin.physics.accelerator import accelerator_power_w, clock_for_power_limit
from twin.physics.governor import governed_clock
from twin.physics.silicon import boost_clock_fraction, leakage_excess_w, leakage_power_w
from twin.validation.setups import inference, node, run

H100 = catalog.accelerator_spec("H100-SXM")
DIE = H100.die_params


def test_h100_die_coefficients_are_the_catalogs() -> None:
    # 10 % of 700 W at 65 C; the measured boards' die 40 K over a 25 C inlet at 700 W.
    assert DIE.leakage_ref_power_w == pytest.approx(70.0)
    assert DIE.leakage_ref_temp_c == 65.0
    assert DIE.fit_thermal_resistance_k_w == pytest.approx(40.0 / 700.0)
    assert DIE.fit_inlet_temp_c + DIE.fit_thermal_resistance_k_w * 700.0 == pytest.approx(65.0)


@pytest.mark.parametrize("power_w", [70.0, 300.0, 700.0])
def test_at_the_fits_conditions_the_power_model_is_unchanged(power_w: float) -> None:
    # The measured board: its inlet, its resistance, its die at T_in + R P, idle to full load.
    r = DIE.fit_thermal_resistance_k_w
    die = DIE.fit_inlet_temp_c + r * power_w
    assert float(leakage_excess_w(die, DIE.fit_inlet_temp_c, r, params=DIE)) == pytest.approx(0.0, abs=1e-9)


def test_ten_kelvin_warmer_adds_the_doubling_law() -> None:
    # At 700 W the measured die sat at 65 C; the same power over 10 K warmer coolant holds it at
    # 75 C: 70 W x (2**(10/25) - 1) = 22.37 W more.
    r = DIE.fit_thermal_resistance_k_w
    got = float(leakage_excess_w(75.0, 35.0, r, params=DIE))
    assert got == pytest.approx(70.0 * (2.0 ** (10.0 / 25.0) - 1.0), rel=1e-12)
    assert got == pytest.approx(22.37, abs=0.01)
    # Slope at 65 C: L ln2 / T_2 = 70 x 0.693 / 25 = 1.94 W/K, 0.28 % of the 700 W limit per K.
    slope = float(leakage_power_w(65.5, params=DIE) - leakage_power_w(64.5, params=DIE))
    assert slope == pytest.approx(70.0 * math.log(2.0) / 25.0, rel=1e-3)
    assert slope / 700.0 == pytest.approx(0.0028, abs=0.0001)


def test_a_cold_plate_saves_leakage() -> None:
    # 500 W through a 0.04 K/W cold plate on 35 C water: die 55 C; the measured board had it at
    # 25 + 40/700 x 500 = 53.57 C, so the plate's die leaks L(55) - L(53.57) more ...
    t_fit = 25.0 + 40.0 / 700.0 * 500.0
    hand = 70.0 * (2.0 ** ((55.0 - 65.0) / 25.0) - 2.0 ** ((t_fit - 65.0) / 25.0))
    assert float(leakage_excess_w(55.0, 35.0, 0.04, params=DIE)) == pytest.approx(hand, rel=1e-12)
    # ... while 20 C water holds it 15 K cooler, at 40 C: less power than the model.
    assert float(leakage_excess_w(40.0, 20.0, 0.04, params=DIE)) < 0.0


def test_boost_bins_by_hand() -> None:
    # H100: 0.0076 of 1980 MHz (15 MHz) per 5 K above 65 C.
    temps = np.array([45.0, 65.0, 69.99, 70.0, 77.0, 93.0])
    bins = np.array([0, 0, 0, 1, 2, 5])
    got = boost_clock_fraction(temps, params=DIE)
    np.testing.assert_allclose(got, 1.0 - 0.0076 * bins, rtol=0, atol=1e-15)
    assert got[4] * 1980.0 == pytest.approx(1949.9, abs=0.05)  # 1980 - 2 x 15.05 MHz
    # Never below the governor's floor.
    assert float(boost_clock_fraction(1000.0, params=DIE)) == H100.min_clock_fraction


def test_power_limit_solve_stays_at_or_below_the_top_bin() -> None:
    # A limit that boost fits: the top bin. A limit that binds below it: the uncapped answer.
    assert float(clock_for_power_limit(1000.0, 1, 0.5, 1, params=BOARD, max_clock=0.97)) == 0.97
    p = float(accelerator_power_w(1, 0.5, 1, 0.8, params=BOARD))
    f = float(clock_for_power_limit(p, 1, 0.5, 1, params=BOARD, max_clock=0.97))
    assert f == pytest.approx(0.8, abs=1e-9)


def test_governor_stays_at_or_below_the_top_bin() -> None:
    def act(f: np.ndarray) -> tuple[None, np.ndarray, np.ndarray, np.ndarray]:
        return None, np.ones_like(f), 0.8 * f, np.full_like(f, 0.5)

    top = np.array([0.95, 0.95])
    f, p, _ = governed_clock(np.array([1000.0, 400.0]), act, params=BOARD, max_clock=top)
    f_free, _, _ = governed_clock(np.array([400.0]), act, params=BOARD)
    assert f[0] == 0.95  # the limit is loose: the top bin
    assert f[1] == pytest.approx(f_free[0], abs=1e-6)  # the limit binds below the bin
    assert p[1] <= 400.0 * (1.0 + 1e-9)


def _saturated_node(cooling: dict[str, object]) -> tuple[float, float]:
    """Output tokens/s and GPU J/token of one 8x H100 server serving Llama-3.1-8B flat out."""
    wl = inference("Llama-3.1-8B", max_batch=64, prompt_tokens=1000.0, output_tokens=500.0)
    k = run(node("H100-SXM", 8, [wl], cooling=cooling)).kpis
    return k["tokens_generated"] / k["duration_s"], k["energy_accelerators_j"] / k["tokens_generated"]


def test_at_the_fits_conditions_a_run_draws_the_fitted_model() -> None:
    # An air-cooled node at the fit's 25 C inlet with the fit's die-to-inlet resistance (40 K at
    # 700 W): every die at the temperature it had in the measurements, so power and clock are the
    # fitted model's alone (the response switched off through accelerator_overrides).
    air = {"model": "ideal", "type": "air", "supply_temp_c": 25.0}
    wl = inference("Llama-3.1-8B", max_batch=64, prompt_tokens=1000.0, output_tokens=500.0)
    fit = {"thermal_resistance_air_k_w": 40.0 / 700.0}
    off = {**fit, "leakage_power_fraction": 0.0, "boost_bin_fraction": 0.0}
    at_fit = run(node("H100-SXM", 8, [wl], cooling=air, **{"fleet.accelerator_overrides": fit})).kpis
    fitted = run(node("H100-SXM", 8, [wl], cooling=air, **{"fleet.accelerator_overrides": off})).kpis
    for key in ("energy_accelerators_j", "tokens_generated"):
        assert at_fit[key] == pytest.approx(fitted[key], rel=1e-9)


def test_hotter_coolant_serves_fewer_tokens_per_joule() -> None:
    # 30 C vs 55 C water on the cold plates: the warmer dies (~53 C against ~78 C) leak more and
    # drop two boost bins, so the same saturated load serves fewer tokens/s for more J each.
    tok_cool, j_cool = _saturated_node({"model": "ideal", "type": "liquid", "supply_temp_c": 30.0})
    tok_hot, j_hot = _saturated_node({"model": "ideal", "type": "liquid", "supply_temp_c": 55.0})
    assert tok_hot < tok_cool
    assert j_hot > j_cool
    # The same on air: a 32 C inlet against a 20 C one.
    tok_cool, j_cool = _saturated_node({"model": "ideal", "type": "air", "supply_temp_c": 20.0})
    tok_hot, j_hot = _saturated_node({"model": "ideal", "type": "air", "supply_temp_c": 32.0})
    assert tok_hot < tok_cool
    assert j_hot > j_cool
