"""The facility's part of the scenario schema: site, fleet, power chain, cooling and weather.

Units are in the field names; :class:`twin.scenario.schema.Scenario` holds these parts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from twin import catalog
from twin.physics import plant_params as pp
from twin.physics.thermal import RACK_AIR_CONDUCTANCE_W_K, RACK_HEAT_CAPACITY_J_K, SERVER_AIR_CONDUCTANCE_W_K
from twin.scenario.accelerator_overrides import AcceleratorOverrides
from twin.scenario.faults import Battery, Generator
from twin.scenario.plant_overrides import PlantOverrides
from twin.scenario.resources import MAX_GPUS
from twin.scenario.strict import Float, Int, StrictModel
from twin.weather import (
    BUILTIN_WEATHER,
    SYNTHETIC_AMPLITUDE_K,
    SYNTHETIC_DEW_POINT_C,
    SYNTHETIC_DRY_BULB_C,
    SYNTHETIC_PEAK_HOUR,
    SYNTHETIC_WET_BULB_C,
)


def _known(name: str, valid: list[str], kind: str) -> str:
    if name not in valid:
        raise ValueError(f"unknown {kind} {name!r}; valid: {', '.join(valid)}")
    return name


class Site(StrictModel):
    """Where the facility is and what its energy costs."""

    name: str = "site"
    carbon_intensity_g_per_kwh: Float = Field(
        370.0, ge=0, description="Grid carbon intensity (US average 370 g/kWh, parameters.md 3.5)."
    )
    electricity_price_per_kwh: Float = Field(0.08, ge=0, description="Energy price [USD/kWh] (the energy_cost KPI).")
    other_facility_power_w: Float = Field(
        0.0, ge=0, description="Lighting, offices, security: constant load on the transformer."
    )


class ServerSpec(StrictModel):
    """Non-accelerator power of one server (CPUs, memory, NICs, NVSwitch, fans)."""

    other_idle_power_w: Float = Field(1400.0, ge=0)
    other_max_power_w: Float = Field(2800.0, ge=0)
    boot_s: Float = Field(300.0, ge=0, description="[EST] power-on to serving again (POST, OS, runtime).")

    @model_validator(mode="after")
    def _max_above_idle(self) -> ServerSpec:
        if self.other_max_power_w < self.other_idle_power_w:
            raise ValueError(
                f"other_max_power_w ({self.other_max_power_w}) must be >= other_idle_power_w "
                f"({self.other_idle_power_w})"
            )
        return self


class Fleet(StrictModel):
    """Accelerators in servers in racks in rows."""

    accelerator: str = Field("H100-SXM", description="Catalog name (twin.catalog).")
    accelerator_file: Path | None = Field(
        None, description="YAML accelerator entry (e.g. from `twin calibrate`), relative to the scenario."
    )
    accelerator_overrides: AcceleratorOverrides = Field(
        default_factory=AcceleratorOverrides,
        description="AcceleratorSpec parameters replacing the catalog's ({name: value}).",
    )
    gpus_per_server: Int = Field(8, gt=0)
    servers_per_rack: Int = Field(4, gt=0)
    racks_per_row: Int = Field(8, gt=0)
    rows: Int = Field(4, gt=0)
    server: ServerSpec = ServerSpec()
    power_cap_w: Float | None = Field(None, gt=0, description="GPU power limit (nvidia-smi -pl).")

    @field_validator("accelerator")
    @classmethod
    def _known_accelerator(cls, name: str) -> str:
        return _known(name, catalog.accelerator_names(), "accelerator")

    @model_validator(mode="after")
    def _not_too_many(self) -> Fleet:
        if self.n_gpus > MAX_GPUS:  # twin.scenario.resources says why this many
            raise ValueError(
                f"gpus_per_server x servers_per_rack x racks_per_row x rows = {self.n_gpus:,} GPUs; the twin "
                f"simulates at most {MAX_GPUS:,} (ten times the largest AI site announced)"
            )
        return self

    @property
    def n_racks(self) -> int:
        """Racks in the fleet."""
        return self.racks_per_row * self.rows

    @property
    def n_servers(self) -> int:
        """Servers in the fleet."""
        return self.servers_per_rack * self.n_racks

    @property
    def n_gpus(self) -> int:
        """Accelerators in the fleet."""
        return self.gpus_per_server * self.n_servers


class Stage(StrictModel):
    """One conversion stage: ``count`` identical units sharing the load equally."""

    rated_w: Float = Field(gt=0, description="Rated output power of one unit.")
    count: Int = Field(1, gt=0, description="Units installed at this level (per server for PSUs, per rack for PDUs).")
    curve: str = Field(description="Loss curve name (twin/catalog/loss_curves.yaml).")
    redundancy: Literal["N", "N+1", "2N"] = "N"

    @field_validator("curve")
    @classmethod
    def _known_curve(cls, name: str) -> str:
        return _known(name, catalog.loss_curve_names(), "loss curve")

    @property
    def units_needed_for_load(self) -> int:
        """Units that must stay up to carry the design load under the redundancy scheme."""
        if self.redundancy == "2N":
            return max(self.count // 2, 1)
        if self.redundancy == "N+1":
            return max(self.count - 1, 1)
        return self.count


class UpsStage(Stage):
    """The UPS stage, with its battery."""

    battery: Battery | None = Field(None, description="None: no ride-through (the load drops with the utility).")


class PowerChain(StrictModel):
    """Utility -> transformer -> UPS -> PDU -> PSU -> IT (and a standby generator)."""

    transformer: Stage = Stage(rated_w=2.5e6, count=1, curve="transformer-mv-default")
    ups: UpsStage = UpsStage(rated_w=750e3, count=2, curve="ups-double-conversion", redundancy="2N")
    pdu: Stage = Stage(rated_w=40e3, count=2, curve="pdu-with-transformer", redundancy="2N")
    psu: Stage = Stage(rated_w=3300.0, count=6, curve="80plus-titanium-230v-redundant", redundancy="N+1")
    cooling_on_ups: bool = Field(
        False, description="Feed the cooling plant through the UPS (else from the transformer)."
    )
    generator: Generator | None = Field(None, description="Standby generator (None: none).")


#: Largest plant design heat a scenario may set: 10 GW, twice the largest AI campus announced (5 GW
#: class). Past it the chiller staging (every count of equally loaded chillers is tried each step)
#: runs for hours: 2.4e16 W asked for 3e10 chillers and never finished. [W]
MAX_DESIGN_HEAT_W = 1e10
#: Most chillers a plant may install: 10 GW of 742 kW units with N+1 is 13 478, rounded up. [1]
MAX_CHILLERS = 20_000


class PlantCooling(StrictModel):
    """A cooling plant whose energy comes from physics (``twin.physics.cooling_plant``)."""

    model: Literal["plant"] = "plant"
    type: Literal["air", "hybrid", "liquid"] = Field(
        "liquid", description="air: CRAHs only; hybrid/liquid: GPU cold plates -> CDU -> facility water."
    )
    liquid_fraction: Float | None = Field(None, ge=0, le=1, description="Server heat to liquid (default by type).")
    liquid_class: Literal["W17", "W27", "W32", "W40", "W45"] = Field(
        pp.DEFAULT_LIQUID_CLASS, description="ASHRAE liquid class: facility-water supply setpoint in C."
    )
    facility_supply_c: Float | None = Field(None, ge=2, le=60, description="Overrides the class setpoint.")
    air_class: Literal["A1", "A2", "A3", "A4"] = Field(pp.DEFAULT_AIR_CLASS, description="ASHRAE air class.")
    crah_supply_air_c: Float = Field(pp.CRAH_SUPPLY_AIR_C, ge=10, le=45, description="CRAH supply-air setpoint.")
    heat_rejection: Literal["tower", "dry_cooler", "adiabatic_dry_cooler"] = Field(
        pp.DEFAULT_HEAT_REJECTION,
        description="Towers (water from the weather), dry coolers (no water) or adiabatic dry coolers (pads wetted "
        "above plant_overrides.adiabatic_switch_c).",
    )
    chiller: str = Field("Carrier 19XR 742kW/5.42COP/VSD", description="Catalog chiller (twin/catalog/chillers.yaml).")
    n_chillers: Int | None = Field(
        None,
        ge=0,
        le=MAX_CHILLERS,
        description="Chillers installed (default: N+1 on the design heat); 0: economiser only, the supply floats "
        "on the weather.",
    )
    economiser: bool = True
    design_heat_w: Float | None = Field(
        None,
        gt=0,
        le=MAX_DESIGN_HEAT_W,
        description="Design heat (default: nameplate IT power); at most 10 GW, twice the largest campus planned.",
    )
    loop_volume_l_per_kw: Float = Field(
        1.0, gt=0, description="TCS coolant per kW of design liquid heat (parameters.md 4: 100 L per 100 kW rack)."
    )
    room_volume_m3_per_rack: Float = Field(
        12.0, gt=0, description="[EST] white-space air per rack: about 3 m2 of floor (rack + aisles) x 4 m."
    )
    room_extra_heat_capacity_j_k_per_rack: Float = Field(
        0.0,
        ge=0,
        description="Mass in close contact with the room air, warming with it (0: none; the racks' steel "
        "is rack_heat_capacity_j_k).",
    )
    rack_heat_capacity_j_k: Float = Field(
        RACK_HEAT_CAPACITY_J_K,
        ge=0,
        description="[EST] heat capacity of one rack enclosure's steel (~100 kg of a 42U 0.6 x 1.07 x 2 m cabinet "
        "x 434 J/kg/K), a room node behind rack_air_conductance_w_k (0: none; twin.physics.thermal).",
    )
    rack_air_conductance_w_k: Float = Field(
        RACK_AIR_CONDUCTANCE_W_K,
        gt=0,
        description="[EST] conductance between one rack enclosure and the room air: h ~ 5 W/m2/K (free and fan-driven "
        "convection) over ~8.3 m2 of sheet washed by the room's air.",
    )
    server_heat_capacity_j_k: Float = Field(
        0.0,
        ge=0,
        description="Heat capacity of one server's solid mass (heat sinks, chassis: mass x c_p, steel 500, "
        "aluminium 900, copper 385 J/kg/K), a room node behind server_air_conductance_w_k (0: none).",
    )
    server_air_conductance_w_k: Float = Field(
        SERVER_AIR_CONDUCTANCE_W_K,
        gt=0,
        description="[EST] conductance between one server's mass and the room air: fan-driven h ~ 50 W/m2/K over "
        "~2 m2 of heat-sink fin and chassis surface.",
    )
    chw_storage_m3: Float = Field(0.0, ge=0, description="Chilled-water storage tank volume.")
    control_time_constant_s: Float = Field(
        60.0, gt=0, description="[EST] time the plant controls take to pull a warm loop back to setpoint."
    )
    n_cdus: Int = Field(4, gt=0, description="[EST] CDUs, N+1: n_cdus - 1 carry the design liquid heat.")
    n_crahs: Int = Field(5, gt=0, description="CRAH units sharing the rated air flow (N+1 with N = 4).")
    chiller_restart_s: Float = Field(
        180.0, ge=0, description="Power back to chillers running (2-3 min typical, parameters.md 4)."
    )
    plant_overrides: PlantOverrides = Field(
        default_factory=PlantOverrides, description="PlantParams fields without a key here ({name: value})."
    )

    @field_validator("chiller")
    @classmethod
    def _known_chiller(cls, name: str) -> str:
        from twin.catalog.cooling import chiller_names

        return _known(name, chiller_names(), "chiller")

    @model_validator(mode="after")
    def _chillerless(self) -> PlantCooling:
        """A plant without chillers: cold plates on tower/dry-cooler water, CRAH coils on the same water."""
        if self.n_chillers != 0:
            return self
        if self.type == "air":
            raise ValueError(
                "n_chillers 0 needs a liquid loop (type liquid or hybrid): an air-cooled room without chillers "
                "needs an air-side economiser, which the twin does not model"
            )
        if not self.economiser:
            raise ValueError("n_chillers 0 rejects all heat through the economiser: economiser must be true")
        supply_c = self.facility_supply_c if self.facility_supply_c is not None else self.liquid_class_c
        coil_k = self.plant_overrides.crah_coil_approach_k
        lowest_c = supply_c + (pp.CRAH_COIL_APPROACH_K if coil_k is None else coil_k)
        if self.crah_supply_air_c < lowest_c:
            raise ValueError(
                f"without chillers the CRAH coils take the {supply_c:g} C facility water, so their supply air "
                f"cannot be below {lowest_c:g} C (water + coil approach): set crah_supply_air_c >= {lowest_c:g} "
                f"(with an air_class that allows it) or keep chillers, got {self.crah_supply_air_c:g}"
            )
        return self

    @property
    def liquid_class_c(self) -> float:
        """Facility-water supply setpoint of the ASHRAE liquid class. [C]"""
        return pp.ASHRAE_LIQUID_CLASSES[self.liquid_class]

    @property
    def liquid_share(self) -> float:
        """Share of server heat taken by liquid."""
        if self.liquid_fraction is not None:
            return 0.0 if self.type == "air" else self.liquid_fraction
        return pp.LIQUID_FRACTION_BY_TYPE[self.type]


#: Ideal cooling's inlet temperature bounds. [C] Water-based coolant is liquid between 0 and 100 C
#: at atmospheric pressure, so no single-phase water or glycol-water loop delivers outside them;
#: every ASHRAE class lies inside (air A1-A4: 5-45 C allowable inlet; liquid W17-W45 and W+ above
#: 45 C, ASHRAE TC 9.9 Thermal Guidelines, 5th ed. and its 2021 liquid-cooling paper), as do
#: hot-inlet what-ifs that throttle the dies (70-75 C).
SUPPLY_TEMP_RANGE_C = (0.0, 100.0)


class IdealCooling(StrictModel):
    """Limiting case: heat vanishes at no energy cost and inlets stay at their setpoints."""

    model: Literal["ideal"] = "ideal"
    type: Literal["air", "hybrid", "liquid"] = "liquid"
    supply_temp_c: Float = Field(
        30.0,
        ge=SUPPLY_TEMP_RANGE_C[0],
        le=SUPPLY_TEMP_RANGE_C[1],
        description="Device inlet temperature (coolant or air), 0-100 C.",
    )

    @property
    def liquid_share(self) -> float:
        """Share of server heat taken by liquid."""
        return pp.LIQUID_FRACTION_BY_TYPE[self.type]


CoolingSpec = Annotated[PlantCooling | IdealCooling, Field(discriminator="model")]


class Weather(StrictModel):
    """Outdoor conditions driving heat rejection."""

    source: str = Field(
        "constant",
        description=f"constant | diurnal | a built-in typical year ({', '.join(BUILTIN_WEATHER)}) | a TMY3/EPW "
        "path (gzip-compressed too).",
    )
    dry_bulb_c: Float = Field(SYNTHETIC_DRY_BULB_C, ge=-60, le=60, description="constant/diurnal: (mean) dry-bulb.")
    wet_bulb_c: Float = Field(SYNTHETIC_WET_BULB_C, ge=-60, le=40, description="constant: wet-bulb.")
    dew_point_c: Float = Field(SYNTHETIC_DEW_POINT_C, ge=-60, le=40, description="diurnal: dew point.")
    amplitude_k: Float = Field(SYNTHETIC_AMPLITUDE_K, ge=0, le=25, description="diurnal: half the daily swing.")
    peak_hour: Float = Field(SYNTHETIC_PEAK_HOUR, ge=0, lt=24, description="diurnal: hour of the warmest air.")

    @model_validator(mode="after")
    def _wet_below_dry(self) -> Weather:
        if self.source == "constant" and self.wet_bulb_c > self.dry_bulb_c:
            raise ValueError(f"wet_bulb_c ({self.wet_bulb_c}) must be <= dry_bulb_c ({self.dry_bulb_c})")
        if self.source == "constant":
            from twin.physics.psychrometrics import humidity_ratio_from_wet_bulb

            if float(humidity_ratio_from_wet_bulb(self.dry_bulb_c, self.wet_bulb_c)) < 0.0:
                raise ValueError(
                    f"wet_bulb_c ({self.wet_bulb_c}) is below the driest possible air at dry_bulb_c "
                    f"{self.dry_bulb_c} (humidity ratio < 0 at sea-level pressure)"
                )
        return self


#: [EST] Prompt and output tokens of a synthetic request (without a trace to draw them from).
