"""``cooling.plant_overrides``: the cooling-plant parameters a scenario may set beyond its own keys.

One optional field per :class:`twin.physics.plant_params.PlantParams` parameter that has no key
of its own in ``cooling:`` (those set there: ``heat_rejection``, ``design_heat_w``,
``crah_supply_air_c``, ``economiser``, ``facility_supply_c``, ``n_chillers``). Unset fields keep
the plant's preset value. Bounds are the plant's own (``PlantParams`` refuses a negative capacity
when the facility is built, so ``twin validate`` refuses it too).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from twin.scenario.strict import Float, Int, Overrides

#: PlantParams fields set through a key of ``cooling:`` itself, not through the overrides.
OWN_KEYS = {
    "heat_rejection": "heat_rejection",
    "design_heat_w": "design_heat_w",
    "crah_supply_air_c": "crah_supply_air_c",
    "economiser_enabled": "economiser",
    "facility_supply_c": "facility_supply_c",
    "n_chillers": "n_chillers",
}


def _opt(description: str) -> Any:
    return Field(None, description=description)


class PlantOverrides(Overrides):
    """Cooling-plant parameters that replace the preset's (see :class:`twin.physics.plant_params.PlantParams`)."""

    chiller_q_ref_w: Float | None = _opt("Reference capacity of one chiller. [W]")
    chiller_cop_ref: Float | None = _opt("Reference COP of one chiller. [W/W]")
    chiller_plr_min: Float | None = _opt("Lowest part-load ratio a chiller runs at. [-]")
    chiller_plr_max: Float | None = _opt("Highest part-load ratio (1: no overload). [-]")
    chiller_t_chw_min_c: Float | None = _opt("Lowest chilled-water supply of the chiller curves. [C]")
    chiller_t_chw_max_c: Float | None = _opt("Highest chilled-water supply of the chiller curves. [C]")
    chiller_t_cond_min_c: Float | None = _opt("Lowest condenser entering temperature of the curves. [C]")
    chiller_t_cond_max_c: Float | None = _opt("Highest condenser entering temperature of the curves. [C]")
    n_chillers_redundant: Int | None = _opt("Standby chillers among those installed (N+1: 1). [-]")
    design_air_fraction: Float | None = _opt("Share of the design heat that goes to air. [-]")
    facility_delta_t_k: Float | None = _opt("Facility-water loop rise. [K]")
    cdu_approach_k: Float | None = _opt("TCS supply minus facility-water supply. [K]")
    chw_supply_c: Float | None = _opt("Chilled-water supply setpoint (CRAH side). [C]")
    chw_delta_t_k: Float | None = _opt("Chilled-water loop rise. [K]")
    crah_delta_t_k: Float | None = _opt("Air rise across the IT. [K]")
    crah_coil_approach_k: Float | None = _opt("CRAH supply air minus the water entering its coil. [K]")
    air_inlet_allowable_min_c: Float | None = _opt("Lowest allowable IT inlet air. [C]")
    air_inlet_allowable_max_c: Float | None = _opt("Highest allowable IT inlet air. [C]")
    tower_approach_k: Float | None = _opt("Cooling-tower approach to the wet-bulb. [K]")
    dry_cooler_approach_k: Float | None = _opt("Dry-cooler approach to the dry-bulb. [K]")
    heat_rejection_capacity_factor: Float | None = _opt("Rated heat of the tower or dry cooler over design heat. [-]")
    tower_fan_power_fraction: Float | None = _opt("Tower fan power at full speed per watt of rated heat. [-]")
    dry_cooler_fan_power_fraction: Float | None = _opt("Dry-cooler fan power at full speed per watt of rated heat. [-]")
    tower_range_k: Float | None = _opt("Condenser (tower) water range. [K]")
    cycles_of_concentration: Float | None = _opt("Tower (and adiabatic pad) cycles of concentration, > 1. [-]")
    drift_fraction: Float | None = _opt("Tower drift per unit of circulating water, 0..1. [-]")
    tower_water_air_ratio: Float | None = _opt("Tower L/G, water over dry-air mass flow (sets evaporation). [-]")
    adiabatic_effectiveness: Float | None = _opt("Adiabatic pad saturation effectiveness, 0..1. [-]")
    adiabatic_switch_c: Float | None = _opt("Dry-bulb above which an adiabatic dry cooler wets its pads. [C]")
    hx_approach_k: Float | None = _opt("Economiser (and trim) heat-exchanger approach. [K]")
    crah_capacity_factor: Float | None = _opt("CRAH rated air flow over the design air load's need. [-]")
    crah_fan_pressure_pa: Float | None = _opt("CRAH fan total pressure at rated flow. [Pa]")
    crah_fan_efficiency: Float | None = _opt("CRAH fan efficiency at rated flow. [-]")
    chw_pump_head_pa: Float | None = _opt("Chilled/facility-water pump head. [Pa]")
    cw_pump_head_pa: Float | None = _opt("Condenser-water pump head. [Pa]")
    pump_efficiency: Float | None = _opt("Efficiency of the chilled- and condenser-water pumps. [-]")
    cdu_flow_l_min_per_kw: Float | None = _opt("CDU (TCS) pump flow per kW of liquid heat. [L/min/kW]")
    cdu_pump_head_pa: Float | None = _opt("CDU pump head. [Pa]")
    cdu_pump_efficiency: Float | None = _opt("CDU pump efficiency. [-]")

    @model_validator(mode="before")
    @classmethod
    def _known_names(cls, data: Any) -> Any:
        """Name the cooling key for a parameter that has one; list the valid names for a typo."""
        if not isinstance(data, dict):
            return data
        own = [k for k in data if k in OWN_KEYS]
        if own:
            raise ValueError(f"{', '.join(own)}: set cooling.{OWN_KEYS[own[0]]} itself, not through plant_overrides")
        unknown = [k for k in data if k not in cls.model_fields]
        if unknown:
            valid = ", ".join(sorted(cls.model_fields))
            raise ValueError(f"unknown plant parameter(s) {', '.join(map(repr, unknown))}; valid: {valid}")
        return data
