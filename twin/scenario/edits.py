"""Scenario edits: the what-ifs the CLI's ``--set``, sweeps and the dashboard share.

Each edit is a pure function ``Scenario -> Scenario``: it returns a validated copy and never
changes its argument. A value the edit cannot honour raises a
:class:`~twin.errors.ScenarioError` naming the scenario and the field. The dashboard's levers
(:mod:`twin.dashboard.levers`) only map widgets to these functions.

Edits
-----
:func:`resize_fleet`
    A new fleet shape; explicit pool sizes scale with the servers and each inference pool's
    request rate follows its servers, so the load per server stays the scenario's.
:func:`scale_request_rate`
    Every (or some) inference pool's request rate times a factor.
:func:`replace_arrivals`
    A pool's arrivals replaced by a trace or a Poisson stream at its current mean request rate.
:func:`serve_model`
    Another model on a pool, in that model's own precision.
:func:`change_accelerator`
    Another catalog accelerator; a calibrated ``accelerator_file`` is dropped (it would win).
:func:`add_fault`, :func:`clear_faults`
    One event appended to the scenario's own, or none at all.
:func:`set_battery`, :func:`set_generator`
    Add, resize or remove the UPS battery (:data:`DEFAULT_BATTERY_RUNTIME_S` when asked for
    without a size) and the standby generator (rated at the transformer stage).
:func:`set_field`
    Any one dotted field, with nothing following.

What follows a ``--set`` (the rules ``twin run``'s ``--set`` and sweeps apply after the sets, with
these edits) is in :mod:`twin.scenario.set_rules`; a scenario as plain data and the overrides
between two scenarios in :mod:`twin.scenario.values`.
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Callable, Collection, Mapping
from typing import Any, cast

from twin.errors import FieldProblem, ScenarioError
from twin.scenario.facility_schema import Fleet
from twin.scenario.faults import Generator
from twin.scenario.loader import validate_mapping
from twin.scenario.schema import PathError, Scenario, set_dotted
from twin.scenario.values import Data, same, spelt, value_at
from twin.scenario.workload_schema import BurstyArrivals, InferenceWorkload, PoissonArrivals, TraceArrivals

#: Battery added without a size: 5 min at the UPS rating (30 s - 5 min typical: EnerSys via
#: electricalreview.co.uk).
DEFAULT_BATTERY_RUNTIME_S = 300.0
#: Generator start delay when none is given: the schema's (NFPA 110 Type 10).
DEFAULT_GENERATOR_DELAY_S = float(Generator.model_fields["start_delay_s"].default)
#: ``replace_arrivals`` source for a Poisson stream (any other source is a trace).
POISSON = "poisson"


# ----------------------------------------------------------------------------- plumbing


def _problem(sc: Scenario, field: str, message: str) -> ScenarioError:
    return ScenarioError(sc.source_name, [FieldProblem(field, message)])


def _data(sc: Scenario) -> Data:
    """The scenario as the mapping it was given as (unset fields left out), to edit."""
    return sc.model_dump(mode="python", exclude_unset=True)


def _at(data: Data, sc: Scenario, path: str) -> Any:
    """The mapping (or list) at ``path`` in ``data``, spelling out defaults the data leaves out."""
    node: Any = data
    model: Any = sc
    for key in path.split("."):
        if isinstance(node, list):
            node, model = node[int(key)], model[int(key)]
            continue
        model = getattr(model, key)
        if node.get(key) is None:
            node[key] = spelt(model) if model is not None else {}
        node = node[key]
    return node


def _finish(sc: Scenario, data: Data) -> Scenario:
    """``data`` validated as a scenario from ``sc``'s file (errors name it and the field)."""
    data["source_dir"] = sc.source_dir
    data["source_file"] = sc.source_file
    out: Scenario = validate_mapping(data, sc.source_name)
    return out


def _edit(sc: Scenario, change: Callable[[Data], None]) -> Scenario:
    data = _data(sc)
    change(data)
    return _finish(sc, data)


