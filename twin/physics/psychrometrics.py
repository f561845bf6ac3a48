"""Moist-air psychrometrics: saturation pressure, humidity ratio, dew point, wet-bulb.

Pure, vectorised functions of numpy arrays after the formulation of the ASHRAE Handbook
Fundamentals 2017, ch. 1 (the same equations PsychroLib implements). Temperatures in degrees
Celsius, pressures in pascals, humidity ratio in kg of water per kg of dry air.

Iterative inverses (dew point, wet-bulb) use a fixed number of bisection steps over every
element at once, so they are branch-free and converge to far below 0.001 K.

References
----------
.. [1] ASHRAE, "Psychrometrics", ch. 1 in *ASHRAE Handbook - Fundamentals (SI)*, Atlanta, GA,
   USA: ASHRAE, 2017: eqs. (5)-(6) Hyland-Wexler saturation pressure, (20) humidity ratio,
   (33)/(35) psychrometric (wet-bulb) equation, Table 3 saturation pressures, Example 1.
.. [2] D. Meyer and D. Thevenard, "PsychroLib: a library of psychrometric functions to
   calculate thermodynamic properties of air," *J. Open Source Softw.*, vol. 4, no. 33,
   p. 1137, 2019, doi:10.21105/joss.01137 (switch of eqs. 5/6 at the triple point).
"""

from __future__ import annotations

import numpy as np

from twin._types import FloatArray, Numeric
from twin.units import STANDARD_PRESSURE_PA, ZERO_C_IN_K

#: Ratio of the molar masses of water and dry air, 18.015268/28.966 [-] ([1] eq. 20).
MOLAR_MASS_RATIO: float = 0.621945
#: Triple point of water [C]; eq. (5) (over ice) applies at or below it, eq. (6) above ([2]).
TRIPLE_POINT_C: float = 0.01
#: Validity range of the Hyland-Wexler fits, -100 to 200 C ([1] eqs. 5-6); inputs are clipped.
SAT_RANGE_C: tuple[float, float] = (-100.0, 200.0)

# Hyland-Wexler coefficients, [1] eq. (5) (over ice, T in K, p in Pa) ...
_ICE = (-5.6745359e03, 6.3925247, -9.677843e-03, 6.2215701e-07, 2.0747825e-09, -9.484024e-13)
_ICE_LN = 4.1635019
# ... and eq. (6) (over liquid water).
_LIQ = (-5.8002206e03, 1.3914993, -4.8640239e-02, 4.1764768e-05, -1.4452093e-08)
_LIQ_LN = 6.5459673

#: Bisection steps of the iterative inverses: the bracket (at most 300 K) shrinks by 2**-48.
_BISECTION_STEPS = 48
#: Temperature step of the slope and the stopping step of the Newton inversion. [K]
_SLOPE_STEP_K = 1e-3
_NEWTON_TOL_K = 1e-9


def saturation_vapor_pressure_pa(temp_c: Numeric) -> FloatArray:
    """Saturation pressure of water vapour over liquid water (above 0.01 C) or ice.

    Parameters
    ----------
    temp_c : float or array_like
        Temperature. [C] Clipped to the fit's validity range, -100 to 200 C.

    Returns
    -------
    numpy.ndarray
        Saturation vapour pressure. [Pa]

    Notes
    -----
    Hyland-Wexler (1983), [1] eqs. (5) and (6), with T in kelvin:
    ``ln p_ws = C1/T + C2 + C3 T + C4 T^2 + C5 T^3 (+ C6 T^4) + C7 ln T``.
    Within 300 ppm of the values of [1] Table 3.

    References
    ----------
    .. [1] ASHRAE Handbook - Fundamentals (SI), 2017, ch. 1, eqs. (5)-(6), Table 3.

    Examples
    --------
    >>> round(float(saturation_vapor_pressure_pa(25.0)))  # Table 3: 3169.7 Pa (160 ppm off)
    3169
    """
    t_c = np.clip(np.asarray(temp_c, dtype=np.float64), *SAT_RANGE_C)
    t_k = t_c + ZERO_C_IN_K
    c1, c2, c3, c4, c5, c6 = _ICE
    ln_ice = c1 / t_k + c2 + t_k * (c3 + t_k * (c4 + t_k * (c5 + t_k * c6))) + _ICE_LN * np.log(t_k)
    c8, c9, c10, c11, c12 = _LIQ
    ln_liq = c8 / t_k + c9 + t_k * (c10 + t_k * (c11 + t_k * c12)) + _LIQ_LN * np.log(t_k)
    return np.exp(np.where(t_c <= TRIPLE_POINT_C, ln_ice, ln_liq))


