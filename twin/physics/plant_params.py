"""The cooling plant's parameters: the ASHRAE classes, the design defaults and ``PlantParams``.

:class:`PlantParams` holds one plant's parameters (floats, ints, strings and coefficient tuples
only) and checks them; it derives the ratings (chillers' design capacity, the tower's or dry
cooler's rated heat, CRAH air flow and fan power) and prices one chiller at the plant's
chilled-water setpoint (:meth:`PlantParams.unit_capacity_w`, :meth:`PlantParams.unit_power_w`:
the EnergyPlus EIR model of :mod:`twin.physics.cooling`). :meth:`PlantParams.from_presets`
builds them from ASHRAE classes, a catalog chiller (:class:`ChillerCurveLike`) and a design load.
Module constants are the defaults, each with its source; ``[EST]`` marks a value we derived. The
plant's solve and its temperatures (:func:`plant_power`, :func:`facility_supply_c`, named in the
docstrings below) are in :mod:`twin.physics.cooling_plant`.

References
----------
.. [1] ASHRAE TC 9.9, "Emergence and Expansion of Liquid Cooling in Mainstream Data Centers"
   (liquid classes W17-W45, W+), 2021; via parameters.md 3.1.
.. [2] ASHRAE TC 9.9, *Thermal Guidelines for Data Processing Environments*, 5th ed.:
   recommended 18-27 C; allowable A1 15-32, A2 10-35, A3 5-40, A4 5-45 C (parameters.md 3.1).
.. [3] parameters.md 3.2-3.4 for the component defaults (``twin.physics.cooling``,
   ``twin.physics.heat_rejection``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Final, Protocol

from twin._types import FloatArray, Numeric
from twin.errors import UnknownNameError
from twin.physics import cooling as cl
from twin.physics import heat_rejection as hr

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


__all__ = [
    "ASHRAE_AIR_CLASSES",
    "ASHRAE_AIR_RECOMMENDED_C",
    "ASHRAE_LIQUID_CLASSES",
    "HEAT_REJECTION_KINDS",
    "ChillerCurveLike",
    "PlantParams",
]
