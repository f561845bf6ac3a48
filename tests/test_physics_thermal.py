import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from twin.physics.thermal import (
    air_mass_step,
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


# === two nodes: room air and the servers' mass (air_mass_step) ================================
# 5 kW into one rack's air (12 m3 x 1.2 kg/m3 x 1005 J/kg/K = 14.47 kJ/K) and one 8-GPU server's
# mass (65 kJ/K), no cooling (tau = inf).
P_W, CA, CM, INF = 5e3, 12 * 1.2 * 1005.0, 65e3, float("inf")


def test_zero_conductance_is_the_air_alone():
    air, mass = air_mass_step(0.0, 0.0, P_W, CA, CM, 0.0, INF, 30.0)
    assert float(air) == pytest.approx(P_W * 30.0 / CA)  # 10.37 K: dT/dt = P / C_air
    assert float(mass) == 0.0
    # with control and no coupling: the one-node step
    air, _ = air_mass_step(2.0, 0.0, P_W, CA, CM, 0.0, 60.0, 30.0)
    assert float(air) == pytest.approx(float(rc_step(2.0, P_W * 60.0 / CA, 60.0, 30.0)))


def test_strong_coupling_warms_air_and_mass_together():
    air, mass = air_mass_step(0.0, 0.0, P_W, CA, CM, 1e9, INF, 30.0)
    assert float(air) == pytest.approx(P_W * 30.0 / (CA + CM), rel=1e-5)  # 1.89 K (air leads by ~4 uK)
    assert float(mass) == pytest.approx(float(air), rel=1e-5)


def test_rise_starts_at_p_over_c_air_then_slows_to_p_over_the_sum():
    g = 100.0  # W/K: the mass follows with tau_m ~ C_a C_m / (G (C_a + C_m)) = 118 s
    air0, _ = air_mass_step(0.0, 0.0, P_W, CA, CM, g, INF, 0.01)
    assert float(air0) / 0.01 == pytest.approx(P_W / CA, rel=1e-3)
    a1, m1 = air_mass_step(0.0, 0.0, P_W, CA, CM, g, INF, 3000.0)
    a2, _ = air_mass_step(a1, m1, P_W, CA, CM, g, INF, 1.0)
    assert float(a2 - a1) == pytest.approx(P_W / (CA + CM), rel=1e-3)
    # the mass lags the air by P C_m / (G (C_a + C_m)) once both warm at one rate
    assert float(a1 - m1) == pytest.approx(P_W * CM / (g * (CA + CM)), rel=1e-3)


@given(
    ta=st.floats(0, 60),
    tm=st.floats(0, 60),
    q=st.floats(0, 1e5),
    g=st.floats(0, 1e4),
    dt=st.floats(0, 1e4),
)
def test_two_node_step_conserves_energy_and_composes(ta, tm, q, g, dt):
    a, m = air_mass_step(ta, tm, q, CA, CM, g, INF, dt)
    # no cooling: the nodes' heat grows by exactly Q dt
    assert CA * float(a) + CM * float(m) == pytest.approx(CA * ta + CM * tm + q * dt, rel=1e-9, abs=1e-3)
    # exact: two half steps equal one full step, with control too
    full = air_mass_step(ta, tm, q, CA, CM, g, 60.0, dt)
    half = air_mass_step(*air_mass_step(ta, tm, q, CA, CM, g, 60.0, dt / 2), q, CA, CM, g, 60.0, dt / 2)
    assert float(half[0]) == pytest.approx(float(full[0]), rel=1e-9, abs=1e-9)
    assert float(half[1]) == pytest.approx(float(full[1]), rel=1e-9, abs=1e-9)


def test_two_node_steady_state_with_control():
    # with the pull-back (tau) the air settles at Q tau / C_a and the mass at the air's excess
    a, m = air_mass_step(0.0, 0.0, P_W, CA, CM, 100.0, 60.0, 1e6)
    assert float(a) == pytest.approx(P_W * 60.0 / CA, rel=1e-9)
    assert float(m) == pytest.approx(float(a), rel=1e-9)
