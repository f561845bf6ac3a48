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
