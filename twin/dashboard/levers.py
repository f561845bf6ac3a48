"""What-if levers: widget values turned into scenario overrides (dotted path → value).

This module is the dashboard's logic and imports no Streamlit, so it is unit-tested directly.
Every lever reads its baseline value from a :class:`~twin.scenario.Scenario` and turns a chosen
value into overrides for :func:`twin.load_scenario`. :func:`what_if_overrides` applies all of
them and keeps only what differs from the baseline, so the overrides dict is both the cache key
of a run and the ``--set`` flags that reproduce it with ``twin run``.

To add a lever, append a :class:`Lever` to :data:`LEVERS`: its ``read`` gives the baseline
value, its ``apply`` the overrides; the app draws its widget from ``kind`` and the limits, and
greys it out while ``active`` says it does not act (what-if overrides then skip it).

Fleet size and request rate interact: changing ``fleet.rows`` or ``fleet.racks_per_row`` scales
each workload's ``servers`` in proportion, and each inference workload's request rate follows its
servers, so the load per server stays that of the baseline; ``rate_scale`` multiplies it on top.

Workload trace: the ``arrivals`` lever replaces the arrivals of every inference pool (or of the
one ``arrivals_pool`` names) by a built-in Azure LLM 2023 trace or a Poisson stream at the pool's
baseline *request* rate (times the rate lever and the fleet scaling). A trace brings its own
prompt and output lengths; a Poisson stream keeps the baseline's mean lengths (or resamples
those of the trace the baseline replays). Diurnal shapes are dropped: the trace is the shape.

Model: the ``model`` lever serves another model (a catalog name or a shipped Hugging Face
architecture) on the workload ``model_pool`` names, with that workload's layout and the model's
own precision; a model whose weights do not fit the layout is flagged as ``twin run`` flags it.

Faults: the ``fault`` lever appends one event to the baseline's ``events`` (the baseline itself
gets no fault), timed and sized by ``fault_start_h``, ``fault_duration_min`` and ``fault_count``;
``clear`` removes the scenario's own events instead. While the what-if has a utility outage, the
battery and generator levers act: a baseline without a battery or generator is offered a 5 min
battery and an NFPA 110 Type 10 generator (10 s) rated at the transformer's rating, each of
which can be switched off. The site power limit (``controls.site_power_limit_w``) and the
cooling plant on the UPS act always.
"""

from __future__ import annotations

import functools
import math
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, Literal

import yaml

from twin import catalog
from twin.errors import FieldProblem, ScenarioError
from twin.scenario import Scenario, preset_names
from twin.scenario.loader import preset_path
from twin.scenario.schema import BurstyArrivals, InferenceWorkload, PoissonArrivals, TraceArrivals

LeverKind = Literal["int", "float", "choice", "bool", "date", "optional_float"]
Values = Mapping[str, Any]

