"""The scenario schema: every input of one simulation, validated and typed.

Units are in the field names. A scenario is frozen once loaded; build variants with
:meth:`Scenario.with_updates` (dotted paths), which re-validates.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from twin import catalog
from twin.physics import interconnect as ic
from twin.physics import plant_params as pp
from twin.physics.thermal import RACK_AIR_CONDUCTANCE_W_K, RACK_HEAT_CAPACITY_J_K, SERVER_AIR_CONDUCTANCE_W_K
from twin.scenario.accelerator_overrides import AcceleratorOverrides
from twin.scenario.faults import Battery, Controls, FaultEvent, Generator, Reliability
from twin.scenario.plant_overrides import PlantOverrides
from twin.scenario.resources import MAX_GPUS, size_problem
from twin.scenario.strict import Float, Int, Overrides, StrictModel
from twin.weather import (
    BUILTIN_WEATHER,
    SYNTHETIC_AMPLITUDE_K,
    SYNTHETIC_DEW_POINT_C,
    SYNTHETIC_DRY_BULB_C,
    SYNTHETIC_PEAK_HOUR,
    SYNTHETIC_WET_BULB_C,
)
from twin.workload import fluid


def _known(name: str, valid: list[str], kind: str) -> str:
    if name not in valid:
        raise ValueError(f"unknown {kind} {name!r}; valid: {', '.join(valid)}")
    return name


def _known_model_name(name: str) -> str:
    """A catalog name, a shipped Hugging Face id (its canonical spelling) or a ``config.json`` path.

    A path is resolved (and its config read) when the facility is built, relative to the
    scenario file.
    """
    from twin.catalog.architecture import looks_like_path, resolve_id, shipped_model_ids

    if name in catalog.model_names() or looks_like_path(name):
        return name
    hf = resolve_id(name)
    if hf is not None:
        return hf
    raise ValueError(
        f"unknown model {name!r}; give a catalog name ({', '.join(catalog.model_names())}), a shipped Hugging Face "
        f"id ({', '.join(shipped_model_ids())}) or a path to a config.json"
    )


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
PROMPT_TOKENS = 1000.0
OUTPUT_TOKENS = 250.0


class Arrivals(StrictModel):
    """Synthetic request arrivals (expected values; a fluid model of the request stream)."""

    kind: Literal["constant", "diurnal"] = "diurnal"
    requests_per_s: Float = Field(gt=0, description="Mean request rate of the whole workload.")
    peak_to_mean: Float = Field(1.0, ge=1.0, le=2.0, description="Diurnal peak rate / mean rate.")
    peak_hour: Float = Field(fluid.PEAK_HOUR, ge=0, lt=24, description="Local hour of the diurnal peak.")
    prompt_tokens: Float = Field(PROMPT_TOKENS, ge=0, description="Mean prompt tokens per request.")
    output_tokens: Float = Field(OUTPUT_TOKENS, gt=0, description="Mean generated tokens per request.")


class TraceArrivals(StrictModel):
    """Requests replayed from a trace file, read once and binned onto the tick grid.

    Each server of the pool receives ``c`` copies' worth of the trace (fractional: a fluid share),
    as ``copies`` superposed copies each circularly shifted by its own offset when ``offsets`` is
    on, with ``c`` chosen so that the pool's mean rate is ``requests_per_s`` (or ``rate_scale``
    times the trace's rate). See :mod:`twin.engine.sources`.
    """

    kind: Literal["trace"]
    path: str = Field(
        description="Trace file, relative to the scenario file, or a built-in name "
        "(azure-llm-2023-conv, azure-llm-2023-code; see twin.workload.BUILTIN_TRACES)."
    )
    format: Literal["azure-llm", "burstgpt", "mooncake"] | None = Field(
        None, description="Reader name; None: sniffed from the header."
    )
    time_scale: Float = Field(1.0, gt=0, description="Stretch arrival times by this factor (2: half the rate).")
    rate_scale: Float | None = Field(None, gt=0, description="Pool rate / trace rate (default 1).")
    requests_per_s: Float | None = Field(None, gt=0, description="Target mean request rate of the whole pool.")
    loop: bool = Field(True, description="Repeat the trace when the run outlasts it (else no requests after).")
    offsets: bool = Field(
        True, description="Shift each server's copy by its own random offset within the period (whole ticks)."
    )
    copies: Int | None = Field(
        None, ge=1, le=64, description="Shifted copies superposed per server (default: the rate's need, at most 8)."
    )

    @model_validator(mode="after")
    def _one_rate(self) -> TraceArrivals:
        if self.rate_scale is not None and self.requests_per_s is not None:
            raise ValueError("give rate_scale or requests_per_s, not both")
        return self


class PoissonArrivals(StrictModel):
    """A homogeneous Poisson stream drawn with the run's random generator."""

    kind: Literal["poisson"]
    requests_per_s: Float = Field(gt=0, description="Mean request rate of the whole pool.")
    prompt_tokens: Float = Field(
        PROMPT_TOKENS, ge=0, description="Prompt tokens of every request (without tokens_from)."
    )
    output_tokens: Float = Field(
        OUTPUT_TOKENS, gt=0, description="Output tokens of every request (without tokens_from)."
    )
    tokens_from: str | None = Field(
        None, description="A request trace (path or built-in name) whose (prompt, output) pairs are resampled."
    )
    offsets: bool = Field(True, description="Shift each server's copy of the drawn stream by its own offset.")


