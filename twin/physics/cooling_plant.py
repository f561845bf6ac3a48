"""The facility cooling plant over time: one pure function composing the components.

Topology (documented choice; see :func:`plant_power`)::

    IT liquid heat -> cold plates -> TCS loop -> CDU -> facility water (FWS) loop --+
    IT air heat    -> CRAH coils  -> chilled-water (CHW) loop ---------------------+
                                                                                   |
    each loop: return -> economiser HX (pre-cools, series) -> chiller trim -> supply
                           |                                   |
                           +---- tower or dry cooler <---------+ condenser water

* The FWS supply setpoint is the ASHRAE liquid class number ([1]; W32 -> 32 C). The CHW loop
  serves the CRAH coils at ``chw_supply_c``, below the CRAH supply-air temperature.
* One chiller plant makes chilled water at ``chw_supply_c``; it trims the CHW loop directly and
  the FWS loop through a heat exchanger (so ``chw_supply_c <= facility_supply_c - hx``).
* The tower (leaving water = wet-bulb + approach), dry cooler (dry-bulb + approach) or adiabatic
  dry cooler (pads pre-cool the air toward the wet-bulb above a switch dry-bulb, + approach)
  feeds the economiser exchangers and the chiller condensers at the same temperature. Water:
  the tower evaporates the share of the heat the weather's air takes up as vapour (Merkel),
  plus blowdown and drift; the adiabatic cooler's pads evaporate what cools the air; a dry
  cooler uses none.
* When the tower water plus the exchanger approach is at or below a loop's supply setpoint the
  economiser carries that loop alone (chillers off for it); between supply and return it carries
  the linear share; above the return it carries nothing.
* A plant without chillers (``n_chillers = 0``, economiser only, as in warm-water HPC centres)
  has no water colder than the tower's: its facility supply floats at
  ``max(setpoint, T_source + hx)`` and the CRAH coils take that same facility water, so the room's
  supply air is ``max(crah_supply_air_c, facility supply + crah_coil_approach_k)``
  (:func:`facility_supply_c`, :func:`crah_supply_air_c`).

The plant's parameters, the ASHRAE classes and the design defaults are in
:mod:`twin.physics.plant_params`; the chillers' staging is in :mod:`twin.physics.chiller_staging`.

References
----------
.. [1] ASHRAE TC 9.9, "Emergence and Expansion of Liquid Cooling in Mainstream Data Centers"
   (liquid classes W17-W45, W+), 2021; via parameters.md 3.1.
.. [2] parameters.md 3.2-3.4 for the component models and defaults (``twin.physics.cooling``,
   ``twin.physics.heat_rejection``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import lru_cache

import numpy as np

from twin._types import FloatArray, Numeric
from twin.physics import cooling as cl
from twin.physics import heat_rejection as hr
from twin.physics.chiller_staging import _staged_chiller_power_w
from twin.physics.plant_params import PlantParams
from twin.units import AIR_CP_J_KG_K, AIR_DENSITY_KG_M3, STANDARD_PRESSURE_PA

#: Fixed-point steps of the heat-rejection limit in :func:`plant_power` (each divides the excess
#: by roughly the chillers' part-load nonlinearity; 6 leave well under 1 W per MW).
REJECTION_ITERATIONS: int = 6


@dataclass(frozen=True)
class PlantResult:
    """Cooling-plant state per time step; every field is a float64 array of the input shape.

    Attributes
    ----------
    chiller_power_w : numpy.ndarray
        Compressor power of all running chillers. [W]
    tower_fan_power_w, dry_cooler_fan_power_w : numpy.ndarray
        Heat-rejection fan power (the kind not in use is 0). [W]
    pump_power_w : numpy.ndarray
        Facility-water + chilled-water + condenser-water pumps. [W]
    cdu_pump_power_w : numpy.ndarray
        CDU (TCS loop) pumps. [W]
    crah_fan_power_w : numpy.ndarray
        CRAH fans. [W]
    water_kg_s : numpy.ndarray
        Make-up water of the tower (evaporation + blowdown + drift) or of an adiabatic cooler's
        pads (0 for dry coolers). [kg/s]
    free_cooling_fraction : numpy.ndarray
        Share of the IT heat the economiser carries, 0..1 (at zero load: the design-weighted
        share the economiser could carry). [-]
    free_cooling_w : numpy.ndarray
        Heat removed by the economiser. [W]
    chiller_load_w : numpy.ndarray
        Heat removed by the chillers. [W]
    chillers_running : numpy.ndarray
        Number of chillers running. [-]
    heat_rejected_w : numpy.ndarray
        Heat leaving through the tower or dry cooler (IT heat removed + compressor work). [W]
    heat_rejected_evaporative_w : numpy.ndarray
        Of it, the tower's share leaving as the latent heat of evaporated water (0 for dry and
        adiabatic coolers, whose coils reject sensibly); ``heat_rejected_sensible_w`` is the rest,
        negative where hot dry air is cooled by the tower water. [W]
    heat_rejection_leaving_c : numpy.ndarray
        Water leaving the tower or dry cooler (also the condenser entering temperature). [C]
    facility_supply_c : numpy.ndarray
        Facility-water supply temperature: the setpoint (shortfalls appear as unmet heat), or
        above it where a plant without chillers floats on the weather (:func:`facility_supply_c`). [C]
    tcs_supply_c : numpy.ndarray
        Coolant supply to the cold plates, facility supply + CDU approach. [C]
    crah_supply_air_c : numpy.ndarray
        Air the CRAHs supply (:func:`crah_supply_air_c`). [C]
    unmet_liquid_w, unmet_air_w : numpy.ndarray
        Heat of each side the plant could not remove. [W]
    unmet_heat_w : numpy.ndarray
        Their sum; ``free_cooling_w + chiller_load_w + unmet_heat_w`` equals the IT heat. [W]
    """

    chiller_power_w: FloatArray
    tower_fan_power_w: FloatArray
    dry_cooler_fan_power_w: FloatArray
    pump_power_w: FloatArray
    cdu_pump_power_w: FloatArray
    crah_fan_power_w: FloatArray
    water_kg_s: FloatArray
    free_cooling_fraction: FloatArray
    free_cooling_w: FloatArray
    chiller_load_w: FloatArray
    chillers_running: FloatArray
    heat_rejected_w: FloatArray
    heat_rejected_evaporative_w: FloatArray
    heat_rejection_leaving_c: FloatArray
    facility_supply_c: FloatArray
    tcs_supply_c: FloatArray
    crah_supply_air_c: FloatArray
    unmet_liquid_w: FloatArray
    unmet_air_w: FloatArray
    unmet_heat_w: FloatArray

    def __post_init__(self) -> None:
        for f in fields(self):
            object.__setattr__(self, f.name, np.asarray(getattr(self, f.name), dtype=np.float64))

    @property
    def heat_rejected_sensible_w(self) -> FloatArray:
        """Heat rejected as sensible heat of the air [W]: ``heat_rejected_w - heat_rejected_evaporative_w``."""
        return self.heat_rejected_w - self.heat_rejected_evaporative_w

    @property
    def total_power_w(self) -> FloatArray:
        """All cooling electric power [W]: chillers, fans and pumps."""
        return (
            self.chiller_power_w
            + self.tower_fan_power_w
            + self.dry_cooler_fan_power_w
            + self.pump_power_w
            + self.cdu_pump_power_w
            + self.crah_fan_power_w
        )


def heat_rejection_leaving_c(dry_bulb_c: Numeric, wet_bulb_c: Numeric, params: PlantParams) -> FloatArray:
    """Water leaving the tower (wet-bulb + approach) or dry cooler (air + approach). [C]

    An adiabatic dry cooler's air is pre-cooled toward the wet-bulb above its switch point
    (:func:`~twin.physics.heat_rejection.adiabatic_air_c`).

    Parameters
    ----------
    dry_bulb_c, wet_bulb_c : float or array_like
        Outdoor dry-bulb and wet-bulb temperatures. [C]
    params : PlantParams
        Plant parameters (``heat_rejection`` and its approach).

    Returns
    -------
    numpy.ndarray
        Leaving water temperature. [C]
    """
    if params.heat_rejection == "tower":
        return hr.tower_leaving_water_c(wet_bulb_c, params.tower_approach_k)
    if params.heat_rejection == "adiabatic_dry_cooler":
        dry_bulb_c = hr.adiabatic_air_c(
            dry_bulb_c, wet_bulb_c, effectiveness=params.adiabatic_effectiveness, switch_c=params.adiabatic_switch_c
        )
    return hr.dry_cooler_leaving_c(dry_bulb_c, params.dry_cooler_approach_k)


def facility_supply_c(dry_bulb_c: Numeric, wet_bulb_c: Numeric, params: PlantParams) -> FloatArray:
    """Facility-water supply temperature the plant delivers in this weather. [C]

    Parameters
    ----------
    dry_bulb_c, wet_bulb_c : float or array_like
        Outdoor dry-bulb and wet-bulb temperatures. [C]
    params : PlantParams
        Plant parameters.

    Returns
    -------
    numpy.ndarray
        The setpoint ``facility_supply_c`` for a plant with chillers (they trim to it; a shortfall
        is unmet heat). Without chillers the economiser exchanger can cool the water no lower than
        the tower or dry-cooler water plus its approach, so the supply floats:
        ``max(setpoint, T_source + hx_approach_k)``.

    Notes
    -----
    ``T_source`` = wet-bulb + tower approach, or dry-bulb + dry-cooler approach
    (:func:`heat_rejection_leaving_c`).

    Examples
    --------
    W32 on towers (4 K approach, 2 K exchanger), no chillers, 28 C wet-bulb: 28 + 4 + 2 = 34 C.

    >>> flat, lin = (1.0, 0, 0, 0, 0, 0), (0.0, 1.0, 0.0)
    >>> p = PlantParams(design_heat_w=1e6, chiller_q_ref_w=1e6, chiller_cop_ref=5.0,
    ...                 chiller_capft=flat, chiller_eirft=flat, chiller_eirfplr=lin,
    ...                 chiller_plr_min=0.1, n_chillers=0, n_chillers_redundant=0)
    >>> float(facility_supply_c(35.0, 28.0, p)), float(facility_supply_c(30.0, 20.0, p))
    (34.0, 32.0)
    """
    t_source = heat_rejection_leaving_c(dry_bulb_c, wet_bulb_c, params)
    if params.economiser_only:
        return np.maximum(params.facility_supply_c, t_source + params.hx_approach_k)
    return np.full(np.shape(t_source), params.facility_supply_c)


def crah_supply_air_c(supply_c: Numeric, params: PlantParams) -> FloatArray:
    """Air the CRAHs supply to the room, given the facility supply ``supply_c``. [C]

    With chillers the CRAHs hold ``crah_supply_air_c`` on chilled water. Without, their coils take
    the facility water (there is no colder water), so the air can be no cooler than that water
    plus the coil approach: ``max(crah_supply_air_c, supply_c + crah_coil_approach_k)``.

    Examples
    --------
    >>> flat, lin = (1.0, 0, 0, 0, 0, 0), (0.0, 1.0, 0.0)
    >>> p = PlantParams(design_heat_w=1e6, chiller_q_ref_w=1e6, chiller_cop_ref=5.0,
    ...                 chiller_capft=flat, chiller_eirft=flat, chiller_eirfplr=lin, chiller_plr_min=0.1,
    ...                 n_chillers=0, n_chillers_redundant=0, crah_supply_air_c=40.0)
    >>> float(crah_supply_air_c(34.0, p))  # 34 + 8
    42.0
    """
    supply = np.asarray(supply_c, dtype=np.float64)
    if params.economiser_only:
        return np.maximum(params.crah_supply_air_c, supply + params.crah_coil_approach_k)
    return np.full(supply.shape, params.crah_supply_air_c)


@lru_cache(maxsize=16)
def _tower_fraction(air: bytes, n: int, approach_k: float, water_air_ratio: float, range_k: float) -> FloatArray:
    """:func:`~twin.physics.heat_rejection.tower_evaporated_fraction` of ``n`` airs (dry bulb, wet bulb, pressure rows).

    Kept for the airs last asked (read-only): the weather holds for hours of blocks, each asking
    the same airs, and the solve (Newton steps until every air has settled) is the same for them.
    """
    db, wb, p = np.frombuffer(air, dtype=np.float64).reshape(3, n)
    t_cold = hr.tower_leaving_water_c(wb, approach_k)
    got = hr.tower_evaporated_fraction(db, wb, t_cold, pressure_pa=p, water_air_ratio=water_air_ratio, range_k=range_k)
    got.flags.writeable = False
    return got


def _heat_rejection(
    heat_w: FloatArray, dry_bulb_c: FloatArray, wet_bulb_c: FloatArray, pressure_pa: Numeric, params: PlantParams
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Tower fans, dry-cooler fans, evaporative heat [W] and water [kg/s] of the heat rejected."""
    zeros = np.zeros_like(heat_w)
    rated_w = params.heat_rejection_rated_w
    if params.heat_rejection == "tower":
        # The weather holds over runs of a block's ticks (hourly records): solve each run's air once.
        db, wb, p = np.broadcast_arrays(dry_bulb_c, wet_bulb_c, np.asarray(pressure_pa, dtype=np.float64))
        air = np.stack([db.ravel(), wb.ravel(), p.ravel()])
        new = np.ones(air.shape[1], dtype=bool)
        new[1:] = np.any(air[:, 1:] != air[:, :-1], axis=0)
        air = air[:, new]
        figures = (float(params.tower_approach_k), float(params.tower_water_air_ratio), float(params.tower_range_k))
        fraction = _tower_fraction(air.tobytes(), air.shape[1], *figures)[np.cumsum(new) - 1].reshape(db.shape)
        water = hr.tower_water_kg_s(
            heat_w,
            fraction,
            cycles_of_concentration=params.cycles_of_concentration,
            drift_fraction=params.drift_fraction,
            range_k=params.tower_range_k,
        )
        return hr.tower_fan_power_w(heat_w, rated_w, params.tower_fan_power_fraction), zeros, fraction * heat_w, water
    fans = hr.dry_cooler_fan_power_w(heat_w, rated_w, params.dry_cooler_fan_power_fraction)
    if params.heat_rejection == "dry_cooler":
        return zeros, fans, zeros, zeros
    water = hr.adiabatic_water_kg_s(
        heat_w,
        dry_bulb_c,
        wet_bulb_c,
        effectiveness=params.adiabatic_effectiveness,
        switch_c=params.adiabatic_switch_c,
        cycles_of_concentration=params.cycles_of_concentration,
        pressure_pa=pressure_pa,
    )
    return zeros, fans, zeros, water


