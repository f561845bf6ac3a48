"""Lumped RC thermal elements: the exact step and the time to reach a threshold.

A lumped element of heat capacity ``C`` [J/K] coupled by conductance ``G`` [W/K] to a sink at
``T_sink`` and heated by ``Q`` [W] obeys ``C dT/dt = Q - G (T - T_sink)``. With constant inputs its
solution is exact: ``T(t) = T_ss + (T0 - T_ss) exp(-t/tau)`` with ``T_ss = T_sink + Q/G`` and
``tau = C/G`` (any heat-transfer text, e.g. Incropera et al., *Fundamentals of Heat and Mass
Transfer*, 7th ed., 2011, sec. 5.2 "The lumped capacitance method"). Between events the twin uses
this closed form instead of small Euler steps, so a quiet hour costs one step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from twin._types import BoolArray, FloatArray, Numeric

#: [EST] Conductance between one server's solid mass and the air through it: forced convection at
#: h ~ 50 W/m2/K (fan-driven air over fins and sheet metal; Incropera et al. 2011 table 1.1 gives
#: 25-250 W/m2/K for forced gas convection) over ~2 m2 of heat-sink fin and chassis surface. [W/K]
SERVER_AIR_CONDUCTANCE_W_K = 100.0
#: [EST] Heat capacity of one rack enclosure's steel: a 42U cabinet 0.6 m wide, 1.07 m deep and 2.0 m
#: high (the common data-centre size; RackSolutions' and Formrack's catalogues) has ~5.8 m2 of sheet
#: (two sides 4.28 m2, roof 0.64 m2, two doors 2.4 m2 at the usual 63 % perforation: 0.89 m2) of
#: 1.2-1.5 mm steel, ~62 kg, plus ~40 kg of frame, EIA rails and base: ~100 kg, as vendors' 42U
#: enclosures weigh (100-140 kg). Times c_p 434 J/kg/K (plain carbon steel at 300 K, Incropera et al.
#: 2011 table A.1). Khankari (ASHRAE Trans. 117(1), 2011) names the racks' heat capacity over the
#: air's as one of the two numbers that set a room's heating. [J/K]
RACK_HEAT_CAPACITY_J_K = 100.0 * 434.0
#: [EST] Conductance between one rack enclosure and the room air, h x A: ~8.3 m2 washed by the room's
#: air (the sides' inner faces 4.28 m2, both faces of the roof 1.28 m2 and of the doors' metal
#: 1.78 m2, ~1 m2 of frame and rails; the sides' outer faces meet the neighbours' in a row) at
#: h = 5 W/m2/K: free convection on a 2 m vertical plate gives 2.8-4.1 W/m2/K at 10-30 K (h = 1.31
#: dT^(1/3), Holman, Heat Transfer, 10th ed. 2010, table 7-2), laminar flow at the 0.5-1 m/s the
#: server fans drive past doors and rails 2.7-3.9 W/m2/K (Nu = 0.664 Re^(1/2) Pr^(1/3) over 1 m,
#: Incropera et al. 2011 eq. 7.30); combined as (h_N^3 + h_F^3)^(1/3) (Churchill, AIChE J. 23, 1977),
#: 3.5-5.0 W/m2/K on plain sheet, more on the perforated doors the exhaust jets through. With the
#: rack's capacity this is Khankari's (2011) specific-surface-area term. The building's slab and
#: ceiling are left out: ~6 m2 per rack under stably stratified warm air, h ~ 1-3 W/m2/K, 6-18 W/K
#: [EST], well below the rack's film. [W/K]
RACK_AIR_CONDUCTANCE_W_K = 5.0 * 8.3


def rc_steady_temp_c(sink_temp_c: Numeric, heat_w: Numeric, conductance_w_k: Numeric) -> FloatArray:
    """Steady-state temperature ``T_sink + Q/G`` of a lumped element.

    Parameters
    ----------
    sink_temp_c : numeric
        Temperature the element relaxes to with no heat. [C]
    heat_w : numeric
        Heat into the element. [W]
    conductance_w_k : numeric
        Conductance to the sink. [W/K]

    Returns
    -------
    numpy.ndarray
        [C]

    Examples
    --------
    >>> float(rc_steady_temp_c(25.0, 1000.0, 100.0))
    35.0
    """
    return np.asarray(
        np.asarray(sink_temp_c, dtype=np.float64)
        + np.asarray(heat_w, dtype=np.float64) / np.asarray(conductance_w_k, dtype=np.float64)
    )


def rc_step(temp_c: Numeric, steady_temp_c: Numeric, tau_s: Numeric, dt_s: Numeric) -> FloatArray:
    """Advance a lumped element exactly by ``dt_s`` with constant inputs.

    Parameters
    ----------
    temp_c : numeric
        Temperature at the start. [C]
    steady_temp_c : numeric
        Steady-state temperature the inputs would lead to. [C]
    tau_s : numeric
        Time constant ``C/G``; ``inf`` for an element with no conductance. [s]
    dt_s : numeric
        Step length. [s]

    Returns
    -------
    numpy.ndarray
        Temperature after ``dt_s``. [C]

    Examples
    --------
    After one time constant 63.2 % of the way to steady state:

    >>> round(float(rc_step(20.0, 30.0, 60.0, 60.0)), 3)
    26.321
    """
    decay = np.exp(-np.asarray(dt_s, dtype=np.float64) / np.asarray(tau_s, dtype=np.float64))
    t_ss = np.asarray(steady_temp_c, dtype=np.float64)
    return np.asarray(t_ss + (np.asarray(temp_c, dtype=np.float64) - t_ss) * decay)


def rc_adiabatic_step(temp_c: Numeric, heat_w: Numeric, capacity_j_k: Numeric, dt_s: Numeric) -> FloatArray:
    """Advance an element with no conductance (``G = 0``): ``T + Q dt / C``.

    Parameters
    ----------
    temp_c : numeric
        Temperature at the start. [C]
    heat_w : numeric
        Net heat into the element. [W]
    capacity_j_k : numeric
        Heat capacity. [J/K]
    dt_s : numeric
        Step length. [s]

    Returns
    -------
    numpy.ndarray
        [C]

    Examples
    --------
    1 kW into 1.2 MJ/K (a 1000 m3 hall's air, parameters.md 4) for 60 s warms it by 0.05 K:

    >>> round(float(rc_adiabatic_step(25.0, 1000.0, 1.2e6, 60.0)), 6)
    25.05
    """
    return np.asarray(
        np.asarray(temp_c, dtype=np.float64)
        + np.asarray(heat_w, dtype=np.float64)
        * np.asarray(dt_s, dtype=np.float64)
        / np.asarray(capacity_j_k, dtype=np.float64)
    )


def room_propagator(
    air_capacity_j_k: float,
    solid_capacities_j_k: Sequence[float] | FloatArray,
    conductances_w_k: Sequence[float] | FloatArray,
    tau_s: float,
    dt_s: float,
) -> tuple[FloatArray, FloatArray]:
    """Exact step of the room air and the solids it washes: ``x(t + dt) = Phi x(t) + gamma Q``.

    With excess temperatures ``T_a`` (air) and ``T_i`` (solids: servers, racks) over a setpoint,
    heat ``Q`` into the air, a controller that pulls the air back with time constant ``tau`` and a
    conductance ``G_i`` between the air and each solid (a star network)::

        C_a dT_a/dt = Q - C_a T_a / tau - sum_i G_i (T_a - T_i)
        C_i dT_i/dt = G_i (T_a - T_i)

    i.e. ``C dx/dt = K x + e_a Q`` with ``K`` symmetric. Khankari ("Rate of Heating Analysis of Data
    Centers during Power Shutdown", ASHRAE Trans. 117(1), 2011) writes one solid this way: with no
    cooling the air warms at ``Q / C_a`` at first and at ``Q / (C_a + C_s)`` in the end, the rate
    decaying between with ``t_c = C_a C_s / (G (C_a + C_s))``. The solution over ``dt`` with constant
    inputs is exact: ``S = C^(-1/2) K C^(-1/2)`` is symmetric, so its eigenvalues ``lam`` are real
    and ``exp(A dt) = C^(-1/2) V exp(lam dt) V^T C^(1/2)``; the input term uses
    ``(exp(lam dt) - 1) / lam`` (``dt`` at ``lam = 0``). One node (no solids) is
    :func:`rc_step` with ``T_ss = Q tau / C_a``.

    Parameters
    ----------
    air_capacity_j_k : float
        Heat capacity of the air node, ``> 0``. [J/K]
    solid_capacities_j_k : sequence of float
        Heat capacity of each solid node, each ``> 0`` (may be empty). [J/K]
    conductances_w_k : sequence of float
        Air-to-solid conductance of each, ``>= 0``. [W/K]
    tau_s : float
        Controller pull-back time constant of the air (``inf``: none). [s]
    dt_s : float
        Step length. [s]

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        ``Phi`` (n+1 x n+1) and ``gamma`` (n+1): air first, then the solids in order. [-], [K/W]

    Examples
    --------
    5 kW into 14.5 kJ/K of air and 29 kJ/K of strongly coupled mass, no control, 10 s: both warm by
    ``5e3 * 10 / 43.5e3`` = 1.149 K.

    >>> phi, gamma = room_propagator(14.5e3, [29e3], [1e9], float("inf"), 10.0)
    >>> [round(float(v), 3) for v in gamma * 5e3]
    [1.149, 1.149]
    """
    modes = room_modes(air_capacity_j_k, solid_capacities_j_k, conductances_w_k, tau_s, dt_s)
    return modes.phi, modes.gamma


class RoomModes(NamedTuple):
    """The room's exact step of one length, whole and by mode (:func:`room_modes`)."""

    #: ``x' = phi x + gamma Q`` (:func:`room_propagator`). [-], [K/W]
    phi: FloatArray
    gamma: FloatArray
    #: In the modes ``z = right @ x`` (``x = left @ z``): ``z' = decay z + drive Q``. [-], [K/W]
    decay: FloatArray
    drive: FloatArray
    left: FloatArray
    right: FloatArray


def room_modes(
    air_capacity_j_k: float,
    solid_capacities_j_k: Sequence[float] | FloatArray,
    conductances_w_k: Sequence[float] | FloatArray,
    tau_s: float,
    dt_s: float,
) -> RoomModes:
    """The room's exact step over ``dt_s``, whole and by mode (parameters as :func:`room_propagator`).

    ``decay = exp(lam dt)`` per eigenvalue ``lam`` of the symmetrised network, ``drive`` its input
    term; computed once per step length, reused for every step of that length.
    """
    cs = np.asarray(solid_capacities_j_k, dtype=np.float64)
    g = np.asarray(conductances_w_k, dtype=np.float64)
    c = np.concatenate(([air_capacity_j_k], cs))
    k = np.zeros((c.size, c.size))
    k[0, 0] = -air_capacity_j_k / tau_s - g.sum()
    k[0, 1:] = k[1:, 0] = g
    k[np.arange(1, c.size), np.arange(1, c.size)] = -g
    r = np.sqrt(c)
    lam, v = np.linalg.eigh(k / np.outer(r, r))
    lam = np.minimum(lam, 0.0)  # negative semi-definite: a roundoff above 0 is 0
    safe = np.where(lam == 0.0, 1.0, lam)
    ramp = np.where(lam == 0.0, dt_s, np.expm1(lam * dt_s) / safe)
    left, right = v / r[:, None], v.T * r[None, :]
    decay, drive = np.exp(lam * dt_s), ramp * right[:, 0] / c[0]
    return RoomModes((left * decay) @ right, left @ drive, decay, drive, left, right)


def room_trajectory(
    air_k: float, solids_k: Sequence[float] | FloatArray, heat_w: FloatArray, modes: RoomModes
) -> FloatArray:
    """The room after each of ``K`` equal steps with heat ``heat_w[k]`` in step ``k``, vectorised.

    The same exact steps as :func:`room_step`, taken at once: in the room's modes each step is
    ``z_k = d z_(k-1) + b Q_k``, so ``z_k = d^k (z_0 + b sum_(j<=k) d^(-j) Q_j``), summed in chunks
    over which ``d^(-j)`` stays finite. The solution stays ``>= 0`` for ``Q >= 0`` (the network's
    matrix has no negative off-diagonal entry); roundoff below 0 is cut.

    Parameters
    ----------
    air_k, solids_k : float, sequence of float
        Air and solid excess temperatures at the start. [K]
    heat_w : numpy.ndarray
        Heat into the air in each step, shape ``(K,)``. [W]
    modes : RoomModes
        The room's step (:func:`room_modes`) at the steps' common length.

    Returns
    -------
    numpy.ndarray
        Shape ``(K, n + 1)``: the air's and then each solid's excess temperature after each step. [K]

    Examples
    --------
    Three 10 s steps of 5 kW into a rack's air and steel are one 30 s step:

    >>> inf = float("inf")
    >>> traj = room_trajectory(0.0, [0.0], np.full(3, 5e3), room_modes(14.5e3, [43.4e3], [41.5], inf, 10.0))
    >>> air, _ = room_step(0.0, [0.0], 5e3, 14.5e3, [43.4e3], [41.5], inf, 30.0)
    >>> round(float(traj[-1, 0]), 9) == round(air, 9)
    True
    """
    decay, drive, left, right = modes.decay, modes.drive, modes.left, modes.right
    q = np.asarray(heat_w, dtype=np.float64)
    x0 = np.concatenate(([air_k], np.asarray(solids_k, dtype=np.float64)))
    if q.size <= 4:  # a few steps: whole steps are cheaper than the modes' set-up
        out = np.empty((q.size, x0.size))
        for i in range(q.size):
            x0 = out[i] = np.maximum(modes.phi @ x0 + modes.gamma * q[i], 0.0)
        return out
    z0 = right @ x0
    z = np.empty((q.size, decay.size))
    for m, (d, b, y) in enumerate(zip(decay, drive, z0, strict=True)):
        rate = -np.log(d) if d > 0.0 else np.inf  # per step
        if rate > 30.0:  # relaxes within a step: d < 1e-13
            z[:, m] = b * q
            z[0, m] += d * y
            continue
        chunk = q.size if rate == 0.0 else max(1, int(600.0 / rate))
        for start in range(0, q.size, chunk):
            k = np.arange(1.0, min(chunk, q.size - start) + 1.0)
            seg = q[start : start + k.size]
            z[start : start + k.size, m] = np.exp(-rate * k) * (y + b * np.cumsum(np.exp(rate * k) * seg))
            y = z[start + k.size - 1, m]
    return np.maximum(z @ left.T, 0.0)


def room_step(
    air_k: float,
    solids_k: Sequence[float] | FloatArray,
    heat_w: float,
    air_capacity_j_k: float,
    solid_capacities_j_k: Sequence[float] | FloatArray,
    conductances_w_k: Sequence[float] | FloatArray,
    tau_s: float,
    dt_s: float,
) -> tuple[float, FloatArray]:
    """Advance the room air and its solids by ``dt_s`` exactly (:func:`room_propagator`).

    Parameters
    ----------
    air_k : float
        Air excess temperature at the start. [K]
    solids_k : sequence of float
        Each solid's excess temperature at the start. [K]
    heat_w : float
        Heat into the air over the step (net of what the plant removes at setpoint). [W]
    air_capacity_j_k, solid_capacities_j_k, conductances_w_k, tau_s, dt_s
        As :func:`room_propagator`.

    Returns
    -------
    (float, numpy.ndarray)
        Air and solid excess temperatures after ``dt_s``. [K]

    Examples
    --------
    5 kW into one rack's air (14.5 kJ/K) for 10 s, no solid coupled: ``5e3 * 10 / 14.5e3`` = 3.448 K.

    >>> a, s = room_step(0.0, [0.0], 5e3, 14.5e3, [43.4e3], [0.0], float("inf"), 10.0)
    >>> round(a, 3), float(s[0])
    (3.448, 0.0)
    """
    phi, gamma = room_propagator(air_capacity_j_k, solid_capacities_j_k, conductances_w_k, tau_s, dt_s)
    x = phi @ np.concatenate(([air_k], np.asarray(solids_k, dtype=np.float64))) + gamma * heat_w
    return float(x[0]), np.asarray(x[1:])


def rc_time_to_threshold_s(temp_c: Numeric, steady_temp_c: Numeric, tau_s: Numeric, threshold_c: Numeric) -> FloatArray:
    """Time until a relaxing element crosses ``threshold_c`` (``inf`` if it never does).

    Parameters
    ----------
    temp_c : numeric
        Temperature now. [C]
    steady_temp_c : numeric
        Steady-state temperature. [C]
    tau_s : numeric
        Time constant. [s]
    threshold_c : numeric
        Threshold. [C]

    Returns
    -------
    numpy.ndarray
        ``tau ln((T0 - T_ss)/(T_th - T_ss))`` when the threshold lies strictly between the start
        and the steady state, 0 if already at it, else ``inf``. [s]

    Examples
    --------
    >>> round(float(rc_time_to_threshold_s(20.0, 30.0, 60.0, 26.321205588)), 3)
    60.0
    >>> float(rc_time_to_threshold_s(20.0, 25.0, 60.0, 26.0))
    inf
    """
    t0 = np.asarray(temp_c, dtype=np.float64)
    tss = np.asarray(steady_temp_c, dtype=np.float64)
    th = np.asarray(threshold_c, dtype=np.float64)
    tau = np.asarray(tau_s, dtype=np.float64)
    shape = np.broadcast(t0, tss, th, tau).shape
    num = t0 - tss
    den = th - tss
    between = (np.sign(num) == np.sign(den)) & (np.abs(den) < np.abs(num)) & (den != 0)
    ratio = np.divide(num, den, out=np.ones(shape), where=between)
    out = np.where(between, tau * np.log(np.maximum(ratio, 1.0)), np.inf)
    return np.asarray(np.where(t0 == th, 0.0, out))


def rc_adiabatic_time_to_threshold_s(
    temp_c: Numeric, heat_w: Numeric, capacity_j_k: Numeric, threshold_c: Numeric
) -> FloatArray:
    """Time for an element with no conductance to reach ``threshold_c`` (``inf`` if never).

    Parameters
    ----------
    temp_c, heat_w, capacity_j_k, threshold_c : numeric
        As in :func:`rc_adiabatic_step`. [C], [W], [J/K], [C]

    Returns
    -------
    numpy.ndarray
        ``C (T_th - T0) / Q`` when heat drives the element toward the threshold, else ``inf``. [s]

    Examples
    --------
    >>> float(rc_adiabatic_time_to_threshold_s(25.0, 1000.0, 1.2e6, 26.0))
    1200.0
    """
    t0 = np.asarray(temp_c, dtype=np.float64)
    q = np.asarray(heat_w, dtype=np.float64)
    c = np.asarray(capacity_j_k, dtype=np.float64)
    gap = np.asarray(threshold_c, dtype=np.float64) - t0
    shape = np.broadcast(gap, q, c).shape
    t = np.divide(c * gap, q, out=np.full(shape, np.inf), where=gap * q > 0)
    return np.asarray(np.where(gap == 0, 0.0, t))


def die_steps(
    die0: FloatArray, steady_c: FloatArray, tau_s: float, dts: FloatArray, live: BoolArray
) -> tuple[FloatArray, FloatArray]:
    """Exact RC steps of the die over the block's ticks: temperature at the end and hottest live die per tick.

    Over a run of equal ticks the exact step ``T_k = a T_(k-1) + (1 - a) T_ss,k`` with
    ``a = exp(-dt/tau)`` is a first-order linear recurrence, evaluated for all ticks at once
    (:func:`rc_run`) instead of one Python step per tick.
    """
    k_ticks = dts.size
    if k_ticks == 1:
        die = rc_step(die0, steady_c[0], tau_s, dts[0])
        return die, np.array([np.max(die, where=live, initial=-np.inf)])
    temps = np.empty_like(steady_c)
    breaks = np.flatnonzero(np.diff(dts) != 0.0) + 1
    prev = np.asarray(die0, dtype=np.float64)
    for lo, hi in zip(np.concatenate(([0], breaks)), np.concatenate((breaks, [k_ticks])), strict=True):
        temps[lo:hi] = rc_run(prev, steady_c[lo:hi], math.exp(-float(dts[lo]) / tau_s))
        prev = temps[hi - 1]
    return np.array(temps[-1]), np.max(temps, axis=1, where=live[None, :], initial=-np.inf)


#: Longest run of ticks summed in one scaled cumulative sum (the scale ``a**-j`` stays below e**RC_SCALE_LN).
RC_CHUNK = 256
RC_SCALE_LN = 300.0


def rc_run(y0: FloatArray, x: FloatArray, a: float) -> FloatArray:
    """``y_k = a y_(k-1) + (1 - a) x_k`` for the rows of ``x`` ``(L, G)``, from ``y_(-1) = y0``.

    In closed form ``y_i = a**i (a y0 + (1 - a) sum_(j <= i) a**-j x_j)``: a cumulative sum per
    chunk of ticks short enough that ``a**-j`` stays finite. When ``a`` is negligible (a tick much
    longer than the time constant) ``y_k = x_k + a (x_(k-1) - x_k)``, exact to ``a**2``.
    """
    if a < 1e-12:
        prev = np.concatenate((y0[None, :], x[:-1]))
        return np.asarray(x + a * (prev - x))
    out = np.empty_like(x)
    chunk = max(1, min(RC_CHUNK, int(RC_SCALE_LN / -math.log(a)) if a < 1.0 else RC_CHUNK))
    y = y0
    for s in range(0, x.shape[0], chunk):
        xs = x[s : s + chunk]
        j = np.arange(xs.shape[0], dtype=np.float64)
        acc = np.cumsum(xs * ((1.0 - a) * a**-j)[:, None], axis=0)
        out[s : s + chunk] = (a**j)[:, None] * (a * y + acc)
        y = out[s + xs.shape[0] - 1]
    return out
