"""Heat rejection: cooling towers, dry coolers, adiabatic pads, and the water they use.

The plant's last stage, rejecting its heat to the outdoor air: the water leaving an open
cooling tower (wet-bulb plus approach) or a dry cooler (dry-bulb plus approach), an adiabatic
dry cooler's pads pre-cooling its air above a switch point, the fans of both (cube law at a held
approach), and the water they use (a tower's evaporation from Merkel's balance, blowdown and
drift; the pads' evaporation and bleed). Chillers, economiser, air side, pumps and the liquid
loop are in :mod:`twin.physics.cooling`. Every function accepts floats or arrays, broadcasts,
and returns ``float64`` arrays; SI units are in the names (temperatures in C, differences in K).

Module constants are the defaults, each with its source; ``[EST]`` marks a value we derived
(the derivation is given), following ``docs/parameters.md``.

References
----------
.. [1] ASHRAE/IES Standard 90.1-2016, Table 6.8.1-7 and Appendix G: open-circuit axial-fan
   cooling tower baseline 3.23 L/s per kW of fan motor at 35->29.4 C water, 23.9 C wet-bulb
   (as quoted on unmethours.com q. 58086).
.. [2] M. Glaser et al., "Free Cooling for Saving Energy: Technical Market Analysis of Dry,
   Wet, and Hybrid Cooling Based on Manufacturer Data," *Energies* 16(9), 3661, 2023,
   doi:10.3390/en16093661 (6730 models: dry approach median 10 K to dry-bulb, open wet 5 K to
   wet-bulb, open wet 0.012-0.021 kW_el/kW_th, range >= 5 K).
.. [3] F. Merkel, "Verdunstungskühlung," *VDI-Forschungsarbeiten* 275, 1925 (air-side energy
   balance ``L cp_w (T_in - T_out) = G (h_out - h_in)`` and air leaving saturated); as used in
   D. G. Kröger, *Air-cooled Heat Exchangers and Cooling Towers*, PennWell, 2004, ch. 4, and
   ASHRAE Handbook - HVAC Systems and Equipment, ch. 40 "Cooling Towers".
.. [4] S. K. Wang, "Evaporative cooling," in *Handbook of Air Conditioning and Refrigeration*,
   2nd ed., McGraw-Hill, 2001 (and CRC *Mechanical Engineering Handbook* s. 9.8): a direct
   evaporative cooler's saturation effectiveness ``(T_in - T_out) / (T_in - T_wb)`` is 0.75-0.95.
.. [5] Fan affinity laws: chatsworth.com "Tech Tips: Affinity Laws"; dchuddle.com/2013/fan-law
   (parameters.md 3.3).
"""

from __future__ import annotations

import numpy as np

from twin._types import FloatArray, Numeric
from twin.physics import psychrometrics as psy
from twin.physics._arrays import divide, f64
from twin.physics.cooling import fan_power_w
from twin.units import (
    AIR_CP_J_KG_K,
    AIR_DENSITY_KG_M3,
    STANDARD_PRESSURE_PA,
    WATER_CP_J_KG_K,
    WATER_DENSITY_KG_M3,
    WATER_LATENT_HEAT_J_KG,
)

