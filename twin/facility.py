"""A scenario turned into arrays: topology index maps, per-level parameters, serving pools.

The fleet is regular (rows x racks x servers x GPUs), so servers are numbered rack by rack and
``rack_of_server = arange(n_servers) // servers_per_rack``. State is per server: the GPUs of one
server share its workload and coolant, so they are simulated as one group with a count
(``gpus_up``), as ARCHITECTURE.md allows for identical devices under identical load.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from twin import catalog
from twin._types import FloatArray, IntArray
from twin.catalog import AcceleratorSpec, LossCurve
from twin.catalog.architecture import BYTES_PER_VALUE, Architecture, ArchitectureError, load_architecture
from twin.errors import FieldProblem, ScenarioError, UnknownNameError
from twin.physics.interconnect import pipeline_bubble_fraction
from twin.physics.power import quadratic_loss_w, tabulated_loss_w
from twin.physics.serving import StepCosts
from twin.replica import GPU_MEMORY_UTILIZATION, Layout, kv_free_bytes, step_costs, weight_bytes_per_gpu
from twin.scenario.faults import check_fault_references
from twin.scenario.loader import read_yaml
from twin.scenario.schema import InferenceWorkload, Scenario, Stage, TelemetryWorkload, TrainingWorkload


@dataclass(frozen=True)
class StageModel:
    """A conversion stage with its loss curve resolved."""

    name: str
    rated_w: float
    count: int
    curve: LossCurve
    redundancy: str

    def loss_w(self, load_w: FloatArray, units_up: FloatArray | float | None = None) -> FloatArray:
        """Total loss of the units at this level carrying ``load_w`` (shared equally)."""
        units = float(self.count) if units_up is None else units_up
        units_arr = np.maximum(np.asarray(units, dtype=np.float64), 1e-12)
        per_unit = load_w / units_arr
        if self.curve.kind == "table":
            loss = tabulated_loss_w(per_unit, self.rated_w, self.curve.load_fraction, self.curve.efficiency)
        else:
            loss = quadratic_loss_w(per_unit, self.rated_w, self.curve.a, self.curve.b, self.curve.c)
        return np.asarray(loss * np.asarray(units, dtype=np.float64))


@dataclass(frozen=True)
class Pool:
    """Servers running one workload, with the constants its serving model needs.

    A serving pool's unit is one attention rank (:class:`twin.replica.Layout`): ``tp`` GPUs,
    ``ranks_per_server`` of them per server (fractional when a rank spans servers), each holding
    ``max_batch`` sequences and a ``token_budget`` per step, at the per-GPU ``costs``.
    """

    index: int
    name: str
    kind: str
    model: Architecture | None
    servers: IntArray
    layout: Layout = field(default_factory=Layout)
    ranks_per_server: float = 0.0
    max_batch: float = 0.0
    token_budget: float = 0.0
    costs: StepCosts | None = field(default=None, repr=False)
    weight_format: str = "bf16"
    weight_bytes_per_gpu: float = 0.0
    kv_free_bytes: float = 0.0
    kv_bytes_per_value: float = 2.0
    peak_flop_s_per_gpu: float = 0.0
    mfu: float = 0.0
    mem_activity: float = 0.0
    bubble: float = 0.0
    spec: InferenceWorkload | TrainingWorkload | TelemetryWorkload | None = field(default=None, repr=False)

    @property
    def n_servers(self) -> int:
        """Servers in the pool."""
        return int(self.servers.size)

    @property
    def gpus_per_replica(self) -> int:
        """GPUs of one replica (all its attention ranks)."""
        return self.layout.gpus

    @property
    def is_moe(self) -> bool:
        """True for a mixture-of-experts model."""
        return self.model is not None and self.model.is_moe


@dataclass(frozen=True)
class Facility:
    """Topology and parameters of one scenario as arrays."""

    scenario: Scenario
    accelerator: AcceleratorSpec
    n_servers: int
    n_racks: int
    gpus_per_server: int
    servers_per_rack: int
    rack_of_server: IntArray
    pool_of_server: IntArray
    pools: tuple[Pool, ...]
    stages: dict[str, StageModel]
    liquid_cooled: bool

    @property
    def n_gpus(self) -> int:
        """Accelerators in the fleet."""
        return self.n_servers * self.gpus_per_server

    @property
    def nameplate_it_power_w(self) -> float:
        """IT power with every GPU at TDP and every host at its maximum. [W]"""
        server = self.gpus_per_server * self.accelerator.max_power_w + self.scenario.fleet.server.other_max_power_w
        return self.n_servers * server

    def nameplate_losses_w(self) -> float:
        """PSU, PDU and UPS losses with the IT at nameplate: heat the air side must also carry. [W]"""
        server_w = self.nameplate_it_power_w / self.n_servers
        psu = float(self.stages["psu"].loss_w(np.array(server_w)))
        rack_w = (server_w + psu) * self.servers_per_rack
        pdu = float(self.stages["pdu"].loss_w(np.array(rack_w)))
        ups = float(self.stages["ups"].loss_w(np.array((rack_w + pdu) * self.n_racks)))
        return psu * self.n_servers + pdu * self.n_racks + ups

    @property
    def thermal_resistance_k_w(self) -> float:
        """Die-to-inlet thermal resistance for the cooling type. [K/W]"""
        acc = self.accelerator
        return acc.thermal_resistance_liquid_k_w if self.liquid_cooled else acc.thermal_resistance_air_k_w

    def rack_sum(self, per_server: FloatArray) -> FloatArray:
        """Sum a ``(..., n_servers)`` array over the servers of each rack."""
        shape = (*per_server.shape[:-1], self.n_racks, self.servers_per_rack)
        return np.asarray(per_server.reshape(shape).sum(axis=-1))


def build_facility(scenario: Scenario) -> Facility:
    """Resolve catalog names and lay out the fleet; raises :class:`ScenarioError` on bad inputs."""
    fleet = scenario.fleet
    acc = _accelerator(scenario)
    n_servers = fleet.n_servers
    problems = check_fault_references(scenario.events, [w.name for w in scenario.workloads], fleet.n_racks)
    if problems:
        raise ScenarioError(scenario.source_name, problems)
    try:
        pools, pool_of_server = _pools(scenario, acc)
    except ScenarioError as exc:  # a workload the twin cannot build (see _invalid): name the scenario file
        if exc.source != _WORKLOAD_SOURCE:
            raise
        raise ScenarioError(scenario.source_name, exc.problems) from None
    stages = {
        name: StageModel(name, s.rated_w, s.count, catalog.loss_curve(s.curve), s.redundancy)
        for name, s in _stages(scenario).items()
    }
    liquid = scenario.cooling.type != "air"
    return Facility(
        scenario=scenario,
        accelerator=acc,
        n_servers=n_servers,
        n_racks=fleet.n_racks,
        gpus_per_server=fleet.gpus_per_server,
        servers_per_rack=fleet.servers_per_rack,
        rack_of_server=np.arange(n_servers, dtype=np.int64) // fleet.servers_per_rack,
        pool_of_server=pool_of_server,
        pools=tuple(pools),
        stages=stages,
        liquid_cooled=liquid,
    )


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
    if fleet.accelerator_overrides:
        try:
            acc = acc.with_overrides(**fleet.accelerator_overrides)
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


def _pool(
    index: int,
    w: InferenceWorkload | TrainingWorkload | TelemetryWorkload,
    servers: IntArray,
    gpus_per_server: int,
    acc: AcceleratorSpec,
    source_dir: Path | None,
) -> Pool:
    if isinstance(w, TelemetryWorkload):  # replayed activity: no model, no tokens (twin.engine.sources)
        return Pool(index=index, name=w.name, kind=w.kind, model=None, servers=servers, spec=w)
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
            spec=w,
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
        spec=w,
    )
