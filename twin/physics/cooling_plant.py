"""The facility cooling plant over time: one pure function composing the components.

Topology (documented choice; see :func:`plant_power`)::

    IT liquid heat -> cold plates -> TCS loop -> CDU -> facility water (FWS) loop --+
    IT air heat    -> CRAH coils  -> chilled-water (CHW) loop ---------------------+
                                                                                   |
    each loop: return -> economiser HX (pre-cools, series) -> chiller trim -> supply
                           |                                   |
                           +---- tower or dry cooler <---------+ condenser water

* The FWS supply setpoint is the ASHRAE liquid class number (W32 -> 32 C). The CHW loop
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

References
----------
.. [1] ASHRAE TC 9.9, "Emergence and Expansion of Liquid Cooling in Mainstream Data Centers"
   (liquid classes W17-W45, W+), 2021; via parameters.md 3.1.
.. [2] ASHRAE TC 9.9, *Thermal Guidelines for Data Processing Environments*, 5th ed.:
   recommended 18-27 C; allowable A1 15-32, A2 10-35, A3 5-40, A4 5-45 C (parameters.md 3.1).
.. [3] parameters.md 3.2-3.4 for the component models and defaults (``twin.physics.cooling``,
   ``twin.physics.heat_rejection``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Final, Protocol

import numpy as np

from twin._types import FloatArray, Numeric
from twin.errors import UnknownNameError
from twin.physics import cooling as cl
from twin.physics import heat_rejection as hr
from twin.units import AIR_CP_J_KG_K, AIR_DENSITY_KG_M3, STANDARD_PRESSURE_PA

#: Maximum facility-water supply temperature of each ASHRAE liquid class [C] ([1]; the number
#: in the name; minimum 2 C for all; W+ (> 45 C) has no upper bound and is not listed).
ASHRAE_LIQUID_CLASSES: dict[str, float] = {
    "W17": 17.0,
    "W27": 27.0,
    "W32": 32.0,
    "W40": 40.0,
    "W45": 45.0,
}
#: Allowable IT air-inlet range of each ASHRAE air class, (min, max) [C] ([2]).
ASHRAE_AIR_CLASSES: dict[str, tuple[float, float]] = {
    "A1": (15.0, 32.0),
    "A2": (10.0, 35.0),
    "A3": (5.0, 40.0),
    "A4": (5.0, 45.0),
}
#: Recommended IT air-inlet range, all classes A1-A4, (min, max) [C] ([2]).
ASHRAE_AIR_RECOMMENDED_C: tuple[float, float] = (18.0, 27.0)
#: Heat-rejection kinds ``plant_power`` knows.
HEAT_REJECTION_KINDS: tuple[str, ...] = ("tower", "dry_cooler", "adiabatic_dry_cooler")
#: [EST] A plant's defaults (also the scenario's ``cooling``): W32 facility water, A1 air, towers.
DEFAULT_LIQUID_CLASS: Final = "W32"
DEFAULT_AIR_CLASS: Final = "A1"
DEFAULT_HEAT_REJECTION: Final = "tower"

#: [EST] CRAH supply-air setpoint [C]: inside the recommended 18-27 C ([2]).
CRAH_SUPPLY_AIR_C: float = 24.0
#: [EST] CRAH coil approach, supply air minus entering chilled water [K]: Taylor (ASHRAE J.,
#: 2014) pairs > 27 C supply air with > 18 C chilled water (about 9 K); we take 8 K.
CRAH_COIL_APPROACH_K: float = 8.0
#: [EST] Air temperature rise across the IT (hot aisle minus cold aisle) [K].
CRAH_DELTA_T_K: float = 12.0
#: [EST] CRAH fleet rated air flow over the design air load's need [-]: N+1 with N = 4.
CRAH_CAPACITY_FACTOR: float = 1.25
#: [EST] Chilled-water loop temperature rise [K] (6.7 -> 12.2 C AHRI rating is 5.6 K).
CHW_DELTA_T_K: float = 6.0
#: [EST] Facility-water loop rise [K]: the <= 10 K coolant rise of OCP (parameters.md 3.4).
FACILITY_DELTA_T_K: float = 10.0
#: [EST] CDU approach, TCS supply minus facility supply [K]: the low end of the 5-15 K span
#: discussed in parameters.md 3.3.
CDU_APPROACH_K: float = 5.0
#: [EST] Share of IT heat that goes to air at design [-]: 85-95 % is captured by liquid
#: (parameters.md 3.4), midpoint 90 %.
DESIGN_AIR_FRACTION: float = 0.10
#: Share of server heat captured by liquid for each cooling type [-]: 85-95 % for direct-to-chip
#: (yobitel.com, parameters.md 3.4), midpoint 0.90 for "liquid" (``1 - DESIGN_AIR_FRACTION``);
#: [EST] 0.75 for a hybrid row with GPU cold plates only (GPUs are ~75 % of an HGX node's IT power
#: in parameters.md 1.2).
LIQUID_FRACTION_BY_TYPE: dict[str, float] = {"air": 0.0, "hybrid": 0.75, "liquid": 1.0 - DESIGN_AIR_FRACTION}
#: [EST] Rated heat of the tower/dry cooler over the design IT heat [-]: IT heat plus the
#: compressor work of a COP ~5 chiller, 1 + 1/5.
HEAT_REJECTION_CAPACITY_FACTOR: float = 1.2
#: Fixed-point steps of the heat-rejection limit in :func:`plant_power` (each divides the excess
#: by roughly the chillers' part-load nonlinearity; 6 leave well under 1 W per MW).
REJECTION_ITERATIONS: int = 6


class ChillerCurveLike(Protocol):
    """What :meth:`PlantParams.from_presets` reads of a chiller (``twin.catalog.cooling``)."""

    q_ref_w: float
    cop_ref: float
    capft: tuple[float, ...]
    eirft: tuple[float, ...]
    eirfplr: tuple[float, ...]
    plr_min: float
    plr_max: float
    t_chw_min_c: float
    t_chw_max_c: float
    t_cond_min_c: float
    t_cond_max_c: float


@dataclass(frozen=True, kw_only=True)
class PlantParams:
    """Parameters of the cooling plant; floats, ints, strings and coefficient tuples only.

    Attributes
    ----------
    design_heat_w : float
        Design IT heat load (liquid + air); sizes towers, CRAHs and (in presets) chillers. [W]
    chiller_q_ref_w, chiller_cop_ref : float
        Reference capacity [W] and COP [W/W] of one chiller.
    chiller_capft, chiller_eirft : tuple of 6 floats
        Biquadratic curves of (chilled-water supply, condenser entering) temperature.
    chiller_eirfplr : tuple of 3 floats
        Quadratic EIR curve of part-load ratio.
    chiller_plr_min, chiller_plr_max : float
        Part-load limits. [-] ``chiller_plr_max`` defaults to 1 (no overload).
    chiller_t_chw_min_c, chiller_t_chw_max_c, chiller_t_cond_min_c, chiller_t_cond_max_c : float
        Curve ranges; inputs are clamped to them. [C]
    n_chillers : int
        Chillers installed (including the redundant ones); all may run. 0: an economiser-only
        plant, whose loops float on the tower or dry-cooler water (:func:`facility_supply_c`).
    n_chillers_redundant : int
        Of those, the standby units (N+1: 1); used for the design capacity.
    design_air_fraction : float
        Share of the design heat that goes to air. [-]
    facility_supply_c : float
        Facility-water supply setpoint (ASHRAE W class). [C]
    facility_delta_t_k : float
        Facility-water loop rise. [K]
    cdu_approach_k : float
        TCS supply minus facility-water supply. [K]
    chw_supply_c, chw_delta_t_k : float
        Chilled-water supply setpoint [C] and loop rise [K] (CRAH side).
    crah_supply_air_c, crah_delta_t_k : float
        CRAH supply-air setpoint [C] and air rise across the IT [K].
    crah_coil_approach_k : float
        CRAH supply air minus the water entering its coil. [K]
    air_inlet_allowable_min_c, air_inlet_allowable_max_c : float
        Allowable IT inlet range of the ASHRAE air class [C] (for the engine's alarms).
    heat_rejection : str
        ``"tower"``, ``"dry_cooler"`` or ``"adiabatic_dry_cooler"`` (a dry cooler whose pads
        pre-cool the air above ``adiabatic_switch_c``).
    tower_approach_k, dry_cooler_approach_k : float
        Approaches to wet-bulb and dry-bulb (an adiabatic cooler's: to its pre-cooled air). [K]
    heat_rejection_capacity_factor : float
        Rated heat of the tower or dry cooler over ``design_heat_w``. [-]
    tower_fan_power_fraction, dry_cooler_fan_power_fraction : float
        Fan power at full speed per watt of rated heat. [-]
    tower_range_k : float
        Condenser/tower water range. [K]
    cycles_of_concentration, drift_fraction : float
        Tower (and adiabatic pad) water treatment, > 1, and tower drift, 0..1. [-]
    tower_water_air_ratio : float
        Tower L/G, water over dry-air mass flow; sets the air's enthalpy rise and so the
        evaporated share (:func:`~twin.physics.heat_rejection.tower_evaporated_fraction`). [-]
    adiabatic_effectiveness, adiabatic_switch_c : float
        Pad saturation effectiveness, 0..1 [-], and the dry-bulb above which the pads are wet [C].
    economiser_enabled : bool
        Whether the water-side economiser runs.
    hx_approach_k : float
        Economiser (and FWS trim) exchanger approach. [K]
    crah_capacity_factor : float
        CRAH rated air flow over the design air load's need. [-]
    crah_fan_pressure_pa, crah_fan_efficiency : float
        CRAH fan total pressure [Pa] and efficiency [-] at rated flow.
    chw_pump_head_pa, cw_pump_head_pa, pump_efficiency : float
        Head of the chilled/facility-water and condenser-water pumps [Pa], their efficiency [-].
    cdu_flow_l_min_per_kw, cdu_pump_head_pa, cdu_pump_efficiency : float
        CDU (TCS) pump flow per kW [L/min/kW], head [Pa], efficiency [-].
    """

    design_heat_w: float
    chiller_q_ref_w: float
    chiller_cop_ref: float
    chiller_capft: tuple[float, ...]
    chiller_eirft: tuple[float, ...]
    chiller_eirfplr: tuple[float, ...]
    chiller_plr_min: float
    chiller_plr_max: float = 1.0
    chiller_t_chw_min_c: float = -math.inf
    chiller_t_chw_max_c: float = math.inf
    chiller_t_cond_min_c: float = -math.inf
    chiller_t_cond_max_c: float = math.inf
    n_chillers: int = 2
    n_chillers_redundant: int = 1
    design_air_fraction: float = DESIGN_AIR_FRACTION
    facility_supply_c: float = ASHRAE_LIQUID_CLASSES[DEFAULT_LIQUID_CLASS]
    facility_delta_t_k: float = FACILITY_DELTA_T_K
    cdu_approach_k: float = CDU_APPROACH_K
    chw_supply_c: float = CRAH_SUPPLY_AIR_C - CRAH_COIL_APPROACH_K
    chw_delta_t_k: float = CHW_DELTA_T_K
    crah_supply_air_c: float = CRAH_SUPPLY_AIR_C
    crah_delta_t_k: float = CRAH_DELTA_T_K
    crah_coil_approach_k: float = CRAH_COIL_APPROACH_K
    air_inlet_allowable_min_c: float = ASHRAE_AIR_CLASSES[DEFAULT_AIR_CLASS][0]
    air_inlet_allowable_max_c: float = ASHRAE_AIR_CLASSES[DEFAULT_AIR_CLASS][1]
    heat_rejection: str = DEFAULT_HEAT_REJECTION
    tower_approach_k: float = hr.TOWER_APPROACH_K
    dry_cooler_approach_k: float = hr.DRY_COOLER_APPROACH_K
    heat_rejection_capacity_factor: float = HEAT_REJECTION_CAPACITY_FACTOR
    tower_fan_power_fraction: float = hr.TOWER_FAN_POWER_FRACTION
    dry_cooler_fan_power_fraction: float = hr.DRY_COOLER_FAN_POWER_FRACTION
    tower_range_k: float = hr.TOWER_RANGE_K
    cycles_of_concentration: float = hr.CYCLES_OF_CONCENTRATION
    drift_fraction: float = hr.DRIFT_FRACTION
    tower_water_air_ratio: float = hr.TOWER_WATER_AIR_RATIO
    adiabatic_effectiveness: float = hr.ADIABATIC_EFFECTIVENESS
    adiabatic_switch_c: float = hr.ADIABATIC_SWITCH_C
    economiser_enabled: bool = True
    hx_approach_k: float = cl.HX_APPROACH_K
    crah_capacity_factor: float = CRAH_CAPACITY_FACTOR
    crah_fan_pressure_pa: float = cl.CRAH_FAN_PRESSURE_PA
    crah_fan_efficiency: float = cl.CRAH_FAN_EFFICIENCY
    chw_pump_head_pa: float = cl.CHW_PUMP_HEAD_PA
    cw_pump_head_pa: float = cl.CW_PUMP_HEAD_PA
    pump_efficiency: float = cl.PUMP_EFFICIENCY
    cdu_flow_l_min_per_kw: float = cl.CDU_FLOW_L_MIN_PER_KW
    cdu_pump_head_pa: float = cl.CDU_PUMP_HEAD_PA
    cdu_pump_efficiency: float = cl.CDU_PUMP_EFFICIENCY

    def __post_init__(self) -> None:
        if self.heat_rejection not in HEAT_REJECTION_KINDS:
            raise UnknownNameError("heat rejection kind", self.heat_rejection, list(HEAT_REJECTION_KINDS))
        lengths = {"chiller_capft": 6, "chiller_eirft": 6, "chiller_eirfplr": 3}
        for name, length in lengths.items():
            if len(getattr(self, name)) != length:
                raise ValueError(f"PlantParams.{name} needs {length} coefficients")
        positive = (
            "design_heat_w",
            "chiller_q_ref_w",
            "chiller_cop_ref",
            "facility_delta_t_k",
            "chw_delta_t_k",
            "crah_delta_t_k",
            "tower_range_k",
            "tower_water_air_ratio",
            "pump_efficiency",
            "crah_fan_efficiency",
            "cdu_pump_efficiency",
        )
        for name in positive:
            if not getattr(self, name) > 0.0:
                raise ValueError(f"PlantParams.{name} must be > 0, got {getattr(self, name)!r}")
        if not self.cycles_of_concentration > 1.0:
            raise ValueError(
                f"PlantParams.cycles_of_concentration must be > 1 (blowdown = evaporation / (cycles - 1)), "
                f"got {self.cycles_of_concentration!r}"
            )
        for name in ("drift_fraction", "adiabatic_effectiveness"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"PlantParams.{name} must be within 0..1, got {getattr(self, name)!r}")
        if self.n_chillers < 0 or not 0 <= self.n_chillers_redundant <= self.n_chillers:
            raise ValueError("PlantParams needs 0 <= n_chillers_redundant <= n_chillers")
        if self.economiser_only and not self.economiser_enabled:
            raise ValueError("a plant without chillers (n_chillers 0) rejects its heat by the economiser alone")

    @property
    def economiser_only(self) -> bool:
        """No chillers: the loops float on the tower or dry-cooler water (:func:`facility_supply_c`)."""
        return self.n_chillers == 0

    @property
    def design_chiller_capacity_w(self) -> float:
        """Capacity [W] with the redundant units out, ``(n - n_redundant) Q_ref``, at reference."""
        return (self.n_chillers - self.n_chillers_redundant) * self.chiller_q_ref_w

    @property
    def heat_rejection_rated_w(self) -> float:
        """Heat [W] the tower or dry cooler rejects at full fan speed."""
        return self.design_heat_w * self.heat_rejection_capacity_factor

    @property
    def crah_rated_flow_m3_s(self) -> float:
        """Total rated CRAH air flow [m3/s]."""
        design_air_w = self.design_heat_w * self.design_air_fraction
        return float(cl.air_flow_m3_s(design_air_w, self.crah_delta_t_k)) * self.crah_capacity_factor

    @property
    def crah_rated_fan_power_w(self) -> float:
        """Total CRAH fan power [W] at rated flow, ``V dp / eta`` (the pump law holds for fans)."""
        return float(cl.pump_power_w(self.crah_rated_flow_m3_s, self.crah_fan_pressure_pa, self.crah_fan_efficiency))

    def unit_capacity_w(self, t_cond_in_c: Numeric) -> FloatArray:
        """Cooling [W] one chiller can deliver at ``chw_supply_c``: ``Q_ref CAPFT PLR_max``."""
        return self.chiller_plr_max * cl.chiller_capacity_w(
            self.chw_supply_c,
            t_cond_in_c,
            self.chiller_q_ref_w,
            self.chiller_capft,
            self.chiller_t_cond_min_c,
            self.chiller_t_cond_max_c,
            t_chw_min_c=self.chiller_t_chw_min_c,
            t_chw_max_c=self.chiller_t_chw_max_c,
        )

    def unit_power_w(self, heat_load_w: Numeric, t_cond_in_c: Numeric) -> FloatArray:
        """Electric power [W] of one chiller carrying ``heat_load_w`` at ``chw_supply_c``."""
        return cl.chiller_power_w(
            heat_load_w,
            self.chw_supply_c,
            t_cond_in_c,
            self.chiller_q_ref_w,
            self.chiller_cop_ref,
            self.chiller_capft,
            self.chiller_eirft,
            self.chiller_eirfplr,
            self.chiller_plr_min,
            self.chiller_t_cond_min_c,
            self.chiller_t_cond_max_c,
            plr_max=self.chiller_plr_max,
            t_chw_min_c=self.chiller_t_chw_min_c,
            t_chw_max_c=self.chiller_t_chw_max_c,
        )

    @classmethod
    def from_presets(
        cls,
        liquid_class: str = DEFAULT_LIQUID_CLASS,
        air_class: str = DEFAULT_AIR_CLASS,
        *,
        chiller: ChillerCurveLike,
        design_heat_w: float,
        heat_rejection: str = DEFAULT_HEAT_REJECTION,
        **overrides: object,
    ) -> PlantParams:
        """Build parameters from ASHRAE classes, a catalog chiller and a design load.

        Parameters
        ----------
        liquid_class : str
            ASHRAE liquid class, a key of :data:`ASHRAE_LIQUID_CLASSES`; sets
            ``facility_supply_c``.
        air_class : str
            ASHRAE air class, a key of :data:`ASHRAE_AIR_CLASSES`; sets the allowable inlet range.
        chiller : ChillerCurveLike
            A chiller, e.g. ``twin.catalog.cooling.chiller_curve(name)``.
        design_heat_w : float
            Design IT heat load. [W]
        heat_rejection : str
            One of :data:`HEAT_REJECTION_KINDS`.
        **overrides
            Any other :class:`PlantParams` field.

        Returns
        -------
        PlantParams
            With ``n_chillers = ceil(design_heat_w / Q_ref) + 1`` (N+1 on the whole design heat,
            as if no economiser; an override ``n_chillers = 0`` has no standby either) and
            ``chw_supply_c = min(crah_supply_air_c - crah_coil_approach_k,
            facility_supply_c - hx_approach_k)`` so the chillers can trim the facility loop.

        Raises
        ------
        twin.errors.UnknownNameError
            For an unknown class name or parameter name; lists the valid ones.
        """
        if liquid_class not in ASHRAE_LIQUID_CLASSES:
            raise UnknownNameError("ASHRAE liquid class", liquid_class, list(ASHRAE_LIQUID_CLASSES))
        if air_class not in ASHRAE_AIR_CLASSES:
            raise UnknownNameError("ASHRAE air class", air_class, list(ASHRAE_AIR_CLASSES))
        valid = {f.name for f in fields(cls)}
        for key in overrides:
            if key not in valid:
                raise UnknownNameError("plant parameter", key, sorted(valid))
        air_min_c, air_max_c = ASHRAE_AIR_CLASSES[air_class]
        facility_c = ASHRAE_LIQUID_CLASSES[liquid_class]
        supply_air_c = float(overrides.get("crah_supply_air_c", CRAH_SUPPLY_AIR_C))  # type: ignore[arg-type]
        hx_k = float(overrides.get("hx_approach_k", cl.HX_APPROACH_K))  # type: ignore[arg-type]
        coil_k = float(overrides.get("crah_coil_approach_k", CRAH_COIL_APPROACH_K))  # type: ignore[arg-type]
        values: dict[str, object] = {
            "design_heat_w": design_heat_w,
            "chiller_q_ref_w": chiller.q_ref_w,
            "chiller_cop_ref": chiller.cop_ref,
            "chiller_capft": tuple(chiller.capft),
            "chiller_eirft": tuple(chiller.eirft),
            "chiller_eirfplr": tuple(chiller.eirfplr),
            "chiller_plr_min": chiller.plr_min,
            "chiller_t_chw_min_c": chiller.t_chw_min_c,
            "chiller_t_chw_max_c": chiller.t_chw_max_c,
            "chiller_t_cond_min_c": chiller.t_cond_min_c,
            "chiller_t_cond_max_c": chiller.t_cond_max_c,
            "n_chillers": math.ceil(design_heat_w / chiller.q_ref_w) + 1,
            "n_chillers_redundant": 1,
            "facility_supply_c": facility_c,
            "chw_supply_c": min(supply_air_c - coil_k, facility_c - hx_k),
            "crah_supply_air_c": supply_air_c,
            "air_inlet_allowable_min_c": air_min_c,
            "air_inlet_allowable_max_c": air_max_c,
            "heat_rejection": heat_rejection,
        }
        values.update(overrides)
        if values["n_chillers"] == 0:
            values["n_chillers_redundant"] = overrides.get("n_chillers_redundant", 0)
        return cls(**values)  # type: ignore[arg-type]


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


#: Most (chiller count x time step) candidates evaluated in one broadcast call (bounds memory).
STAGING_CELLS = 250_000


def _staged_chiller_power_w(
    load_w: FloatArray,
    n_available: FloatArray,
    t_cond_c: FloatArray,
    unit_capacity_w: FloatArray,
    params: PlantParams,
) -> tuple[FloatArray, FloatArray]:
    """Least total power over the feasible numbers of equally loaded chillers.

    The candidate counts ``k = 1 .. n_max`` are evaluated together, broadcast along a leading
    axis (a large plant has hundreds of chillers), and chosen as a scan in order would: a count
    replaces the one held where it draws less by more than a relative 1e-9, so ties (all units
    cycling below PLR_min draw the same) go to the fewer chillers (:func:`_scan_least`).
    """
    best_w = np.where(load_w > 0.0, np.inf, 0.0)
    running = np.zeros_like(load_w)
    n_max = int(np.max(n_available, initial=0.0))
    size = max(int(np.size(best_w)), 1)
    per_call = max(1, STAGING_CELLS // size)
    for first in range(1, n_max + 1, per_call):
        ks = np.arange(first, min(first + per_call, n_max + 1), dtype=np.float64)
        k = ks.reshape((-1,) + (1,) * np.ndim(best_w))
        feasible = (load_w > 0.0) & (k <= n_available) & (load_w <= k * unit_capacity_w * (1.0 + 1e-12))
        power_w = k * params.unit_power_w(load_w / k, t_cond_c)
        best_w, running = _scan_least(np.where(feasible, power_w, np.nan), ks, best_w, running)
    return np.where(np.isfinite(best_w), best_w, 0.0), running


#: A candidate replaces the one held only where it draws less by more than this (relative).
_STAGING_RTOL = 1e-9


def _scan_least(
    power_w: FloatArray, ks: FloatArray, best_w: FloatArray, running: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """The scan of candidates ``ks`` in order (NaN: infeasible) from the held ``best_w``, ``running``.

    Candidate ``i`` replaces the one held where ``P_i < best (1 - rtol)``. Only a strict running
    minimum can (the one held is never below the least seen so far), so where no new minimum lies
    within ``rtol`` of the one before it the scan keeps every new minimum and ends on the first
    candidate with the least power: an ``argmin``, no loop. Where such a near tie lies the
    candidates are scanned one at a time, as the rule says.
    """
    p = np.where(np.isnan(power_w), np.inf, power_w)
    before = np.minimum.accumulate(np.concatenate((best_w[None], p[:-1])), axis=0)  # least seen before i
    new = p < before
    near = new & (p >= before * (1.0 - _STAGING_RTOL))
    if np.any(near):
        for i, kk in enumerate(ks):
            better = p[i] < best_w * (1.0 - _STAGING_RTOL)
            best_w = np.where(better, p[i], best_w)
            running = np.where(better, kk, running)
        return best_w, running
    first = np.argmin(p, axis=0)
    least = np.take_along_axis(p, first[None], axis=0)[0]
    better = least < best_w
    return np.where(better, least, best_w), np.where(better, ks[first], running)


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
        t_cold = hr.tower_leaving_water_c(air[1], params.tower_approach_k)
        fraction = hr.tower_evaporated_fraction(
            air[0],
            air[1],
            t_cold,
            pressure_pa=air[2],
            water_air_ratio=params.tower_water_air_ratio,
            range_k=params.tower_range_k,
        )[np.cumsum(new) - 1].reshape(db.shape)
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
    "ASHRAE_AIR_CLASSES",
    "ASHRAE_AIR_RECOMMENDED_C",
    "ASHRAE_LIQUID_CLASSES",
    "HEAT_REJECTION_KINDS",
    "ChillerCurveLike",
    "PlantParams",
    "PlantResult",
    "crah_supply_air_c",
    "facility_supply_c",
    "heat_rejection_leaving_c",
    "plant_power",
]