class BurstyArrivals(StrictModel):
    """A bursty stream drawn with the run's generator: Gamma renewal or two-state MMPP."""

    kind: Literal["bursty"]
    process: Literal["gamma", "mmpp"] = "gamma"
    requests_per_s: Float = Field(gt=0, description="Mean request rate of the whole pool.")
    cv: Float | None = Field(
        None, gt=0, description="gamma: coefficient of variation of inter-arrival times (1 = Poisson)."
    )
    burst_factor: Float | None = Field(None, ge=1, description="mmpp: rate in the burst state / rate outside it.")
    mean_low_s: Float | None = Field(None, gt=0, description="mmpp: mean time between bursts.")
    mean_high_s: Float | None = Field(None, gt=0, description="mmpp: mean burst length.")
    prompt_tokens: Float = Field(
        PROMPT_TOKENS, ge=0, description="Prompt tokens of every request (without tokens_from)."
    )
    output_tokens: Float = Field(
        OUTPUT_TOKENS, gt=0, description="Output tokens of every request (without tokens_from)."
    )
    tokens_from: str | None = Field(
        None, description="A request trace (path or built-in name) whose (prompt, output) pairs are resampled."
    )
    offsets: bool = Field(True, description="Shift each server's copy of the drawn stream by its own offset.")

    @model_validator(mode="after")
    def _process_fields(self) -> BurstyArrivals:
        need = ("cv",) if self.process == "gamma" else ("burst_factor", "mean_low_s", "mean_high_s")
        missing = [n for n in need if getattr(self, n) is None]
        if missing:
            raise ValueError(f"process {self.process!r} needs {', '.join(missing)}")
        return self


ArrivalSpec = Annotated[
    Arrivals | TraceArrivals | PoissonArrivals | BurstyArrivals,
    Field(discriminator="kind"),
]


class Slo(StrictModel):
    """Latency targets of a pool's requests (DistServe's SLO attainment: a request meets both).

    A target left out does not constrain; at least one is given.
    """

    ttft_s: Float | None = Field(None, gt=0, description="Time-to-first-token target of each request [s].")
    tpot_s: Float | None = Field(None, gt=0, description="Time-per-output-token target of each request [s].")

    @model_validator(mode="after")
    def _one_target(self) -> Slo:
        if self.ttft_s is None and self.tpot_s is None:
            raise ValueError("an slo needs ttft_s, tpot_s or both")
        return self


class Disaggregation(StrictModel):
    """Prefill/decode disaggregation of a serving pool (Splitwise, DistServe; twin.facility_parts.fleet.Disaggregation).

    The pool's first ``prefill_fraction_of_servers`` of its servers run prefill only, the rest
    decode only; each prompt's KV cache crosses the scale-out network between them.
    """

    prefill_fraction_of_servers: Float = Field(
        gt=0, lt=1, description="Share of the pool's servers that prefill (rounded to whole servers; each role >= 1)."
    )
    network_bandwidth_b_s: Float = Field(
        ic.SCALE_OUT_BANDWIDTH_B_S,
        gt=0,
        description="Achieved scale-out bandwidth per GPU [B/s] (default: one 400 Gb/s NIC per GPU, "
        "twin.physics.interconnect.SCALE_OUT_BANDWIDTH_B_S).",
    )
    network_latency_s: Float = Field(
        ic.SCALE_OUT_LATENCY_S, ge=0, description="Latency of one KV transfer besides its bytes [s] [EST]."
    )
    network_energy_pj_per_bit: Float = Field(
        ic.SCALE_OUT_ENERGY_J_PER_BIT * 1e12,
        ge=0,
        description="Energy per bit moved, NICs, optics and switch [pJ/bit] [EST] (booked as server_other).",
    )