def humidity_ratio(vapor_pressure_pa: Numeric, pressure_pa: Numeric = STANDARD_PRESSURE_PA) -> FloatArray:
    """Humidity ratio of moist air from its water-vapour partial pressure.

    Parameters
    ----------
    vapor_pressure_pa : float or array_like
        Partial pressure of water vapour. [Pa]
    pressure_pa : float or array_like
        Total (station) pressure. [Pa]

    Returns
    -------
    numpy.ndarray
        Humidity ratio W, mass of water per mass of dry air. [kg/kg] Infinite where the vapour
        pressure reaches the total pressure.

    Notes
    -----
    ``W = 0.621945 p_w / (p - p_w)`` ([1] eq. 20).

    References
    ----------
    .. [1] ASHRAE Handbook - Fundamentals (SI), 2017, ch. 1, eq. (20).

    Examples
    --------
    >>> round(float(humidity_ratio(1000.0, 100_000.0)), 6)  # 0.621945 * 1000 / 99000
    0.006282
    """
    p_w = np.maximum(np.asarray(vapor_pressure_pa, dtype=np.float64), 0.0)
    dry = np.asarray(pressure_pa, dtype=np.float64) - p_w
    shape = np.broadcast_shapes(p_w.shape, dry.shape)
    out = np.full(shape, np.inf)
    return np.divide(MOLAR_MASS_RATIO * p_w, dry, out=out, where=dry > 0.0)


def vapor_pressure_from_humidity_ratio_pa(
    humidity_ratio_kg_kg: Numeric, pressure_pa: Numeric = STANDARD_PRESSURE_PA
) -> FloatArray:
    """Water-vapour partial pressure from the humidity ratio ([1] eq. 20 solved for p_w).

    Parameters
    ----------
    humidity_ratio_kg_kg : float or array_like
        Humidity ratio. [kg/kg] Negative values are taken as 0.
    pressure_pa : float or array_like
        Total pressure. [Pa]

    Returns
    -------
    numpy.ndarray
        Partial pressure of water vapour, ``p W / (0.621945 + W)``. [Pa]

    References
    ----------
    .. [1] ASHRAE Handbook - Fundamentals (SI), 2017, ch. 1, eq. (20).

    Examples
    --------
    >>> round(float(vapor_pressure_from_humidity_ratio_pa(0.621945, 100_000.0)), 1)
    50000.0
    """
    w = np.maximum(np.asarray(humidity_ratio_kg_kg, dtype=np.float64), 0.0)
    return np.asarray(pressure_pa, dtype=np.float64) * w / (MOLAR_MASS_RATIO + w)


