import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from twin.physics.thermal import (
    rc_adiabatic_step,
    rc_adiabatic_time_to_threshold_s,
    rc_step,
    rc_time_to_threshold_s,
)


def test_one_time_constant_is_63_percent():
    assert float(rc_step(20.0, 30.0, 60.0, 60.0)) == pytest.approx(20 + 10 * (1 - np.exp(-1)))


@given(t0=st.floats(-20, 120), tss=st.floats(-20, 120), tau=st.floats(0.1, 1e4), dt=st.floats(0, 1e4))
def test_exact_step_composes(t0, tss, tau, dt):
    # Exactness: two half steps equal one full step (an Euler step would not).
    half = rc_step(rc_step(t0, tss, tau, dt / 2), tss, tau, dt / 2)
    assert float(half) == pytest.approx(float(rc_step(t0, tss, tau, dt)), abs=1e-9)


@given(t0=st.floats(0, 50), tss=st.floats(60, 100), tau=st.floats(1, 1e3), frac=st.floats(0.01, 0.99))
def test_time_to_threshold_inverts_step(t0, tss, tau, frac):
    th = t0 + frac * (tss - t0)
    t = float(rc_time_to_threshold_s(t0, tss, tau, th))
    assert float(rc_step(t0, tss, tau, t)) == pytest.approx(th, rel=1e-9, abs=1e-9)


def test_threshold_never_reached():
    assert np.isinf(rc_time_to_threshold_s(20.0, 25.0, 60.0, 30.0))
    assert np.isinf(rc_adiabatic_time_to_threshold_s(20.0, -5.0, 1e6, 30.0))


def test_adiabatic_room_heating_hand_calculation():
    # parameters.md 4: a 1000 m3 hall holds 1.2 MJ/K of air; 1 MW with no cooling warms it by
    # ~0.8 K/s. 60 s: +50 K; to go from 25 to 35 C takes 12 s.
    assert float(rc_adiabatic_step(25.0, 1e6, 1.2e6, 60.0)) == pytest.approx(75.0)
    assert float(rc_adiabatic_time_to_threshold_s(25.0, 1e6, 1.2e6, 35.0)) == pytest.approx(12.0)