class RequestLevel(StrictModel):
    """Request-level latency KPIs of a run: a sample of each inference pool's ranks replayed (twin.latency)."""

    ranks: Int = Field(4, gt=0, description="Attention ranks replayed per inference pool (a declared sample).")
    window_s: Float | None = Field(
        600.0, gt=0, description="Length of the replayed window [s], cut at the run's end; None: the whole run."
    )
    start_s: Float | None = Field(
        None, ge=0, description="Start of the window [s]; None: the report interval with the most requests."
    )


class InferenceWorkload(StrictModel):
    """An LLM served on a pool of servers."""

    kind: Literal["inference"] = "inference"
    name: str
    model: str = Field(
        description="Catalog name, shipped Hugging Face id, or path to a config.json (twin.catalog.architecture)."
    )
    servers: Int | None = Field(None, gt=0, description="Servers in the pool (None: all not yet taken).")
    tensor_parallel: Int = Field(1, gt=0, description="GPUs a replica's attention and dense layers are split over.")
    expert_parallel: bool = Field(
        False, description="Spread whole experts over the replica's GPUs (vLLM --enable-expert-parallel)."
    )
    data_parallel: Int = Field(
        1,
        gt=0,
        description="Data-parallel attention ranks sharing the experts (with expert_parallel); a replica then has "
        "tensor_parallel x data_parallel GPUs. Independent replicas need no setting: each server holds its own.",
    )
    max_batch: Int = Field(256, gt=0, description="Sequences a replica runs at once (vLLM max_num_seqs).")
    max_batched_tokens: Int = Field(
        8192, gt=0, description="Tokens per step of one rank, decode plus prefill chunks (vLLM max_num_batched_tokens)."
    )
    precision: Literal["bf16", "fp8"] | None = Field(
        None, description="Weight format; None: the model's own (its config's dtype and quantization)."
    )
    kv_precision: Literal["bf16", "fp8"] = Field("bf16", description="KV-cache format (vLLM --kv-cache-dtype).")
    slo: Slo | None = Field(
        None, description="TTFT/TPOT targets: SLO attainment and goodput KPIs of the request-level replay."
    )
    disaggregation: Disaggregation | None = Field(
        None, description="Separate prefill and decode servers with KV transfer between them (None: mixed serving)."
    )
    arrivals: ArrivalSpec

    @model_validator(mode="before")
    @classmethod
    def _default_arrival_kind(cls, data: Any) -> Any:
        arr = data.get("arrivals") if isinstance(data, dict) else None
        if isinstance(arr, dict) and "kind" not in arr:
            data = {**data, "arrivals": {**arr, "kind": "diurnal"}}
        return data

    @field_validator("model")
    @classmethod
    def _known_model(cls, name: str) -> str:
        return _known_model_name(name)

    @model_validator(mode="after")
    def _layout(self) -> InferenceWorkload:
        if self.data_parallel > 1 and not self.expert_parallel:
            raise ValueError(
                "data_parallel > 1 needs expert_parallel: true (data-parallel attention ranks share experts); "
                "independent replicas need no setting"
            )
        return self

    @property
    def gpus_per_replica(self) -> int:
        """GPUs in one replica."""
        return self.tensor_parallel * self.data_parallel


class JobColumns(Overrides):
    """Source columns of a job trace's standard columns (unset: found by the reader's built-in names).

    The standard names are those of :data:`twin.workload.jobs.VARIABLE_MAP` (an end or a duration).
    """

    job_id: str | None = Field(None, min_length=1, description="Job identifier.")
    start_s: str | None = Field(None, min_length=1, description="Start time (date-time text or a number).")
    end_s: str | None = Field(None, min_length=1, description="End time (date-time text or a number).")
    duration_s: str | None = Field(None, min_length=1, description="Run time, used where no end column is given.")
    gpus: str | None = Field(None, min_length=1, description="GPUs the job holds.")
    priority: str | None = Field(None, min_length=1, description="Scheduling priority (higher runs first).")
    walltime_s: str | None = Field(None, min_length=1, description="Requested run time the backfill plans with.")