# --- cooling tower -------------------------------------------------------------------------
#: Design approach of a cooling tower, leaving water minus wet-bulb [K] (parameters.md 3.3,
#: aadtech.in: ~4 C; [2] reports a 5 K median for open wet towers).
TOWER_APPROACH_K: float = 4.0
#: Tower range (water cooled through the tower) at rating, 35 -> 29.4 C (95 -> 85 F) [K] ([1]).
TOWER_RANGE_K: float = 5.0 / 0.9
#: Tower water flow per watt of fan motor at rating [m3/s per W]: 3.23 L/s per kW ([1]).
TOWER_FLOW_PER_FAN_W_M3_S: float = 3.23e-3 / 1000.0
#: [EST] Tower fan power at rated heat per watt rejected [-]: 1 / (3.23 L/s/kW x rho x cp x
#: 5.56 K) = 1 / 74.8 = 0.0134, inside the 0.012-0.021 kW_el/kW_th of open wet towers ([2]).
TOWER_FAN_POWER_FRACTION: float = 1.0 / (
    TOWER_FLOW_PER_FAN_W_M3_S * WATER_DENSITY_KG_M3 * WATER_CP_J_KG_K * TOWER_RANGE_K
)
#: [EST] Cycles of concentration of tower water (typical treated open tower 3-7; midpoint 5).
CYCLES_OF_CONCENTRATION: float = 5.0
#: Drift loss as a fraction of circulating water: efficient drift eliminators keep it below
#: 0.001 % of the recirculating flow (Tower Components Inc., "Drift eliminator operation",
#: towercomponentsinc.com; 0.0005 % is the best rating); we take the 0.001 % bound.
DRIFT_FRACTION: float = 1e-5
#: [EST] Water-to-air mass-flow ratio L/G of the tower [-]: mechanical-draft designs span
#: 0.5-2.0 (low L/G: large fans, small fill; high: the reverse; cv.ukhan.org, "Cooling tower
#: performance evaluation via Merkel integration"); 1.2 puts the air leaving saturated at 29.9 C
#: at the rating point of [1] (35 -> 29.4 C water, 23.9 C wet-bulb), between the two water
#: temperatures as it must be ([3]).
TOWER_WATER_AIR_RATIO: float = 1.2

# --- dry cooler -----------------------------------------------------------------------------
#: Dry-cooler approach, leaving fluid minus dry-bulb [K] (median of [2]).
DRY_COOLER_APPROACH_K: float = 10.0
#: [EST] Dry-cooler air temperature rise at design [K], fan total pressure [Pa], fan+motor
#: efficiency [-]: EC axial fans over a finned coil.
DRY_COOLER_AIR_RISE_K: float = 10.0
_DRY_COOLER_FAN_PRESSURE_PA: float = 150.0
_DRY_COOLER_FAN_EFFICIENCY: float = 0.5
#: [EST] Dry-cooler fan power at rated heat per watt rejected [-]: air flow per watt
#: 1/(rho cp 10 K) = 8.3e-5 m3/s/W, times 150 Pa / 0.5 = 0.025 (about twice a wet tower, as
#: dry cooling is sensible only; [2] gives no single figure for dry coolers).
DRY_COOLER_FAN_POWER_FRACTION: float = (
    _DRY_COOLER_FAN_PRESSURE_PA
    / _DRY_COOLER_FAN_EFFICIENCY
    / (AIR_DENSITY_KG_M3 * AIR_CP_J_KG_K * DRY_COOLER_AIR_RISE_K)
)
#: [EST] Saturation effectiveness of an adiabatic dry cooler's wetted pads [-]: 0.8, inside the
#: 0.75-0.95 of direct evaporative media ([4]) and the lower half, as verified pad tests fall
#: short of catalogue claims (Evapco, "Adiabatic Pad Saturation" white paper, 2018).
ADIABATIC_EFFECTIVENESS: float = 0.8
#: [EST] Dry-bulb above which an adiabatic dry cooler wets its pads [C]: below it the unit runs
#: dry (a customer-set switch point, BAC "cooling types"; 26 C here).
ADIABATIC_SWITCH_C: float = 26.0


def tower_leaving_water_c(wet_bulb_c: Numeric, approach_k: Numeric = TOWER_APPROACH_K) -> FloatArray:
    """Cold-water temperature leaving a cooling tower: wet-bulb plus approach.

    Parameters
    ----------
    wet_bulb_c : float or array_like
        Outdoor wet-bulb temperature. [C]
    approach_k : float or array_like
        Tower approach. [K] Default 4 K (parameters.md 3.3).

    Returns
    -------
    numpy.ndarray
        Leaving (cold) water temperature. [C]

    Notes
    -----
    A tower cannot cool below the wet-bulb; a variable-speed tower holding its design approach
    is assumed (aadtech.in "cooling tower approach", parameters.md 3.3).

    References
    ----------
    .. [1] aadtech.in/blog/cooling-tower-approach-temperature: WB 28 C gives 32 C cold water.

    Examples
    --------
    >>> float(tower_leaving_water_c(28.0))  # [1]
    32.0
    """
    return f64(wet_bulb_c) + f64(approach_k)


