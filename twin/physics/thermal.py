"""Lumped RC thermal elements: the exact step and the time to reach a threshold.

A lumped element of heat capacity ``C`` [J/K] coupled by conductance ``G`` [W/K] to a sink at
``T_sink`` and heated by ``Q`` [W] obeys ``C dT/dt = Q - G (T - T_sink)``. With constant inputs its
solution is exact: ``T(t) = T_ss + (T0 - T_ss) exp(-t/tau)`` with ``T_ss = T_sink + Q/G`` and
``tau = C/G`` (any heat-transfer text, e.g. Incropera et al., *Fundamentals of Heat and Mass
Transfer*, 7th ed., 2011, sec. 5.2 "The lumped capacitance method"). Between events the twin uses
this closed form instead of small Euler steps, so a quiet hour costs one step.
"""

from __future__ import annotations

import numpy as np

from twin._types import FloatArray, Numeric

#: [EST] Conductance between one server's solid mass and the air through it: forced convection at
#: h ~ 50 W/m2/K (fan-driven air over fins and sheet metal; Incropera et al. 2011 table 1.1 gives
#: 25-250 W/m2/K for forced gas convection) over ~2 m2 of heat-sink fin and chassis surface. [W/K]
SERVER_AIR_CONDUCTANCE_W_K = 100.0


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


def air_mass_step(
    air_k: Numeric,
    mass_k: Numeric,
    heat_w: Numeric,
    air_capacity_j_k: Numeric,
    mass_capacity_j_k: Numeric,
    conductance_w_k: Numeric,
    tau_s: Numeric,
    dt_s: Numeric,
) -> tuple[FloatArray, FloatArray]:
    """Advance two coupled nodes exactly: room air, and the solid mass (servers, racks) it washes.

    With excess temperatures ``T_a`` (air) and ``T_m`` (mass) over a setpoint, heat ``Q`` into the
    air, a controller that pulls the air back with time constant ``tau`` and a conductance ``G``
    between the two::

        C_a dT_a/dt = Q - C_a T_a / tau - G (T_a - T_m)
        C_m dT_m/dt =                     G (T_a - T_m)

    i.e. ``dx/dt = A x + b`` with constant inputs, solved exactly over ``dt``:
    ``x(dt) = exp(A dt) x0 + (integral_0^dt exp(A s) ds) b``. The 2x2 matrix functions use
    Sylvester's formula on the eigenvalues of ``A``, which are real and distinct for ``G > 0`` (an RC
    network; e.g. Incropera et al. 2011 sec. 5.2 for one node, Moler & Van Loan, "Nineteen dubious
    ways to compute the exponential of a matrix", SIAM Review 45, 2003, sec. 4 for the formula).
    Limits: ``G = 0`` leaves the mass alone and the air warms at ``Q / C_a``; a large ``G`` makes one
    node warming at ``Q / (C_a + C_m)``; with ``tau = inf`` the nodes' heat grows by ``Q dt``.

    Parameters
    ----------
    air_k, mass_k : numeric
        Excess temperatures of the air and the mass at the start. [K]
    heat_w : numeric
        Heat into the air over the step (net of what the plant removes at setpoint). [W]
    air_capacity_j_k : numeric
        Heat capacity of the air node, ``> 0``. [J/K]
    mass_capacity_j_k : numeric
        Heat capacity of the mass node, ``> 0``. [J/K]
    conductance_w_k : numeric
        Air-to-mass conductance, ``>= 0``. [W/K]
    tau_s : numeric
        Controller pull-back time constant of the air (``inf``: none). [s]
    dt_s : numeric
        Step length. [s]

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Air and mass excess temperatures after ``dt_s``. [K]

    Examples
    --------
    5 kW into 14.5 kJ/K of air and 29 kJ/K of strongly coupled mass, no control, 10 s: both warm by
    ``5e3 * 10 / 43.5e3`` = 1.149 K.

    >>> a, m = air_mass_step(0.0, 0.0, 5e3, 14.5e3, 29e3, 1e9, float("inf"), 10.0)
    >>> round(float(a), 3), round(float(m), 3)
    (1.149, 1.149)
    """
    ta, tm = np.asarray(air_k, dtype=np.float64), np.asarray(mass_k, dtype=np.float64)
    ca, cm = np.asarray(air_capacity_j_k, dtype=np.float64), np.asarray(mass_capacity_j_k, dtype=np.float64)
    g, dt = np.asarray(conductance_w_k, dtype=np.float64), np.asarray(dt_s, dtype=np.float64)
    a11 = -1.0 / np.asarray(tau_s, dtype=np.float64) - g / ca
    a12, a21, a22 = g / ca, g / cm, -g / cm
    b1 = np.asarray(heat_w, dtype=np.float64) / ca
    disc = np.sqrt((a11 - a22) ** 2 + 4.0 * a12 * a21)
    tr = a11 + a22
    lam1, lam2 = 0.5 * (tr + disc), 0.5 * (tr - disc)
    split = disc > 0.0
    d = np.where(split, disc, 1.0)

    def phi(lam: FloatArray) -> FloatArray:  # (exp(lam dt) - 1) / lam, = dt at lam = 0
        safe = np.where(lam == 0.0, 1.0, lam)
        return np.where(lam == 0.0, dt, np.expm1(lam * dt) / safe)

    Pair = tuple[FloatArray, FloatArray]

    def apply(f1: FloatArray, f2: FloatArray, f0: FloatArray | float, x1: FloatArray, x2: FloatArray) -> Pair:
        """``f(A) x`` by Sylvester (``f1, f2`` at the eigenvalues); ``f0 x`` when A is 0 (no split)."""
        y1 = (f1 * ((a11 - lam2) * x1 + a12 * x2) - f2 * ((a11 - lam1) * x1 + a12 * x2)) / d
        y2 = (f1 * (a21 * x1 + (a22 - lam2) * x2) - f2 * (a21 * x1 + (a22 - lam1) * x2)) / d
        return np.where(split, y1, f0 * x1), np.where(split, y2, f0 * x2)

    e1, e2 = apply(np.exp(lam1 * dt), np.exp(lam2 * dt), np.ones_like(dt), ta, tm)
    f1, f2 = apply(phi(lam1), phi(lam2), dt, b1, np.zeros_like(b1))
    return np.asarray(e1 + f1), np.asarray(e2 + f2)


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
