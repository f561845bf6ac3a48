import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from twin.catalog import accelerator_spec
from twin.physics.accelerator import (
    accelerator_power_w,
    clock_for_power_limit,
    die_steady_temp_c,
    thermal_power_limit_w,
)

H100 = accelerator_spec("H100-SXM")
K = (H100.static_power_fraction, H100.mem_power_fraction, H100.clock_exponent)


def power(busy, mem, sm, clock):
    return accelerator_power_w(H100.idle_power_w, H100.max_power_w, busy, mem, sm, clock, *K)


@pytest.mark.parametrize(
    ("busy", "mem", "sm", "expected_w"),
    [
        (0, 0, 0, 70.0),  # idle: catalog idle power (nvidia-smi dumps 67-75 W)
        (1, 1, 1, 700.0),  # full activity at boost clock: TDP
        # decode-like: 70 + 630 * (0.15 + 0.30*0.7 + 0.55*0.1) = 70 + 630*0.415 = 331.45 W
        (1, 0.7, 0.1, 331.45),
    ],
)
def test_power_hand_values(busy, mem, sm, expected_w):
    assert power(busy, mem, sm, 1.0) == pytest.approx(expected_w)


def test_h200_decode_power_in_published_range():
    # Ma et al. 2026 (arXiv 2605.11999): H200 decode draws 137-300 W of 700 W. Memory-bound decode
    # at 50-70 % of achievable bandwidth with little SM work must land in (or within 10 % of) it.
    h200 = accelerator_spec("H200-SXM")
    p = accelerator_power_w(h200.idle_power_w, h200.max_power_w, 1.0, np.array([0.5, 0.7]), 0.05, 1.0, *K)
    assert np.all(p > 137) and np.all(p < 330)


def test_scalar_equals_vector():
    busy = np.linspace(0, 1, 7)
    vec = power(busy, 0.5 * busy, 0.8 * busy, 0.9)
    for b, v in zip(busy, vec, strict=True):
        assert float(power(b, 0.5 * b, 0.8 * b, 0.9)) == pytest.approx(v)


@given(busy=st.floats(0, 1), mem=st.floats(0, 1), sm=st.floats(0, 1), limit=st.floats(150, 700))
def test_clock_for_limit_respects_limit(busy, mem, sm, limit):
    args = (H100.idle_power_w, H100.max_power_w, busy, mem, sm, *K)
    f = clock_for_power_limit(limit, *args, min_clock_fraction=H100.min_clock_fraction)
    p = accelerator_power_w(H100.idle_power_w, H100.max_power_w, busy, mem, sm, f, *K)
    floor = accelerator_power_w(H100.idle_power_w, H100.max_power_w, busy, mem, sm, H100.min_clock_fraction, *K)
    # Either the limit is met, or the governor sits at its lowest clock.
    assert p <= limit + 1e-6 or f == pytest.approx(H100.min_clock_fraction)
    assert p >= floor - 1e-9
    # Highest such clock: a slightly higher clock would break the limit (unless already at boost).
    if f < 1 - 1e-9 and p <= limit + 1e-6:
        assert (
            accelerator_power_w(H100.idle_power_w, H100.max_power_w, busy, mem, sm, min(f * 1.01, 1), *K)
            >= limit - 1e-6
        )


@given(st.floats(0, 1), st.floats(0, 1))
def test_power_monotone_in_activity_and_clock(a, b):
    lo, hi = sorted((a, b))
    assert power(lo, lo, lo, 1.0) <= power(hi, hi, hi, 1.0) + 1e-9
    assert power(1, 0.5, 1, lo) <= power(1, 0.5, 1, hi) + 1e-9


def test_memory_bound_work_is_cheap_to_cap():
    # A 400 W cap does not touch lowers the clock of decode (SMs mostly idle) but cuts a
    # compute-bound kernel's clock by the cube root.
    decode = clock_for_power_limit(400, 70, 700, 1, 0.7, 0.1, *K)
    gemm = clock_for_power_limit(400, 70, 700, 1, 0.5, 1.0, *K)
    assert decode == pytest.approx(1.0)
    assert gemm < 0.8  # (0.2238/0.55)**(1/3) = 0.741 by hand


def test_thermal_limit_and_die_temperature_are_inverse():
    p_lim = thermal_power_limit_w(40.0, H100.slowdown_temp_c, H100.thermal_resistance_liquid_k_w)
    assert die_steady_temp_c(40.0, p_lim, H100.thermal_resistance_liquid_k_w) == pytest.approx(89.0)
    # Cold-plate example (parameters.md 3.4): 0.04 K/W gives 4 K per 100 W.
    assert die_steady_temp_c(25.0, 100.0, 0.04) == pytest.approx(29.0)
    assert thermal_power_limit_w(95.0, 89.0, 0.04) == 0.0
