"""Cooling-plant components as pure, vectorised functions.

Chillers (EnergyPlus ``Chiller:Electric:EIR``), the water-side economiser, fans and pumps
(affinity laws), and the direct-to-chip liquid loop (cold plates, CDU). Heat rejection (cooling
towers, dry coolers, adiabatic pads and the water they use) is in
:mod:`twin.physics.heat_rejection`. Every function accepts floats or arrays, broadcasts, and
returns ``float64`` arrays; SI units are in the names (temperatures in C, differences in K). No
PUE here: that is a ledger quantity.

Module constants are the defaults, each with its source; ``[EST]`` marks a value we derived
(the derivation is given), following ``docs/parameters.md``.

References
----------
.. [1] U.S. DOE, "Electric Chiller Model Based on Condenser Entering Temperature"
   (Chiller:Electric:EIR), in *EnergyPlus Engineering Reference*, v9+, energyplus.net.
.. [2] M. Wetter et al., Modelica Buildings library,
   ``Buildings.Fluid.Chillers.BaseClasses.PartialElectric`` (cycling ratio, PLR limits) and
   ``Buildings.Fluid.Chillers.Data.ElectricEIR`` (EnergyPlus Chillers dataset), github.com/lbl-srg.
.. [3] ASHRAE/IES Standard 90.1-2016, Appendix G: baseline pump power 22 W/gpm chilled water
   (G3.1.3.10) and 19 W/gpm condenser water (G3.1.3.11; PNNL ruleset-checking-tool rule 22-29).
.. [4] Open Compute Project, "OAI Liquid Cooling Guidelines" v1.0 s. 3.2: 1.5 L/min per kW at
   a coolant rise <= 10 K (via parameters.md 3.4).
.. [5] Fan affinity laws: chatsworth.com "Tech Tips: Affinity Laws"; dchuddle.com/2013/fan-law
   (parameters.md 3.3).
.. [6] S. T. Taylor, "How to Design & Control Waterside Economizers," *ASHRAE Journal*,
   June 2014 (integrated, series heat exchanger upstream of the chillers); upsite.com
   water-side economiser series (parameters.md 3.3).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from twin._types import FloatArray, Numeric
from twin.physics._arrays import divide, f64
from twin.units import (
    AIR_CP_J_KG_K,
    AIR_DENSITY_KG_M3,
    L_PER_M3,
    WATER_CP_J_KG_K,
    WATER_DENSITY_KG_M3,
)

# --- unit conversions used only here --------------------------------------------------------
#: Cubic metres per second in one US gallon per minute (3.785411784 L / 60 s, NIST SP 811).
M3_S_PER_GPM: float = 3.785411784e-3 / 60.0
#: Seconds per minute.
_S_PER_MIN: float = 60.0
#: Watts per kilowatt.
_W_PER_KW: float = 1000.0

# --- economiser -----------------------------------------------------------------------------
#: [EST] Plate heat-exchanger approach of the water-side economiser [K]: above the 2 F (1.1 K)
#: minimum recommended for plate-and-frame exchangers (HPAC Engineering, fall 2017).
HX_APPROACH_K: float = 2.0

# --- air side -------------------------------------------------------------------------------
#: [EST] CRAH fan total pressure [Pa] (coil + filter + raised floor/duct) and fan+motor
#: efficiency [-]: 500 Pa / 0.6 = 833 W per m3/s at full speed.
CRAH_FAN_PRESSURE_PA: float = 500.0
CRAH_FAN_EFFICIENCY: float = 0.6

# --- pumps ----------------------------------------------------------------------------------
#: Combined pump + motor efficiency [-] implied by the 22 W/gpm baseline at ~85 ft head
#: (onebuilding.org bldg-rate list, 2009, on ASHRAE 90.1 App. G).
PUMP_EFFICIENCY: float = 0.72
#: Chilled-water (and facility-water) pump head [Pa]: 22 W/gpm ([3]) x 0.72 = 251 kPa.
CHW_PUMP_HEAD_PA: float = 22.0 / M3_S_PER_GPM * PUMP_EFFICIENCY
#: Condenser-water pump head [Pa]: 19 W/gpm ([3]) x 0.72 = 217 kPa.
CW_PUMP_HEAD_PA: float = 19.0 / M3_S_PER_GPM * PUMP_EFFICIENCY

# --- liquid (direct-to-chip) loop -----------------------------------------------------------
#: Secondary (TCS) coolant flow per kW of heat [L/min/kW] ([4]; range 1.25-2.0).
CDU_FLOW_L_MIN_PER_KW: float = 1.5
#: [EST] CDU pump head [Pa]: midpoint of 150-300 kPa (cold plates <= 20 kPa each, manifolds,
#: quick disconnects, CDU exchanger; parameters.md 3.4).
CDU_PUMP_HEAD_PA: float = 225e3
#: [EST] CDU pump + motor efficiency [-] (parameters.md 3.4).
CDU_PUMP_EFFICIENCY: float = 0.6


def _clamped(
    t_chw_supply_c: Numeric,
    t_cond_in_c: Numeric,
    t_chw_min_c: float,
    t_chw_max_c: float,
    t_cond_min_c: float,
    t_cond_max_c: float,
) -> tuple[FloatArray, FloatArray]:
    """Chiller curve inputs clamped to the fitted ranges, as EnergyPlus does."""
    return (
        np.clip(f64(t_chw_supply_c), t_chw_min_c, t_chw_max_c),
        np.clip(f64(t_cond_in_c), t_cond_min_c, t_cond_max_c),
    )


# === curves ==================================================================================


def biquadratic(x: Numeric, y: Numeric, coeffs: Sequence[float]) -> FloatArray:
    """Biquadratic performance curve ``a + b x + c x^2 + d y + e y^2 + f x y``.

    Parameters
    ----------
    x, y : float or array_like
        Independent variables (for chillers: leaving chilled-water and entering condenser-water
        temperatures). [C]
    coeffs : sequence of 6 floats
        ``(a, b, c, d, e, f)``.

    Returns
    -------
    numpy.ndarray
        Curve value. [-]

    References
    ----------
    .. [1] EnergyPlus Input Output Reference, ``Curve:Biquadratic``.

    Examples
    --------
    >>> float(biquadratic(2.0, 3.0, (1.0, 1.0, 1.0, 1.0, 1.0, 1.0)))  # 1+2+4+3+9+6
    25.0
    """
    a, b, c, d, e, f = coeffs
    xa, ya = f64(x), f64(y)
    return a + xa * (b + c * xa) + ya * (d + e * ya) + f * xa * ya


def quadratic(x: Numeric, coeffs: Sequence[float]) -> FloatArray:
    """Quadratic curve ``a + b x + c x^2``.

    Parameters
    ----------
    x : float or array_like
        Independent variable (for chillers: part-load ratio). [-]
    coeffs : sequence of 3 floats
        ``(a, b, c)``.

    Returns
    -------
    numpy.ndarray
        Curve value. [-]

    References
    ----------
    .. [1] EnergyPlus Input Output Reference, ``Curve:Quadratic``.

    Examples
    --------
    >>> float(quadratic(2.0, (1.0, 2.0, 3.0)))  # 1 + 4 + 12
    17.0
    """
    a, b, c = coeffs
    xa = f64(x)
    return a + xa * (b + c * xa)


# === chillers =================================================================================


def chiller_capacity_w(
    t_chw_supply_c: Numeric,
    t_cond_in_c: Numeric,
    q_ref_w: Numeric,
    capft: Sequence[float],
    t_cond_min_c: float = -np.inf,
    t_cond_max_c: float = np.inf,
    *,
    t_chw_min_c: float = -np.inf,
    t_chw_max_c: float = np.inf,
) -> FloatArray:
    """Available cooling capacity of an electric-EIR chiller, ``Q_ref CAPFT(T_chw, T_cond)``.

    Parameters
    ----------
    t_chw_supply_c : float or array_like
        Leaving (supply) chilled-water temperature setpoint. [C]
    t_cond_in_c : float or array_like
        Entering condenser-water temperature. [C]
    q_ref_w : float or array_like
        Reference capacity. [W]
    capft : sequence of 6 floats
        Biquadratic CAPFT coefficients.
    t_cond_min_c, t_cond_max_c : float
        Range of the curve fit in condenser temperature; the input is clamped to it. [C]
    t_chw_min_c, t_chw_max_c : float
        Range in chilled-water temperature; the input is clamped to it. [C]

    Returns
    -------
    numpy.ndarray
        Available capacity, >= 0. [W]

    Notes
    -----
    As EnergyPlus does, each curve input is clamped to the curve's range rather than
    extrapolated (parameters.md 3.2); a negative CAPFT is taken as 0.

    References
    ----------
    .. [1] EnergyPlus Engineering Reference, "Electric Chiller Model Based on Condenser
       Entering Temperature".
    .. [2] Modelica Buildings ``Chillers.Data.ElectricEIR`` (EnergyPlus Chillers dataset).

    Examples
    --------
    >>> float(chiller_capacity_w(7.0, 30.0, 1e6, (1.0, 0, 0, 0, 0, 0)))
    1000000.0
    """
    x, y = _clamped(t_chw_supply_c, t_cond_in_c, t_chw_min_c, t_chw_max_c, t_cond_min_c, t_cond_max_c)
    return f64(q_ref_w) * np.maximum(biquadratic(x, y, capft), 0.0)


def chiller_cop(
    plr: Numeric,
    t_chw_supply_c: Numeric,
    t_cond_in_c: Numeric,
    cop_ref: Numeric,
    eirft: Sequence[float],
    eirfplr: Sequence[float],
    plr_min: float,
    t_cond_min_c: float = -np.inf,
    t_cond_max_c: float = np.inf,
    *,
    t_chw_min_c: float = -np.inf,
    t_chw_max_c: float = np.inf,
) -> FloatArray:
    """Coefficient of performance of an electric-EIR chiller at a part-load ratio.

    Parameters
    ----------
    plr : float or array_like
        Part-load ratio, delivered cooling / available capacity. [-] Negative values are 0.
    t_chw_supply_c, t_cond_in_c : float or array_like
        Leaving chilled-water and entering condenser-water temperatures. [C]
    cop_ref : float or array_like
        Reference COP. [W/W]
    eirft : sequence of 6 floats
        Biquadratic EIRFT coefficients.
    eirfplr : sequence of 3 floats
        Quadratic EIRFPLR coefficients.
    plr_min : float
        Minimum part-load ratio; below it the chiller cycles at ``plr_min``. [-]
    t_cond_min_c, t_cond_max_c, t_chw_min_c, t_chw_max_c : float
        Curve ranges; inputs are clamped to them. [C]

    Returns
    -------
    numpy.ndarray
        COP, cooling delivered / electric power. [W/W] Constant below ``plr_min`` (cycling).

    Notes
    -----
    With ``p = max(PLR, PLR_min)``: ``COP = p COP_ref / (EIRFT EIRFPLR(p))`` ([1]; parameters.md
    3.2). CAPFT cancels. Consistent with :func:`chiller_power_w`.

    References
    ----------
    .. [1] EnergyPlus Engineering Reference, "Electric Chiller Model Based on Condenser
       Entering Temperature".
    .. [2] Modelica Buildings ``Chillers.BaseClasses.PartialElectric`` (cycling ratio).

    Examples
    --------
    >>> float(chiller_cop(1.0, 7.0, 30.0, 6.0, (1.0, 0, 0, 0, 0, 0), (0.0, 1.0, 0.0), 0.1))
    6.0
    """
    p = np.maximum(np.maximum(f64(plr), 0.0), plr_min)
    x, y = _clamped(t_chw_supply_c, t_cond_in_c, t_chw_min_c, t_chw_max_c, t_cond_min_c, t_cond_max_c)
    eir = biquadratic(x, y, eirft) * quadratic(p, eirfplr)
    return divide(p * f64(cop_ref), eir, 0.0)


def chiller_power_w(
    heat_load_w: Numeric,
    t_chw_supply_c: Numeric,
    t_cond_in_c: Numeric,
    q_ref_w: Numeric,
    cop_ref: Numeric,
    capft: Sequence[float],
    eirft: Sequence[float],
    eirfplr: Sequence[float],
    plr_min: float,
    t_cond_min_c: float = -np.inf,
    t_cond_max_c: float = np.inf,
    *,
    plr_max: float = 1.0,
    t_chw_min_c: float = -np.inf,
    t_chw_max_c: float = np.inf,
) -> FloatArray:
    """Electric power of one electric-EIR chiller carrying a cooling load.

    Parameters
    ----------
    heat_load_w : float or array_like
        Cooling load asked of the chiller. [W] Loads above ``plr_max`` times the available
        capacity are cut to it; the caller books the rest as unmet.
    t_chw_supply_c : float or array_like
        Leaving chilled-water temperature setpoint. [C]
    t_cond_in_c : float or array_like
        Entering condenser-water temperature. [C]
    q_ref_w : float or array_like
        Reference capacity. [W]
    cop_ref : float or array_like
        Reference COP. [W/W]
    capft, eirft : sequence of 6 floats
        Biquadratic capacity and EIR curves of temperature.
    eirfplr : sequence of 3 floats
        Quadratic EIR curve of part-load ratio.
    plr_min : float
        Minimum part-load ratio. [-]
    t_cond_min_c, t_cond_max_c : float
        Condenser-temperature range of the curves; clamped, as EnergyPlus does. [C]
    plr_max : float
        Maximum part-load ratio (1.02-1.15 in the dataset; default 1, no overload). [-]
    t_chw_min_c, t_chw_max_c : float
        Chilled-water range of the curves; clamped. [C]

    Returns
    -------
    numpy.ndarray
        Compressor electric power, >= 0. [W] Zero at zero load.

    Notes
    -----
    ``Q_avail = Q_ref CAPFT``, ``PLR = min(Q / Q_avail, PLR_max)`` and ([1], [2])::

        P = Q_avail / COP_ref * EIRFT * EIRFPLR(max(PLR, PLR_min)) * min(PLR / PLR_min, 1)

    Below ``PLR_min`` the chiller *cycles*: it runs at ``PLR_min`` for the fraction
    ``PLR / PLR_min`` of the time (the EnergyPlus/Modelica cycling ratio). False loading by hot-gas
    bypass (between ``PLR_min`` and the minimum unloading ratio) does not arise, as the dataset
    sets both ratios equal.

    References
    ----------
    .. [1] EnergyPlus Engineering Reference, "Electric Chiller Model Based on Condenser
       Entering Temperature".
    .. [2] Modelica Buildings ``Chillers.BaseClasses.PartialElectric``: PLR1, PLR2, cycling
       ratio CR, ``P = Q_ava / COP_nominal * EIRFunT * EIRFunPLR * CR``.

    Examples
    --------
    A flat curve set, rated 1 MW at COP 5, at full load draws 1 MW / 5:

    >>> flat, lin = (1.0, 0, 0, 0, 0, 0), (0.0, 1.0, 0.0)
    >>> float(chiller_power_w(1e6, 7.0, 30.0, 1e6, 5.0, flat, flat, lin, 0.1))
    200000.0
    """
    cap = chiller_capacity_w(
        t_chw_supply_c,
        t_cond_in_c,
        q_ref_w,
        capft,
        t_cond_min_c,
        t_cond_max_c,
        t_chw_min_c=t_chw_min_c,
        t_chw_max_c=t_chw_max_c,
    )
    plr = np.clip(divide(np.maximum(f64(heat_load_w), 0.0), cap, 0.0), 0.0, plr_max)
    cop = chiller_cop(
        plr,
        t_chw_supply_c,
        t_cond_in_c,
        cop_ref,
        eirft,
        eirfplr,
        plr_min,
        t_cond_min_c,
        t_cond_max_c,
        t_chw_min_c=t_chw_min_c,
        t_chw_max_c=t_chw_max_c,
    )
    # PLR Q_avail / COP is the formula above: PLR / max(PLR, PLR_min) is the cycling ratio.
    return divide(plr * cap, cop, 0.0)


# === economiser ===============================================================================


def economiser_fraction(
    source_c: Numeric,
    return_c: Numeric,
    supply_c: Numeric,
    hx_approach_k: Numeric = HX_APPROACH_K,
) -> FloatArray:
    """Fraction of a water loop's load a series water-side economiser carries.

    Parameters
    ----------
    source_c : float or array_like
        Water leaving the tower or dry cooler. [C]
    return_c : float or array_like
        Loop return temperature (warm side, entering the economiser). [C]
    supply_c : float or array_like
        Required loop supply temperature. [C]
    hx_approach_k : float or array_like
        Economiser heat-exchanger approach. [K] Default 2 K [EST].

    Returns
    -------
    numpy.ndarray
        Fraction 0..1: 1 is full free cooling (chillers off), 0 none, between that partial
        (the exchanger pre-cools the return water in series ahead of the chillers).

    Notes
    -----
    The exchanger can cool the loop to ``t_x = source + approach``. Full when
    ``t_x <= supply``; none when ``t_x >= return``; otherwise linear in temperature,
    ``(return - t_x) / (return - supply)`` ([1], [2]; parameters.md 3.3). A loop with
    ``return <= supply`` gets 1 if ``t_x <= supply`` else 0.

    References
    ----------
    .. [1] upsite.com water-side economiser series (parameters.md 3.3).
    .. [2] S. T. Taylor, "How to Design & Control Waterside Economizers," ASHRAE J., 2014.

    Examples
    --------
    >>> float(economiser_fraction(20.0, 42.0, 32.0, 2.0))  # (42 - 22) / 10 clipped
    1.0
    >>> float(economiser_fraction(33.0, 42.0, 32.0, 2.0))  # (42 - 35) / 10
    0.7
    """
    t_x = f64(source_c) + f64(hx_approach_k)
    ret, sup = f64(return_c), f64(supply_c)
    full = (t_x <= sup).astype(np.float64)
    partial = divide(ret - t_x, ret - sup, 0.0)
    return np.where(ret > sup, np.clip(partial, 0.0, 1.0), full)


# === air side =================================================================================


def fan_power_w(flow_fraction: Numeric, rated_power_w: Numeric) -> FloatArray:
    """Fan power from the cube affinity law.

    Parameters
    ----------
    flow_fraction : float or array_like
        Air flow as a fraction of rated flow (= speed fraction). [-] Negative values are 0; no
        upper clip (callers clip at full speed).
    rated_power_w : float or array_like
        Fan power at rated flow. [W]

    Returns
    -------
    numpy.ndarray
        ``P_rated (V / V_rated)^3``. [W]

    References
    ----------
    .. [1] Fan affinity laws (chatsworth.com Tech Tips; dchuddle.com/2013/fan-law): 80 % speed
       gives 51 % power, 50 % gives 12.5 % (parameters.md 3.3).

    Examples
    --------
    >>> round(float(fan_power_w(0.8, 10_000.0)), 6)  # [1]: 10 kW fan at 80 % speed
    5120.0
    """
    return f64(rated_power_w) * np.maximum(f64(flow_fraction), 0.0) ** 3


def air_flow_m3_s(heat_w: Numeric, delta_t_k: Numeric) -> FloatArray:
    """Air volume flow that carries a heat load at a temperature rise.

    Parameters
    ----------
    heat_w : float or array_like
        Sensible heat load. [W] Negative values are 0.
    delta_t_k : float or array_like
        Air temperature rise across the load. [K] Where <= 0 the flow is infinite.

    Returns
    -------
    numpy.ndarray
        ``Q / (rho cp dT)`` with rho = 1.204 kg/m3, cp = 1006 J/(kg K). [m3/s]

    References
    ----------
    .. [1] comairrotron.com cooling-requirements note, V = P/(rho cp dT) (parameters.md 3.3);
       air properties: ASHRAE Handbook Fundamentals 2017, ch. 1 (``twin.units``).

    Examples
    --------
    >>> round(float(air_flow_m3_s(12_112.24, 10.0)), 6)  # 1.204 x 1006 x 10 W/(m3/s)
    1.0
    """
    heat = np.maximum(f64(heat_w), 0.0)
    return divide(heat, AIR_DENSITY_KG_M3 * AIR_CP_J_KG_K * f64(delta_t_k), np.inf)


def crah_fan_power_w(
    heat_w: Numeric, delta_t_k: Numeric, rated_flow_m3_s: Numeric, rated_power_w: Numeric
) -> FloatArray:
    """CRAH fan power to move the air that carries a heat load.

    Parameters
    ----------
    heat_w : float or array_like
        Heat carried by the air. [W]
    delta_t_k : float or array_like
        Air temperature rise across the IT (return minus supply). [K]
    rated_flow_m3_s : float or array_like
        Total rated air flow of the CRAHs. [m3/s]
    rated_power_w : float or array_like
        Total fan power at rated flow. [W]

    Returns
    -------
    numpy.ndarray
        Fan power with the cube law, at most ``rated_power_w`` (full speed). [W]

    References
    ----------
    .. [1] Fan affinity laws; CRAH example 15 hp ~ 10 kW at full speed, ~5 kW at 80 %
       (dchuddle.com/2013/fan-law; parameters.md 3.3).

    Examples
    --------
    >>> round(float(crah_fan_power_w(96_897.92, 10.0, 10.0, 10_000.0)), 3)  # 8 of 10 m3/s
    5120.0
    """
    flow = air_flow_m3_s(heat_w, delta_t_k)
    fraction = np.clip(divide(flow, rated_flow_m3_s, 0.0), 0.0, 1.0)
    return fan_power_w(fraction, rated_power_w)


# === water side ===============================================================================


def pump_power_w(flow_m3_s: Numeric, head_pa: Numeric, efficiency: Numeric) -> FloatArray:
    """Shaft-to-wire power of a pump (or fan) moving a volume flow against a pressure rise.

    Parameters
    ----------
    flow_m3_s : float or array_like
        Volume flow. [m3/s] Negative values are 0.
    head_pa : float or array_like
        Pressure rise (head). [Pa]
    efficiency : float or array_like
        Combined pump/fan, motor and drive efficiency, > 0. [-]

    Returns
    -------
    numpy.ndarray
        ``V dp / eta``. [W] Infinite where ``efficiency <= 0``.

    References
    ----------
    .. [1] Hydraulic power P = Q dp / eta (parameters.md 3.4 CDU pump [EST] derivation).

    Examples
    --------
    >>> float(pump_power_w(0.01, 200e3, 0.5))
    4000.0
    """
    hydraulic = np.maximum(f64(flow_m3_s), 0.0) * f64(head_pa)
    return divide(hydraulic, efficiency, np.inf)


def water_flow_m3_s(
    heat_w: Numeric,
    delta_t_k: Numeric,
    cp_j_kg_k: Numeric = WATER_CP_J_KG_K,
    density_kg_m3: Numeric = WATER_DENSITY_KG_M3,
) -> FloatArray:
    """Liquid volume flow that carries a heat load at a temperature rise.

    Parameters
    ----------
    heat_w : float or array_like
        Heat load. [W] Negative values are 0.
    delta_t_k : float or array_like
        Temperature rise of the liquid. [K] Where <= 0 the flow is infinite.
    cp_j_kg_k : float or array_like
        Specific heat of the liquid. [J/(kg K)] Default water at 25 C.
    density_kg_m3 : float or array_like
        Density of the liquid. [kg/m3] Default water at 25 C.

    Returns
    -------
    numpy.ndarray
        ``Q / (rho cp dT)``. [m3/s]

    Examples
    --------
    >>> round(float(water_flow_m3_s(4181.3 * 997.05, 1.0)), 9)
    1.0
    """
    heat = np.maximum(f64(heat_w), 0.0)
    return divide(heat, f64(density_kg_m3) * f64(cp_j_kg_k) * f64(delta_t_k), np.inf)


def coolant_outlet_c(
    inlet_c: Numeric,
    heat_w: Numeric,
    flow_kg_s: Numeric,
    cp_j_kg_k: Numeric = WATER_CP_J_KG_K,
) -> FloatArray:
    """Coolant temperature leaving a cold plate (or any heated stream): ``T_in + Q / (m cp)``.

    Parameters
    ----------
    inlet_c : float or array_like
        Coolant inlet temperature. [C]
    heat_w : float or array_like
        Heat picked up. [W]
    flow_kg_s : float or array_like
        Mass flow. [kg/s] Where <= 0 the outlet is infinite (no flow).
    cp_j_kg_k : float or array_like
        Specific heat of the coolant. [J/(kg K)] Default water (PG25 is about 3.9 kJ/(kg K)).

    Returns
    -------
    numpy.ndarray
        Outlet temperature. [C]

    References
    ----------
    .. [1] Energy balance Q = m cp dT; 1.5 L/min/kW gives ~9.6 K rise (parameters.md 3.4, 4).

    Examples
    --------
    >>> float(coolant_outlet_c(25.0, 4181.3 * 10.0, 1.0))  # 1 kg/s picking up 41.8 kW
    35.0
    """
    rise = divide(f64(heat_w), f64(flow_kg_s) * f64(cp_j_kg_k), np.inf)
    return f64(inlet_c) + rise


def cdu_approach_k(heat_w: Numeric, ua_w_k: Numeric) -> FloatArray:
    """Approach of a balanced counterflow CDU exchanger, ``Q / UA``.

    Parameters
    ----------
    heat_w : float or array_like
        Heat through the exchanger. [W] Negative values are 0.
    ua_w_k : float or array_like
        Conductance of the exchanger. [W/K] Where <= 0 the approach is infinite.

    Returns
    -------
    numpy.ndarray
        Secondary (TCS) supply minus facility-water supply temperature. [K]

    Notes
    -----
    With equal heat-capacity flows on both sides of a counterflow exchanger the temperature
    difference is the same all along it, so it equals the log-mean difference, ``Q / UA``. Each
    kelvin of CDU approach raises the facility-water temperature the IT needs by one kelvin
    (parameters.md 3.3).

    Examples
    --------
    >>> float(cdu_approach_k(100e3, 20e3))
    5.0
    """
    return divide(np.maximum(f64(heat_w), 0.0), ua_w_k, np.inf)


def cdu_flow_m3_s(heat_w: Numeric, flow_l_min_per_kw: Numeric = CDU_FLOW_L_MIN_PER_KW) -> FloatArray:
    """Secondary-loop coolant flow for a liquid heat load at a flow per kW.

    Parameters
    ----------
    heat_w : float or array_like
        Heat captured by the cold plates. [W] Negative values are 0.
    flow_l_min_per_kw : float or array_like
        Coolant flow per kW. [L/min/kW] Default 1.5 (OCP, [1]).

    Returns
    -------
    numpy.ndarray
        Volume flow. [m3/s]

    References
    ----------
    .. [1] OCP OAI liquid-cooling guidelines v1.0 s. 3.2 (parameters.md 3.4): 150 L/min for a
       100 kW rack.

    Examples
    --------
    >>> round(float(cdu_flow_m3_s(100e3)) * 60_000.0, 6)  # [1]: 150 L/min for 100 kW
    150.0
    """
    heat_kw = np.maximum(f64(heat_w), 0.0) / _W_PER_KW
    return heat_kw * f64(flow_l_min_per_kw) / L_PER_M3 / _S_PER_MIN


def cdu_pump_power_w(
    heat_w: Numeric,
    flow_l_min_per_kw: Numeric = CDU_FLOW_L_MIN_PER_KW,
    head_pa: Numeric = CDU_PUMP_HEAD_PA,
    efficiency: Numeric = CDU_PUMP_EFFICIENCY,
) -> FloatArray:
    """CDU (secondary-loop) pump power for a liquid heat load.

    Parameters
    ----------
    heat_w : float or array_like
        Heat captured by the cold plates. [W]
    flow_l_min_per_kw : float or array_like
        Coolant flow per kW. [L/min/kW] Default 1.5 (OCP).
    head_pa : float or array_like
        Loop pressure drop. [Pa] Default 225 kPa [EST].
    efficiency : float or array_like
        Pump and motor efficiency. [-] Default 0.6 [EST].

    Returns
    -------
    numpy.ndarray
        Pump power. [W] Default 9.4 W per kW of heat (0.94 %), inside the 0.5-1.5 % of
        parameters.md 3.4.

    Notes
    -----
    Flow follows the heat at a fixed L/min per kW; head is held constant (a conservative,
    linear-in-flow pump law).

    References
    ----------
    .. [1] parameters.md 3.4: P = Q dp / eta with 1.5 L/min/kW, dp 150-300 kPa, eta ~ 0.6.

    Examples
    --------
    >>> round(float(cdu_pump_power_w(1000.0)), 3)  # 2.5e-5 m3/s x 225 kPa / 0.6
    9.375
    """
    return pump_power_w(cdu_flow_m3_s(heat_w, flow_l_min_per_kw), head_pa, efficiency)


__all__ = [
    "CDU_FLOW_L_MIN_PER_KW",
    "CDU_PUMP_EFFICIENCY",
    "CDU_PUMP_HEAD_PA",
    "CHW_PUMP_HEAD_PA",
    "CRAH_FAN_EFFICIENCY",
    "CRAH_FAN_PRESSURE_PA",
    "CW_PUMP_HEAD_PA",
    "HX_APPROACH_K",
    "M3_S_PER_GPM",
    "PUMP_EFFICIENCY",
    "air_flow_m3_s",
    "biquadratic",
    "cdu_approach_k",
    "cdu_flow_m3_s",
    "cdu_pump_power_w",
    "chiller_capacity_w",
    "chiller_cop",
    "chiller_power_w",
    "coolant_outlet_c",
    "crah_fan_power_w",
    "economiser_fraction",
    "fan_power_w",
    "pump_power_w",
    "quadratic",
    "water_flow_m3_s",
]