class JobTrace(StrictModel):
    """A job trace (start, end, GPU count per job) that sets how many of a pool's GPUs train."""

    path: str = Field(description="Job trace CSV, relative to the scenario file, or a built-in name.")
    columns: JobColumns = Field(
        default_factory=JobColumns, description="Standard name (start_s, end_s, duration_s, gpus) -> source column."
    )
    time_unit_s: Float = Field(1.0, gt=0, description="Seconds per unit of numeric time columns.")
    time_scale: Float = Field(1.0, gt=0, description="Stretch job times by this factor.")
    loop: bool = Field(False, description="Repeat the trace (period: the last job end) when the run outlasts it.")
    scheduler: Literal["none", "fcfs", "easy", "priority", "priority_easy"] = Field(
        "none",
        description="Queue jobs that do not fit (start times read as submit times): first come first served, "
        "EASY backfill, highest priority first (with EASY backfill: priority_easy); none: jobs run from their start "
        "and GPUs beyond the pool are only reported.",
    )


class TrainingWorkload(StrictModel):
    """A training job: throughput from 6N FLOPs per token at an achieved MFU."""

    kind: Literal["training"] = "training"
    name: str
    model: str
    servers: Int | None = Field(None, gt=0)
    mfu: Float = Field(0.40, gt=0, le=1)
    mem_activity: Float = Field(
        0.5, ge=0, le=1, description="[EST] HBM activity of training steps (fraction of achievable bandwidth)."
    )
    precision: Literal["bf16", "fp8"] | None = Field(
        None, description="Weight format; None: the model's own (its config's dtype and quantization)."
    )
    pipeline_parallel: Int = Field(1, gt=0, description="Pipeline stages of the training job.")
    microbatches: Int = Field(
        8, gt=0, description="[EST] Micro-batches per step: the pipeline bubble is (p - 1) / (m + p - 1)."
    )
    jobs: JobTrace | None = Field(
        None, description="Jobs from a trace occupy the pool's GPUs (packed onto servers); None: one steady job."
    )
    checkpoint_interval_s: Float = Field(1800.0, gt=0, description="[EST] work since the last one is lost on a fault.")
    checkpoint_stall_s: Float = Field(0.0, ge=0, description="Training pauses this long to write each checkpoint.")
    restart_s: Float = Field(600.0, ge=0, description="[EST] fault to training again from the last checkpoint.")

    @field_validator("model")
    @classmethod
    def _known_model(cls, name: str) -> str:
        return _known_model_name(name)


class TelemetryWorkload(StrictModel):
    """Measured GPU utilisation (or power) replayed on a pool's GPUs.

    Each sample's activity is ``busy = u``, ``mem = mem_activity_per_busy * u``,
    ``sm = sm_activity_per_busy * u``; with the defaults (1, 1) the accelerator model reduces to
    the linear utilisation model ``P = P_idle + (P_max - P_idle) u`` at boost clock. Where only
    power is recorded, ``u`` is found by inverting that model.
    """

    kind: Literal["telemetry"]
    name: str
    servers: Int | None = Field(None, gt=0)
    path: str = Field(description="nvidia-smi, DCGM or harness CSV, relative to the scenario file, or a built-in name.")
    format: Literal["nvidia-smi", "dcgm", "harness"] | None = Field(None, description="None: sniffed from the header.")
    signal: Literal["auto", "utilization", "power"] = Field(
        "auto", description="What drives the GPUs; auto: utilisation where recorded, else power."
    )
    time_scale: Float = Field(1.0, gt=0, description="Stretch sample times by this factor.")
    loop: bool = Field(True, description="Repeat the trace when the run outlasts it (else idle after).")
    offsets: bool = Field(
        True, description="Shift each server's copy by its own random offset within the period (whole ticks)."
    )
    mem_activity_per_busy: Float = Field(1.0, ge=0, le=1, description="HBM activity per unit of utilisation.")
    sm_activity_per_busy: Float = Field(1.0, ge=0, le=1, description="SM activity per unit of utilisation.")


Workload = Annotated[InferenceWorkload | TrainingWorkload | TelemetryWorkload, Field(discriminator="kind")]