def set_field(sc: Scenario, path: str, value: Any) -> Scenario:
    """``sc`` with the one field at dotted ``path`` set to ``value``; nothing follows.

    Raises
    ------
    ScenarioError
        A path that is no field, or a value the schema refuses, naming the field.
    """
    try:
        if same(value_at(sc, path, whole=False), value):
            return sc
    except (AttributeError, IndexError, ValueError, TypeError):
        pass  # no such field: said below
    data = _data(sc)
    parent, _, _ = path.rpartition(".")
    try:
        if parent:
            _at(data, sc, parent)
        set_dotted(data, path, copy.deepcopy(value))
    except (PathError, AttributeError, IndexError, ValueError) as exc:
        raise _problem(sc, path, f"no such field path in the scenario: {exc}") from None
    return _finish(sc, data)


# ----------------------------------------------------------------------------- fleet and request rates


def _counts(sizes: list[int | None], n_servers: int) -> list[int]:
    """Servers each pool of ``sizes`` gets in a fleet of ``n_servers`` (:func:`pool_servers`)."""
    explicit = sum(s or 0 for s in sizes)
    n_auto = sum(1 for s in sizes if s is None)
    rest = (n_servers - explicit) // max(n_auto, 1)
    return [s if s is not None else rest for s in sizes]


def pool_servers(sc: Scenario) -> list[int]:
    """Servers each workload gets: its ``servers``, else an equal share of the rest (as the facility builds)."""
    return _counts([w.servers for w in sc.workloads], sc.fleet.n_servers)


def scaled_pool_servers(sc: Scenario, n_servers: int, keep: Mapping[int, int | None] | None = None) -> list[int | None]:
    """Each workload's ``servers`` when the fleet has ``n_servers`` instead of ``sc``'s.

    Explicit pool sizes scale in proportion (rounded down, at least 1); ``None`` (the rest of the
    fleet) stays ``None``; the pools in ``keep`` (index -> servers) have the size given there.

    Raises
    ------
    ScenarioError
        When the pools cannot fit in ``n_servers`` even at one server each (naming ``fleet``).
    """
    factor = n_servers / sc.fleet.n_servers
    keep = keep or {}
    pools = [
        keep[i] if i in keep else None if w.servers is None else max(1, math.floor(w.servers * factor + 1e-9))
        for i, w in enumerate(sc.workloads)
    ]
    taken = sum(p or 0 for p in pools)
    if taken > n_servers:
        raise _problem(
            sc,
            "fleet",
            f"{n_servers} servers cannot hold {len(pools)} workloads ({taken} servers with the pools scaled to "
            "the fleet, at least 1 each)",
        )
    return pools


def _scale_rate(arrivals: Data, w: InferenceWorkload, factor: float) -> None:
    """Multiply the request rate of ``w``'s arrivals mapping by ``factor``."""
    arr = w.arrivals
    if arr.requests_per_s is not None:
        arrivals["requests_per_s"] = float(arr.requests_per_s * factor)
    else:  # a trace at rate_scale times its own rate
        assert isinstance(arr, TraceArrivals)
        arrivals["rate_scale"] = float((arr.rate_scale or 1.0) * factor)


def resize_fleet(
    sc: Scenario,
    *,
    rows: int | None = None,
    racks_per_row: int | None = None,
    servers_per_rack: int | None = None,
    keep: Mapping[int, int | None] | None = None,
) -> Scenario:
    """``sc`` with a new fleet shape, the workloads following the number of servers.

    Each pool with an explicit ``servers`` scales in proportion to the fleet's servers (rounded
    down, at least one; :func:`scaled_pool_servers`), and each inference pool's request rate
    follows its servers (pools of ``None`` servers included), so the load per server, hence the
    IT work per server, stays the scenario's. The pools in ``keep`` (index -> servers) get the
    size given there and keep their rate (what ``--set`` gives itself).

    Why: a fleet size is a what-if of capacity at the same demand per server; an explicit pool
    sized for the old fleet would otherwise not fit (smaller) or leave servers idle (larger).
    PDUs (per rack), PSUs (per server) and the cooling plant (on the nameplate heat, unless
    ``design_heat_w`` is set) follow the fleet by themselves; the site ratings (transformer, UPS)
    are left as they are, so a larger fleet may overload them, which ``twin validate`` reports.

    Raises
    ------
    ScenarioError
        A shape the schema refuses, or pools that cannot fit even at one server each.
    """
    given = {"rows": rows, "racks_per_row": racks_per_row, "servers_per_rack": servers_per_rack}
    shape = {k: v for k, v in given.items() if v is not None}
    try:
        fleet: Fleet = validate_mapping({**spelt(sc.fleet), **shape}, sc.source_name, model=Fleet)
    except ScenarioError as exc:
        raise ScenarioError(exc.source, [FieldProblem(f"fleet.{p.field}", p.message) for p in exc.problems]) from None
    if fleet.n_servers == sc.fleet.n_servers:
        return sc if fleet == sc.fleet else _edit(sc, lambda data: _at(data, sc, "fleet").update(shape))
    keep = keep or {}
    sizes = scaled_pool_servers(sc, fleet.n_servers, keep)
    counts = _counts(sizes, fleet.n_servers)

    def change(data: Data) -> None:
        _at(data, sc, "fleet").update(shape)
        for i, (w, old, new) in enumerate(zip(sc.workloads, pool_servers(sc), counts, strict=True)):
            if w.servers is not None or i in keep:
                _at(data, sc, f"workloads.{i}")["servers"] = sizes[i]
            if i not in keep and isinstance(w, InferenceWorkload) and old > 0 and new != old:
                _scale_rate(_at(data, sc, f"workloads.{i}.arrivals"), w, new / old)

    return _edit(sc, change)


