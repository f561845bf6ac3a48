"""What-if levers: widget values turned into scenario overrides (dotted path → value).

This module is the dashboard's logic and imports no Streamlit, so it is unit-tested directly.
Every lever reads its baseline value from a :class:`~twin.scenario.Scenario` and turns a chosen
value into overrides for :func:`twin.load_scenario`. :func:`what_if_overrides` applies all of
them and keeps only what differs from the baseline, so the overrides dict is both the cache key
of a run and the ``--set`` flags that reproduce it with ``twin run``.

To add a lever (a workload trace, a fault), append a :class:`Lever` to :data:`LEVERS`: its
``read`` gives the baseline value, its ``apply`` the overrides; the app draws its widget from
``kind`` and the limits.

Fleet size and request rate interact: changing ``fleet.rows`` or ``fleet.racks_per_row`` scales
each workload's ``servers`` in proportion, and each inference workload's request rate follows its
servers, so the load per server stays that of the baseline; ``rate_scale`` multiplies it on top.
"""

from __future__ import annotations

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


def _rate_apply(base: Scenario, value: Any, values: Values) -> dict[str, Any]:
    n_servers = _n_servers(base, values)
    pools = scaled_pool_servers(base, n_servers)
    out: dict[str, Any] = {}
    for i, w in enumerate(base.workloads):
        if w.kind != "inference":
            continue
        ratio = _pool_ratio(base, i, pools, n_servers)
        out[f"workloads.{i}.arrivals.requests_per_s"] = float(w.arrivals.requests_per_s * float(value) * ratio)
    return out


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


def _synthetic_weather(path: str) -> Callable[[Scenario, Any, Values], dict[str, Any]]:
    def apply(base: Scenario, value: Any, values: Values) -> dict[str, Any]:
        if values.get("weather_source", base.weather.source) not in SYNTHETIC_WEATHER:
            return {}
        return {path: float(value)}

    return apply


def _start_apply(base: Scenario, value: Any, values: Values) -> dict[str, Any]:
    day = value.date() if isinstance(value, datetime) else value
    return {"start": datetime.combine(day, base.start.time()).isoformat()}


#: Groups in the order the app draws them.
GROUPS: tuple[str, ...] = ("Fleet", "Cooling", "Climate", "Workload")

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
    current = lever.read(base)
    return lever.options if current in lever.options else (*lever.options, current)