def dry_cooler_leaving_c(dry_bulb_c: Numeric, approach_k: Numeric = DRY_COOLER_APPROACH_K) -> FloatArray:
    """Fluid temperature leaving a dry cooler: dry-bulb plus approach.

    Parameters
    ----------
    dry_bulb_c : float or array_like
        Outdoor dry-bulb temperature. [C]
    approach_k : float or array_like
        Dry-cooler approach. [K] Default 10 K, the median of 6730 models in [1].

    Returns
    -------
    numpy.ndarray
        Leaving fluid temperature. [C]

    References
    ----------
    .. [1] Glaser et al., *Energies* 16(9), 3661, 2023, doi:10.3390/en16093661.

    Examples
    --------
    >>> float(dry_cooler_leaving_c(25.0))
    35.0
    """
    return f64(dry_bulb_c) + f64(approach_k)


def heat_rejection_fan_power_w(heat_w: Numeric, rated_heat_w: Numeric, fan_power_fraction: Numeric) -> FloatArray:
    """Fan power of a variable-speed tower or dry cooler rejecting a heat flow.

    Parameters
    ----------
    heat_w : float or array_like
        Heat rejected. [W]
    rated_heat_w : float or array_like
        Heat rejected at full fan speed (rated capacity). [W]
    fan_power_fraction : float or array_like
        Fan power at full speed per watt of rated heat. [-]

    Returns
    -------
    numpy.ndarray
        ``f Q_rated min(Q / Q_rated, 1)^3``. [W]

    Notes
    -----
    At a held approach the air flow needed is taken proportional to the heat rejected, and fan
    power follows the cube law ([1]). Above the rating fans run at full speed (the approach
    would widen; not modelled).

    References
    ----------
    .. [1] Fan affinity laws, parameters.md 3.3.

    Examples
    --------
    >>> float(heat_rejection_fan_power_w(500e3, 1e6, 0.02))  # 20 kW x 0.5^3
    2500.0
    """
    fraction = np.clip(divide(np.maximum(f64(heat_w), 0.0), rated_heat_w, 0.0), 0.0, 1.0)
    return fan_power_w(fraction, f64(fan_power_fraction) * f64(rated_heat_w))


def tower_fan_power_w(
    heat_w: Numeric,
    rated_heat_w: Numeric,
    fan_power_fraction: Numeric = TOWER_FAN_POWER_FRACTION,
) -> FloatArray:
    """Cooling-tower fan power; :func:`heat_rejection_fan_power_w` with the tower default.

    Parameters
    ----------
    heat_w : float or array_like
        Heat rejected. [W]
    rated_heat_w : float or array_like
        Tower capacity at full fan speed. [W]
    fan_power_fraction : float or array_like
        Fan power at full speed per watt rejected. [-] Default 0.0134 [EST] from the ASHRAE
        90.1 baseline 3.23 L/s per kW at a 5.56 K range.

    Returns
    -------
    numpy.ndarray
        Fan power. [W]

    References
    ----------
    .. [1] ASHRAE Standard 90.1-2016, Table 6.8.1-7 / Appendix G.

    Examples
    --------
    >>> round(float(tower_fan_power_w(1e6, 1e6)))  # 1 MW at full speed: 1.34 % of it
    13367
    """
    return heat_rejection_fan_power_w(heat_w, rated_heat_w, fan_power_fraction)