#: Weather sources the climate lever offers (built-in TMY3 years and the synthetic profiles).
WEATHER_SOURCES: tuple[str, ...] = ("greensboro-nc", "sand-point-ak", "constant", "diurnal")
SYNTHETIC_WEATHER: tuple[str, ...] = ("constant", "diurnal")
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
    apply : callable
        ``apply(base, value, values) -> overrides``: dotted paths for ``value``; ``values`` holds
        every lever's value (for levers that depend on others).
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
        (a fault's duration only with a fault); an inactive lever adds no overrides.
    """

    key: str
    label: str
    group: str
    kind: LeverKind
    read: Callable[[Scenario], Any]
    apply: Callable[[Scenario, Any, Values], dict[str, Any]]
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


# ----------------------------------------------------------------------------- fleet and workloads


def _n_servers(base: Scenario, values: Values) -> int:
    fl = base.fleet
    rows = int(values.get("rows", fl.rows))
    racks = int(values.get("racks_per_row", fl.racks_per_row))
    return rows * racks * fl.servers_per_rack


def scaled_pool_servers(base: Scenario, n_servers: int) -> list[int | None]:
    """Servers of each workload when the fleet has ``n_servers`` instead of the baseline's.

    Explicit pool sizes scale in proportion (rounded down, at least 1); ``None`` (the rest of
    the fleet) stays ``None``.

    Raises
    ------
    ScenarioError
        When the pools cannot fit in ``n_servers`` even at one server each.
    """
    factor = n_servers / base.fleet.n_servers
    pools = [None if w.servers is None else max(1, math.floor(w.servers * factor + 1e-9)) for w in base.workloads]
    taken = sum(p or 0 for p in pools)
    if taken > n_servers:
        raise ScenarioError(
            "what-if levers",
            [FieldProblem("fleet", f"{n_servers} servers cannot hold {len(pools)} workloads ({taken} servers)")],
        )
    return pools


def _pool_ratio(base: Scenario, i: int, pools: list[int | None], n_servers: int) -> float:
    """New servers / baseline servers of workload ``i`` (``None`` pools take the fleet's rest)."""

    def size(sizes: list[int | None], total: int, j: int) -> int:
        own = sizes[j]
        if own is not None:
            return own
        return max(total - sum(s or 0 for s in sizes), 0)

    old = size([w.servers for w in base.workloads], base.fleet.n_servers, i)
    new = size(pools, n_servers, i)
    return new / old if old > 0 else 1.0


def _fleet_apply(field: str) -> Callable[[Scenario, Any, Values], dict[str, Any]]:
    def apply(base: Scenario, value: Any, values: Values) -> dict[str, Any]:
        out: dict[str, Any] = {f"fleet.{field}": int(value)}
        for i, servers in enumerate(scaled_pool_servers(base, _n_servers(base, values))):
            if servers is not None:
                out[f"workloads.{i}.servers"] = servers
        return out

    return apply


def _rate_factor(base: Scenario, i: int, values: Values) -> float:
    """Pool ``i``'s new request rate / its baseline rate: the rate lever times the fleet scaling."""
    n_servers = _n_servers(base, values)
    pools = scaled_pool_servers(base, n_servers)
    return float(values.get("rate_scale", 1.0)) * _pool_ratio(base, i, pools, n_servers)


def _rate_apply(base: Scenario, value: Any, values: Values) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for i, w in enumerate(base.workloads):
        if not isinstance(w, InferenceWorkload) or _arrivals_replaced(base, values, i):
            continue  # a replaced pool gets its rate from the arrivals lever
        factor = _rate_factor(base, i, {**values, "rate_scale": value})
        arr = w.arrivals
        if arr.requests_per_s is None:  # a trace at rate_scale times its own rate
            assert isinstance(arr, TraceArrivals)
            out[f"workloads.{i}.arrivals.rate_scale"] = float((arr.rate_scale or 1.0) * factor)
        else:
            out[f"workloads.{i}.arrivals.requests_per_s"] = float(arr.requests_per_s * factor)
    return out


# ----------------------------------------------------------------------------- workload trace

#: Built-in request traces the arrivals lever offers (twin.workload.BUILTIN_TRACES).
AZURE_TRACES: tuple[str, ...] = ("azure-llm-2023-conv", "azure-llm-2023-code")
#: Options of the arrivals lever: the scenario's own, a built-in trace, or a Poisson stream.
ARRIVAL_OPTIONS: tuple[str, ...] = ("scenario", *AZURE_TRACES, "poisson")
ARRIVAL_LABELS: dict[str, str] = {
    "scenario": "as in the scenario",
    "azure-llm-2023-conv": "Azure LLM 2023 conversation trace",
    "azure-llm-2023-code": "Azure LLM 2023 code trace",
    "poisson": "Poisson (the baseline's rate and lengths)",
}
#: ``arrivals_pool`` value that means every inference workload.
ALL_POOLS = "*"


@functools.lru_cache(maxsize=16)
def _trace_rate_per_s(path: str, fmt: str | None) -> float:
    """Mean request rate of a trace file as the engine loops it: requests / period [1/s]."""
    from twin.workload import read_trace, trace_period_s

    df, _meta = read_trace(path, fmt)
    return float(len(df) / trace_period_s(df))


def _pool_requests_per_s(base: Scenario, i: int) -> float:
    """Baseline mean request rate of inference pool ``i`` [1/s]."""
    arr = base.workloads[i].arrivals  # type: ignore[union-attr]
    if arr.requests_per_s is not None:
        return float(arr.requests_per_s)
    if isinstance(arr, TraceArrivals):
        from twin.workload import resolve_trace

        try:
            rate = _trace_rate_per_s(str(resolve_trace(arr.path, base.source_dir)), arr.format)
        except (OSError, ValueError) as exc:  # the engine reports the same trace with its line
            raise ScenarioError("what-if levers", [FieldProblem(f"workloads.{i}.arrivals.path", str(exc))]) from None
        return (arr.rate_scale or 1.0) * rate / arr.time_scale
    raise AssertionError(f"workloads.{i}.arrivals has no request rate")


def _arrivals_source(arr: Any) -> str:
    """Which :data:`ARRIVAL_OPTIONS` entry ``arr`` already is (``"scenario"`` for anything else)."""
    if isinstance(arr, TraceArrivals) and arr.path in AZURE_TRACES:
        return arr.path
    if isinstance(arr, PoissonArrivals):
        return "poisson"
    return "scenario"


def _arrivals_replaced(base: Scenario, values: Values, i: int) -> bool:
    """Whether the arrivals lever gives inference pool ``i`` new arrivals."""
    choice = values.get("arrivals", "scenario")
    w = base.workloads[i]
    if choice == "scenario" or not isinstance(w, InferenceWorkload):
        return False
    if values.get("arrivals_pool", ALL_POOLS) not in (ALL_POOLS, w.name):
        return False
    return _arrivals_source(w.arrivals) != choice


def _lengths(arr: Any) -> dict[str, Any]:
    """Prompt and output lengths of a Poisson stream replacing ``arr``."""
    if isinstance(arr, TraceArrivals):
        return {"tokens_from": arr.path}  # resample the trace's own (prompt, output) pairs
    out: dict[str, Any] = {"prompt_tokens": float(arr.prompt_tokens), "output_tokens": float(arr.output_tokens)}
    if isinstance(arr, PoissonArrivals | BurstyArrivals) and arr.tokens_from is not None:
        out["tokens_from"] = arr.tokens_from
    return out


def _arrivals_apply(base: Scenario, value: Any, values: Values) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for i, w in enumerate(base.workloads):
        if not _arrivals_replaced(base, {**values, "arrivals": value}, i):
            continue
        assert isinstance(w, InferenceWorkload)
        rate = _pool_requests_per_s(base, i) * _rate_factor(base, i, values)
        if value == "poisson":
            new: dict[str, Any] = {"kind": "poisson", "requests_per_s": rate, **_lengths(w.arrivals)}
        else:
            new = {"kind": "trace", "path": str(value), "requests_per_s": rate}
        out[f"workloads.{i}.arrivals"] = new
    return out


def _inference_names(base: Scenario) -> tuple[str, ...]:
    return tuple(w.name for w in base.workloads if isinstance(w, InferenceWorkload))


#: ``model`` value that keeps the scenario's models.
SCENARIO_MODEL = "scenario"


def _model_options(base: Scenario) -> tuple[str, ...]:
    from twin.catalog.architecture import shipped_model_ids

    return (SCENARIO_MODEL, *catalog.model_names(), *shipped_model_ids())


def _model_pool(base: Scenario, values: Values) -> int:
    """Index of the inference workload the model lever acts on (the first one by default)."""
    names = _inference_names(base)
    name = values.get("model_pool") or names[0]
    return next(i for i, w in enumerate(base.workloads) if w.name == name)


def _model_apply(base: Scenario, value: Any, values: Values) -> dict[str, Any]:
    i = _model_pool(base, values)
    w = base.workloads[i]
    assert isinstance(w, InferenceWorkload)
    if value == SCENARIO_MODEL or value == w.model:
        return {}
    return {f"workloads.{i}.model": str(value), f"workloads.{i}.precision": None}


def _accelerator_apply(base: Scenario, value: Any, values: Values) -> dict[str, Any]:
    out: dict[str, Any] = {"fleet.accelerator": str(value)}
    if base.fleet.accelerator_file is not None and value != base.fleet.accelerator:
        out["fleet.accelerator_file"] = None
    return out


def _has_inference(base: Scenario) -> bool:
    return any(w.kind == "inference" for w in base.workloads)


def _is_plant(base: Scenario) -> bool:
    return base.cooling.model == "plant"


def _path(path: str, cast: Callable[[Any], Any] = lambda v: v) -> Callable[[Scenario, Any, Values], dict[str, Any]]:
    return lambda base, value, values: {path: cast(value)}


def _synthetic_climate(base: Scenario, values: Values) -> bool:
    """True when the chosen climate is a synthetic profile (its temperatures are levers)."""
    return values.get("weather_source", base.weather.source) in SYNTHETIC_WEATHER


def _synthetic_weather(path: str) -> Callable[[Scenario, Any, Values], dict[str, Any]]:
    def apply(base: Scenario, value: Any, values: Values) -> dict[str, Any]:
        if not _synthetic_climate(base, values):
            return {}
        return {path: float(value)}

    return apply


def _start_apply(base: Scenario, value: Any, values: Values) -> dict[str, Any]:
    day = value.date() if isinstance(value, datetime) else value
    return {"start": datetime.combine(day, base.start.time()).isoformat()}


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
#: Battery offered for an outage when the baseline has none: 5 min at the UPS rating (30 s - 5 min
#: typical, parameters.md 2), and a generator picking up the load in 10 s (NFPA 110 Type 10).
DEFAULT_BATTERY_RUNTIME_S = 300.0
DEFAULT_GENERATOR_DELAY_S = 10.0


def _fault_label(base: Scenario, option: Any) -> str:
    if option == "scenario":
        n = len(base.events)
        return f"as in the scenario ({n} event{'s' * (n != 1)})" if n else "none"
    return FAULT_LABELS.get(str(option), str(option))


def _fault_options(base: Scenario) -> tuple[str, ...]:
    """Every fault option; ``clear`` only where the scenario has events to clear."""
    return tuple(o for o in FAULT_OPTIONS if o != "clear" or base.events)


def _event(kind: str, values: Values) -> dict[str, Any]:
    """The event the fault lever adds (``time_s`` from the run's start)."""
    event: dict[str, Any] = {"time_s": float(values.get("fault_start_h", DEFAULT_FAULT_START_H)) * 3600.0, "kind": kind}
    if kind == "feed_loss":
        event["target"] = "A"
    if kind in COUNTED_FAULTS:
        event["count"] = int(values.get("fault_count", 1))
    minutes = values.get("fault_duration_min", DEFAULT_FAULT_DURATION_MIN)
    if minutes is not None:
        event["duration_s"] = float(minutes) * 60.0
    return event


def _fault_apply(base: Scenario, value: Any, values: Values) -> dict[str, Any]:
    if value == "scenario":
        return {}
    if value == "clear":
        return {"events": []}
    own = [e.model_dump(mode="python", exclude_none=True) for e in base.events]
    return {"events": [*own, _event(str(value), values)]}


def _has_fault(base: Scenario, values: Values) -> bool:
    return values.get("fault", "scenario") not in ("scenario", "clear")


def _has_outage(base: Scenario, values: Values) -> bool:
    """Whether the what-if loses the utility: the added fault, or the scenario's own outage."""
    choice = values.get("fault", "scenario")
    own = choice != "clear" and any(e.kind == "utility_loss" for e in base.events)
    return choice == "utility_loss" or own


def _base_has_outage(base: Scenario) -> bool:
    return any(e.kind == "utility_loss" for e in base.events)


def _battery_read(base: Scenario) -> float | None:
    """The baseline battery's runtime at the UPS rating [s]; the offered default when it has none."""
    ups = base.power.ups
    bat = ups.battery
    if bat is None:
        return None if _base_has_outage(base) else DEFAULT_BATTERY_RUNTIME_S
    if bat.runtime_s is not None:
        return float(bat.runtime_s)
    # energy_j: the runtime it gives (inverse of twin.physics.power.battery_capacity_for_runtime_j).
    rated_w = ups.rated_w * ups.units_needed_for_load
    return float(bat.energy_j or 0.0) * bat.discharge_efficiency * (1.0 - bat.min_soc) / rated_w


def _battery_apply(base: Scenario, value: Any, values: Values) -> dict[str, Any]:
    ups = base.power.ups
    bat = ups.battery
    if value is None:
        return {} if bat is None else {"power.ups.battery": None}
    runtime_s = float(value)
    if bat is None:  # the whole stage: the scenario file may not spell out power.ups
        return {"power.ups": {**ups.model_dump(mode="python", exclude_none=True), "battery": {"runtime_s": runtime_s}}}
    if bat.runtime_s is not None:
        return {"power.ups.battery.runtime_s": runtime_s}
    if math.isclose(runtime_s, _battery_read(base) or 0.0, rel_tol=1e-9):
        return {}
    spec = bat.model_dump(mode="python", exclude_none=True)
    spec.pop("energy_j")
    return {"power.ups.battery": {**spec, "runtime_s": runtime_s}}


def _generator_read(base: Scenario) -> float | None:
    gen = base.power.generator
    if gen is None:
        return None if _base_has_outage(base) else DEFAULT_GENERATOR_DELAY_S
    return float(gen.start_delay_s)


def _generator_apply(base: Scenario, value: Any, values: Values) -> dict[str, Any]:
    gen = base.power.generator
    if value is None:
        return {} if gen is None else {"power.generator": None}
    if gen is not None:
        return {"power.generator.start_delay_s": float(value)}
    tr = base.power.transformer
    return {"power.generator": {"rated_w": float(tr.rated_w * tr.count), "start_delay_s": float(value)}}


def _site_limit_off_kw(base: Scenario) -> float:
    tr = base.power.transformer
    return min(tr.rated_w * tr.count / 1e3, SITE_LIMIT_MAX_KW)


DEFAULT_FAULT_START_H = 2.0
DEFAULT_FAULT_DURATION_MIN = 60.0
SITE_LIMIT_MIN_KW, SITE_LIMIT_MAX_KW = 50.0, 10_000.0

#: Groups in the order the app draws them.
GROUPS: tuple[str, ...] = ("Fleet", "Cooling", "Climate", "Workload", "Faults and controls")

LEVERS: tuple[Lever, ...] = (
    Lever(
        "rows",
        "Rows of racks",
        "Fleet",
        "int",
        read=lambda b: b.fleet.rows,
        apply=_fleet_apply("rows"),
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
        apply=_fleet_apply("racks_per_row"),
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
        apply=_accelerator_apply,
        options=tuple(catalog.accelerator_names()),
        help="Catalog SKU (twin catalog).",
    ),
    Lever(
        "power_cap_w",
        "GPU power cap",
        "Fleet",
        "optional_float",
        read=lambda b: b.fleet.power_cap_w,
        apply=lambda b, v, vals: {"fleet.power_cap_w": None if v is None else float(v)},
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
        apply=_path("cooling.type"),
        options=("air", "hybrid", "liquid"),
        help="air: CRAHs only; hybrid: GPU cold plates (75 % to liquid); liquid: 90 % to liquid.",
    ),
    Lever(
        "liquid_class",
        "Facility-water class",
        "Cooling",
        "choice",
        read=lambda b: b.cooling.liquid_class,  # type: ignore[union-attr]
        apply=_path("cooling.liquid_class"),
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
        apply=_path("cooling.crah_supply_air_c", float),
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
        apply=_path("cooling.heat_rejection"),
        options=("tower", "dry_cooler"),
        help="Cooling tower (evaporates water) or dry cooler (no water, warmer condenser).",
        applies=_is_plant,
    ),
    Lever(
        "economiser",
        "Water-side economiser",
        "Cooling",
        "bool",
        read=lambda b: b.cooling.economiser,  # type: ignore[union-attr]
        apply=_path("cooling.economiser", bool),
        help="Free cooling when the outdoor air allows it.",
        applies=_is_plant,
    ),
    Lever(
        "weather_source",
        "Climate",
        "Climate",
        "choice",
        read=lambda b: b.weather.source,
        apply=_path("weather.source"),
        options=WEATHER_SOURCES,
        help="NREL TMY3 years for Greensboro NC or Sand Point AK, or a synthetic profile.",
    ),
    Lever(
        "start_date",
        "Start date",
        "Climate",
        "date",
        read=lambda b: b.start.date(),
        apply=_start_apply,
        help="Day of the (typical) year the run starts: the season of the weather file.",
    ),
    Lever(
        "dry_bulb_c",
        "Dry-bulb (constant / diurnal mean)",
        "Climate",
        "float",
        read=lambda b: b.weather.dry_bulb_c,
        apply=_synthetic_weather("weather.dry_bulb_c"),
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
        apply=_synthetic_weather("weather.wet_bulb_c"),
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
        apply=_rate_apply,
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
        apply=_arrivals_apply,
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
        apply=lambda b, v, vals: {},  # read by the arrivals and rate levers
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
        apply=_model_apply,
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
        apply=lambda b, v, vals: {},  # read by the model lever
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
        apply=_fault_apply,
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
        apply=lambda b, v, vals: {},  # read by the fault lever
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
        apply=lambda b, v, vals: {},  # read by the fault lever
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
        apply=lambda b, v, vals: {},  # read by the fault lever
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
        apply=_battery_apply,
        min_value=10.0,
        max_value=1800.0,
        step=10.0,
        unit="s at the UPS rating",
        help="Ride-through during a utility outage (cut off at the battery's min_soc); off: no battery.",
        off_value=lambda b: DEFAULT_BATTERY_RUNTIME_S,
        active=_has_outage,
    ),
    Lever(
        "generator_delay_s",
        "Generator start delay",
        "Faults and controls",
        "optional_float",
        read=_generator_read,
        apply=_generator_apply,
        min_value=0.0,
        max_value=1800.0,
        step=5.0,
        unit="s",
        help="Outage to generator pick-up (NFPA 110 Type 10: 10 s); off: no generator.",
        off_value=lambda b: DEFAULT_GENERATOR_DELAY_S,
        active=_has_outage,
    ),
    Lever(
        "cooling_on_ups",
        "Cooling plant on the UPS",
        "Faults and controls",
        "bool",
        read=lambda b: b.power.cooling_on_ups,
        apply=_path("power.cooling_on_ups", bool),
        help="Cooling rides through an outage on the battery (else it stops until the generator).",
    ),
    Lever(
        "site_power_limit_kw",
        "Site power limit",
        "Faults and controls",
        "optional_float",
        read=lambda b: None if b.controls.site_power_limit_w is None else b.controls.site_power_limit_w / 1e3,
        apply=lambda b, v, vals: {"controls.site_power_limit_w": None if v is None else float(v) * 1e3},
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


def run_overrides(base: Scenario, duration_h: float) -> dict[str, Any]:
    """Duration and report interval shared by the baseline and the what-if (only those that change).

    The report interval is the baseline's, lengthened to a whole number of physics ticks so a
    run has at most :data:`MAX_REPORT_POINTS` rows.
    """
    duration_s = float(duration_h) * 3600.0
    step_s = base.step_s
    interval_s = base.report_interval_s
    if duration_s / interval_s > MAX_REPORT_POINTS:
        interval_s = math.ceil(duration_s / MAX_REPORT_POINTS / step_s) * step_s
    out = {"duration_s": duration_s, "report_interval_s": float(interval_s)}
    return {k: v for k, v in out.items() if not _same(v, getattr(base, k))}


# ----------------------------------------------------------------------------- overrides


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return datetime.combine(value, time()).isoformat()
    if isinstance(value, Path):
        return str(value)
    return value


def _get_dotted(data: Any, path: str) -> Any:
    node = data
    for key in path.split("."):
        if isinstance(node, list):
            node = node[int(key)]
        elif isinstance(node, dict):
            node = node.get(key)
        else:
            return None
    return node


def _same(a: Any, b: Any) -> bool:
    a, b = _plain(a), _plain(b)
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=0.0)
    return bool(a == b)


def what_if_overrides(base: Scenario, values: Values) -> dict[str, Any]:
    """Overrides that turn ``base`` into the what-if described by the lever ``values``.

    Levers missing from ``values`` keep their baseline value; an override equal to the
    baseline's value is dropped, so unchanged levers give ``{}``. Keys are sorted.

    Raises
    ------
    KeyError
        For a key that is no lever of ``base``.
    """
    known = {lever.key for lever in levers_for(base)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise KeyError(f"unknown lever(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}")
    full = {**baseline_values(base), **values}
    dumped = base.model_dump(mode="python")
    out: dict[str, Any] = {}
    for lever in levers_for(base):
        if lever.active(base, full):
            out.update(lever.apply(base, full[lever.key], full))
    return {k: _plain(v) for k, v in sorted(out.items()) if not _same(v, _get_dotted(dumped, k))}


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
    data = {k: _plain(v) for k, v in sorted(overrides.items())}
    return yaml.safe_dump(data, default_flow_style=True, width=10**6).strip()


def cli_command(source: str, overrides: Mapping[str, Any]) -> str:
    """The ``twin run`` command line that reproduces a run (``--set path=value`` per override)."""
    parts = ["twin", "run", shlex.quote(source)]
    for key, value in sorted(overrides.items()):
        text = _yaml_scalar(_plain(value))
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
