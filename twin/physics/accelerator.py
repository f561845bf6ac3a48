"""Accelerator power from activity and clock, power-cap clocking, and die temperature.

Model (used by every function here)::

    P   = P_idle + (P_max - P_idle) * (k_static * busy * g(f) + (k_uncore * busy + k_mem * m) / r
                                       + k_sm * s_f * g(f))
    g   = v(f)**2 * f                  core-domain dynamic power C V^2 f, 1 at boost clock
    v   = max(v_floor, f**((gamma - 1) / 2))   core voltage over its boost value
    s_f = min(1, s_1 / f),  r = max(1, s_1 / f)

``busy`` is the fraction of time kernels run, ``m`` the HBM activity (achieved over achievable
bandwidth) and ``s_1`` the SM activity the work needs at boost clock, ``f`` the SM (graphics) clock
as a fraction of boost and ``s_f`` the SM activity at clock ``f`` (the same work takes longer at a
lower clock). Where the SMs saturate (``s_1 > f``) the work stretches by ``r`` and its HBM traffic
per second falls by as much (the roofline); activities measured at the clock itself have
``s_1 <= f`` and ``r = 1``. ``k_sm = 1 - k_static - k_uncore - k_mem``.

Everything clocked by the graphics clock scales as CMOS dynamic power ``a C V^2 f`` [1]_: the SMs
(``k_sm``) and the share drawn whenever kernels run (``k_static``: clock distribution, L2 and
crossbar, which sit in the graphics-clock domain of NVIDIA GPUs [2]_). HBM power (``k_mem``) sits in
the memory-clock domain, which SM-clock locking and power capping leave alone, and so is the
rest of what the memory side draws while kernels run, whatever their traffic (``k_uncore``:
memory controllers, HBM PHYs and interfaces kept active). Both fall by the stretch ``r`` where
SM-bound work at a low clock leaves the memory side waiting. Across the DVFS range
the core voltage falls with the clock: proportionally (``gamma = 3``: power ``~ f**3``) down to a
voltage floor ``v_floor``, below which only the frequency falls (power ``~ v_floor**2 f``). That
shape, flat voltage below a knee and a steep rise above it, is what Guerreiro et al. estimated for
NVIDIA GPUs from power measurements across clock settings [2]_ and what Afzal et al. found as a
"transition frequency" in A100/H100/H200 power [3]_. With ``v_floor = 0`` the model reduces to the
all-``f**3`` core. Coefficients and their sources are in ``twin/catalog/accelerators.csv``.

References
----------
.. [1] N. Weste, D. Harris, *CMOS VLSI Design*, 4th ed., Addison-Wesley, 2010, sec. 5.2.
.. [2] J. Guerreiro, A. Ilic, N. Roma, P. Tomas, "Modeling and Decoupling the GPU Power Consumption
   for Cross-Domain DVFS", IEEE TPDS 30(11), 2019; model files github.com/hpc-ulisboa/gpupowermodel
   (``v2.0_TPDS2019/local_examples/Files_used/TitanXp/model_dvfs_titanxp.csv``).
.. [3] A. Afzal, M. M. Li, M. Panzlaff, "Modeling and Chasing the Energy-Efficiency Sweet Spots in
   Modern GPUs", arXiv:2607.00819, 2026.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from twin._types import FloatArray, IntArray, Numeric

#: Default core-voltage floor of :class:`AcceleratorPowerParams` and the voltage-curve functions:
#: the catalog's shared ``voltage_floor_fraction`` (``accelerators.csv``; a test keeps the two
#: equal). Callers that hold an accelerator spec use its own (``AcceleratorSpec.power_params``).
DEFAULT_VOLTAGE_FLOOR = 0.69

#: Power tolerance of :func:`clock_for_power_limit`, in units of the dynamic range (1e-9 W on a
#: 1 kW board).
CLOCK_SOLVE_TOLERANCE = 1e-12

#: Most solver steps of :func:`clock_for_power_limit` (Newton converges in a handful; bisection,
#: its fallback on flat stretches, needs about 50 to reach float resolution).
CLOCK_SOLVE_STEPS = 80


@dataclass(frozen=True, kw_only=True)
class AcceleratorPowerParams:
    """Coefficients of the accelerator power model (module docstring) of one board or one per column.

    Every field is a float or an array that broadcasts with the activities, so one object can hold
    a fleet's columns. :attr:`twin.catalog.AcceleratorSpec.power_params` builds it from the catalog
    (``twin/catalog/accelerators.csv``), which gives each SKU's value and its source.

    Attributes
    ----------
    idle_power_w : numeric
        ``P_idle``: power with no work at the idle P-state (catalog: public ``nvidia-smi`` dumps).
        [W]
    full_power_w : numeric
        ``P_max``: board power with every domain fully active at boost clock (catalog: fitted to
        the ML.ENERGY v3 serving measurements, ``twin.validation.serving_fit``). It may exceed
        the board's power limit (TDP): the governor then lowers the clock
        (:func:`clock_for_power_limit`). [W]
    static_power_fraction : numeric
        ``k_static``: share of the dynamic range drawn whenever kernels run (clock distribution,
        L2 and crossbar, in the graphics-clock domain [2]_; catalog: fitted like ``P_max``). [1]
    mem_power_fraction : numeric
        ``k_mem``: share of the dynamic range drawn by HBM traffic at full bandwidth, in the
        memory-clock domain (catalog: fitted like ``P_max``, no less than HBM's energy per bit
        allows). [1]
    uncore_power_fraction : numeric
        ``k_uncore``: share of the dynamic range the memory side (controllers, PHYs) draws
        whenever kernels run, outside the graphics clock domain: clock locking and capping lower
        it only where SM-bound work stretches (catalog: the share of the fitted busy power that
        meets the clock-lock and power-cap savings Ma et al. [4]_ and Samsi et al. measured).
        ``k_sm = 1 - k_static - k_uncore - k_mem``. [1]
    clock_exponent : numeric
        ``gamma``: core power goes as ``f**gamma`` where the core voltage scales with the clock
        (3: ``V ~ f`` in ``P = a C V^2 f`` [1]_). [1]
    voltage_floor_fraction : numeric
        ``v_floor``: lowest core voltage over the boost voltage, below which only the clock falls
        (Titan Xp: 0.69 [2]_; the same power shape on A100/H100/H200 [3]_). [1]
    min_clock_fraction : numeric
        Lowest SM clock the power/thermal governor uses, over boost clock ([EST] in the catalog).
        [1]

    Notes
    -----
    The defaults of ``clock_exponent``, ``voltage_floor_fraction`` and ``min_clock_fraction`` are
    the catalog's values shared by every accelerator (a test keeps them equal).

    References
    ----------
    .. [1] N. Weste, D. Harris, *CMOS VLSI Design*, 4th ed., Addison-Wesley, 2010, sec. 5.2.
    .. [2] Guerreiro et al., IEEE TPDS 30(11), 2019 (core voltage floor; L2 and clock power in the
       graphics-clock domain).
    .. [3] Afzal et al., arXiv:2607.00819, 2026.
    .. [4] Ma et al., "The Illusion of Power Capping in LLM Decode", arXiv 2605.11999, 2026.
    """

    idle_power_w: Numeric
    full_power_w: Numeric
    static_power_fraction: Numeric
    mem_power_fraction: Numeric
    uncore_power_fraction: Numeric
    clock_exponent: Numeric = 3.0
    voltage_floor_fraction: Numeric = DEFAULT_VOLTAGE_FLOOR
    min_clock_fraction: Numeric = 0.25


def core_voltage_fraction(
    clock_fraction: Numeric, clock_exponent: Numeric = 3.0, voltage_floor: Numeric = DEFAULT_VOLTAGE_FLOOR
) -> FloatArray:
    """Core voltage over its boost-clock value along the DVFS curve, ``v(f)``.

    Parameters
    ----------
    clock_fraction : numeric
        SM clock as a fraction of boost clock, ``f``. [0..1]
    clock_exponent : numeric
        ``gamma``: core power goes as ``f**gamma`` where the voltage scales (3: ``V ~ f``). [1]
    voltage_floor : numeric
        Lowest core voltage over the boost voltage, ``v_floor``. [1]

    Returns
    -------
    numpy.ndarray
        ``max(v_floor, f**((gamma - 1)/2))``. [1]

    References
    ----------
    .. [1] Guerreiro et al., IEEE TPDS 30(11), 2019: Titan Xp core voltage estimated flat at
       0.69 of its top-clock value up to about 0.7 of the top clock (module docstring).

    Examples
    --------
    >>> core_voltage_fraction([0.5, 0.69, 0.9, 1.0]).round(2)
    array([0.69, 0.69, 0.9 , 1.  ])
    """
    f = np.clip(np.asarray(clock_fraction, dtype=np.float64), 0.0, 1.0)
    gamma = np.asarray(clock_exponent, dtype=np.float64)
    return np.asarray(np.maximum(np.asarray(voltage_floor, dtype=np.float64), f ** ((gamma - 1.0) / 2.0)))


def core_power_scale(
    clock_fraction: Numeric, clock_exponent: Numeric = 3.0, voltage_floor: Numeric = DEFAULT_VOLTAGE_FLOOR
) -> FloatArray:
    """Graphics-clock-domain dynamic power over its boost value at fixed activity, ``g = v(f)**2 f``.

    Parameters
    ----------
    clock_fraction, clock_exponent, voltage_floor : numeric
        As in :func:`core_voltage_fraction`.

    Returns
    -------
    numpy.ndarray
        ``f * max(v_floor**2, f**(gamma - 1))``: ``f**3`` above the voltage floor, ``v_floor**2 f``
        below it. [1]

    References
    ----------
    .. [1] N. Weste, D. Harris, *CMOS VLSI Design*, 4th ed., 2010, sec. 5.2 (``P = a C V^2 f``).

    Examples
    --------
    Half clock at the voltage floor: 0.69**2 x 0.5 = 0.238 of boost power (0.125 if the voltage
    kept falling with the clock):

    >>> core_power_scale([0.5, 0.8, 1.0]).round(4)
    array([0.238, 0.512, 1.   ])
    """
    f = np.clip(np.asarray(clock_fraction, dtype=np.float64), 0.0, 1.0)
    return np.asarray(f * core_voltage_fraction(f, clock_exponent, voltage_floor) ** 2)


def accelerator_power_w(
    busy: Numeric,
    mem_activity: Numeric,
    sm_activity: Numeric,
    clock_fraction: Numeric,
    *,
    params: AcceleratorPowerParams,
) -> FloatArray:
    """Board power of an accelerator.

    Parameters
    ----------
    busy : numeric
        Fraction of time any kernel runs. [0..1]
    mem_activity : numeric
        HBM traffic as a fraction of achievable bandwidth, ``m`` (it falls by ``r`` where the SMs
        saturate at clock ``f``: module docstring). [0..1]
    sm_activity : numeric
        SM activity the work needs at boost clock, ``s_1``. [0..1]
    clock_fraction : numeric
        SM clock as a fraction of boost clock, ``f``. [0..1]
    params : AcceleratorPowerParams
        The board's coefficients (``min_clock_fraction`` unused here).

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
    .. [3] Guerreiro et al., IEEE TPDS 30(11), 2019 (core voltage floor; L2 and clock power in the
       graphics-clock domain).

    Examples
    --------
    Full activity at boost clock draws the TDP; no work draws idle power:

    >>> board = AcceleratorPowerParams(
    ...     idle_power_w=70, full_power_w=700, static_power_fraction=0.15,
    ...     mem_power_fraction=0.30, uncore_power_fraction=0.0
    ... )
    >>> float(accelerator_power_w(1, 1, 1, 1, params=board))
    700.0
    >>> float(accelerator_power_w(0, 0, 0, 1, params=board))
    70.0

    Memory-bound work (busy 1, HBM 0.7, SM 0.1) at boost, then with the clock locked at half:
    70 + 630 (0.15 + 0.21 + 0.055) = 331.45 W, and with ``g(0.5) = 0.69**2 x 0.5 = 0.23805``,
    70 + 630 (0.15 x 0.23805 + 0.21 + 0.55 x 0.2 x 0.23805) = 241.29 W:

    >>> accelerator_power_w(1, 0.7, 0.1, [1.0, 0.5], params=board).round(2)
    array([331.45, 241.29])
    """
    f = np.clip(np.asarray(clock_fraction, dtype=np.float64), 1e-6, 1.0)
    s1 = np.clip(np.asarray(sm_activity, dtype=np.float64), 0.0, 1.0)
    s_f = np.minimum(1.0, s1 / f)
    k_st = np.asarray(params.static_power_fraction, dtype=np.float64)
    k_m = np.asarray(params.mem_power_fraction, dtype=np.float64)
    k_u = np.asarray(params.uncore_power_fraction, dtype=np.float64)
    k_sm = 1.0 - k_st - k_u - k_m
    g = core_power_scale(f, params.clock_exponent, params.voltage_floor_fraction)
    b = np.clip(busy, 0.0, 1.0)
    core = (k_st * b + k_sm * s_f) * g
    stretch = np.maximum(1.0, s1 / f)  # SM-bound work at clock f takes this much longer
    dyn = core + (k_u * b + k_m * np.clip(mem_activity, 0.0, 1.0)) / stretch
    idle = np.asarray(params.idle_power_w, dtype=np.float64)
    return np.asarray(idle + (np.asarray(params.full_power_w, dtype=np.float64) - idle) * dyn)


def clock_for_power_limit(
    power_limit_w: Numeric,
    busy: Numeric,
    mem_activity: Numeric,
    sm_activity: Numeric,
    *,
    params: AcceleratorPowerParams,
    max_clock: Numeric = 1.0,
) -> FloatArray:
    """Highest SM clock fraction at which :func:`accelerator_power_w` stays within a limit.

    This is what the GPU's power governor does under ``nvidia-smi -pl``: it lowers the graphics
    clock (and with it the core voltage) until the board power fits the limit, never below
    ``params.min_clock_fraction``.

    Parameters
    ----------
    power_limit_w : numeric
        Power limit (cap, or a thermal limit). [W]
    busy, mem_activity, sm_activity : numeric
        As in :func:`accelerator_power_w`.
    params : AcceleratorPowerParams
        The board's coefficients, with the lowest clock the governor uses
        (``min_clock_fraction``).
    max_clock : numeric
        Highest clock allowed, over boost (GPU Boost's top bin at the die temperature,
        :func:`twin.physics.silicon.boost_clock_fraction`); not below ``min_clock_fraction``. [1]

    Returns
    -------
    numpy.ndarray
        Clock fraction ``f`` in ``[min_clock_fraction, max_clock]``. [1]

    Notes
    -----
    The core power ``(k_static busy + k_sm s_f) g(f)`` does not decrease with ``f`` (``g`` rises,
    and ``s_f g = min(g, s_1 g/f)`` with ``g/f = v**2`` non-decreasing), so the board power is
    monotone in the clock and the highest clock within the limit is found on
    ``[f_min, max_clock]`` by a safeguarded Newton iteration (bisection where a step leaves the
    bracket), to float resolution: ``max_clock`` where it fits, ``f_min`` where even the floor does
    not (the governor sits there).

    Examples
    --------
    A compute-bound kernel (s_1 = 1) capped at the power it would draw at 80 % clock runs at 0.8:

    >>> board = AcceleratorPowerParams(
    ...     idle_power_w=70, full_power_w=700, static_power_fraction=0.15,
    ...     mem_power_fraction=0.30, uncore_power_fraction=0.0
    ... )
    >>> p = float(accelerator_power_w(1, 0.5, 1, 0.8, params=board))
    >>> round(float(clock_for_power_limit(p, 1, 0.5, 1, params=board)), 9)
    0.8
    """
    names = [field.name for field in fields(AcceleratorPowerParams)]
    args = np.broadcast_arrays(
        *(
            np.asarray(a, dtype=np.float64)
            for a in (power_limit_w, busy, mem_activity, sm_activity, max_clock, *(getattr(params, n) for n in names))
        )
    )
    shape = args[0].shape
    limit, busy_a, mem_a, sm_a, top, *coefficients = (a.ravel() for a in args)
    flat = dict(zip(names, coefficients, strict=True))
    idle, pmax = flat["idle_power_w"], flat["full_power_w"]
    k_st, k_m, k_u = flat["static_power_fraction"], flat["mem_power_fraction"], flat["uncore_power_fraction"]
    gamma, v_fl, f_min = flat["clock_exponent"], flat["voltage_floor_fraction"], flat["min_clock_fraction"]

    def power(f: FloatArray, i: IntArray | slice = slice(None)) -> FloatArray:
        cells = AcceleratorPowerParams(**{n: c[i] for n, c in flat.items()})
        return accelerator_power_w(busy_a[i], mem_a[i], sm_a[i], f, params=cells)

    f_floor = np.clip(f_min, 0.0, 1.0)
    top = np.clip(top, f_floor, 1.0)
    out = top.copy()
    slack = CLOCK_SOLVE_TOLERANCE * (pmax - idle)  # rounding slack in watts
    over = power(top) > limit + slack
    stuck = over & (power(f_floor) > limit + slack)
    out[stuck] = f_floor[stuck]
    todo = np.flatnonzero(over & ~stuck)
    if todo.size:
        span = pmax[todo] - idle[todo]
        busy_t = np.clip(busy_a[todo], 0.0, 1.0)
        target = (limit[todo] - idle[todo]) / span
        out[todo] = _solve_clock(
            target,
            k_st[todo] * busy_t,
            1.0 - k_st[todo] - k_u[todo] - k_m[todo],
            k_u[todo] * busy_t + k_m[todo] * np.clip(mem_a[todo], 0.0, 1.0),
            np.clip(sm_a[todo], 0.0, 1.0),
            gamma[todo],
            v_fl[todo],
            f_floor[todo],
            top[todo],
        )
    return np.asarray(out.reshape(shape))


def _solve_clock(
    target: FloatArray,
    a: FloatArray,
    b: FloatArray,
    c: FloatArray,
    s1: FloatArray,
    gamma: FloatArray,
    v_floor: FloatArray,
    f_lo: FloatArray,
    f_hi: FloatArray,
) -> FloatArray:
    """Highest ``f`` in ``[f_lo, f_hi]`` with ``(a + b s_f) g(f) + c / stretch <= target``.

    The caller guarantees ``f_lo`` fits and ``f_hi`` does not. Safeguarded Newton: each iterate narrows
    the bracket ``[lo, hi]`` (``lo`` fits, ``hi`` does not) and a Newton step outside it, or on a
    flat stretch, falls back to bisection; it ends on the limit where the power still rises with
    the clock, or when the bracket is below float resolution.
    """
    v2 = v_floor**2
    knee = np.where(gamma > 1.0, v_floor ** (2.0 / np.maximum(gamma - 1.0, 1e-12)), 1.0)
    lo, hi = f_lo.copy(), f_hi.copy()
    x = hi.copy()
    tol = CLOCK_SOLVE_TOLERANCE
    # The one flat stretch: with no busy share (a = 0) the power is constant from f = s_1 up to
    # the voltage knee. Where it fits, the answer lies at or above the knee.
    flat = (a == 0.0) & (s1 < knee) & (knee > lo) & (knee < hi)
    lo = np.where(flat & (b * s1 * v2 + c <= target + tol), knee, lo)
    for _ in range(CLOCK_SOLVE_STEPS):
        above = x > knee
        g = np.where(above, x**gamma, v2 * x)
        dg = np.where(above, gamma * x ** (gamma - 1.0), v2)
        free = x >= s1  # SMs not saturated: SM power s_1 g/f, HBM activity unchanged
        val = np.where(free, a * g + b * s1 * g / x + c, (a + b) * g + c * x / np.maximum(s1, 1e-300))
        slope = np.where(free, a * dg + b * s1 * (dg / x - g / x**2), (a + b) * dg + c / np.maximum(s1, 1e-300))
        fits = val <= target + tol
        lo = np.where(fits, x, lo)
        hi = np.where(fits, hi, x)
        # Converged: on the limit (within tol) where the power still rises with the clock, so no
        # higher clock fits; on a flat stretch keep bisecting towards its top.
        done = (fits & (val >= target - tol) & (slope > 0)) | (hi - lo <= 4e-16)
        if np.all(done):
            break
        with np.errstate(over="ignore"):  # a subnormal slope steps to +-inf: outside the bracket, bisected
            newton = x - (val - target) / np.where(slope > 0, slope, np.inf)
        ok = (slope > 0) & (newton > lo) & (newton < hi)
        x = np.where(done, x, np.where(ok, newton, 0.5 * (lo + hi)))
    return lo


def busy_for_power(
    power_w: Numeric,
    *,
    params: AcceleratorPowerParams,
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
    params : AcceleratorPowerParams
        The board's coefficients (``P_idle``, ``P_max``, ``k_static``, ``k_mem`` read here).
    mem_per_busy, sm_per_busy : numeric
        HBM and SM activity per unit of busy time. [1]

    Returns
    -------
    numpy.ndarray
        ``busy = (P - P_idle) / ((P_max - P_idle) (k_static + k_uncore + k_mem a_m + k_sm a_s))``, clipped
        to ``[0, 1]`` (a power below idle gives 0, above the profile's maximum 1). [1]

    References
    ----------
    .. [1] W. Brewer et al., "A digital twin framework for liquid-cooled supercomputers as
       demonstrated at exascale", Proc. SC24, pp. 324-341, 2024, arXiv:2410.05133; code
       github.com/ExaDigiT/RAPS, ``raps/utils.py`` ``power_to_utilization``.

    Examples
    --------
    An H100 (70 W idle, 700 W max) measured at 385 W is half busy under the linear model:

    >>> board = AcceleratorPowerParams(
    ...     idle_power_w=70.0, full_power_w=700.0, static_power_fraction=0.15,
    ...     mem_power_fraction=0.30, uncore_power_fraction=0.0
    ... )
    >>> float(busy_for_power(385.0, params=board))
    0.5
    """
    idle = np.asarray(params.idle_power_w, dtype=np.float64)
    span = np.asarray(params.full_power_w, dtype=np.float64) - idle
    k_st = np.asarray(params.static_power_fraction, dtype=np.float64)
    k_m = np.asarray(params.mem_power_fraction, dtype=np.float64)
    k_u = np.asarray(params.uncore_power_fraction, dtype=np.float64)
    per_busy = k_st + k_u + k_m * np.asarray(mem_per_busy) + (1.0 - k_st - k_u - k_m) * np.asarray(sm_per_busy)
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