def plant_power(
    heat_liquid_w: Numeric,
    heat_air_w: Numeric,
    dry_bulb_c: Numeric,
    wet_bulb_c: Numeric,
    params: PlantParams,
    *,
    chillers_available: Numeric | None = None,
    pressure_pa: Numeric = STANDARD_PRESSURE_PA,
) -> PlantResult:
    """Cooling-plant power, water and unmet heat for IT heat loads and weather.

    Parameters
    ----------
    heat_liquid_w : float or array_like
        IT heat captured by cold plates (to the CDUs). [W] Negative values are 0.
    heat_air_w : float or array_like
        IT heat into the room air (to the CRAHs). [W] Negative values are 0.
    dry_bulb_c, wet_bulb_c : float or array_like
        Outdoor dry-bulb and wet-bulb temperatures. [C]
    params : PlantParams
        Plant parameters.
    chillers_available : float or array_like, optional
        Chillers able to run at each step (faults); default ``params.n_chillers``.
    pressure_pa : float or array_like
        Station pressure, for the water's psychrometrics. [Pa]

    Returns
    -------
    PlantResult
        Arrays of the broadcast input shape.

    Notes
    -----
    1. Source water ``T_s`` = wet-bulb + tower approach, or dry-bulb + dry-cooler approach.
    2. Economiser shares (0 if disabled), from :func:`~twin.physics.cooling.economiser_fraction`:
       ``f_L`` for the facility loop (supply :func:`facility_supply_c`, return supply + rise) and
       ``f_A`` for the chilled-water loop; the exchanger approach is ``hx_approach_k``. Without
       chillers the facility supply floats to ``T_s + hx`` and the CRAHs take facility water, so
       both shares are 1 (economiser only; only the heat-rejection rating below limits it).
    3. CRAHs move at most their rated flow: air heat above ``V_rated rho cp dT`` is unmet.
    4. Chiller demand ``(1-f_L) Q_L + (1-f_A) Q_A,served`` is met up to
       ``n_available Q_ref CAPFT(chw_supply, T_s) PLR_max``; the shortfall is unmet, shared in
       proportion to each loop's demand.
    5. Staging: among the feasible numbers of equally loaded chillers, the least total power
       (an ideal sequencing controller; ties go to fewer units); each chiller follows
       :func:`~twin.physics.cooling.chiller_power_w` (EnergyPlus EIR model; cycles below
       PLR_min; temperatures clamped to the curve ranges, so a dry cooler's hot condenser water
       above ``t_cond_max_c`` is priced at that limit). The dataset curves are regressions, and
       chiller power is not monotone in condenser temperature at every load: the McQuay WSC's
       CAPFT rises with condenser temperature near 16 C (a warmer hour can need one chiller
       fewer), and the York YT's EIRFPLR falls with PLR from 0.09 to 0.31. Such steps are a
       few per cent of chiller power; annual chiller energy still rises with the wet-bulb.
    6. Heat rejected = economiser heat + chiller load + compressor power, at most the tower's or
       dry cooler's rating ``heat_rejection_rated_w`` (fans at full speed). Above it the approach
       would widen and the loops warm; the twin holds the approach and scales the economiser
       heat and the chiller load down until the rejected heat fits (a few fixed-point steps, as
       compressor power is not proportional to load): the rest is unmet, in each loop's share.
       Tower/dry-cooler fans follow the cube law on the rejected heat. Tower water = evaporation
       + blowdown + drift, the evaporation being the share of the heat the air takes up as
       vapour (:func:`~twin.physics.heat_rejection.tower_evaporated_fraction`: Merkel's balance with
       the air leaving saturated); an adiabatic cooler's water is what its pads evaporate
       (:func:`~twin.physics.heat_rejection.adiabatic_water_kg_s`).
    7. Pumps (constant head, flow from heat and loop rise): facility loop on ``Q_L``,
       chilled-water loop on air heat + liquid trim, condenser loop on heat rejected; CDU
       pumps at 1.5 L/min/kW. Fan and pump heat is not added back to the loads.

    Energy is conserved at every step:
    ``free_cooling_w + chiller_load_w + unmet_heat_w == heat_liquid_w + heat_air_w``.

    References
    ----------
    .. [1] Component models and their sources: :mod:`twin.physics.cooling`,
       :mod:`twin.physics.heat_rejection`.
    .. [2] upsite.com water-side economiser series; Taylor, ASHRAE J. 2014 (series economiser).

    Examples
    --------
    A flat-curve chiller (COP 5 at every condition), 1 MW of liquid heat, no economiser:

    >>> flat, lin = (1.0, 0, 0, 0, 0, 0), (0.0, 1.0, 0.0)
    >>> p = PlantParams(design_heat_w=1e6, chiller_q_ref_w=1e6, chiller_cop_ref=5.0,
    ...                 chiller_capft=flat, chiller_eirft=flat, chiller_eirfplr=lin,
    ...                 chiller_plr_min=0.1, economiser_enabled=False)
    >>> float(plant_power(1e6, 0.0, 30.0, 25.0, p).chiller_power_w)  # 1 MW / 5
    200000.0
    """
    q_liq, q_air, t_db, t_wb = np.broadcast_arrays(
        np.maximum(np.asarray(heat_liquid_w, dtype=np.float64), 0.0),
        np.maximum(np.asarray(heat_air_w, dtype=np.float64), 0.0),
        np.asarray(dry_bulb_c, dtype=np.float64),
        np.asarray(wet_bulb_c, dtype=np.float64),
    )
    t_source = heat_rejection_leaving_c(t_db, t_wb, params)
    fws_c = facility_supply_c(t_db, t_wb, params)
    # without chillers the CRAH coils take the facility water
    chw_c = fws_c if params.economiser_only else params.chw_supply_c

    # 2. economiser shares of each loop
    enabled = 1.0 if params.economiser_enabled else 0.0
    f_liq = enabled * cl.economiser_fraction(t_source, fws_c + params.facility_delta_t_k, fws_c, params.hx_approach_k)
    f_air = enabled * cl.economiser_fraction(t_source, chw_c + params.chw_delta_t_k, chw_c, params.hx_approach_k)

    # 3. CRAH air-flow limit
    crah_max_w = params.crah_rated_flow_m3_s * AIR_DENSITY_KG_M3 * AIR_CP_J_KG_K * params.crah_delta_t_k
    q_air_served = np.minimum(q_air, crah_max_w)

    # 4. chiller demand, capacity and shortfall
    free_liq_w = f_liq * q_liq
    free_air_w = f_air * q_air_served
    demand_liq_w = q_liq - free_liq_w
    demand_air_w = q_air_served - free_air_w
    demand_w = demand_liq_w + demand_air_w
    if chillers_available is None:
        n_available = np.full(demand_w.shape, float(params.n_chillers))
    else:
        n_available = np.broadcast_to(
            np.floor(np.maximum(np.asarray(chillers_available, dtype=np.float64), 0.0)),
            demand_w.shape,
        )
    unit_capacity_w = params.unit_capacity_w(t_source)
    chiller_load_w = np.minimum(demand_w, n_available * unit_capacity_w)
    shortfall_w = demand_w - chiller_load_w
    liq_share = np.divide(demand_liq_w, demand_w, out=np.zeros_like(demand_w), where=demand_w > 0.0)
    unmet_liq_w = shortfall_w * liq_share
    unmet_air_w = (shortfall_w - unmet_liq_w) + (q_air - q_air_served)

    # 5. staged chillers
    chiller_power_w, running = _staged_chiller_power_w(chiller_load_w, n_available, t_source, unit_capacity_w, params)

    # 6. heat rejection, at most the tower's or dry cooler's rating: the heat beyond it is unmet
    free_w = free_liq_w + free_air_w
    heat_rejected_w = free_w + chiller_load_w + chiller_power_w
    rated_w = params.heat_rejection_rated_w
    if np.any(heat_rejected_w > rated_w * (1.0 + 1e-9)):
        served_liq_w = free_liq_w + chiller_load_w * liq_share
        served_w = free_w + chiller_load_w
        scale = np.ones_like(heat_rejected_w)
        for _ in range(REJECTION_ITERATIONS):  # rejected heat rises with the scale: settles from above
            over = heat_rejected_w > rated_w * (1.0 + 1e-9)
            if not over.any():
                break
            scale = np.where(over, scale * rated_w / np.where(over, heat_rejected_w, 1.0), scale)
            chiller_power_w, running = _staged_chiller_power_w(
                chiller_load_w * scale, n_available, t_source, unit_capacity_w, params
            )
            heat_rejected_w = scale * served_w + chiller_power_w
        unmet_liq_w = unmet_liq_w + (1.0 - scale) * served_liq_w
        unmet_air_w = unmet_air_w + (1.0 - scale) * (served_w - served_liq_w)
        free_liq_w, free_air_w, chiller_load_w = scale * free_liq_w, scale * free_air_w, scale * chiller_load_w
        free_w = free_liq_w + free_air_w
    tower_fan_w, dry_fan_w, evaporative_w, water_kg_s = _heat_rejection(
        heat_rejected_w, t_db, t_wb, pressure_pa, params
    )

    # 7. pumps and fans
    trim_liq_w = chiller_load_w * liq_share
    fws_flow = cl.water_flow_m3_s(q_liq, params.facility_delta_t_k)
    chw_flow = cl.water_flow_m3_s(q_air_served + trim_liq_w, params.chw_delta_t_k)
    cw_flow = cl.water_flow_m3_s(heat_rejected_w, params.tower_range_k)
    pump_w = cl.pump_power_w(fws_flow + chw_flow, params.chw_pump_head_pa, params.pump_efficiency)
    pump_w = pump_w + cl.pump_power_w(cw_flow, params.cw_pump_head_pa, params.pump_efficiency)
    cdu_pump_w = cl.cdu_pump_power_w(
        q_liq, params.cdu_flow_l_min_per_kw, params.cdu_pump_head_pa, params.cdu_pump_efficiency
    )
    crah_fan_w = cl.crah_fan_power_w(
        q_air_served,
        params.crah_delta_t_k,
        params.crah_rated_flow_m3_s,
        params.crah_rated_fan_power_w,
    )

    total_w = q_liq + q_air
    at_design = (1.0 - params.design_air_fraction) * f_liq + params.design_air_fraction * f_air
    free_fraction = np.where(
        total_w > 0.0,
        np.divide(free_w, total_w, out=np.zeros_like(free_w), where=total_w > 0.0),
        at_design,
    )
    return PlantResult(
        chiller_power_w=chiller_power_w,
        tower_fan_power_w=tower_fan_w,
        dry_cooler_fan_power_w=dry_fan_w,
        pump_power_w=pump_w,
        cdu_pump_power_w=cdu_pump_w,
        crah_fan_power_w=crah_fan_w,
        water_kg_s=water_kg_s,
        free_cooling_fraction=free_fraction,
        free_cooling_w=free_w,
        chiller_load_w=chiller_load_w,
        chillers_running=running,
        heat_rejected_w=heat_rejected_w,
        heat_rejected_evaporative_w=evaporative_w,
        heat_rejection_leaving_c=np.array(t_source, dtype=np.float64),
        facility_supply_c=fws_c,
        tcs_supply_c=fws_c + params.cdu_approach_k,
        crah_supply_air_c=crah_supply_air_c(fws_c, params),
        unmet_liquid_w=unmet_liq_w,
        unmet_air_w=unmet_air_w,
        unmet_heat_w=unmet_liq_w + unmet_air_w,
    )


__all__ = [
    "PlantResult",
    "crah_supply_air_c",
    "facility_supply_c",
    "heat_rejection_leaving_c",
    "plant_power",
]
