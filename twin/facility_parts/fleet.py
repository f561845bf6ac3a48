"""A scenario turned into arrays: topology index maps, per-level parameters, serving pools.

The fleet is regular (rows x racks x servers x GPUs), so servers are numbered rack by rack and
``rack_of_server = arange(n_servers) // servers_per_rack``. State is per server: the GPUs of one
server share its workload and coolant, so they are simulated as one group with a count
(``gpus_up``), as ARCHITECTURE.md allows for identical devices under identical load.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from twin._types import FloatArray, IntArray
from twin.catalog import AcceleratorSpec, LossCurve
from twin.catalog.architecture import Architecture
from twin.facility_parts.plant import CoolingSpec
from twin.facility_parts.power import ControlSpec, FaultSchedule, SupplySpec
from twin.facility_parts.sources import Checkpoints, JobLoad, ReplaySignal, RequestSpec
from twin.facility_parts.weather import WeatherBoundary
from twin.physics.power import quadratic_loss_w, tabulated_loss_w
from twin.physics.step_costs import StepCosts
from twin.replica import Layout


@dataclass(frozen=True)
class RunTimes:
    """The run's seed and clock: start (local time), duration, physics tick and report interval. [s]"""

    seed: int
    start: datetime
    duration_s: float
    step_s: float
    report_interval_s: float


@dataclass(frozen=True)
class ServerPower:
    """Non-accelerator power of one server and its boot time. [W], [s]"""

    other_idle_power_w: float
    other_max_power_w: float
    boot_s: float