def _inference_pools(sc: Scenario, pools: Collection[int] | None) -> list[int]:
    """Indices of the inference workloads among ``pools`` (None: all)."""
    return [i for i, w in enumerate(sc.workloads) if isinstance(w, InferenceWorkload) and (pools is None or i in pools)]


def scale_request_rate(sc: Scenario, factor: float, pools: Collection[int] | None = None) -> Scenario:
    """``sc`` with the request rate of the inference pools ``pools`` (None: all) times ``factor``.

    The rate is ``requests_per_s``, or a trace's ``rate_scale`` where the trace has no target
    rate. Training and telemetry workloads have no request rate and are left as they are.

    Raises
    ------
    ScenarioError
        A factor that is not a positive finite number (the rate would be refused).
    """
    if not (math.isfinite(factor) and factor > 0):
        raise _problem(sc, "workloads", f"a request-rate factor must be a positive finite number, got {factor!r}")
    if factor == 1.0:
        return sc

    def change(data: Data) -> None:
        for i in _inference_pools(sc, pools):
            _scale_rate(_at(data, sc, f"workloads.{i}.arrivals"), cast(InferenceWorkload, sc.workloads[i]), factor)

    return _edit(sc, change)


# ----------------------------------------------------------------------------- arrivals and models


@functools.lru_cache(maxsize=16)
def _trace_rate_per_s(path: str, fmt: str | None) -> float:
    """Mean request rate of a trace file as the engine loops it: requests / period [1/s]."""
    from twin.workload import read_trace, trace_period_s

    df, _meta = read_trace(path, fmt)
    return float(len(df) / trace_period_s(df))


def request_rate_per_s(sc: Scenario, i: int) -> float:
    """Mean request rate of inference workload ``i`` [1/s] (a trace's from its file where it sets none).

    Raises
    ------
    ScenarioError
        Workload ``i`` has no request rate, or its trace cannot be read.
    """
    w = sc.workloads[i]
    if not isinstance(w, InferenceWorkload):
        raise _problem(sc, f"workloads.{i}", f"a {w.kind} workload has no request rate")
    arr = w.arrivals
    if arr.requests_per_s is not None:
        return float(arr.requests_per_s)
    assert isinstance(arr, TraceArrivals)
    from twin.workload import resolve_trace

    try:
        rate = _trace_rate_per_s(str(resolve_trace(arr.path, sc.source_dir)), arr.format)
    except (OSError, ValueError) as exc:  # the engine reports the same trace with its line
        raise _problem(sc, f"workloads.{i}.arrivals.path", str(exc)) from None
    return (arr.rate_scale or 1.0) * rate / arr.time_scale


def arrivals_source(arrivals: Any) -> str | None:
    """What :func:`replace_arrivals` source ``arrivals`` already is: a trace's path, ``"poisson"``, or None."""
    if isinstance(arrivals, TraceArrivals):
        return arrivals.path
    if isinstance(arrivals, PoissonArrivals):
        return POISSON
    return None