def dry_cooler_fan_power_w(
    heat_w: Numeric,
    rated_heat_w: Numeric,
    fan_power_fraction: Numeric = DRY_COOLER_FAN_POWER_FRACTION,
) -> FloatArray:
    """Dry-cooler fan power; :func:`heat_rejection_fan_power_w` with the dry-cooler default.

    Parameters
    ----------
    heat_w : float or array_like
        Heat rejected. [W]
    rated_heat_w : float or array_like
        Dry-cooler capacity at full fan speed. [W]
    fan_power_fraction : float or array_like
        Fan power at full speed per watt rejected. [-] Default 0.025 [EST], see
        ``DRY_COOLER_FAN_POWER_FRACTION``.

    Returns
    -------
    numpy.ndarray
        Fan power. [W]

    Examples
    --------
    >>> round(float(dry_cooler_fan_power_w(1e6, 1e6, 0.025)))
    25000
    """
    return heat_rejection_fan_power_w(heat_w, rated_heat_w, fan_power_fraction)


def tower_evaporated_fraction(
    dry_bulb_c: Numeric,
    wet_bulb_c: Numeric,
    leaving_water_c: Numeric,
    pressure_pa: Numeric = STANDARD_PRESSURE_PA,
    water_air_ratio: Numeric = TOWER_WATER_AIR_RATIO,
    range_k: Numeric = TOWER_RANGE_K,
) -> FloatArray:
    """Share of a tower's rejected heat that leaves as the latent heat of evaporated water.

    Parameters
    ----------
    dry_bulb_c, wet_bulb_c : float or array_like
        Air entering the tower. [C]
    leaving_water_c : float or array_like
        Cold water leaving the tower (:func:`tower_leaving_water_c`); it enters ``range_k``
        warmer. [C]
    pressure_pa : float or array_like
        Station pressure. [Pa]
    water_air_ratio : float or array_like
        L/G, water over dry-air mass flow, > 0. [-] Default 1.2 [EST].
    range_k : float or array_like
        Tower range. [K]

    Returns
    -------
    numpy.ndarray
        ``f = h_fg E / Q``, >= 0. [-] Below 1 when the air is warmed (part of the heat leaves
        sensibly: cold air), near 1 in warm humid air, above 1 in hot dry air (the water also
        cools the air, and evaporates the more for it). ``1 - f`` is the sensible share.

    Notes
    -----
    Per kilogram of dry air, Merkel's energy balance ([1]): the air takes
    ``dh = (L/G) cp_w range`` from the water and leaves saturated, at the temperature ``t_out``
    whose saturated enthalpy is ``h_in + dh`` (:mod:`twin.physics.psychrometrics`, ASHRAE 2017
    ch. 1 eq. 30), but no warmer than the hot water it met: ``t_out <= T_cold + range`` (where
    that binds, cold air, the fans move more air per watt and ``dh = h_s(t_out) - h_in``).
    The water evaporated per joule is ``(W_s(t_out) - W_in) / dh``, so
    ``f = h_fg (W_s(t_out) - W_in) / dh``. Merkel neglects the enthalpy the evaporated water
    carries as liquid (about 5 % of the heat at 30 C); so does this. ``h_fg`` is
    ``twin.units.WATER_LATENT_HEAT_J_KG``.

    References
    ----------
    .. [1] Merkel (1925); Kröger (2004) ch. 4; ASHRAE Handbook HVAC Systems and Equipment
       ch. 40 (module references [3]).
    .. [2] ASHRAE Handbook - Fundamentals (SI), 2017, ch. 1, eqs. (20), (30), (33).

    Examples
    --------
    A humid 32 C day (28 C wet-bulb), water leaving at 32 C: 91 % of the heat evaporates.

    >>> round(float(tower_evaporated_fraction(32.0, 28.0, 32.0)), 2)
    0.91
    """
    t_db, t_wb = f64(dry_bulb_c), f64(wet_bulb_c)
    w_in = np.maximum(psy.humidity_ratio_from_wet_bulb(t_db, t_wb, pressure_pa), 0.0)
    h_in = psy.moist_air_enthalpy_j_kg(t_db, w_in)
    dh_merkel = f64(water_air_ratio) * WATER_CP_J_KG_K * f64(range_k)
    t_out = np.minimum(
        psy.saturation_temp_from_enthalpy_c(h_in + dh_merkel, pressure_pa), f64(leaving_water_c) + f64(range_k)
    )
    w_out = psy.humidity_ratio(psy.saturation_vapor_pressure_pa(t_out), pressure_pa)
    dh = psy.saturated_air_enthalpy_j_kg(t_out, pressure_pa) - h_in
    return np.maximum(divide(WATER_LATENT_HEAT_J_KG * (w_out - w_in), dh, 1.0), 0.0)


