"""Compile the non-fleet sections of a scenario: cooling plant, weather, backup power, controls, faults.

Each ``compile_*`` turns one validated section into the immutable parts of
:mod:`twin.facility_parts` and raises :class:`~twin.errors.ScenarioError` naming the field when it
cannot (a plant parameter no plant has, a weather file that is missing or too short).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd

from twin.catalog.cooling import chiller_curve
from twin.errors import FieldProblem, ScenarioError
from twin.facility_parts.plant import CoolingSpec, IdealPlantSpec, PlantSpec
from twin.facility_parts.power import (
    BatterySpec,
    ControlSpec,
    DemandWindow,
    FaultSchedule,
    GeneratorSpec,
    RandomFaults,
    ScheduledFault,
    SupplySpec,
)
from twin.facility_parts.weather import WeatherBoundary
from twin.physics.plant_params import PlantParams
from twin.physics.power import battery_capacity_for_runtime_j
from twin.scenario.facility_schema import IdealCooling, PlantCooling, PowerChain, Weather
from twin.scenario.faults import (
    DEFAULT_RECHARGE_FRACTION,
    SERVER_KINDS,
    SIDED_KINDS,
    Controls,
    FaultEvent,
    Reliability,
)
from twin.units import AIR_CP_J_KG_K, AIR_DENSITY_KG_M3, L_PER_M3, S_PER_HOUR, WATER_CP_J_KG_K, WATER_DENSITY_KG_M3
from twin.weather import (
    builtin_weather,
    builtin_weather_names,
    read_weather_file,
    require_coverage,
    synthetic_weather,
)


def compile_cooling(
    spec: PlantCooling | IdealCooling,
    design_it_w: float,
    design_losses_w: float,
    n_racks: int,
    n_servers: int,
    source: str,
) -> CoolingSpec:
    """The plant's parameters and node capacities (errors name ``source``)."""
    liquid = spec.type != "air"
    if isinstance(spec, IdealCooling):
        return IdealPlantSpec(spec.supply_temp_c, spec.liquid_share, liquid)
    fraction = spec.liquid_share
    # The air side carries the IT heat not taken by liquid plus every conversion loss indoors.
    design_heat_w = spec.design_heat_w or design_it_w + design_losses_w
    air_w = (1.0 - fraction) * design_it_w + design_losses_w
    overrides: dict[str, object] = {
        "economiser_enabled": spec.economiser,
        "crah_supply_air_c": spec.crah_supply_air_c,
        "design_air_fraction": min(air_w / (design_it_w + design_losses_w), 1.0),
        **spec.plant_overrides.given(),
    }
    if spec.facility_supply_c is not None:
        overrides["facility_supply_c"] = spec.facility_supply_c
    if spec.n_chillers is not None:
        overrides["n_chillers"] = spec.n_chillers
    try:
        params = PlantParams.from_presets(
            spec.liquid_class,
            spec.air_class,
            chiller=chiller_curve(spec.chiller),  # type: ignore[arg-type]  # frozen fields: the protocol only reads
            design_heat_w=design_heat_w,
            heat_rejection=spec.heat_rejection,
            **overrides,
        )
    except (TypeError, ValueError) as exc:  # PlantParams refuses what no plant has (a negative capacity)
        raise ScenarioError(source, [FieldProblem("cooling.plant_overrides", str(exc))]) from None
    liquid_kw = max(design_heat_w * fraction / 1e3, 1.0)
    n_cdus = spec.n_cdus
    return PlantSpec(
        params=params,
        liquid_fraction=fraction,
        liquid_cooled=liquid,
        loop_capacity_j_k=spec.loop_volume_l_per_kw * liquid_kw / L_PER_M3 * WATER_DENSITY_KG_M3 * WATER_CP_J_KG_K,
        room_capacity_j_k=n_racks
        * (
            spec.room_volume_m3_per_rack * AIR_DENSITY_KG_M3 * AIR_CP_J_KG_K
            + spec.room_extra_heat_capacity_j_k_per_rack
        ),
        storage_capacity_j=spec.chw_storage_m3 * WATER_DENSITY_KG_M3 * WATER_CP_J_KG_K * params.chw_delta_t_k,
        control_time_constant_s=spec.control_time_constant_s,
        cdu_capacity_w=fraction * design_it_w * n_cdus / max(n_cdus - 1, 1),
        n_cdus=n_cdus,
        n_crahs=spec.n_crahs,
        chiller_restart_s=spec.chiller_restart_s,
        room_mass_capacity_j_k=n_servers * spec.server_heat_capacity_j_k,
        room_mass_conductance_w_k=n_servers * spec.server_air_conductance_w_k,
        room_rack_capacity_j_k=n_racks * spec.rack_heat_capacity_j_k,
        room_rack_conductance_w_k=n_racks * spec.rack_air_conductance_w_k,
    )