def _lengths(arr: Any) -> Data:
    """Prompt and output lengths of a Poisson stream replacing ``arr``."""
    if isinstance(arr, TraceArrivals):
        return {"tokens_from": arr.path}  # resample the trace's own (prompt, output) pairs
    out: Data = {"prompt_tokens": float(arr.prompt_tokens), "output_tokens": float(arr.output_tokens)}
    if isinstance(arr, PoissonArrivals | BurstyArrivals) and arr.tokens_from is not None:
        out["tokens_from"] = arr.tokens_from
    return out


def replace_arrivals(sc: Scenario, source: str, pools: Collection[int] | None = None) -> Scenario:
    """``sc`` with the arrivals of inference pools ``pools`` (None: all) replaced by ``source``.

    ``source`` is ``"poisson"`` (a Poisson stream with the pool's mean prompt and output lengths,
    or resampling the trace it replaces) or a trace (a built-in name or a path: it brings its own
    lengths). Either runs at the pool's current mean request rate (:func:`request_rate_per_s`),
    so the demand stays the scenario's and only its shape changes; a diurnal shape is dropped (the
    trace is the shape). A pool that already has ``source`` is left as it is.

    Raises
    ------
    ScenarioError
        A trace that cannot be read, or arrivals the schema refuses.
    """
    arrivals = {i: cast(InferenceWorkload, sc.workloads[i]).arrivals for i in _inference_pools(sc, pools)}
    targets = [i for i, arr in arrivals.items() if arrivals_source(arr) != source]
    if not targets:
        return sc
    rates = {i: request_rate_per_s(sc, i) for i in targets}

    def change(data: Data) -> None:
        for i in targets:
            if source == POISSON:
                new: Data = {"kind": POISSON, "requests_per_s": rates[i], **_lengths(arrivals[i])}
            else:
                new = {"kind": "trace", "path": source, "requests_per_s": rates[i]}
            _at(data, sc, f"workloads.{i}")["arrivals"] = new

    return _edit(sc, change)


def serve_model(sc: Scenario, pool: int, model: str) -> Scenario:
    """``sc`` with workload ``pool`` serving ``model`` in the model's own precision, same layout.

    ``precision`` is reset because the scenario's was chosen for the model it replaces (an FP8
    checkpoint's precision on a BF16 model would misstate its bytes). A model whose weights do not
    fit the layout is refused when the facility is built, as ``twin run`` refuses it.

    Raises
    ------
    ScenarioError
        ``pool`` is not a workload with a model, or the model is unknown.
    """
    if not 0 <= pool < len(sc.workloads) or not hasattr(sc.workloads[pool], "model"):
        raise _problem(sc, f"workloads.{pool}", "no workload with a model there")
    if sc.workloads[pool].model == model:  # type: ignore[union-attr]
        return sc

    def change(data: Data) -> None:
        _at(data, sc, f"workloads.{pool}").update({"model": model, "precision": None})

    return _edit(sc, change)


def change_accelerator(sc: Scenario, name: str) -> Scenario:
    """``sc`` with catalog accelerator ``name``; a calibrated ``fleet.accelerator_file`` is dropped.

    The file, where there is one, wins over the name when the facility is built, so keeping it
    would run the old accelerator under the new name.

    Raises
    ------
    ScenarioError
        ``name`` is not in the catalog (the error lists the valid names).
    """
    if name == sc.fleet.accelerator and sc.fleet.accelerator_file is None:
        return sc

    def change(data: Data) -> None:
        fleet = _at(data, sc, "fleet")
        fleet["accelerator"] = name
        if sc.fleet.accelerator_file is not None and name != sc.fleet.accelerator:
            fleet["accelerator_file"] = None

    return _edit(sc, change)


# ----------------------------------------------------------------------------- faults and backup power


def add_fault(
    sc: Scenario,
    kind: str,
    time_s: float,
    *,
    duration_s: float | None = None,
    count: int | None = None,
    target: str | None = None,
    rack: int | None = None,
) -> Scenario:
    """``sc`` with one fault appended to its own events (``twin.scenario.faults.FaultEvent``).

    ``time_s`` is from the run's start (after its end: no fault happens); ``duration_s`` None is
    not repaired within the run; ``count``, ``target`` and ``rack`` as the event takes them (left
    out: the event's defaults). The scenario's backup power is left as it is (:func:`set_battery`,
    :func:`set_generator`).

    Raises
    ------
    ScenarioError
        An event the schema refuses (an unknown kind, a target the kind does not take), naming
        ``events.N``.
    """
    event: Data = {"time_s": float(time_s), "kind": kind}
    extra = {"target": target, "count": count, "rack": rack, "duration_s": duration_s}
    event |= {k: v for k, v in extra.items() if v is not None}
    return _edit(sc, lambda data: data.update(events=[*data.get("events", []), event]))


