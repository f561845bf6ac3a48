import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from twin.physics.thermal import (
    RACK_AIR_CONDUCTANCE_W_K,
    RACK_HEAT_CAPACITY_J_K,
    rc_adiabatic_step,
    rc_adiabatic_time_to_threshold_s,
    rc_step,
    rc_time_to_threshold_s,
    room_modes,
    room_propagator,
    room_step,
    room_trajectory,
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


# === the room air and the solids it washes (room_step) ========================================
# 5 kW into one rack's air (12 m3 x 1.2 kg/m3 x 1005 J/kg/K = 14.47 kJ/K) and one 8-GPU server's
# mass (65 kJ/K), no cooling (tau = inf).
P_W, CA, CM, INF = 5e3, 12 * 1.2 * 1005.0, 65e3, float("inf")


def air_and_mass(ta, tm, q, ca, cm, g, tau, dt):
    """Two nodes, air and one solid, as numbers."""
    a, s = room_step(float(ta), [float(tm)], float(q), ca, [cm], [g], tau, float(dt))
    return a, float(s[0])


def test_zero_conductance_is_the_air_alone():
    air, mass = air_and_mass(0.0, 0.0, P_W, CA, CM, 0.0, INF, 30.0)
    assert air == pytest.approx(P_W * 30.0 / CA)  # 10.37 K: dT/dt = P / C_air
    assert mass == 0.0
    # with control and no coupling: the one-node step
    air, _ = air_and_mass(2.0, 0.0, P_W, CA, CM, 0.0, 60.0, 30.0)
    assert air == pytest.approx(float(rc_step(2.0, P_W * 60.0 / CA, 60.0, 30.0)))
    # no solids at all: the same
    assert room_step(2.0, [], P_W, CA, [], [], 60.0, 30.0)[0] == pytest.approx(air)


def test_strong_coupling_warms_air_and_mass_together():
    air, mass = air_and_mass(0.0, 0.0, P_W, CA, CM, 1e9, INF, 30.0)
    assert air == pytest.approx(P_W * 30.0 / (CA + CM), rel=1e-5)  # 1.89 K (air leads by ~4 uK)
    assert mass == pytest.approx(air, rel=1e-5)


def test_rise_starts_at_p_over_c_air_then_slows_to_p_over_the_sum():
    g = 100.0  # W/K: the mass follows with tau_m ~ C_a C_m / (G (C_a + C_m)) = 118 s
    air0, _ = air_and_mass(0.0, 0.0, P_W, CA, CM, g, INF, 0.01)
    assert air0 / 0.01 == pytest.approx(P_W / CA, rel=1e-3)
    a1, m1 = air_and_mass(0.0, 0.0, P_W, CA, CM, g, INF, 3000.0)
    a2, _ = air_and_mass(a1, m1, P_W, CA, CM, g, INF, 1.0)
    assert a2 - a1 == pytest.approx(P_W / (CA + CM), rel=1e-3)
    # the mass lags the air by P C_m / (G (C_a + C_m)) once both warm at one rate
    assert a1 - m1 == pytest.approx(P_W * CM / (g * (CA + CM)), rel=1e-3)


def test_rack_node_follows_khankaris_closed_form():
    # Khankari (2011), one solid, no cooling: the air warms at
    #   dT_a/dt = Q / (C_a + C_s) * (1 + (C_s / C_a) exp(-t / t_c)),  t_c = C_a C_s / (G (C_a + C_s)),
    # so T_a(t) = Q t / (C_a + C_s) + Q C_s t_c / (C_a (C_a + C_s)) (1 - exp(-t / t_c)).
    # The default rack (100 kg of steel, 43.4 kJ/K, behind 41.5 W/K) over one rack's air:
    cs, g = RACK_HEAT_CAPACITY_J_K, RACK_AIR_CONDUCTANCE_W_K
    assert (cs, g) == pytest.approx((43_400.0, 41.5))
    t_c = CA * cs / (g * (CA + cs))
    assert t_c == pytest.approx(262.0, abs=1.0)  # s: a 5 kW rack reaches shutdown within ~1 t_c
    for t in (10.0, 120.0, 189.0, 600.0):
        hand = P_W * t / (CA + cs) + P_W * cs * t_c / (CA * (CA + cs)) * (1.0 - np.exp(-t / t_c))
        air, _ = room_step(0.0, [0.0], P_W, CA, [cs], [g], INF, t)
        assert air == pytest.approx(hand, rel=1e-12)

    # the rate: P / C_a at first (0.346 K/s), P / (C_a + C_s) at the end (0.086 K/s), e^-1 of the way at t_c
    def rate(t, dt=1e-3):
        air, solid = room_step(0.0, [0.0], P_W, CA, [cs], [g], INF, t)
        return (room_step(air, solid, P_W, CA, [cs], [g], INF, dt)[0] - air) / dt

    lo, hi = P_W / (CA + cs), P_W / CA
    assert rate(0.0) == pytest.approx(hi, rel=1e-3)
    assert rate(20 * t_c) == pytest.approx(lo, rel=1e-3)
    assert rate(t_c) == pytest.approx(lo + (hi - lo) * np.exp(-1.0), rel=1e-3)


def test_rack_mass_buys_a_5kw_rack_more_time_than_a_10kw_one():
    # Why the racks change the ratio of the two Opengate times: the time to warm the air by 40 K
    # is P-independent per joule only for the air alone; the solid soaks up more of a slow rise.
    cs, g = RACK_HEAT_CAPACITY_J_K, RACK_AIR_CONDUCTANCE_W_K

    def time_to(rise_k, p_w, solids, g=g):
        t = np.arange(1.0, 2000.0)
        air = np.array([room_step(0.0, [0.0] * len(solids), p_w, CA, solids, [g] * len(solids), INF, x)[0] for x in t])
        return float(t[np.argmax(air >= rise_k)])

    t5, t10 = time_to(40.0, 5e3, []), time_to(40.0, 10e3, [])
    r5, r10 = time_to(40.0, 5e3, [cs]), time_to(40.0, 10e3, [cs])
    assert t5 / t10 == pytest.approx(2.0, abs=0.02)  # one node: twice the power, half the time
    assert r5 > t5 and r10 > t10
    assert r5 / r10 > 2.15  # with the rack node: more than halved (140 s vs 64 s)
    # monotonic: more surface, more time; more steel, no less (within 140 s the film limits it)
    assert time_to(40.0, 5e3, [cs], 2 * g) > r5
    assert time_to(40.0, 5e3, [2 * cs]) >= r5


@given(
    ta=st.floats(0, 60),
    tm=st.floats(0, 60),
    tr=st.floats(0, 60),
    q=st.floats(0, 1e5),
    g=st.floats(0, 1e4),
    dt=st.floats(0, 1e4),
)
def test_room_step_conserves_energy_and_composes(ta, tm, tr, q, g, dt):
    caps, gs = [CM, RACK_HEAT_CAPACITY_J_K], [g, RACK_AIR_CONDUCTANCE_W_K]
    a, s = room_step(ta, [tm, tr], q, CA, caps, gs, INF, dt)
    # no cooling: the nodes' heat grows by exactly Q dt
    held = CA * a + float(np.dot(caps, s))
    assert held == pytest.approx(CA * ta + CM * tm + caps[1] * tr + q * dt, rel=1e-9, abs=1e-3)
    # exact: two half steps equal one full step, with control too
    full = room_step(ta, [tm, tr], q, CA, caps, gs, 60.0, dt)
    mid = room_step(ta, [tm, tr], q, CA, caps, gs, 60.0, dt / 2)
    half = room_step(mid[0], mid[1], q, CA, caps, gs, 60.0, dt / 2)
    assert half[0] == pytest.approx(full[0], rel=1e-9, abs=1e-9)
    assert half[1] == pytest.approx(full[1], rel=1e-9, abs=1e-9)


def test_two_node_steady_state_with_control():
    # with the pull-back (tau) the air settles at Q tau / C_a and the mass at the air's excess
    a, m = air_and_mass(0.0, 0.0, P_W, CA, CM, 100.0, 60.0, 1e6)
    assert a == pytest.approx(P_W * 60.0 / CA, rel=1e-9)
    assert m == pytest.approx(a, rel=1e-9)


@pytest.mark.parametrize("tau_s", [60.0, INF])
def test_trajectory_is_the_steps_taken_one_by_one(tau_s):
    # 5 000 one-second steps of a varying heat into air, servers (a fast mode: 1e6 W/K) and racks;
    # the vectorised trajectory sums in chunks, the reference applies the exact step 5 000 times.
    caps, gs = [CM, RACK_HEAT_CAPACITY_J_K], [1e6, RACK_AIR_CONDUCTANCE_W_K]
    heat = P_W * (1.0 + np.sin(np.arange(5000) / 300.0)) + np.where(np.arange(5000) % 700 < 5, 2e4, 0.0)
    traj = room_trajectory(3.0, [1.0, 20.0], heat, room_modes(CA, caps, gs, tau_s, 1.0))
    phi, gamma = room_propagator(CA, caps, gs, tau_s, 1.0)
    x = np.array([3.0, 1.0, 20.0])
    for k in (0, 1, 2, 3, 4):  # the short path too
        assert room_trajectory(float(x[0]), x[1:], heat[:k], room_modes(CA, caps, gs, tau_s, 1.0)).shape == (k, 3)
    for k, q in enumerate(heat):
        x = phi @ x + gamma * q
        assert traj[k] == pytest.approx(x, rel=1e-9, abs=1e-9)