class Scenario(StrictModel):
    """Everything one simulation needs."""

    name: str = "scenario"
    description: str = ""
    seed: Int = Field(42, ge=0)
    start: datetime = Field(datetime(2024, 7, 15), description="Wall-clock time of t = 0 (local).")
    duration_s: Float = Field(86400.0, gt=0)
    step_s: Float = Field(1.0, gt=0, description="Physics tick: resolution of time-varying inputs.")
    report_interval_s: Float = Field(60.0, gt=0)
    site: Site = Site()
    fleet: Fleet = Fleet()
    power: PowerChain = PowerChain()
    cooling: CoolingSpec = PlantCooling()
    weather: Weather = Weather()
    workloads: list[Workload] = Field(default_factory=list)
    events: list[FaultEvent] = Field(default_factory=list, description="Scheduled faults (twin.scenario.faults).")
    reliability: Reliability = Reliability()
    controls: Controls = Controls()
    request_level: RequestLevel | None = Field(
        None, description="Replay a sample of each inference pool request by request after the run (None: off)."
    )
    source_dir: Path | None = Field(None, exclude=True, description="Folder of the scenario file.")
    source_file: Path | None = Field(None, exclude=True, description="The scenario file (errors name it).")

    @model_validator(mode="after")
    def _times_and_pools(self) -> Scenario:
        ratio = self.report_interval_s / self.step_s
        if not math.isfinite(ratio) or abs(ratio - round(ratio)) > 1e-9:
            raise ValueError(
                f"report_interval_s ({self.report_interval_s}) must be a whole multiple of step_s ({self.step_s})"
            )
        taken = sum(w.servers or 0 for w in self.workloads)
        if taken > self.fleet.n_servers:
            raise ValueError(f"workloads ask for {taken} servers but the fleet has {self.fleet.n_servers}")
        names = [w.name for w in self.workloads]
        if len(set(names)) != len(names):
            raise ValueError(f"workload names must be unique, got {names}")
        rl = self.request_level
        if rl is not None and not any(isinstance(w, InferenceWorkload) for w in self.workloads):
            raise ValueError("request_level replays inference workloads, and the scenario has none")
        if rl is not None and rl.start_s is not None and rl.start_s >= self.duration_s:
            raise ValueError(f"request_level.start_s ({rl.start_s:g} s) is not before the end ({self.duration_s:g} s)")
        too_big = size_problem(self)  # the fleet, tick and memory limits (twin.scenario.resources)
        if too_big is not None:
            raise ValueError(too_big)
        return self

    @property
    def source_name(self) -> str:
        """What errors call this scenario: its file, else its name."""
        return str(self.source_file) if self.source_file is not None else f"scenario {self.name!r}"

    def with_updates(self, updates: dict[str, Any]) -> Scenario:
        """Return a validated copy with dotted-path fields replaced, e.g. ``{"fleet.rows": 2}``."""
        data = self.model_dump(mode="python")
        for path, value in updates.items():
            set_dotted(data, path, value)
        data["source_dir"] = self.source_dir
        data["source_file"] = self.source_file
        return Scenario.model_validate(data)


#: A list index in a dotted path (ASCII digits; no sign).
_INDEX = re.compile(r"[0-9]+")


class PathError(ValueError):
    """A dotted path that does not lead to a field :func:`set_dotted` can set."""


def set_dotted(data: dict[str, Any], path: str, value: Any) -> None:
    """Set ``data[a][b][0][c] = value`` for ``path = "a.b.0.c"``.

    Missing mappings on the way are created (a missing list only where the next key is an index,
    and then it is empty). List indices are ``0 .. len - 1``: negative indices and indices past
    the end are refused rather than editing the last entry or appending.

    Raises
    ------
    PathError
        An empty key, a non-integer or out-of-range index, or a path that goes through a value.
    """
    keys = path.split(".")
    if not all(keys):
        raise PathError(f"{path!r} has an empty key; expected a dotted field path like fleet.rows")
    node: Any = data
    for i, key in enumerate(keys):
        here = ".".join(keys[:i]) or "the scenario"
        last = i == len(keys) - 1
        if isinstance(node, list):
            if not _INDEX.fullmatch(key):
                raise PathError(f"{here} is a list: expected an index 0 to {len(node) - 1}, got {key!r}")
            index = int(key)
            if index >= len(node):
                valid = f"indices 0 to {len(node) - 1}" if node else "no entries"
                raise PathError(f"{here} has {valid}, so there is no index {index}; set the whole list instead")
            if last:
                node[index] = value
            else:
                node = node[index]
        elif isinstance(node, dict):
            if last:
                node[key] = value
            else:
                if key not in node or node[key] is None:
                    node[key] = [] if _INDEX.fullmatch(keys[i + 1]) else {}
                node = node[key]
        else:
            shown = repr(node) if len(repr(node)) <= 40 else repr(node)[:39] + "…"
            raise PathError(f"{here} is a value ({shown}), not a mapping or list: it has no field {key!r}")
