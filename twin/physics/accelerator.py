"""Accelerator power from activity and clock, power-cap clocking, and die temperature.

Model (used by every function here)::

    P = P_idle + (P_max - P_idle) * (k_static * busy + k_mem * m + k_sm * s_f * f**gamma)
    s_f = min(1, s_1 / f)

``busy`` is the fraction of time kernels run, ``m`` the HBM activity (achieved over achievable
bandwidth), ``s_1`` the SM activity the work needs at boost clock, ``f`` the SM clock as a fraction
of boost and ``s_f`` the SM activity at clock ``f`` (the same work takes longer at a lower clock).
``k_sm = 1 - k_static - k_mem``. SM power per busy SM scales as ``f**gamma`` (gamma = 3: dynamic
power a*C*V^2*f with V roughly proportional to f; Weste & Harris, *CMOS VLSI Design*, 4th ed.,
2010, sec. 5.2). Memory power does not scale with the SM clock. Coefficients and their sources are
in ``twin/catalog/accelerators.csv``.
"""

from __future__ import annotations

import numpy as np

from twin._types import FloatArray, Numeric


def accelerator_power_w(
    idle_power_w: Numeric,
    max_power_w: Numeric,
    busy: Numeric,
    mem_activity: Numeric,
    sm_activity: Numeric,
    clock_fraction: Numeric,
    static_fraction: Numeric,
    mem_fraction: Numeric,
    clock_exponent: Numeric = 3.0,
) -> FloatArray:
    """Board power of an accelerator.

    Parameters
    ----------
    idle_power_w : numeric
        Power with no work at the idle P-state. [W]
    max_power_w : numeric
        Maximum board power (TDP) at full activity and boost clock. [W]
    busy : numeric
        Fraction of time any kernel runs. [0..1]
    mem_activity : numeric
        HBM traffic as a fraction of achievable bandwidth. [0..1]
    sm_activity : numeric
        SM activity the work needs at boost clock, ``s_1``. [0..1]
    clock_fraction : numeric
        SM clock as a fraction of boost clock, ``f``. [0..1]
    static_fraction, mem_fraction : numeric
        ``k_static`` and ``k_mem``, shares of the dynamic range. [1]
    clock_exponent : numeric
        ``gamma``, exponent of SM power in clock. [1]

    Returns
    -------
    numpy.ndarray
        Board power. [W]

    Notes
    -----
    See the module docstring for the equation.

    References
    ----------
    .. [1] N. Weste, D. Harris, *CMOS VLSI Design*, 4th ed., Addison-Wesley, 2010, sec. 5.2.
    .. [2] Ma et al., "The Illusion of Power Capping in LLM Decode", arXiv 2605.11999, 2026
       (decode 137-300 W on a 700 W H200; used to set ``k_static`` and ``k_mem``).

    Examples
    --------
    Full activity at boost clock draws the TDP; no work draws idle power:

    >>> float(accelerator_power_w(70, 700, 1, 1, 1, 1, 0.15, 0.30))
    700.0
    >>> float(accelerator_power_w(70, 700, 0, 0, 0, 1, 0.15, 0.30))
    70.0
    """
    f = np.clip(np.asarray(clock_fraction, dtype=np.float64), 1e-6, 1.0)
    s1 = np.clip(np.asarray(sm_activity, dtype=np.float64), 0.0, 1.0)
    s_f = np.minimum(1.0, s1 / f)
    k_st = np.asarray(static_fraction, dtype=np.float64)
    k_m = np.asarray(mem_fraction, dtype=np.float64)
    k_sm = 1.0 - k_st - k_m
    dyn = k_st * np.clip(busy, 0.0, 1.0) + k_m * np.clip(mem_activity, 0.0, 1.0) + k_sm * s_f * f**clock_exponent
    idle = np.asarray(idle_power_w, dtype=np.float64)
    return np.asarray(idle + (np.asarray(max_power_w, dtype=np.float64) - idle) * dyn)


