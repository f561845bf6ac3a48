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
import yaml

from twin import catalog
from twin._types import FloatArray, IntArray
from twin.catalog import AcceleratorSpec, LossCurve, ModelSpec
from twin.errors import FieldProblem, ScenarioError
from twin.physics.power import quadratic_loss_w, tabulated_loss_w
from twin.scenario.faults import check_fault_references
from twin.scenario.schema import InferenceWorkload, Scenario, Stage, TelemetryWorkload, TrainingWorkload

#: Bytes per weight and per KV value by precision. BF16 is 2 bytes, FP8 1 byte (IEEE/OCP formats).
BYTES_PER_VALUE = {"bf16": 2.0, "fp8": 1.0}


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
    """Servers running one workload, with the constants its serving model needs."""

    index: int
    name: str
    kind: str
    model: ModelSpec | None
    servers: IntArray
    gpus_per_replica: int
    max_batch: float
    weight_bytes: float
    dense_weight_bytes: float
    expert_weight_bytes: float
    kv_bytes_per_token: float
    flops_per_token: float
    replica_bandwidth_b_s: float
    replica_flop_s: float
    peak_flop_s_per_gpu: float
    mfu: float = 0.0
    mem_activity: float = 0.0
    spec: InferenceWorkload | TrainingWorkload | TelemetryWorkload | None = field(default=None, repr=False)

    @property
    def n_servers(self) -> int:
        """Servers in the pool."""
        return int(self.servers.size)

    @property
    def is_moe(self) -> bool:
        """True for a mixture-of-experts model."""
        return self.expert_weight_bytes > 0


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
        raise ScenarioError("scenario", problems)
    pools, pool_of_server = _pools(scenario, acc)
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
        values = yaml.safe_load(path.read_text()) or {}
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
            raise ScenarioError("scenario", [FieldProblem("fleet.accelerator_overrides", str(exc))]) from None
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
        pools.append(_pool(i, w, servers, fleet.gpus_per_server, acc))
    return pools, pool_of_server


def _pool(
    index: int,
    w: InferenceWorkload | TrainingWorkload | TelemetryWorkload,
    servers: IntArray,
    gpus_per_server: int,
    acc: AcceleratorSpec,
) -> Pool:
    if isinstance(w, TelemetryWorkload):
        # Replayed activity: no model, no tokens (twin.engine.sources).
        zero = dict.fromkeys(
            ("weight_bytes", "dense_weight_bytes", "expert_weight_bytes", "kv_bytes_per_token", "flops_per_token"),
            0.0,
        )
        return Pool(
            index=index,
            name=w.name,
            kind=w.kind,
            model=None,
            servers=servers,
            gpus_per_replica=1,
            max_batch=0.0,
            replica_bandwidth_b_s=0.0,
            replica_flop_s=0.0,
            peak_flop_s_per_gpu=0.0,
            spec=w,
            **zero,
        )
    model = catalog.model_spec(w.model)
    b_w = BYTES_PER_VALUE[w.precision]
    peak = acc.fp8_flop_s if w.precision == "fp8" else acc.bf16_flop_s
    expert = model.expert_params * b_w
    weight = model.params * b_w
    if isinstance(w, InferenceWorkload):
        tp = w.tensor_parallel
        if gpus_per_server % tp and tp % gpus_per_server:
            raise ScenarioError(
                "scenario",
                [
                    FieldProblem(
                        f"workloads.{index}.tensor_parallel",
                        f"must divide or be a multiple of gpus_per_server ({gpus_per_server}), got {tp}",
                    )
                ],
            )
        max_batch = float(w.max_batch)
        mfu = mem = 0.0
    else:
        tp, max_batch, mfu, mem = 1, 0.0, w.mfu, w.mem_activity
    return Pool(
        index=index,
        name=w.name,
        kind=w.kind,
        model=model,
        servers=servers,
        gpus_per_replica=tp,
        max_batch=max_batch,
        weight_bytes=weight,
        dense_weight_bytes=weight - expert,
        expert_weight_bytes=expert,
        kv_bytes_per_token=model.kv_bytes_per_token(b_w),
        flops_per_token=2.0 * model.active_params,
        replica_bandwidth_b_s=tp * acc.achieved_bandwidth_fraction * acc.hbm_bandwidth_b_s,
        replica_flop_s=tp * acc.achieved_flop_fraction * peak,
        peak_flop_s_per_gpu=peak,
        mfu=mfu,
        mem_activity=mem,
        spec=w,
    )