def tower_water_kg_s(
    heat_w: Numeric,
    evaporated_fraction: Numeric,
    cycles_of_concentration: Numeric = CYCLES_OF_CONCENTRATION,
    drift_fraction: Numeric = DRIFT_FRACTION,
    range_k: Numeric = TOWER_RANGE_K,
) -> FloatArray:
    """Make-up water of an open cooling tower: evaporation + blowdown + drift.

    Parameters
    ----------
    heat_w : float or array_like
        Heat rejected by the tower. [W]
    evaporated_fraction : float or array_like
        Share of it leaving as latent heat (:func:`tower_evaporated_fraction`; 1 is the old
        all-evaporative estimate). [-]
    cycles_of_concentration : float or array_like
        Ratio of dissolved solids in the basin to the make-up water, > 1. [-] Default 5 [EST].
    drift_fraction : float or array_like
        Drift as a fraction of circulating water. [-] Default 1e-5 (0.001 %).
    range_k : float or array_like
        Tower range, to size the circulating flow ``Q / (cp range)``. [K] Default 5.56 K.

    Returns
    -------
    numpy.ndarray
        Make-up water, >= 0. [kg/s] Infinite blowdown where the cycles are <= 1.

    Notes
    -----
    ``E = f Q / h_fg``, ``B = E / (C - 1)`` (salt balance), ``D = d Q / (cp range)``. With
    f = 1 and C = 5, 1 kWh of heat uses 1.47 + 0.37 = 1.84 kg, the industry-average site WUE
    of 1.8-1.9 L/kWh (parameters.md 3.5); the weather's f scales the first two terms.

    References
    ----------
    .. [1] Latent heat: ``twin.units.WATER_LATENT_HEAT_J_KG`` (CRC Handbook).
    .. [2] Blowdown mass balance B = E/(C-1): U.S. DOE FEMP, "Cooling Towers: Understanding
       Key Components of Cooling Towers and How to Improve Water Efficiency", 2011.

    Examples
    --------
    >>> round(float(tower_water_kg_s(2.442e6, 1.0, 5.0, 0.0)), 6)  # E = 1 kg/s, B = 0.25 kg/s
    1.25
    """
    q = np.maximum(f64(heat_w), 0.0)
    evaporation = f64(evaporated_fraction) * q / WATER_LATENT_HEAT_J_KG
    blowdown = divide(evaporation, f64(cycles_of_concentration) - 1.0, np.inf)
    circulating = divide(q, WATER_CP_J_KG_K * f64(range_k), 0.0)
    return evaporation + blowdown + f64(drift_fraction) * circulating


def adiabatic_air_c(
    dry_bulb_c: Numeric,
    wet_bulb_c: Numeric,
    effectiveness: Numeric = ADIABATIC_EFFECTIVENESS,
    switch_c: Numeric = ADIABATIC_SWITCH_C,
) -> FloatArray:
    """Air reaching an adiabatic dry cooler's coil: pre-cooled toward the wet-bulb above the switch.

    Parameters
    ----------
    dry_bulb_c, wet_bulb_c : float or array_like
        Outdoor air. [C]
    effectiveness : float or array_like
        Pad saturation effectiveness, 0..1. [-] Default 0.8 ([4]).
    switch_c : float or array_like
        Dry-bulb above which the pads are wetted. [C] Default 26 C [EST].

    Returns
    -------
    numpy.ndarray
        ``T_db - eps (T_db - T_wb)`` where ``T_db > switch_c``, else ``T_db``. [C]

    Examples
    --------
    >>> adiabatic_air_c([20.0, 35.0], [15.0, 20.0], 0.8, 26.0).tolist()  # 35 - 0.8 x 15
    [20.0, 23.0]
    """
    t_db, t_wb = f64(dry_bulb_c), f64(wet_bulb_c)
    wet = t_db > f64(switch_c)
    return np.where(wet, t_db - f64(effectiveness) * (t_db - t_wb), t_db)