def clock_for_power_limit(
    power_limit_w: Numeric,
    idle_power_w: Numeric,
    max_power_w: Numeric,
    busy: Numeric,
    mem_activity: Numeric,
    sm_activity: Numeric,
    static_fraction: Numeric,
    mem_fraction: Numeric,
    clock_exponent: Numeric = 3.0,
    min_clock_fraction: Numeric = 0.25,
) -> FloatArray:
    """Highest SM clock fraction at which :func:`accelerator_power_w` stays within a limit.

    This is what the GPU's power governor does under ``nvidia-smi -pl``: it lowers the clock until
    the board power fits the limit, never below ``min_clock_fraction``.

    Parameters
    ----------
    power_limit_w : numeric
        Power limit (cap, or a thermal limit). [W]
    idle_power_w, max_power_w, busy, mem_activity, sm_activity, static_fraction, mem_fraction,
    clock_exponent : numeric
        As in :func:`accelerator_power_w`.
    min_clock_fraction : numeric
        Lowest clock the governor uses. [0..1]

    Returns
    -------
    numpy.ndarray
        Clock fraction ``f`` in ``[min_clock_fraction, 1]``. [1]

    Notes
    -----
    With headroom ``h = (P_lim - P_idle)/(P_max - P_idle) - k_static*busy - k_mem*m``, SM power is
    ``k_sm*s_1*f**(gamma-1)`` while ``f >= s_1`` (the SMs are not saturated) and ``k_sm*f**gamma``
    below, so ``f = (h/(k_sm*s_1))**(1/(gamma-1))`` if that is ``>= s_1``, else
    ``(h/k_sm)**(1/gamma)``; clipped to ``[f_min, 1]``, and ``f_min`` when ``h <= 0``.

    Examples
    --------
    A compute-bound kernel (s_1 = 1) capped at the power it would draw at 80 % clock runs at 0.8:

    >>> p = float(accelerator_power_w(70, 700, 1, 0.5, 1, 0.8, 0.15, 0.30))
    >>> round(float(clock_for_power_limit(p, 70, 700, 1, 0.5, 1, 0.15, 0.30)), 6)
    0.8
    """
    idle = np.asarray(idle_power_w, dtype=np.float64)
    span = np.asarray(max_power_w, dtype=np.float64) - idle
    k_st = np.asarray(static_fraction, dtype=np.float64)
    k_m = np.asarray(mem_fraction, dtype=np.float64)
    k_sm = 1.0 - k_st - k_m
    gamma = np.asarray(clock_exponent, dtype=np.float64)
    s1 = np.clip(np.asarray(sm_activity, dtype=np.float64), 0.0, 1.0)
    h = (np.asarray(power_limit_w, dtype=np.float64) - idle) / span
    h_raw = h - k_st * np.clip(busy, 0.0, 1.0) - k_m * np.clip(mem_activity, 0.0, 1.0)
    h = np.maximum(h_raw, 0.0)
    # Region f >= s_1: SM power k_sm*s_1*f^(gamma-1).
    ratio_hi = np.divide(h, k_sm * s1, out=np.full(np.broadcast(h, s1).shape, np.inf), where=s1 > 1e-12)
    f_hi = ratio_hi ** (1.0 / (gamma - 1.0))
    # Region f < s_1: SM power k_sm*f^gamma.
    f_lo = (h / k_sm) ** (1.0 / gamma)
    f = np.where(f_hi >= s1, f_hi, f_lo)
    # A limit below the clock-independent power cannot be met: the governor sits at its floor.
    f = np.where(h_raw <= 0, min_clock_fraction, f)
    return np.asarray(np.clip(f, min_clock_fraction, 1.0))


