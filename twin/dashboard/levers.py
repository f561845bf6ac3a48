"""What-if levers: widget values mapped to scenario edits, and the overrides that reproduce them.

This module is the dashboard's logic and imports no Streamlit, so it is unit-tested directly.
Every lever reads its baseline value from a :class:`~twin.scenario.Scenario` and maps a chosen
value to an edit of :mod:`twin.scenario.edits`, where the what-if rules live (and what follows a
``twin run --set`` too): a fleet size scales the workload pools and their request rates, the
arrivals lever replaces a pool's arrivals at its request rate, the model lever serves another
model in its own precision, the fault lever appends one event (``clear`` removes the scenario's),
the battery and generator levers add, resize or remove them. :func:`what_if_overrides` applies
every lever in table order to the baseline and returns the ``--set`` overrides between the
baseline and the what-if (:func:`twin.scenario.set_rules.sets_between`), so the overrides dict is
both the cache key of a run and the ``--set`` flags that reproduce it with ``twin run``.

To add a lever, append a :class:`Lever` to :data:`LEVERS`: its ``read`` gives the baseline
value, its ``edit`` the edited scenario; the app draws its widget from ``kind`` and the limits,
and greys it out while ``active`` says it does not act (what-if overrides then skip it).

What is the dashboard's own (UI conveniences, not rules of ``--set``): the rows and racks
levers act together as one fleet size; the rate lever multiplies on top of the fleet scaling;
while the what-if has a utility outage a baseline without a battery or generator is offered
:data:`~twin.scenario.edits.DEFAULT_BATTERY_RUNTIME_S` of battery and a generator starting after
:data:`~twin.scenario.edits.DEFAULT_GENERATOR_DELAY_S` (the schema's NFPA 110 Type 10), switched
on; the dry- and wet-bulb levers act on the synthetic climates only; the start-date lever keeps
the baseline's time of day; the site power limit is in kW.
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import yaml

from twin import catalog
from twin.scenario import Scenario, preset_names
from twin.scenario import edits as ed
from twin.scenario.edits import scaled_pool_servers as scaled_pool_servers  # the fleet levers' pool sizes
from twin.scenario.loader import preset_path
from twin.scenario.set_rules import sets_between
from twin.scenario.values import plain
from twin.scenario.workload_schema import Arrivals, InferenceWorkload
from twin.weather import BUILTIN_CLIMATES, BUILTIN_WEATHER

LeverKind = Literal["int", "float", "choice", "bool", "date", "optional_float"]
Values = Mapping[str, Any]
#: ``edit(base, scenario, value, values) -> scenario``: a lever's edit of the what-if so far.
Edit = Callable[[Scenario, Scenario, Any, Values], Scenario]

#: Weather sources the climate lever offers (the built-in typical years and the synthetic profiles).
WEATHER_SOURCES: tuple[str, ...] = (*BUILTIN_WEATHER, "constant", "diurnal")
SYNTHETIC_WEATHER: tuple[str, ...] = ("constant", "diurnal")
#: How each climate reads in the select box; a scenario's own weather file shows as its path.
CLIMATE_LABELS: dict[str, str] = {
    "greensboro-nc": "Greensboro, NC (TMY3)",
    "sand-point-ak": "Sand Point, AK (TMY3)",
    "phoenix-az": "Phoenix, AZ (TMY3)",
    "miami-fl": "Miami, FL (TMY3)",
    "san-francisco-ca": "San Francisco, CA (TMY3)",
    "constant": "constant (dry- and wet-bulb below)",
    "diurnal": "daily cycle (mean dry-bulb below)",
}
#: At most this many report intervals per run: longer runs report less often.
MAX_REPORT_POINTS = 360
#: Simulated hours of a dashboard run: short by default so a changed lever reruns in about a second.
DEFAULT_DURATION_H = 6.0
MIN_DURATION_H, MAX_DURATION_H = 1.0, 168.0


@dataclass(frozen=True)
class Lever:
    """One what-if control.

    Attributes
    ----------
    key : str
        Widget key and key of the value in the values dict.
    label, group, help : str
        What the app shows; levers are drawn by ``group`` in :data:`GROUPS` order.
    kind : str
        ``int``, ``float`` (sliders), ``choice`` (select box over ``options``), ``bool``,
        ``date`` or ``optional_float`` (a switch plus a slider; ``None`` when off).
    read : callable
        ``read(base) -> value``: the baseline's value.
    edit : callable
        ``edit(base, scenario, value, values) -> scenario``: the what-if so far edited for
        ``value`` (:mod:`twin.scenario.edits`); ``values`` holds every lever's value (for levers
        that depend on others).
    applies : callable
        ``applies(base) -> bool``: whether the lever exists for this baseline.
    off_value : callable, optional
        ``optional_float`` only: where the slider sits while the lever is off.
    options_for : callable, optional
        ``options_for(base) -> options`` for a choice whose options depend on the baseline
        (instead of ``options``).
    label_of : callable
        ``label_of(base, option) -> str``: how a choice's option reads in the select box.
    active : callable
        ``active(base, values) -> bool``: whether the lever acts given every lever's value
        (a fault's duration only with a fault); an inactive lever edits nothing.
    """

    key: str
    label: str
    group: str
    kind: LeverKind
    read: Callable[[Scenario], Any]
    edit: Edit
    options: tuple[Any, ...] = ()
    min_value: float | None = None
    max_value: float | None = None
    step: float | None = None
    unit: str = ""
    help: str = ""
    applies: Callable[[Scenario], bool] = lambda base: True
    off_value: Callable[[Scenario], float] | None = None
    options_for: Callable[[Scenario], tuple[Any, ...]] | None = None
    label_of: Callable[[Scenario, Any], str] = lambda base, option: str(option)
    active: Callable[[Scenario, Values], bool] = lambda base, values: True


# ----------------------------------------------------------------------------- lever -> edit


def _reads_only(base: Scenario, sc: Scenario, value: Any, values: Values) -> Scenario:
    """The edit of a lever another lever reads (a fault's time, the pool a choice acts on)."""
    return sc


def _field(path: str, cast: Callable[[Any], Any] = lambda v: v) -> Edit:
    """The edit of a lever that sets one field (:func:`twin.scenario.edits.set_field`)."""
    return lambda base, sc, value, values: ed.set_field(sc, path, cast(value))


def _fleet_edit(base: Scenario, sc: Scenario, value: Any, values: Values) -> Scenario:
    """Rows and racks per row together: one :func:`~twin.scenario.edits.resize_fleet` of the baseline's fleet."""
    fl = base.fleet
    return ed.resize_fleet(
        sc, rows=int(values.get("rows", fl.rows)), racks_per_row=int(values.get("racks_per_row", fl.racks_per_row))
    )


def _has_inference(base: Scenario) -> bool:
    return any(w.kind == "inference" for w in base.workloads)


def _inference_names(base: Scenario) -> tuple[str, ...]:
    return tuple(w.name for w in base.workloads if isinstance(w, InferenceWorkload))


def _index_of(base: Scenario, name: str) -> int:
    return next(i for i, w in enumerate(base.workloads) if w.name == name)


#: Built-in request traces the arrivals lever offers (twin.workload.BUILTIN_TRACES).
AZURE_TRACES: tuple[str, ...] = ("azure-llm-2023-conv", "azure-llm-2023-code")
#: Options of the arrivals lever: the scenario's own, a built-in trace, or a Poisson stream.
ARRIVAL_OPTIONS: tuple[str, ...] = ("scenario", *AZURE_TRACES, ed.POISSON)
ARRIVAL_LABELS: dict[str, str] = {
    "scenario": "as in the scenario",
    "azure-llm-2023-conv": "Azure LLM 2023 conversation trace",
    "azure-llm-2023-code": "Azure LLM 2023 code trace",
    ed.POISSON: "Poisson (the baseline's rate and lengths)",
}
#: ``arrivals_pool`` value that means every inference workload.
ALL_POOLS = "*"
#: ``model`` value that keeps the scenario's models.
SCENARIO_MODEL = "scenario"


def _arrivals_edit(base: Scenario, sc: Scenario, value: Any, values: Values) -> Scenario:
    if value == "scenario":
        return sc
    pool = values.get("arrivals_pool", ALL_POOLS)
    return ed.replace_arrivals(sc, str(value), None if pool == ALL_POOLS else [_index_of(base, pool)])


def _model_options(base: Scenario) -> tuple[str, ...]:
    from twin.catalog.architecture import shipped_model_ids

    return (SCENARIO_MODEL, *catalog.model_names(), *shipped_model_ids())


def _model_edit(base: Scenario, sc: Scenario, value: Any, values: Values) -> Scenario:
    if value == SCENARIO_MODEL:
        return sc
    name = values.get("model_pool") or _inference_names(base)[0]
    return ed.serve_model(sc, _index_of(base, name), str(value))


def _is_plant(base: Scenario) -> bool:
    return base.cooling.model == "plant"


def _synthetic_climate(base: Scenario, values: Values) -> bool:
    """True when the chosen climate is a synthetic profile (its temperatures are levers)."""
    return values.get("weather_source", base.weather.source) in SYNTHETIC_WEATHER


def _start_edit(base: Scenario, sc: Scenario, value: Any, values: Values) -> Scenario:
    day = value.date() if isinstance(value, datetime) else value
    return ed.set_field(sc, "start", datetime.combine(day, base.start.time()))


# ----------------------------------------------------------------------------- faults and controls

#: Options of the fault lever: the scenario's own events, none at all, or one added fault.
FAULT_OPTIONS: tuple[str, ...] = (
    "scenario",
    "clear",
    "utility_loss",
    "chiller_trip",
    "cdu_pump_fail",
    "crah_fail",
    "feed_loss",
    "server_fail",
)
FAULT_LABELS: dict[str, str] = {
    "clear": "none (remove the scenario's events)",
    "utility_loss": "utility outage (battery, generator)",
    "chiller_trip": "chiller trip",
    "cdu_pump_fail": "CDU pump failure",
    "crah_fail": "CRAH failure",
    "feed_loss": "feed A loss (2N side)",
    "server_fail": "server failures",
}
#: Faults whose ``count`` (units that fail) the count lever sets.
COUNTED_FAULTS: tuple[str, ...] = ("chiller_trip", "cdu_pump_fail", "crah_fail", "server_fail")
DEFAULT_FAULT_START_H = 2.0
DEFAULT_FAULT_DURATION_MIN = 60.0
SITE_LIMIT_MIN_KW, SITE_LIMIT_MAX_KW = 50.0, 10_000.0


def _fault_label(base: Scenario, option: Any) -> str:
    if option == "scenario":
        n = len(base.events)
        return f"as in the scenario ({n} event{'s' * (n != 1)})" if n else "none"
    return FAULT_LABELS.get(str(option), str(option))


def _fault_options(base: Scenario) -> tuple[str, ...]:
    """Every fault option; ``clear`` only where the scenario has events to clear."""
    return tuple(o for o in FAULT_OPTIONS if o != "clear" or base.events)


def _fault_edit(base: Scenario, sc: Scenario, value: Any, values: Values) -> Scenario:
    """``clear``, or one fault at ``fault_start_h`` (feed A; ``fault_count`` units of a counted fault)."""
    if value == "scenario":
        return sc
    if value == "clear":
        return ed.clear_faults(sc)
    minutes = values.get("fault_duration_min", DEFAULT_FAULT_DURATION_MIN)
    return ed.add_fault(
        sc,
        str(value),
        float(values.get("fault_start_h", DEFAULT_FAULT_START_H)) * 3600.0,
        duration_s=None if minutes is None else float(minutes) * 60.0,
        count=int(values.get("fault_count", 1)) if value in COUNTED_FAULTS else None,
        target="A" if value == "feed_loss" else None,
    )


def _has_fault(base: Scenario, values: Values) -> bool:
    return values.get("fault", "scenario") not in ("scenario", "clear")


def _has_outage(base: Scenario, values: Values) -> bool:
    """Whether the what-if loses the utility: the added fault, or the scenario's own outage."""
    choice = values.get("fault", "scenario")
    return choice == "utility_loss" or (choice != "clear" and _base_has_outage(base))


def _base_has_outage(base: Scenario) -> bool:
    return any(e.kind == "utility_loss" for e in base.events)


def _battery_read(base: Scenario) -> float | None:
    """The baseline battery's runtime [s]; without one, the offered default (off where the baseline has an outage)."""
    if base.power.ups.battery is None:
        return None if _base_has_outage(base) else ed.DEFAULT_BATTERY_RUNTIME_S
    return ed.battery_runtime_s(base)


def _generator_read(base: Scenario) -> float | None:
    gen = base.power.generator
    if gen is None:
        return None if _base_has_outage(base) else ed.DEFAULT_GENERATOR_DELAY_S
    return float(gen.start_delay_s)


def _site_limit_off_kw(base: Scenario) -> float:
    return min(ed.site_rating_w(base) / 1e3, SITE_LIMIT_MAX_KW)


#: Groups in the order the app draws them.
GROUPS: tuple[str, ...] = ("Fleet", "Cooling", "Climate", "Workload", "Faults and controls")

LEVERS: tuple[Lever, ...] = (
    Lever(
        "rows",
        "Rows of racks",
        "Fleet",
        "int",
        read=lambda b: b.fleet.rows,
        edit=_fleet_edit,
        min_value=1,
        max_value=16,
        step=1,
        help="Fleet size. Workload pools and their request rates scale with the servers.",
    ),
    Lever(
        "racks_per_row",
        "Racks per row",
        "Fleet",
        "int",
        read=lambda b: b.fleet.racks_per_row,
        edit=_reads_only,  # read by the rows lever: one resize of the fleet
        min_value=1,
        max_value=32,
        step=1,
        help="Fleet size. Workload pools and their request rates scale with the servers.",
    ),
    Lever(
        "accelerator",
        "Accelerator",
        "Fleet",
        "choice",
        read=lambda b: b.fleet.accelerator,
        edit=lambda b, sc, v, vals: ed.change_accelerator(sc, str(v)),
        options=tuple(catalog.accelerator_names()),
        help="Catalog SKU (twin catalog).",
    ),
    Lever(
        "power_cap_w",
        "GPU power cap",
        "Fleet",
        "optional_float",
        read=lambda b: b.fleet.power_cap_w,
        edit=_field("fleet.power_cap_w", lambda v: None if v is None else float(v)),
        min_value=100.0,
        max_value=1200.0,
        step=25.0,
        unit="W",
        help="nvidia-smi -pl on every GPU; off = no cap. A cap outside the SKU's range is flagged.",
        off_value=lambda b: catalog.accelerator_spec(b.fleet.accelerator).power_cap_max_w,
    ),
    Lever(
        "cooling_type",
        "Cooling type",
        "Cooling",
        "choice",
        read=lambda b: b.cooling.type,
        edit=_field("cooling.type"),
        options=("air", "hybrid", "liquid"),
        help="air: CRAHs only; hybrid: GPU cold plates (75 % to liquid); liquid: 90 % to liquid.",
    ),
    Lever(
        "liquid_class",
        "Facility-water class",
        "Cooling",
        "choice",
        read=lambda b: b.cooling.liquid_class,  # type: ignore[union-attr]
        edit=_field("cooling.liquid_class"),
        options=("W17", "W27", "W32", "W40", "W45"),
        help="ASHRAE liquid class: facility-water supply setpoint in °C.",
        applies=_is_plant,
    ),
    Lever(
        "crah_supply_air_c",
        "CRAH supply air",
        "Cooling",
        "float",
        read=lambda b: b.cooling.crah_supply_air_c,  # type: ignore[union-attr]
        edit=_field("cooling.crah_supply_air_c", float),
        min_value=15.0,
        max_value=32.0,
        step=0.5,
        unit="°C",
        help="Air setpoint of the room's CRAH units.",
        applies=_is_plant,
    ),
    Lever(
        "heat_rejection",
        "Heat rejection",
        "Cooling",
        "choice",
        read=lambda b: b.cooling.heat_rejection,  # type: ignore[union-attr]
        edit=_field("cooling.heat_rejection"),
        options=("tower", "dry_cooler", "adiabatic_dry_cooler"),
        help="Cooling tower (evaporates water), dry cooler (no water, warmer condenser) or adiabatic dry cooler "
        "(wets its pads on hot hours).",
        applies=_is_plant,
    ),
    Lever(
        "economiser",
        "Water-side economiser",
        "Cooling",
        "bool",
        read=lambda b: b.cooling.economiser,  # type: ignore[union-attr]
        edit=_field("cooling.economiser", bool),
        help="Free cooling when the outdoor air allows it.",
        applies=_is_plant,
    ),
    Lever(
        "weather_source",
        "Climate",
        "Climate",
        "choice",
        read=lambda b: b.weather.source,
        edit=_field("weather.source"),
        options=WEATHER_SOURCES,
        label_of=lambda b, o: CLIMATE_LABELS.get(str(o), str(o)),
        help="An NREL TMY3 year ("
        + "; ".join(f"{CLIMATE_LABELS[name]}: {climate}" for name, climate in BUILTIN_CLIMATES.items())
        + "), or a synthetic profile.",
    ),
    Lever(
        "start_date",
        "Start date",
        "Climate",
        "date",
        read=lambda b: b.start.date(),
        edit=_start_edit,
        help="Day of the (typical) year the run starts: the season of the weather file.",
    ),
    Lever(
        "dry_bulb_c",
        "Dry-bulb (constant / diurnal mean)",
        "Climate",
        "float",
        read=lambda b: b.weather.dry_bulb_c,
        edit=_field("weather.dry_bulb_c", float),
        min_value=-20.0,
        max_value=45.0,
        step=0.5,
        unit="°C",
        help="Used by the constant and diurnal climates only.",
        active=_synthetic_climate,
    ),
    Lever(
        "wet_bulb_c",
        "Wet-bulb (constant)",
        "Climate",
        "float",
        read=lambda b: b.weather.wet_bulb_c,
        edit=_field("weather.wet_bulb_c", float),
        min_value=-20.0,
        max_value=35.0,
        step=0.5,
        unit="°C",
        help="Used by the constant climate only; must not exceed the dry-bulb.",
        active=_synthetic_climate,
    ),
    Lever(
        "rate_scale",
        "Request rate (× baseline per server)",
        "Workload",
        "float",
        read=lambda b: 1.0,
        edit=lambda b, sc, v, vals: ed.scale_request_rate(sc, float(v)),
        min_value=0.1,
        max_value=3.0,
        step=0.05,
        help="Multiplies every inference workload's request rate (on top of the fleet-size scaling).",
        applies=_has_inference,
    ),
    Lever(
        "arrivals",
        "Arrivals (workload trace)",
        "Workload",
        "choice",
        read=lambda b: "scenario",
        edit=_arrivals_edit,
        options=ARRIVAL_OPTIONS,
        label_of=lambda b, o: ARRIVAL_LABELS.get(str(o), str(o)),
        help="Replay a built-in Azure LLM 2023 trace (its own prompt/output lengths) or a Poisson stream, "
        "at the baseline's request rate times the rate lever. Per-server copies are shifted, not in lockstep.",
        applies=_has_inference,
    ),
    Lever(
        "arrivals_pool",
        "…for the workload",
        "Workload",
        "choice",
        read=lambda b: ALL_POOLS,
        edit=_reads_only,  # read by the arrivals lever
        options_for=lambda b: (ALL_POOLS, *_inference_names(b)),
        label_of=lambda b, o: "all inference workloads" if o == ALL_POOLS else str(o),
        help="Which inference workload gets the new arrivals.",
        applies=_has_inference,
        active=lambda b, vals: vals.get("arrivals", "scenario") != "scenario",
    ),
    Lever(
        "model",
        "Model",
        "Workload",
        "choice",
        read=lambda b: SCENARIO_MODEL,
        edit=_model_edit,
        options_for=_model_options,
        label_of=lambda b, o: "as in the scenario" if o == SCENARIO_MODEL else str(o),
        help="Serve another model (twin catalog: catalog names and shipped Hugging Face architectures) with the "
        "workload's parallel layout, in the model's own precision. Weights that do not fit are flagged.",
        applies=_has_inference,
    ),
    Lever(
        "model_pool",
        "…for the workload",
        "Workload",
        "choice",
        read=lambda b: _inference_names(b)[0],
        edit=_reads_only,  # read by the model lever
        options_for=_inference_names,
        help="Which inference workload serves the chosen model.",
        applies=_has_inference,
        active=lambda b, vals: vals.get("model", SCENARIO_MODEL) != SCENARIO_MODEL,
    ),
    Lever(
        "fault",
        "Fault",
        "Faults and controls",
        "choice",
        read=lambda b: "scenario",
        edit=_fault_edit,
        options_for=_fault_options,
        label_of=_fault_label,
        help="One fault added to the what-if (the baseline keeps the scenario's own events, if any).",
    ),
    Lever(
        "fault_start_h",
        "Fault at",
        "Faults and controls",
        "float",
        read=lambda b: DEFAULT_FAULT_START_H,
        edit=_reads_only,  # read by the fault lever
        min_value=0.0,
        max_value=48.0,
        step=0.25,
        unit="h into the run",
        help="When the fault happens, from the start of the run (after the run's end: no fault).",
        active=_has_fault,
    ),
    Lever(
        "fault_duration_min",
        "Repaired after",
        "Faults and controls",
        "optional_float",
        read=lambda b: DEFAULT_FAULT_DURATION_MIN,
        edit=_reads_only,  # read by the fault lever
        min_value=1.0,
        max_value=720.0,
        step=1.0,
        unit="min",
        help="Off: not repaired within the run.",
        off_value=lambda b: DEFAULT_FAULT_DURATION_MIN,
        active=_has_fault,
    ),
    Lever(
        "fault_count",
        "Units that fail",
        "Faults and controls",
        "int",
        read=lambda b: 1,
        edit=_reads_only,  # read by the fault lever
        min_value=1,
        max_value=64,
        step=1,
        help="Chillers, CDUs, CRAHs or servers (more than are installed: all of them).",
        active=lambda b, vals: vals.get("fault") in COUNTED_FAULTS,
    ),
    Lever(
        "battery_runtime_s",
        "UPS battery runtime",
        "Faults and controls",
        "optional_float",
        read=_battery_read,
        edit=lambda b, sc, v, vals: ed.set_battery(sc, v),
        min_value=10.0,
        max_value=1800.0,
        step=10.0,
        unit="s at the UPS rating",
        help="Ride-through during a utility outage (cut off at the battery's min_soc); off: no battery.",
        off_value=lambda b: ed.DEFAULT_BATTERY_RUNTIME_S,
        active=_has_outage,
    ),
    Lever(
        "generator_delay_s",
        "Generator start delay",
        "Faults and controls",
        "optional_float",
        read=_generator_read,
        edit=lambda b, sc, v, vals: ed.set_generator(sc, v),
        min_value=0.0,
        max_value=1800.0,
        step=5.0,
        unit="s",
        help="Outage to generator pick-up (NFPA 110 Type 10: 10 s); off: no generator.",
        off_value=lambda b: ed.DEFAULT_GENERATOR_DELAY_S,
        active=_has_outage,
    ),
    Lever(
        "cooling_on_ups",
        "Cooling plant on the UPS",
        "Faults and controls",
        "bool",
        read=lambda b: b.power.cooling_on_ups,
        edit=_field("power.cooling_on_ups", bool),
        help="Cooling rides through an outage on the battery (else it stops until the generator).",
    ),
    Lever(
        "site_power_limit_kw",
        "Site power limit",
        "Faults and controls",
        "optional_float",
        read=lambda b: None if b.controls.site_power_limit_w is None else b.controls.site_power_limit_w / 1e3,
        edit=_field("controls.site_power_limit_w", lambda v: None if v is None else float(v) * 1e3),
        min_value=SITE_LIMIT_MIN_KW,
        max_value=SITE_LIMIT_MAX_KW,
        step=10.0,
        unit="kW",
        help="The meter is held at the limit by capping every GPU to the same share of its demand.",
        off_value=_site_limit_off_kw,
    ),
)

LEVER_BY_KEY: dict[str, Lever] = {lever.key: lever for lever in LEVERS}


def levers_for(base: Scenario) -> list[Lever]:
    """The levers that apply to ``base``, in table order."""
    return [lever for lever in LEVERS if lever.applies(base)]


def baseline_values(base: Scenario) -> dict[str, Any]:
    """Every applicable lever's value in ``base`` (what the widgets start at)."""
    return {lever.key: lever.read(base) for lever in levers_for(base)}


# ----------------------------------------------------------------------------- run settings


def window_start(base: Scenario, duration_h: float) -> datetime:
    """When the dashboard's ``duration_h`` window starts: inside the scenario's own run, on a whole
    hour, as near as that allows to centred on the diurnal request peak (the first diurnal pool's
    ``peak_hour``), so a short window shows the busy part of the day.

    The scenario's start when it schedules faults (they are timed from its start), has no diurnal
    pool, or runs no longer than the window.
    """
    peaks = [
        w.arrivals.peak_hour
        for w in base.workloads
        if isinstance(w, InferenceWorkload) and isinstance(w.arrivals, Arrivals) and w.arrivals.kind == "diurnal"
    ]
    room_h = base.duration_s / 3600.0 - float(duration_h)
    if base.events or not peaks or room_h <= 0:
        return base.start
    start_hour = base.start.hour + base.start.minute / 60.0 + base.start.second / 3600.0
    offset_h = (peaks[0] - float(duration_h) / 2.0 - start_hour) % 24.0
    return base.start + timedelta(hours=min(math.floor(offset_h), math.floor(room_h)))


def windowed(base: Scenario, duration_h: float) -> Scenario:
    """``base`` starting at :func:`window_start`: the baseline the what-if levers edit."""
    return ed.set_field(base, "start", window_start(base, duration_h))


def run_overrides(base: Scenario, duration_h: float) -> dict[str, Any]:
    """Window start, duration and report interval shared by the baseline and the what-if (only
    those that change).

    The start is :func:`window_start`. The report interval is the baseline's, lengthened to a
    whole number of physics ticks so a run has at most :data:`MAX_REPORT_POINTS` rows.
    """
    duration_s = float(duration_h) * 3600.0
    step_s = base.step_s
    interval_s = base.report_interval_s
    if duration_s / interval_s > MAX_REPORT_POINTS:
        interval_s = math.ceil(duration_s / MAX_REPORT_POINTS / step_s) * step_s
    out = {"duration_s": duration_s, "report_interval_s": float(interval_s)}
    out = {k: v for k, v in out.items() if not math.isclose(v, getattr(base, k), rel_tol=1e-12)}
    start = window_start(base, duration_h)
    return {"start": plain(start), **out} if start != base.start else out


def window_text(start: datetime, duration_h: float) -> str:
    """The simulated window as clock time, e.g. ``15 Jul 2024 11:00–17:00``."""
    end = start + timedelta(hours=float(duration_h))
    tail = f"{end:%H:%M}" if end.date() == start.date() else f"{end:%d %b %Y %H:%M}"
    return f"{start:%d %b %Y %H:%M}–{tail}"


#: The request-level replay the dashboard asks of both runs when its latency box is ticked (a small sample).
REQUEST_LEVEL = {"ranks": 2, "window_s": 300.0}


def request_level_overrides(on: bool) -> dict[str, Any]:
    """The scenario's ``request_level`` for both runs: a sample of 2 ranks over 300 s at the busiest interval."""
    return {"request_level": dict(REQUEST_LEVEL)} if on else {}


# ----------------------------------------------------------------------------- overrides


def what_if(base: Scenario, values: Values) -> Scenario:
    """The what-if described by the lever ``values``: every active lever's edit of ``base``, in table order.

    Levers missing from ``values`` keep their baseline value.

    Raises
    ------
    KeyError
        For a key that is no lever of ``base``.
    ScenarioError
        An edit that cannot be honoured (pools that cannot fit the fleet, an unreadable trace).
    """
    known = {lever.key for lever in levers_for(base)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise KeyError(f"unknown lever(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}")
    full = {**baseline_values(base), **values}
    sc = base
    for lever in levers_for(base):
        if lever.active(base, full):
            sc = lever.edit(base, sc, full[lever.key], full)
    return sc


def what_if_overrides(base: Scenario, values: Values) -> dict[str, Any]:
    """Overrides that turn ``base`` into the what-if of the lever ``values`` (:func:`what_if`).

    Only what differs from the baseline is kept (unchanged levers give ``{}``), as ``--set``
    overrides (:func:`twin.scenario.set_rules.sets_between`); keys are sorted.
    """
    return sets_between(base, what_if(base, values))


# ----------------------------------------------------------------------------- scenarios


@dataclass(frozen=True)
class ScenarioChoice:
    """A scenario the app offers: a label and what :func:`twin.load_scenario` takes."""

    label: str
    source: str


def scenario_choices(extra_dirs: list[Path] | None = None) -> list[ScenarioChoice]:
    """Presets, then the ``*.yaml`` of the repository's ``scenarios/``, of ``./scenarios`` and of ``extra_dirs``.

    Labels are ``folder/file.yaml``, or the full path where that label is taken already.
    """
    choices = [ScenarioChoice(f"preset: {name}", name) for name in preset_names()]
    repo_scenarios = preset_path("default").parent.parent.parent / "scenarios"
    dirs = [repo_scenarios, Path.cwd() / "scenarios", *(extra_dirs or [])]
    seen: set[Path] = set()
    for folder in dirs:
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.yaml")):
            real = path.resolve()
            if real in seen:
                continue
            seen.add(real)
            label = f"{folder.name}/{path.name}"
            if any(c.label == label for c in choices):
                label = str(real)
            choices.append(ScenarioChoice(label, str(real)))
    return choices


def overrides_key(overrides: Mapping[str, Any]) -> str:
    """A canonical text of ``overrides`` (sorted JSON-like YAML): the cache key of a run."""
    data = {k: plain(v) for k, v in sorted(overrides.items())}
    return yaml.safe_dump(data, default_flow_style=True, width=10**6).strip()


def cli_command(source: str, overrides: Mapping[str, Any]) -> str:
    """The ``twin run`` command line that reproduces a run (``--set path=value`` per override)."""
    parts = ["twin", "run", shlex.quote(source)]
    for key, value in sorted(overrides.items()):
        text = _yaml_scalar(plain(value))
        parts.append(f"--set {shlex.quote(f'{key}={text}')}")
    return " ".join(parts)


def _yaml_scalar(value: Any) -> str:
    """``value`` as YAML that ``--set`` reads back; ISO timestamps stay bare (YAML reads them as datetimes)."""
    if isinstance(value, str):
        try:
            datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            return value
    return yaml.safe_dump(value, default_flow_style=True, width=10**6).strip().removesuffix("...").strip()


def lever_options(lever: Lever, base: Scenario) -> tuple[Any, ...]:
    """A choice lever's options, with the baseline's value added when the table lacks it."""
    options = lever.options_for(base) if lever.options_for is not None else lever.options
    current = lever.read(base)
    return options if current in options else (*options, current)