@dataclass(frozen=True)
class StageModel:
    """A conversion stage with its loss curve resolved."""

    name: str
    rated_w: float
    count: int
    curve: LossCurve
    redundancy: str
    #: Units that must be up to carry the load (2N: half, N+1: all but one).
    units_needed: int

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
class Disaggregation:
    """Prefill/decode disaggregation of a serving pool (Splitwise [1]_, DistServe [2]_).

    Decision: one pool, two roles by server. The pool's first ``prefill_servers`` servers run
    prefill-only steps (compute-bound: their power follows the FLOPs), the others decode-only
    steps (memory-bound, with no prompt chunk in their steps, so their step time, the TPOT, does
    not jump when prompts arrive). Both roles keep the pool's layout, batch and token budget. A
    prompt's KV cache (every attention layer's, per GPU as the layout holds it) crosses the
    scale-out network from each prefill GPU to its decode peer, at ``bandwidth_b_s`` per GPU
    after ``latency_s`` (:func:`twin.physics.interconnect.kv_transfer_time_s`; added to TTFT),
    spending ``energy_j_per_bit`` (:func:`twin.physics.interconnect.kv_transfer_energy_j`),
    booked as the prefill server's ``server_other`` power (the NICs are there; the energy goes
    up the power chain like the rest of the IT load, so the ledger balances as before).

    References
    ----------
    .. [1] P. Patel et al., "Splitwise: Efficient Generative LLM Inference Using Phase
       Splitting", ISCA 2024.
    .. [2] Y. Zhong et al., "DistServe: Disaggregating Prefill and Decoding for Goodput-optimized
       Large Language Model Serving", OSDI 2024.
    """

    prefill_servers: int
    bandwidth_b_s: float
    latency_s: float
    energy_j_per_bit: float


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
    precision: str | None = None
    requests: RequestSpec | None = None
    replay: ReplaySignal | None = None
    jobs: JobLoad | None = None
    checkpoints: Checkpoints | None = None
    disaggregation: Disaggregation | None = None

    @property
    def n_servers(self) -> int:
        """Servers in the pool."""
        return int(self.servers.size)

    @property
    def prefill_role(self) -> FloatArray:
        """Per server of the pool, 1 where it prefills only (a disaggregated pool's first servers), else 0."""
        role = np.zeros(self.n_servers)
        if self.disaggregation is not None:
            role[: self.disaggregation.prefill_servers] = 1.0
        return role

    def role_ranks(self) -> tuple[int, int]:
        """Attention ranks that prefill and that decode (a mixed pool: all of them both)."""
        if self.disaggregation is None:
            return self.n_ranks, self.n_ranks
        n_p = self.disaggregation.prefill_servers
        per = self.ranks_per_server
        return max(round(n_p * per), 1), max(round((self.n_servers - n_p) * per), 1)

    def role_sample(self, ranks: int | None) -> tuple[int, int]:
        """Prefill and decode ranks a request-level replay of ``ranks`` (None: all) runs (:mod:`twin.latency`).

        ``k_p`` prefill ranks and the ``k_d = k_p n_d / n_p`` decode ranks that carry their
        output at the pool's load per decode rank: ``k_p`` is the smallest number at least
        ``min(ranks, n_p)`` that makes ``k_d`` whole (at most ``n_p``: the whole pool). A mixed
        pool: ``min(ranks, n_ranks)`` ranks that do both.
        """
        if self.disaggregation is None:
            k = self.n_ranks if ranks is None else min(ranks, self.n_ranks)
            return k, k
        n_p, n_d = self.role_ranks()
        k = n_p if ranks is None else min(ranks, n_p)
        while (k * n_d) % n_p:
            k += 1
        return k, k * n_d // n_p

    @property
    def kv_transfer_bytes_per_token(self) -> float:
        """Scale-out bytes one prompt token's KV cache takes, all the rank's GPUs together (0 when mixed). [B]

        Windowed layers count every prompt token too (exact for prompts within the window, an
        upper bound beyond it [EST]).
        """
        if self.disaggregation is None or self.costs is None:
            return 0.0
        per_gpu = float(self.costs.kv_bytes_per_token) + float(self.costs.window_kv_bytes_per_token)
        return per_gpu * self.layout.tensor_parallel

    @property
    def n_ranks(self) -> int:
        """Attention ranks of the pool (at least one)."""
        return max(round(self.n_servers * self.ranks_per_server), 1)

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
    """Topology and parameters of one scenario as arrays, and every other part the engine reads."""

    run: RunTimes
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
    server: ServerPower
    power_cap_w: float | None
    other_facility_power_w: float
    cooling: CoolingSpec
    weather: WeatherBoundary = field(repr=False)
    supply: SupplySpec
    controls: ControlSpec
    faults: FaultSchedule

    @property
    def n_gpus(self) -> int:
        """Accelerators in the fleet."""
        return self.n_servers * self.gpus_per_server

    def served_pools(self) -> list[Pool]:
        """The inference pools the serving model runs (a model and its step costs)."""
        return [p for p in self.pools if p.kind == "inference" and p.costs is not None and p.model is not None]

    def serving_groups(self) -> list[np.ndarray]:
        """Server masks a load balancer spreads requests over: each inference pool, or each role of a split one."""
        groups = []
        for p in self.pools:
            if p.kind != "inference":
                continue
            mask = self.pool_of_server == p.index
            if p.disaggregation is None:
                groups.append(mask)
                continue
            prefill = np.zeros(self.n_servers, dtype=bool)
            prefill[p.servers[p.prefill_role > 0]] = True
            groups += [prefill, mask & ~prefill]
        return groups

    @property
    def nameplate_it_power_w(self) -> float:
        """IT power with every GPU at TDP and every host at its maximum. [W]"""
        return self._nameplate()[0]

    def nameplate_losses_w(self) -> float:
        """PSU, PDU and UPS losses with the IT at nameplate: heat the air side must also carry. [W]"""
        return self._nameplate()[1]

    def _nameplate(self) -> tuple[float, float]:
        return nameplate_w(
            self.accelerator, self.server, self.gpus_per_server, self.stages, self.servers_per_rack, self.n_racks
        )

    @property
    def thermal_resistance_k_w(self) -> float:
        """Die-to-inlet thermal resistance for the cooling type. [K/W]"""
        acc = self.accelerator
        return acc.thermal_resistance_liquid_k_w if self.liquid_cooled else acc.thermal_resistance_air_k_w

    def rack_sum(self, per_server: FloatArray) -> FloatArray:
        """Sum a ``(..., n_servers)`` array over the servers of each rack."""
        shape = (*per_server.shape[:-1], self.n_racks, self.servers_per_rack)
        return np.asarray(per_server.reshape(shape).sum(axis=-1))


def nameplate_w(
    acc: AcceleratorSpec,
    server: ServerPower,
    gpus_per_server: int,
    stages: dict[str, StageModel],
    servers_per_rack: int,
    n_racks: int,
) -> tuple[float, float]:
    """IT power with every GPU at TDP and every host at its maximum, and the PSU, PDU and UPS losses it causes. [W]"""
    server_w = gpus_per_server * acc.max_power_w + server.other_max_power_w
    n_servers = servers_per_rack * n_racks
    psu = float(stages["psu"].loss_w(np.array(server_w)))
    rack_w = (server_w + psu) * servers_per_rack
    pdu = float(stages["pdu"].loss_w(np.array(rack_w)))
    ups = float(stages["ups"].loss_w(np.array((rack_w + pdu) * n_racks)))
    return n_servers * server_w, psu * n_servers + pdu * n_racks + ups