def adiabatic_water_kg_s(
    heat_w: Numeric,
    dry_bulb_c: Numeric,
    wet_bulb_c: Numeric,
    effectiveness: Numeric = ADIABATIC_EFFECTIVENESS,
    switch_c: Numeric = ADIABATIC_SWITCH_C,
    cycles_of_concentration: Numeric = CYCLES_OF_CONCENTRATION,
    pressure_pa: Numeric = STANDARD_PRESSURE_PA,
    air_rise_k: Numeric = DRY_COOLER_AIR_RISE_K,
) -> FloatArray:
    """Water of an adiabatic dry cooler: the pads' evaporation plus their bleed.

    Parameters
    ----------
    heat_w : float or array_like
        Heat rejected by the coil. [W]
    dry_bulb_c, wet_bulb_c : float or array_like
        Outdoor air. [C]
    effectiveness, switch_c : float or array_like
        Pads (:func:`adiabatic_air_c`). [-], [C]
    cycles_of_concentration : float or array_like
        Of the recirculated pad water, > 1. [-]
    pressure_pa : float or array_like
        Station pressure. [Pa]
    air_rise_k : float or array_like
        Air temperature rise across the coil (the fans follow the heat, so it holds). [K]

    Returns
    -------
    numpy.ndarray
        Make-up water, >= 0; 0 at or below the switch point. [kg/s]

    Notes
    -----
    The coil's dry air flow is ``m_a = Q / (cp_a rise)``. The pads cool the air along its
    wet-bulb line (adiabatic saturation), so the water taken up is
    ``E = m_a (W(T_pad, T_wb) - W(T_db, T_wb))`` (ASHRAE 2017 ch. 1 eq. 33), and a recirculating
    pad system bleeds ``E / (C - 1)`` as a tower does (FEMP; [EST] the tower's cycles). No drift:
    the pads hold their water.

    Examples
    --------
    1 MW at 35 C / 20 C: 99.4 kg/s of air cooled 12 K takes up 0.50 kg/s of water; with 5 cycles
    0.62 kg/s, 2.2 L per kWh of heat in such an hour (more than a tower, as the pads cool more
    air than the coil heats), but nothing in the hours at or below the switch point.

    >>> round(float(adiabatic_water_kg_s(1e6, 35.0, 20.0)), 2)
    0.62
    """
    q = np.maximum(f64(heat_w), 0.0)
    t_db, t_wb = f64(dry_bulb_c), f64(wet_bulb_c)
    t_pad = adiabatic_air_c(t_db, t_wb, effectiveness, switch_c)
    w_in = psy.humidity_ratio_from_wet_bulb(t_db, t_wb, pressure_pa)
    w_pad = psy.humidity_ratio_from_wet_bulb(t_pad, t_wb, pressure_pa)
    air_kg_s = q / (AIR_CP_J_KG_K * f64(air_rise_k))
    evaporation = air_kg_s * np.maximum(w_pad - w_in, 0.0)
    return evaporation + divide(evaporation, f64(cycles_of_concentration) - 1.0, np.inf)


__all__ = [
    "ADIABATIC_EFFECTIVENESS",
    "ADIABATIC_SWITCH_C",
    "CYCLES_OF_CONCENTRATION",
    "DRIFT_FRACTION",
    "DRY_COOLER_AIR_RISE_K",
    "DRY_COOLER_APPROACH_K",
    "DRY_COOLER_FAN_POWER_FRACTION",
    "TOWER_APPROACH_K",
    "TOWER_FAN_POWER_FRACTION",
    "TOWER_RANGE_K",
    "TOWER_WATER_AIR_RATIO",
    "adiabatic_air_c",
    "adiabatic_water_kg_s",
    "dry_cooler_fan_power_w",
    "dry_cooler_leaving_c",
    "heat_rejection_fan_power_w",
    "tower_evaporated_fraction",
    "tower_fan_power_w",
    "tower_leaving_water_c",
    "tower_water_kg_s",
]