def dew_point_c(vapor_pressure_pa: Numeric) -> FloatArray:
    """Dew-point (frost-point below 0.01 C) temperature of a given vapour pressure.

    Parameters
    ----------
    vapor_pressure_pa : float or array_like
        Partial pressure of water vapour. [Pa]

    Returns
    -------
    numpy.ndarray
        Temperature at which the vapour pressure equals the saturation pressure. [C] Limited to
        -100 to 200 C (a vapour pressure of 0 gives -100 C).

    Notes
    -----
    Inverts :func:`saturation_vapor_pressure_pa` ([1] eqs. 5-6) by 48 bisection steps on
    [-100, 200] C (final bracket 1e-12 K); the saturation pressure is monotone in temperature.

    References
    ----------
    .. [1] ASHRAE Handbook - Fundamentals (SI), 2017, ch. 1, eqs. (5)-(6).

    Examples
    --------
    >>> round(float(dew_point_c(3169.7)), 2)  # Table 3: p_ws(25 C) = 3169.7 Pa
    25.0
    """
    target = np.asarray(vapor_pressure_pa, dtype=np.float64)
    lo = np.full(target.shape, SAT_RANGE_C[0])
    hi = np.full(target.shape, SAT_RANGE_C[1])
    for _ in range(_BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        above = saturation_vapor_pressure_pa(mid) > target
        hi = np.where(above, mid, hi)
        lo = np.where(above, lo, mid)
    return 0.5 * (lo + hi)


def humidity_ratio_from_wet_bulb(
    dry_bulb_c: Numeric, wet_bulb_c: Numeric, pressure_pa: Numeric = STANDARD_PRESSURE_PA
) -> FloatArray:
    """Humidity ratio from dry-bulb and thermodynamic wet-bulb temperatures.

    Parameters
    ----------
    dry_bulb_c : float or array_like
        Dry-bulb temperature t. [C]
    wet_bulb_c : float or array_like
        Thermodynamic wet-bulb temperature t*. [C]
    pressure_pa : float or array_like
        Total pressure. [Pa]

    Returns
    -------
    numpy.ndarray
        Humidity ratio W. [kg/kg] (Negative for impossible pairs far below saturation.)

    Notes
    -----
    The psychrometric equation, [1] eq. (33) for t* >= 0 C::

        W = ((2501 - 2.326 t*) W_s* - 1.006 (t - t*)) / (2501 + 1.86 t - 4.186 t*)

    and eq. (35) below freezing::

        W = ((2830 - 0.24 t*) W_s* - 1.006 (t - t*)) / (2830 + 1.86 t - 2.1 t*)

    where ``W_s*`` is the saturation humidity ratio at t*.

    References
    ----------
    .. [1] ASHRAE Handbook - Fundamentals (SI), 2017, ch. 1, eqs. (33) and (35), Example 1.

    Examples
    --------
    >>> round(float(humidity_ratio_from_wet_bulb(40.0, 20.0)), 4)  # [1] Example 1: 0.0065 *
    0.0064

    (*) [1] uses the tabulated W_s*(20 C) = 0.014 75, which includes the enhancement factor;
    eqs. (5)/(20) give 0.014 70.
    """
    t = np.asarray(dry_bulb_c, dtype=np.float64)
    ts = np.asarray(wet_bulb_c, dtype=np.float64)
    ws = humidity_ratio(saturation_vapor_pressure_pa(ts), pressure_pa)
    above = ((2501.0 - 2.326 * ts) * ws - 1.006 * (t - ts)) / (2501.0 + 1.86 * t - 4.186 * ts)
    below = ((2830.0 - 0.24 * ts) * ws - 1.006 * (t - ts)) / (2830.0 + 1.86 * t - 2.1 * ts)
    return np.where(ts >= 0.0, above, below)


def wet_bulb_c(dry_bulb_c: Numeric, dew_point_c: Numeric, pressure_pa: Numeric = STANDARD_PRESSURE_PA) -> FloatArray:
    """Thermodynamic wet-bulb temperature from dry-bulb and dew-point temperatures.

    Parameters
    ----------
    dry_bulb_c : float or array_like
        Dry-bulb temperature. [C]
    dew_point_c : float or array_like
        Dew-point temperature. [C] Values above the dry-bulb are taken as the dry-bulb
        (saturated air), as weather files round them.
    pressure_pa : float or array_like
        Station pressure. [Pa] Default: standard atmosphere, 101 325 Pa.

    Returns
    -------
    numpy.ndarray
        Wet-bulb temperature, between the dew point and the dry-bulb. [C]

    Notes
    -----
    The humidity ratio of the air is ``W(p_ws(t_dp), p)`` ([1] eqs. 5-6, 20). The wet-bulb t*
    solves the psychrometric equation ``W_psy(t, t*, p) = W`` ([1] eqs. 33/35, see
    :func:`humidity_ratio_from_wet_bulb`); ``W_psy`` rises with t*, so 48 bisection steps on
    the bracket [t_dp, t] give t* to below 1e-9 K against those equations.

    References
    ----------
    .. [1] ASHRAE Handbook - Fundamentals (SI), 2017, ch. 1, eqs. (5), (6), (20), (33), (35).
    .. [2] D. Meyer and D. Thevenard, "PsychroLib," *J. Open Source Softw.* 4(33), 1137, 2019,
       doi:10.21105/joss.01137 (same bracket and bisection, one value at a time).

    Examples
    --------
    >>> round(float(wet_bulb_c(20.0, 20.0)), 6)  # saturated air: wet-bulb = dry-bulb
    20.0
    """
    t = np.asarray(dry_bulb_c, dtype=np.float64)
    t_dp = np.minimum(np.asarray(dew_point_c, dtype=np.float64), t)
    p = np.asarray(pressure_pa, dtype=np.float64)
    w = humidity_ratio(saturation_vapor_pressure_pa(t_dp), p)
    lo, hi, t, p, w = np.broadcast_arrays(t_dp, t, t, p, w)
    lo, hi = lo.copy(), hi.copy()
    for _ in range(_BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        too_wet = humidity_ratio_from_wet_bulb(t, mid, p) > w
        hi = np.where(too_wet, mid, hi)
        lo = np.where(too_wet, lo, mid)
    return 0.5 * (lo + hi)


def dew_point_from_rh_c(dry_bulb_c: Numeric, rh: Numeric) -> FloatArray:
    """Dew-point temperature from dry-bulb temperature and relative humidity.

    Parameters
    ----------
    dry_bulb_c : float or array_like
        Dry-bulb temperature. [C]
    rh : float or array_like
        Relative humidity ``p_w / p_ws(t)``, clipped to 0..1. [-]

    Returns
    -------
    numpy.ndarray
        Dew-point temperature. [C]

    References
    ----------
    .. [1] ASHRAE Handbook - Fundamentals (SI), 2017, ch. 1, eqs. (5)-(6) and the definition
       of relative humidity, eq. (24).

    Examples
    --------
    >>> round(float(dew_point_from_rh_c(25.0, 1.0)), 6)
    25.0
    """
    phi = np.clip(np.asarray(rh, dtype=np.float64), 0.0, 1.0)
    return np.minimum(dew_point_c(phi * saturation_vapor_pressure_pa(dry_bulb_c)), dry_bulb_c)


def wet_bulb_from_rh_c(dry_bulb_c: Numeric, rh: Numeric, pressure_pa: Numeric = STANDARD_PRESSURE_PA) -> FloatArray:
    """Thermodynamic wet-bulb temperature from dry-bulb temperature and relative humidity.

    Parameters
    ----------
    dry_bulb_c : float or array_like
        Dry-bulb temperature. [C]
    rh : float or array_like
        Relative humidity, 0..1. [-]
    pressure_pa : float or array_like
        Station pressure. [Pa]

    Returns
    -------
    numpy.ndarray
        Wet-bulb temperature. [C]

    Notes
    -----
    ``wet_bulb_c(t, dew_point_from_rh_c(t, rh), p)``.

    References
    ----------
    .. [1] ASHRAE Handbook - Fundamentals (SI), 2017, ch. 1, eqs. (5), (6), (20), (24), (33).

    Examples
    --------
    >>> round(float(wet_bulb_from_rh_c(30.0, 0.5)), 1)  # psychrometric chart: 22.0 C
    22.0
    """
    return wet_bulb_c(dry_bulb_c, dew_point_from_rh_c(dry_bulb_c, rh), pressure_pa)


def relative_humidity(dry_bulb_c: Numeric, dew_point_c: Numeric) -> FloatArray:
    """Relative humidity from dry-bulb and dew-point temperatures.

    Parameters
    ----------
    dry_bulb_c : float or array_like
        Dry-bulb temperature. [C]
    dew_point_c : float or array_like
        Dew-point temperature. [C]

    Returns
    -------
    numpy.ndarray
        ``p_ws(t_dp) / p_ws(t)``, clipped to 0..1. [-]

    References
    ----------
    .. [1] ASHRAE Handbook - Fundamentals (SI), 2017, ch. 1, eqs. (5)-(6), (24).

    Examples
    --------
    >>> round(float(relative_humidity(25.0, 25.0)), 6)
    1.0
    """
    ratio = saturation_vapor_pressure_pa(dew_point_c) / saturation_vapor_pressure_pa(dry_bulb_c)
    return np.clip(ratio, 0.0, 1.0)


def moist_air_enthalpy_j_kg(dry_bulb_c: Numeric, humidity_ratio_kg_kg: Numeric) -> FloatArray:
    """Specific enthalpy of moist air per kilogram of dry air.

    Parameters
    ----------
    dry_bulb_c : float or array_like
        Dry-bulb temperature t. [C]
    humidity_ratio_kg_kg : float or array_like
        Humidity ratio W. [kg/kg]

    Returns
    -------
    numpy.ndarray
        ``h = 1.006 t + W (2501 + 1.86 t)`` kJ/kg, here in J/kg of dry air (zero for dry air at
        0 C, liquid water at 0 C for the vapour). [J/kg]

    References
    ----------
    .. [1] ASHRAE Handbook - Fundamentals (SI), 2017, ch. 1, eq. (30).

    Examples
    --------
    >>> round(float(moist_air_enthalpy_j_kg(20.0, 0.01)))  # 20.12 + 0.01 x 2538.2 kJ/kg
    45502
    """
    t = np.asarray(dry_bulb_c, dtype=np.float64)
    w = np.asarray(humidity_ratio_kg_kg, dtype=np.float64)
    return 1e3 * (1.006 * t + w * (2501.0 + 1.86 * t))


def saturated_air_enthalpy_j_kg(temp_c: Numeric, pressure_pa: Numeric = STANDARD_PRESSURE_PA) -> FloatArray:
    """Enthalpy of saturated air at ``temp_c``: :func:`moist_air_enthalpy_j_kg` at ``W_s(t)``. [J/kg]

    References
    ----------
    .. [1] ASHRAE Handbook - Fundamentals (SI), 2017, ch. 1, eqs. (5)-(6), (20), (30); Table 2
       gives 57.544 kJ/kg at 20 C, with the enhancement factor (W_s 0.014758, not 0.014695).

    Examples
    --------
    >>> round(float(saturated_air_enthalpy_j_kg(20.0)) / 1e3, 2)  # [1] Table 2: 57.54 (0.2 % off)
    57.42
    """
    w_s = humidity_ratio(saturation_vapor_pressure_pa(temp_c), pressure_pa)
    return moist_air_enthalpy_j_kg(temp_c, w_s)


def saturation_temp_from_enthalpy_c(enthalpy_j_kg: Numeric, pressure_pa: Numeric = STANDARD_PRESSURE_PA) -> FloatArray:
    """Temperature of saturated air that has the enthalpy ``enthalpy_j_kg``. [C]

    Inverts :func:`saturated_air_enthalpy_j_kg` (monotone and convex in temperature) by Newton
    steps from 25 C (slope by a 1 mK difference), each kept inside the bracket the steps so far
    have found on -100..200 C (limits of the saturation-pressure fits; the result is clipped to
    them), bisecting where a step would leave it; it stops when no step moves more than 1e-9 K
    (5-8 steps over the weather's range, where bisection to the same 1e-12 K needs 48).

    References
    ----------
    .. [1] ASHRAE Handbook - Fundamentals (SI), 2017, ch. 1, eqs. (5)-(6), (20), (30).

    Examples
    --------
    >>> round(float(saturation_temp_from_enthalpy_c(saturated_air_enthalpy_j_kg(30.0))), 6)
    30.0
    """
    target, p = np.broadcast_arrays(
        np.asarray(enthalpy_j_kg, dtype=np.float64), np.asarray(pressure_pa, dtype=np.float64)
    )
    lo = np.full(target.shape, SAT_RANGE_C[0])
    hi = np.full(target.shape, SAT_RANGE_C[1])
    t = np.full(target.shape, 25.0)
    for _ in range(_BISECTION_STEPS):
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            # past the boiling point at p the air holds any water: no finite enthalpy, so too hot
            h = np.nan_to_num(saturated_air_enthalpy_j_kg(t, p), nan=np.inf)
            lo, hi = np.where(h < target, t, lo), np.where(h > target, t, hi)
            slope = (saturated_air_enthalpy_j_kg(t + _SLOPE_STEP_K, p) - h) / _SLOPE_STEP_K
            nxt = t - (h - target) / slope
        nxt = np.where(np.isfinite(nxt) & (nxt > lo) & (nxt < hi), nxt, 0.5 * (lo + hi))
        moved = np.max(np.abs(nxt - t), initial=0.0)
        t = nxt
        if moved < _NEWTON_TOL_K:
            break
    return np.clip(t, *SAT_RANGE_C)


__all__ = [
    "dew_point_c",
    "dew_point_from_rh_c",
    "humidity_ratio",
    "humidity_ratio_from_wet_bulb",
    "moist_air_enthalpy_j_kg",
    "relative_humidity",
    "saturated_air_enthalpy_j_kg",
    "saturation_temp_from_enthalpy_c",
    "saturation_vapor_pressure_pa",
    "vapor_pressure_from_humidity_ratio_pa",
    "wet_bulb_c",
    "wet_bulb_from_rh_c",
]