def busy_for_power(
    power_w: Numeric,
    idle_power_w: Numeric,
    max_power_w: Numeric,
    static_fraction: Numeric,
    mem_fraction: Numeric,
    mem_per_busy: Numeric = 1.0,
    sm_per_busy: Numeric = 1.0,
) -> FloatArray:
    """Kernel-busy fraction that makes :func:`accelerator_power_w` draw a measured power.

    The inverse of the power model at boost clock along an activity profile that scales with
    ``busy``: ``m = mem_per_busy * busy`` and ``s_1 = sm_per_busy * busy``. With both at 1 the
    model is the linear utilisation model ``P = P_idle + (P_max - P_idle) * u`` that ExaDigiT's
    RAPS inverts to replay power telemetry [1]_.

    Parameters
    ----------
    power_w : numeric
        Measured board power. [W]
    idle_power_w, max_power_w : numeric
        As in :func:`accelerator_power_w`. [W]
    static_fraction, mem_fraction : numeric
        ``k_static`` and ``k_mem``. [1]
    mem_per_busy, sm_per_busy : numeric
        HBM and SM activity per unit of busy time. [1]

    Returns
    -------
    numpy.ndarray
        ``busy = (P - P_idle) / ((P_max - P_idle) (k_static + k_mem a_m + k_sm a_s))``, clipped
        to ``[0, 1]`` (a power below idle gives 0, above the profile's maximum 1). [1]

    References
    ----------
    .. [1] W. Brewer et al., "A digital twin framework for liquid-cooled supercomputers as
       demonstrated at exascale", Proc. SC24, pp. 324-341, 2024, arXiv:2410.05133; code
       github.com/ExaDigiT/RAPS, ``raps/utils.py`` ``power_to_utilization``.

    Examples
    --------
    An H100 (70 W idle, 700 W max) measured at 385 W is half busy under the linear model:

    >>> float(busy_for_power(385.0, 70.0, 700.0, 0.15, 0.30))
    0.5
    """
    idle = np.asarray(idle_power_w, dtype=np.float64)
    span = np.asarray(max_power_w, dtype=np.float64) - idle
    k_st = np.asarray(static_fraction, dtype=np.float64)
    k_m = np.asarray(mem_fraction, dtype=np.float64)
    per_busy = k_st + k_m * np.asarray(mem_per_busy) + (1.0 - k_st - k_m) * np.asarray(sm_per_busy)
    u = (np.asarray(power_w, dtype=np.float64) - idle) / (span * per_busy)
    return np.asarray(np.clip(u, 0.0, 1.0))


def thermal_power_limit_w(inlet_temp_c: Numeric, limit_temp_c: Numeric, thermal_resistance_k_w: Numeric) -> FloatArray:
    """Steady-state board power at which the die reaches ``limit_temp_c``.

    Parameters
    ----------
    inlet_temp_c : numeric
        Coolant (cold plate) or air inlet temperature. [C]
    limit_temp_c : numeric
        Die temperature not to exceed, e.g. the slowdown temperature. [C]
    thermal_resistance_k_w : numeric
        Die-to-inlet thermal resistance. [K/W]

    Returns
    -------
    numpy.ndarray
        ``(T_limit - T_inlet) / R_th``, floored at 0. [W]

    Examples
    --------
    >>> float(thermal_power_limit_w(49.0, 89.0, 0.04))
    1000.0
    """
    diff = np.asarray(limit_temp_c, dtype=np.float64) - np.asarray(inlet_temp_c, dtype=np.float64)
    return np.asarray(np.maximum(diff, 0.0) / np.asarray(thermal_resistance_k_w, dtype=np.float64))


def die_steady_temp_c(inlet_temp_c: Numeric, power_w: Numeric, thermal_resistance_k_w: Numeric) -> FloatArray:
    """Steady-state die temperature ``T_in + R_th * P``.

    Parameters
    ----------
    inlet_temp_c : numeric
        Coolant or air inlet temperature. [C]
    power_w : numeric
        Board power. [W]
    thermal_resistance_k_w : numeric
        Die-to-inlet thermal resistance. [K/W]

    Returns
    -------
    numpy.ndarray
        Die temperature. [C]

    References
    ----------
    .. [1] cooling-thermal.com, "Liquid cold plate thermal resistance" (vendor): 0.04 C/W gives a
       4 C rise per 100 W (parameters.md 3.4).

    Examples
    --------
    >>> float(die_steady_temp_c(30.0, 700.0, 0.04))
    58.0
    """
    return np.asarray(
        np.asarray(inlet_temp_c, dtype=np.float64)
        + np.asarray(thermal_resistance_k_w, dtype=np.float64) * np.asarray(power_w, dtype=np.float64)
    )