def load_weather(spec: Weather, start: datetime, source_dir: Path | None, duration_s: float) -> WeatherBoundary:
    """The weather record over the run; a file must cover every hour the run reads (a whole year wraps)."""
    frame = _weather_frame(spec, source_dir)
    if spec.source not in ("constant", "diurnal"):
        require_coverage(frame, start, duration_s, spec.source)
    return WeatherBoundary(frame, start, spec.source == "constant")


def _weather_frame(spec: Weather, source_dir: Path | None) -> pd.DataFrame:
    src = spec.source
    if src == "constant":
        return synthetic_weather("constant", hours=1, dry_bulb_c=spec.dry_bulb_c, wet_bulb_c=spec.wet_bulb_c)[0]
    if src == "diurnal":
        return synthetic_weather(
            "diurnal",
            hours=24,
            dry_bulb_c=spec.dry_bulb_c,
            dew_point_c=spec.dew_point_c,
            amplitude_k=spec.amplitude_k,
            peak_hour=spec.peak_hour,
        )[0]
    if src in builtin_weather_names():
        return builtin_weather(src)[0]
    path = Path(src)
    if not path.is_absolute() and source_dir is not None:
        path = source_dir / path
    if not path.exists():
        valid = ", ".join(["constant", "diurnal", *builtin_weather_names()])
        raise ScenarioError(str(path), [FieldProblem("weather.source", f"no such file; or use one of {valid}")])
    return read_weather_file(path)[0]


def compile_supply(power: PowerChain) -> SupplySpec:
    """The UPS battery sized from its energy or runtime, and the generator."""
    spec = power.ups.battery
    battery = None
    if spec is not None:
        rated_w = power.ups.rated_w * power.ups.units_needed_for_load
        if spec.energy_j is not None:
            cap = spec.energy_j
        else:
            runtime_s = float(spec.runtime_s or 0.0)
            cap = float(battery_capacity_for_runtime_j(runtime_s, rated_w, spec.min_soc, spec.discharge_efficiency))
        charge = spec.recharge_power_w if spec.recharge_power_w is not None else DEFAULT_RECHARGE_FRACTION * rated_w
        battery = BatterySpec(
            capacity_j=cap,
            floor_j=spec.min_soc * cap,
            initial_j=spec.initial_soc * cap,
            initial_soc=spec.initial_soc,
            charge_efficiency=spec.charge_efficiency,
            discharge_efficiency=spec.discharge_efficiency,
            charge_w=charge,
        )
    gen = power.generator
    generator = None if gen is None else GeneratorSpec(gen.rated_w, gen.start_delay_s, gen.fail_to_start_probability)
    return SupplySpec(cooling_on_ups=power.cooling_on_ups, battery=battery, generator=generator)


def compile_controls(spec: Controls) -> ControlSpec:
    """The site limit, the demand-response windows and the training power floor."""
    windows = tuple(DemandWindow(w.start_s, w.duration_s, w.limit_w) for w in spec.demand_response)
    return ControlSpec(spec.site_power_limit_w, windows, spec.training_power_floor_fraction)


def compile_faults(events: list[FaultEvent], reliability: Reliability, pool_names: list[str]) -> FaultSchedule:
    """Scheduled faults with their targets resolved (references are checked before), and the random kinds."""
    scheduled = tuple(
        ScheduledFault(
            time_s=ev.time_s,
            kind=ev.kind,
            count=ev.count,
            side=ev.target if ev.kind in SIDED_KINDS else None,
            pool=pool_names.index(ev.target) if ev.kind in SERVER_KINDS and ev.target is not None else None,
            rack=ev.rack,
            duration_s=ev.duration_s,
        )
        for ev in events
    )
    random = tuple(
        RandomFaults(kind, rel.mtbf_h * S_PER_HOUR, rel.mttr_h * S_PER_HOUR)
        for kind, rel in reliability.kinds().items()
    )
    return FaultSchedule(scheduled, random)
