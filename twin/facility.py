"""``build_facility(scenario)``: compile a scenario into the immutable :class:`Facility` the engine runs.

Everything the engine reads is compiled here (:mod:`twin.facility_parts`): the fleet as arrays,
the power chain's stages, the pools and what drives them (traces are read here), the cooling
plant's parameters, the weather over the run, backup power, controls and the fault schedule. So
anything a run would refuse is refused by building, and ``twin validate`` is build plus checks.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from twin import catalog
from twin._types import IntArray
from twin.catalog import AcceleratorSpec
from twin.catalog.architecture import BYTES_PER_VALUE, ArchitectureError, load_architecture
from twin.errors import FieldProblem, ScenarioError, UnknownNameError
from twin.facility_inputs import compile_controls, compile_cooling, compile_faults, compile_supply, load_weather
from twin.facility_parts.fleet import Disaggregation, Facility, Pool, RunTimes, ServerPower, StageModel, nameplate_w
from twin.facility_traces import InputError, checkpoints, job_load, replay_signal, request_spec
from twin.physics.interconnect import pipeline_bubble_fraction
from twin.replica import GPU_MEMORY_UTILIZATION, Layout, kv_free_bytes, step_costs, weight_bytes_per_gpu
from twin.scenario.facility_schema import PlantCooling, Stage
from twin.scenario.faults import check_chillerless_faults, check_fault_references
from twin.scenario.loader import read_yaml
from twin.scenario.schema import Scenario
from twin.scenario.workload_schema import InferenceWorkload, TelemetryWorkload, TrainingWorkload

__all__ = ["Facility", "Pool", "StageModel", "build_facility"]


def build_facility(scenario: Scenario) -> Facility:
    """Compile ``scenario`` into the immutable facility the engine runs.

    Resolves catalog names, lays out the fleet, reads the traces and the weather file, sizes the
    plant, the battery and the fault schedule. Raises :class:`ScenarioError` (naming the file and
    field) on anything a run would refuse, so ``twin validate`` refuses it too.
    """
    fleet = scenario.fleet
    acc = _accelerator(scenario)
    n_servers = fleet.n_servers
    problems = check_fault_references(scenario.events, [w.name for w in scenario.workloads], fleet.n_racks)
    if isinstance(scenario.cooling, PlantCooling) and scenario.cooling.n_chillers == 0:
        problems += check_chillerless_faults(scenario.events, scenario.reliability)
    if problems:
        raise ScenarioError(scenario.source_name, problems)
    try:
        pools, pool_of_server = _pools(scenario, acc)
    except ScenarioError as exc:  # a workload the twin cannot build (see _invalid): name the scenario file
        if exc.source != _WORKLOAD_SOURCE:
            raise
        raise ScenarioError(scenario.source_name, exc.problems) from None
    stages = {
        name: StageModel(name, s.rated_w, s.count, catalog.loss_curve(s.curve), s.redundancy, s.units_needed_for_load)
        for name, s in _stages(scenario).items()
    }
    errors = InputError(scenario)
    pools = [_sources(p, w, scenario, acc, errors) for p, w in zip(pools, scenario.workloads, strict=True)]
    s = fleet.server
    server = ServerPower(s.other_idle_power_w, s.other_max_power_w, s.boot_s)
    weather = load_weather(scenario.weather, scenario.start, scenario.source_dir, scenario.duration_s)
    # The plant is sized on the nameplate IT power and the losses it causes.
    it_w, losses_w = nameplate_w(acc, server, fleet.gpus_per_server, stages, fleet.servers_per_rack, fleet.n_racks)
    cooling = compile_cooling(scenario.cooling, it_w, losses_w, fleet.n_racks, n_servers, scenario.source_name)
    return Facility(
        run=RunTimes(scenario.seed, scenario.start, scenario.duration_s, scenario.step_s, scenario.report_interval_s),
        accelerator=acc,
        n_servers=n_servers,
        n_racks=fleet.n_racks,
        gpus_per_server=fleet.gpus_per_server,
        servers_per_rack=fleet.servers_per_rack,
        rack_of_server=np.arange(n_servers, dtype=np.int64) // fleet.servers_per_rack,
        pool_of_server=pool_of_server,
        pools=tuple(pools),
        stages=stages,
        liquid_cooled=scenario.cooling.type != "air",
        server=server,
        power_cap_w=fleet.power_cap_w,
        other_facility_power_w=scenario.site.other_facility_power_w,
        cooling=cooling,
        weather=weather,
        supply=compile_supply(scenario.power),
        controls=compile_controls(scenario.controls),
        faults=compile_faults(scenario.events, scenario.reliability, [w.name for w in scenario.workloads]),
    )


def _sources(pool: Pool, w: InferenceWorkload | TrainingWorkload | TelemetryWorkload, sc: Scenario,
             acc: AcceleratorSpec, errors: InputError) -> Pool:  # fmt: skip
    """The pool with what drives it: its requests, replayed signal, job trace and checkpoints."""
    i = pool.index
    if isinstance(w, InferenceWorkload):
        return replace(pool, requests=request_spec(w.arrivals, i, pool.n_servers, sc.duration_s, errors))
    if isinstance(w, TelemetryWorkload):
        return replace(pool, replay=replay_signal(w, i, acc, errors))
    capacity = float(pool.n_servers * sc.fleet.gpus_per_server)
    return replace(pool, jobs=job_load(w, i, capacity, errors), checkpoints=checkpoints(w))


def _stages(scenario: Scenario) -> dict[str, Stage]:
    p = scenario.power
    return {"transformer": p.transformer, "ups": p.ups, "pdu": p.pdu, "psu": p.psu}


def _accelerator(scenario: Scenario) -> AcceleratorSpec:
    fleet = scenario.fleet
    if fleet.accelerator_file is not None:
        path = Path(fleet.accelerator_file)
        if not path.is_absolute() and scenario.source_dir is not None:
            path = scenario.source_dir / path
        if not path.exists():
            raise ScenarioError(str(path), [FieldProblem("fleet.accelerator_file", "no such file")])
        if path.is_dir():
            raise ScenarioError(str(path), [FieldProblem("fleet.accelerator_file", "a folder; expected a YAML file")])
        values, _ = read_yaml(path)  # UTF-8, size, depth and alias limits, as for a scenario
        if not isinstance(values, dict):
            raise ScenarioError(
                str(path), [FieldProblem("fleet.accelerator_file", "expected a mapping of accelerator parameters")]
            )
        name = str(values.pop("name", path.stem))
        numeric = {k: v for k, v in values.items() if isinstance(v, int | float) and not isinstance(v, bool)}
        try:
            acc = catalog.accelerator_from_mapping(name, numeric, str(path))
        except Exception as exc:
            raise ScenarioError(str(path), [FieldProblem("fleet.accelerator_file", str(exc))]) from None
    else:
        acc = catalog.accelerator_spec(fleet.accelerator)
    overrides = fleet.accelerator_overrides.given()
    if overrides:
        try:
            acc = acc.with_overrides(**overrides)
        except Exception as exc:
            raise ScenarioError(scenario.source_name, [FieldProblem("fleet.accelerator_overrides", str(exc))]) from None
    return acc


def _pools(scenario: Scenario, acc: AcceleratorSpec) -> tuple[list[Pool], IntArray]:
    fleet = scenario.fleet
    n_servers = fleet.n_servers
    pool_of_server = np.full(n_servers, -1, dtype=np.int64)
    explicit = sum(w.servers or 0 for w in scenario.workloads)
    n_auto = sum(1 for w in scenario.workloads if w.servers is None)
    left = n_servers - explicit
    pools = []
    first = 0
    for i, w in enumerate(scenario.workloads):
        count = w.servers if w.servers is not None else left // max(n_auto, 1)
        servers = np.arange(first, first + count, dtype=np.int64)
        pool_of_server[servers] = i
        first += count
        pools.append(_pool(i, w, servers, fleet.gpus_per_server, acc, scenario.source_dir))
    return pools, pool_of_server


#: Source of :func:`_invalid`'s errors until :func:`build_facility` names the scenario file.
_WORKLOAD_SOURCE = "(workload)"


def _invalid(field_path: str, message: str) -> ScenarioError:
    """A scenario error for one field of a workload the twin cannot build."""
    return ScenarioError(_WORKLOAD_SOURCE, [FieldProblem(field_path, message)])


def _disaggregation(
    index: int, w: InferenceWorkload, n_servers: int, gpus_per_server: int, gpus_per_replica: int
) -> Disaggregation | None:
    """The pool's prefill/decode split (:class:`~twin.facility_parts.fleet.Disaggregation`), or None when mixed.

    Each role gets whole servers, at least one replica's GPUs and, when a replica spans servers,
    whole replicas.
    """
    d = w.disaggregation
    if d is None:
        return None
    n_p = round(d.prefill_fraction_of_servers * n_servers)
    per_replica = max(gpus_per_replica // gpus_per_server, 1)  # servers a replica spans
    for role, count in (("prefill", n_p), ("decode", n_servers - n_p)):
        if count < per_replica or count % per_replica:
            raise _invalid(
                f"workloads.{index}.disaggregation.prefill_fraction_of_servers",
                f"{d.prefill_fraction_of_servers:g} of {n_servers} servers gives the {role} role {count} servers; "
                f"each role needs whole replicas of {per_replica} server(s), at least one",
            )
    return Disaggregation(n_p, d.network_bandwidth_b_s, d.network_latency_s, d.network_energy_pj_per_bit * 1e-12)


def _pool(
    index: int,
    w: InferenceWorkload | TrainingWorkload | TelemetryWorkload,
    servers: IntArray,
    gpus_per_server: int,
    acc: AcceleratorSpec,
    source_dir: Path | None,
) -> Pool:
    if isinstance(w, TelemetryWorkload):  # replayed activity: no model, no tokens (twin.engine.sources)
        return Pool(index=index, name=w.name, kind=w.kind, model=None, servers=servers)
    field_path = f"workloads.{index}.model"
    try:
        model = load_architecture(w.model, source_dir)
    except (ArchitectureError, UnknownNameError) as exc:
        raise _invalid(field_path, str(exc)) from None
    fmt = w.precision or model.weight_format
    peak = acc.fp8_flop_s if fmt == "fp8" else acc.bf16_flop_s
    if isinstance(w, InferenceWorkload):
        layout = Layout(w.tensor_parallel, w.expert_parallel, w.data_parallel)
        gpus = layout.gpus
        if gpus_per_server % gpus and gpus % gpus_per_server:
            raise _invalid(
                f"workloads.{index}.tensor_parallel",
                f"a replica's GPUs (tensor_parallel x data_parallel = {gpus}) must divide or be a multiple "
                f"of gpus_per_server ({gpus_per_server})",
            )
        if gpus > servers.size * gpus_per_server:  # no replica fits: the pool would serve nothing
            raise _invalid(
                f"workloads.{index}.tensor_parallel",
                f"a replica needs {gpus} GPUs (tensor_parallel x data_parallel), but the workload has "
                f"{servers.size} servers of {gpus_per_server} = {servers.size * gpus_per_server} GPUs",
            )
        kv_b = BYTES_PER_VALUE[w.kv_precision]
        weights = weight_bytes_per_gpu(model, layout, w.precision)
        free = kv_free_bytes(model, layout, acc, w.precision)
        if free <= 0.0:  # nothing to serve with: a run would report a pool that never decodes
            raise _invalid(
                f"workloads.{index}.tensor_parallel",
                f"{model.name} ({fmt}) needs {weights / 1e9:.0f} GB of weights per GPU with "
                f"{layout.describe()}, more than the {GPU_MEMORY_UTILIZATION * acc.hbm_bytes / 1e9:.0f} GB vLLM "
                f"gives a model on {acc.name} ({GPU_MEMORY_UTILIZATION:g} of HBM), leaving no room for a KV cache; "
                "raise tensor_parallel (or serve an FP8 checkpoint)",
            )
        return Pool(
            disaggregation=_disaggregation(index, w, servers.size, gpus_per_server, gpus),
            index=index,
            name=w.name,
            kind=w.kind,
            model=model,
            servers=servers,
            layout=layout,
            ranks_per_server=gpus_per_server / layout.tensor_parallel,
            max_batch=w.max_batch / layout.data_parallel,
            token_budget=float(w.max_batched_tokens),
            costs=step_costs(model, layout, acc, w.precision, kv_b),
            weight_format=fmt,
            weight_bytes_per_gpu=weights,
            kv_free_bytes=free,
            kv_bytes_per_value=kv_b,
            peak_flop_s_per_gpu=peak,
            precision=w.precision,
        )
    stages_max = min(model.n_layers, servers.size * gpus_per_server)
    if w.pipeline_parallel > stages_max:  # a stage holds at least one layer on at least one GPU
        raise _invalid(
            f"workloads.{index}.pipeline_parallel",
            f"{w.pipeline_parallel} stages, but {model.name} has {model.n_layers} layers and the workload "
            f"{servers.size * gpus_per_server} GPUs: at most {stages_max}",
        )
    return Pool(
        index=index,
        name=w.name,
        kind=w.kind,
        model=model,
        servers=servers,
        weight_format=fmt,
        peak_flop_s_per_gpu=peak,
        mfu=w.mfu,
        mem_activity=w.mem_activity,
        bubble=float(pipeline_bubble_fraction(w.pipeline_parallel, w.microbatches)),
        precision=w.precision,
    )
