"""Power-conversion stage losses (transformer, UPS, PDU/busway, PSU) and the UPS battery.

Each stage delivers ``P_out`` and draws ``P_in = P_out + P_loss(P_out)``. Two loss forms:

* quadratic: ``P_loss = a*P_rated + b*P_out + c*P_out**2/P_rated`` (no-load, proportional and
  resistive losses; structure of DOE EA-1565 for transformers and Schneider Electric White Paper
  113, "Electrical Efficiency Modeling for Data Centers", for UPSs);
* tabulated: efficiency at given load fractions (80 PLUS certification points), interpolated
  linearly on the loss fraction ``P_loss/P_rated``.

Coefficients and their sources are in ``twin/catalog/loss_curves.yaml``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from twin._types import FloatArray, Numeric

#: [EST] One-way charge and discharge efficiency of a Li-ion UPS battery string [1] (round trip
#: about 90 %); the default of every battery function here and of ``power.ups.battery``.
BATTERY_EFFICIENCY: float = 0.95


def quadratic_loss_w(load_w: Numeric, rated_w: Numeric, a: Numeric, b: Numeric, c: Numeric) -> FloatArray:
    """Loss of a stage with a fixed + proportional + quadratic loss curve.

    Parameters
    ----------
    load_w : numeric
        Output power of the stage (per unit). [W]
    rated_w : numeric
        Rated output power (per unit). [W]
    a, b, c : numeric
        No-load loss as a fraction of rating, proportional loss, quadratic loss at rating. [1]

    Returns
    -------
    numpy.ndarray
        ``a*P_rated + b*P + c*P**2/P_rated`` with ``P = max(load, 0)``. [W]

    References
    ----------
    .. [1] Schneider Electric, White Paper 113, "Electrical Efficiency Modeling for Data
       Centers" (fixed-loss term under under-loading).
    .. [2] US DOE, EA-1565, distribution transformer energy conservation standards (no-load plus
       load-squared loss structure).

    Examples
    --------
    The default UPS curve (a, b, c = 0.015, 0.025, 0.010) at half load of a 1 MW unit:

    >>> float(quadratic_loss_w(500e3, 1e6, 0.015, 0.025, 0.010))
    30000.0
    """
    p = np.maximum(np.asarray(load_w, dtype=np.float64), 0.0)
    r = np.asarray(rated_w, dtype=np.float64)
    quad = np.divide(p * p, r, out=np.zeros(np.broadcast(p, r).shape), where=r > 0)
    return np.asarray(a * r + b * p + c * quad)


def tabulated_loss_w(
    load_w: Numeric,
    rated_w: Numeric,
    load_fraction: Sequence[float] | FloatArray,
    efficiency: Sequence[float] | FloatArray,
) -> FloatArray:
    """Loss of a stage from efficiency points, interpolated on the loss fraction.

    Parameters
    ----------
    load_w : numeric
        Output power (per unit). [W]
    rated_w : float
        Rated output power (per unit). [W]
    load_fraction : array_like
        Increasing load fractions ``P_out/P_rated`` of the points. [1]
    efficiency : array_like
        Efficiency ``P_out/P_in`` at those points. [1]

    Returns
    -------
    numpy.ndarray
        Loss. [W]

    Notes
    -----
    The loss fraction at each point is ``x (1/eta - 1)``. Below the first point it is held at the
    linear extrapolation of the first two points to zero load (the no-load loss, floored at 0);
    above the last point it is extrapolated linearly from the last two.

    References
    ----------
    .. [1] 80 PLUS certification levels, en.wikipedia.org/wiki/80_Plus (parameters.md 2).

    Examples
    --------
    At a table point the efficiency is reproduced: 80 PLUS Titanium 96 % at 50 % of 3 kW:

    >>> loss = float(tabulated_loss_w(1500, 3000, [0.1, 0.2, 0.5, 1.0], [0.90, 0.94, 0.96, 0.91]))
    >>> round(1500 / (1500 + loss), 6)
    0.96
    """
    x = np.asarray(load_fraction, dtype=np.float64)
    eta = np.asarray(efficiency, dtype=np.float64)
    loss_frac = x * (1.0 / eta - 1.0)
    if x.size >= 2:
        slope0 = (loss_frac[1] - loss_frac[0]) / (x[1] - x[0])
        no_load = max(loss_frac[0] - slope0 * x[0], 0.0)
        slope1 = (loss_frac[-1] - loss_frac[-2]) / (x[-1] - x[-2])
    else:
        no_load, slope1 = float(loss_frac[0]), 0.0
    xs = np.concatenate(([0.0], x))
    ys = np.concatenate(([no_load], loss_frac))
    p = np.maximum(np.asarray(load_w, dtype=np.float64), 0.0)
    r = np.asarray(rated_w, dtype=np.float64)
    frac = np.divide(p, r, out=np.zeros(np.broadcast(p, r).shape), where=r > 0)
    inside = np.interp(frac, xs, ys)
    beyond = ys[-1] + slope1 * (frac - xs[-1])
    return np.asarray(np.where(frac > xs[-1], beyond, inside) * r)


def battery_step_j(
    stored_j: Numeric,
    power_w: Numeric,
    dt_s: Numeric,
    capacity_j: Numeric,
    charge_efficiency: Numeric = BATTERY_EFFICIENCY,
    discharge_efficiency: Numeric = BATTERY_EFFICIENCY,
) -> tuple[FloatArray, FloatArray]:
    """Advance a battery's stored energy with a constant terminal power.

    Parameters
    ----------
    stored_j : numeric
        Energy stored at the start. [J]
    power_w : numeric
        Terminal power, positive while discharging (delivered to the load), negative while
        charging (drawn from the bus). [W]
    dt_s : numeric
        Step length. [s]
    capacity_j : numeric
        Usable capacity. [J]
    charge_efficiency, discharge_efficiency : numeric
        One-way efficiencies. [1]

    Returns
    -------
    stored_j : numpy.ndarray
        Energy stored at the end, clipped to ``[0, capacity]``. [J]
    delivered_j : numpy.ndarray
        Energy actually exchanged at the terminals (positive delivered, negative absorbed). [J]

    Notes
    -----
    Discharging ``P`` for ``dt`` removes ``P dt / eta_d`` from storage; charging at ``-P`` adds
    ``eta_c |P| dt``. Limits cut the exchange so that storage stays within bounds. The default
    one-way efficiency :data:`BATTERY_EFFICIENCY` (0.95) is an [EST] for Li-ion UPS strings.

    Examples
    --------
    >>> s, e = battery_step_j(1e6, 1000.0, 100.0, 2e6, 1.0, 0.5)
    >>> float(s), float(e)
    (800000.0, 100000.0)
    """
    s0 = np.asarray(stored_j, dtype=np.float64)
    p = np.asarray(power_w, dtype=np.float64)
    dt = np.asarray(dt_s, dtype=np.float64)
    cap = np.asarray(capacity_j, dtype=np.float64)
    want = p * dt
    # Discharge: storage falls by want/eta_d, limited by what is stored.
    out_max = s0 * discharge_efficiency
    delivered_dis = np.minimum(np.maximum(want, 0.0), out_max)
    # Charge: storage rises by eta_c*|want|, limited by headroom.
    in_max = np.maximum(cap - s0, 0.0) / charge_efficiency
    absorbed = np.minimum(np.maximum(-want, 0.0), in_max)
    stored = s0 - delivered_dis / discharge_efficiency + absorbed * charge_efficiency
    return np.asarray(np.clip(stored, 0.0, cap)), np.asarray(delivered_dis - absorbed)


def battery_time_to_empty_s(
    stored_j: Numeric, power_w: Numeric, discharge_efficiency: Numeric = BATTERY_EFFICIENCY
) -> FloatArray:
    """Time a battery can deliver a constant power (``inf`` when not discharging).

    Parameters
    ----------
    stored_j : numeric
        Energy stored. [J]
    power_w : numeric
        Power delivered at the terminals. [W]
    discharge_efficiency : numeric
        One-way efficiency. [1]

    Returns
    -------
    numpy.ndarray
        ``eta_d * E / P`` where ``P > 0``, else ``inf``. [s]

    Examples
    --------
    A 1 kWh string delivering 12 kW at 100 % efficiency lasts 300 s:

    >>> float(battery_time_to_empty_s(3.6e6, 12e3, 1.0))
    300.0
    """
    e = np.asarray(stored_j, dtype=np.float64)
    p = np.asarray(power_w, dtype=np.float64)
    shape = np.broadcast(e, p).shape
    return np.asarray(np.divide(discharge_efficiency * e, p, out=np.full(shape, np.inf), where=p > 0))


def battery_capacity_for_runtime_j(
    runtime_s: Numeric, power_w: Numeric, min_soc: Numeric = 0.0, discharge_efficiency: Numeric = BATTERY_EFFICIENCY
) -> FloatArray:
    """Stored energy at full charge that delivers ``power_w`` for ``runtime_s`` down to ``min_soc``.

    Parameters
    ----------
    runtime_s : numeric
        Rated runtime (autonomy). [s]
    power_w : numeric
        Power delivered at the terminals over that time (the UPS rated output). [W]
    min_soc : numeric
        State of charge at which the UPS cuts off. [1]
    discharge_efficiency : numeric
        One-way efficiency. [1]

    Returns
    -------
    numpy.ndarray
        ``E = P t / (eta_d (1 - SoC_min))``. [J]

    References
    ----------
    .. [1] UPS autonomy of 30 s - 5 min today (EnerSys via electricalreview.co.uk, parameters.md 2).

    Examples
    --------
    Five minutes at 1 MW, lossless, cut off at 20 %: 300 MJ usable out of 375 MJ stored.

    >>> float(battery_capacity_for_runtime_j(300.0, 1e6, 0.2, 1.0))
    375000000.0
    """
    t = np.asarray(runtime_s, dtype=np.float64)
    p = np.asarray(power_w, dtype=np.float64)
    eta = np.asarray(discharge_efficiency, dtype=np.float64)
    return np.asarray(p * t / (eta * (1.0 - np.asarray(min_soc, dtype=np.float64))))


def battery_empty_offset_s(
    usable_j: float, power_w: FloatArray, dt_s: FloatArray, discharge_efficiency: float = BATTERY_EFFICIENCY
) -> float:
    """When a battery delivering a piecewise-constant power reaches its cut-off.

    Parameters
    ----------
    usable_j : float
        Stored energy above the cut-off at the start. [J]
    power_w : ndarray (K,)
        Power delivered at the terminals in each tick (constant within a tick). [W]
    dt_s : ndarray (K,)
        Tick lengths. [s]
    discharge_efficiency : float
        One-way efficiency. [1]

    Returns
    -------
    float
        Time from the start of the first tick to the cut-off, ``inf`` when the ticks do not exhaust
        the battery. [s]

    Notes
    -----
    Storage falls by ``P_k dt_k / eta_d`` per tick. In the tick ``k*`` where the cumulative draw
    passes ``E_u`` the crossing is at ``t_{k*} + eta_d (E_u - W_{k*}) / P_{k*}`` with ``W_{k*}``
    drawn before it: exact for constant power within a tick.

    Examples
    --------
    100 kJ usable, 1 kW for 60 s, then 2 kW: 60 kJ drawn, the last 40 kJ last 20 s.

    >>> battery_empty_offset_s(1e5, np.array([1e3, 2e3]), np.array([60.0, 60.0]), 1.0)
    80.0
    """
    if usable_j <= 0.0:
        return 0.0
    p = np.maximum(np.asarray(power_w, dtype=np.float64), 0.0)
    dt = np.asarray(dt_s, dtype=np.float64)
    drawn = np.cumsum(p * dt) / discharge_efficiency
    over = np.flatnonzero(drawn >= usable_j)
    if over.size == 0:
        return float("inf")
    k = int(over[0])
    before = float(drawn[k - 1]) if k > 0 else 0.0
    start = float(dt[:k].sum())
    return start + discharge_efficiency * (usable_j - before) / float(p[k])


def battery_time_to_full_s(
    stored_j: Numeric, capacity_j: Numeric, charge_power_w: Numeric, charge_efficiency: Numeric = BATTERY_EFFICIENCY
) -> FloatArray:
    """Time to full charge at a constant charger input power (``inf`` when not charging).

    Parameters
    ----------
    stored_j, capacity_j : numeric
        Energy stored now and at full charge. [J]
    charge_power_w : numeric
        Power drawn from the bus by the charger. [W]
    charge_efficiency : numeric
        One-way efficiency. [1]

    Returns
    -------
    numpy.ndarray
        ``(E_cap - E) / (eta_c P)``. [s]

    Examples
    --------
    >>> float(battery_time_to_full_s(0.0, 3.6e6, 1e3, 1.0))
    3600.0
    """
    gap = np.maximum(np.asarray(capacity_j, dtype=np.float64) - np.asarray(stored_j, dtype=np.float64), 0.0)
    rate = np.asarray(charge_power_w, dtype=np.float64) * np.asarray(charge_efficiency, dtype=np.float64)
    shape = np.broadcast(gap, rate).shape
    return np.asarray(np.divide(gap, rate, out=np.full(shape, np.inf), where=rate > 0))