def clear_faults(sc: Scenario) -> Scenario:
    """``sc`` without scheduled faults (``events: []``; random ``reliability`` faults stay)."""
    return sc if not sc.events else _edit(sc, lambda data: data.update(events=[]))


def site_rating_w(sc: Scenario) -> float:
    """The site's supply: the transformer stage's ``rated_w`` x ``count`` [W]."""
    tr = sc.power.transformer
    return float(tr.rated_w * tr.count)


def battery_runtime_s(sc: Scenario) -> float | None:
    """The UPS battery's runtime at the UPS rating [s] (None: no battery).

    A battery given as ``energy_j`` runs ``eta_d E (1 - SoC_min) / P`` at the rated output ``P``
    of the modules carrying the load (the inverse of
    :func:`twin.physics.power.battery_capacity_for_runtime_j`).
    """
    ups = sc.power.ups
    bat = ups.battery
    if bat is None:
        return None
    if bat.runtime_s is not None:
        return float(bat.runtime_s)
    rated_w = ups.rated_w * ups.units_needed_for_load
    return float(bat.energy_j or 0.0) * bat.discharge_efficiency * (1.0 - bat.min_soc) / rated_w


def set_battery(sc: Scenario, runtime_s: float | None = DEFAULT_BATTERY_RUNTIME_S) -> Scenario:
    """``sc`` with a UPS battery of ``runtime_s`` at the UPS rating (None: no battery).

    A scenario without a battery gets one with the schema's defaults (state of charge, cut-off,
    efficiencies); one sized by ``runtime_s`` keeps everything but the runtime; one sized by
    ``energy_j`` is re-sized by runtime, keeping its other fields (unchanged when the runtime is
    the one it has). Why: the dashboard and ``--set power.ups.battery.runtime_s`` give the same
    battery.

    Raises
    ------
    ScenarioError
        A runtime the schema refuses (not > 0).
    """
    bat = sc.power.ups.battery
    if runtime_s is None:
        return sc if bat is None else set_field(sc, "power.ups.battery", None)
    runtime_s = float(runtime_s)
    if bat is None or bat.runtime_s is not None:
        return set_field(sc, "power.ups.battery.runtime_s", runtime_s)
    if same(runtime_s, battery_runtime_s(sc)):
        return sc
    spec = bat.model_dump(mode="python", exclude_none=True)
    spec.pop("energy_j")
    return set_field(sc, "power.ups.battery", {**spec, "runtime_s": runtime_s})


def set_generator(sc: Scenario, start_delay_s: float | None = DEFAULT_GENERATOR_DELAY_S) -> Scenario:
    """``sc`` with a standby generator picking up the load ``start_delay_s`` after an outage (None: none).

    A scenario without a generator gets one rated at the site's supply (:func:`site_rating_w`),
    so it carries whatever the transformer did; an existing one keeps its rating.

    Raises
    ------
    ScenarioError
        A delay the schema refuses (negative).
    """
    gen = sc.power.generator
    if start_delay_s is None:
        return sc if gen is None else set_field(sc, "power.generator", None)
    if gen is not None:
        return set_field(sc, "power.generator.start_delay_s", float(start_delay_s))
    return set_field(sc, "power.generator", {"rated_w": site_rating_w(sc), "start_delay_s": float(start_delay_s)})


__all__ = [
    "DEFAULT_BATTERY_RUNTIME_S",
    "DEFAULT_GENERATOR_DELAY_S",
    "POISSON",
    "add_fault",
    "arrivals_source",
    "battery_runtime_s",
    "change_accelerator",
    "clear_faults",
    "pool_servers",
    "replace_arrivals",
    "request_rate_per_s",
    "resize_fleet",
    "scale_request_rate",
    "scaled_pool_servers",
    "serve_model",
    "set_battery",
    "set_field",
    "set_generator",
    "site_rating_w",
]
