"""What the serving solve (:mod:`twin.engine.serving`) takes per server and gives per tick and server.

:class:`ServerConstants` holds each server's (or grouped column's) figures of the pool it belongs
to: its ranks, batch and token budget, KV cache, step costs and device, training and replay
activities. :class:`ServeResult` is the solve's result over a block of ticks.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from functools import cached_property
from typing import Any, overload

import numpy as np

from twin._types import BoolArray, FloatArray, IntArray
from twin.facility_parts.fleet import Facility
from twin.physics.interconnect import kv_transfer_energy_j, kv_transfer_time_s
from twin.physics.serving import training_tokens_per_s
from twin.physics.step_costs import ServingDevice, StepCosts
from twin.replica import expert_format, serving_device

#: The serving solve runs on the inference columns alone when they are at most this share of all.
SOLVE_PART_BELOW = 0.8


@dataclass(frozen=True)
class ServerConstants:
    """Per-server constants of the pool each server belongs to (other servers: zero costs)."""

    inference: BoolArray
    training: BoolArray
    telemetry: BoolArray
    ranks: FloatArray
    max_batch: FloatArray
    token_budget: FloatArray
    kv_free_bytes: FloatArray
    costs: StepCosts
    device: ServingDevice
    mfu_over_eta: FloatArray
    mem_activity: FloatArray
    train_tokens_per_s_per_gpu: FloatArray
    train_duty: FloatArray
    replay_mem_per_busy: FloatArray
    replay_sm_per_busy: FloatArray
    kv_bytes_per_token: FloatArray
    kv_s_per_token: FloatArray
    kv_latency_s: FloatArray
    kv_j_per_byte: FloatArray
    #: Whether the serving solve takes the compiled kernel on the columns it covers
    #: (:mod:`twin.engine.serve_kernel`: inference without routed experts); numpy otherwise.
    compiled: bool = False

    @classmethod
    def build(cls, fac: Facility, compiled: bool = False) -> ServerConstants:
        """Gather each pool's constants onto its servers (``compiled``: as the field)."""
        n = fac.n_servers
        acc = fac.accelerator
        cols: dict[str, FloatArray] = {
            name: np.zeros(n)
            for name in (
                "max_batch",
                "token_budget",
                "kv_free_bytes",
                "mfu_over_eta",
                "mem_activity",
                "train_tokens_per_s_per_gpu",
                "replay_mem_per_busy",
                "replay_sm_per_busy",
                "kv_bytes_per_token",
                "kv_s_per_token",
                "kv_latency_s",
                "kv_j_per_byte",
            )
        }
        cols["ranks"] = np.ones(n)
        cols["train_duty"] = np.ones(n)
        cost_cols = {f.name: np.zeros(n) for f in fields(StepCosts)}
        for name in ("n_experts", "experts_per_token", "expert_gpus", "expert_token_scale"):
            cost_cols[name][:] = 1.0
        masks = {k: np.zeros(n, dtype=bool) for k in ("inference", "training", "telemetry")}
        formats = ["bf16"] * n
        for pool in fac.pools:
            s = pool.servers
            if pool.model is None:  # telemetry replay: activity comes from the trace
                masks["telemetry"][s] = True
                if pool.replay is not None:
                    cols["replay_mem_per_busy"][s] = pool.replay.mem_per_busy
                    cols["replay_sm_per_busy"][s] = pool.replay.sm_per_busy
            elif pool.kind == "inference" and pool.costs is not None:
                masks["inference"][s] = True
                cols["ranks"][s] = pool.ranks_per_server
                cols["max_batch"][s] = pool.max_batch
                cols["token_budget"][s] = pool.token_budget
                cols["kv_free_bytes"][s] = pool.kv_free_bytes
                for f in fields(StepCosts):
                    cost_cols[f.name][s] = float(getattr(pool.costs, f.name))
                fmt = expert_format(pool.model, pool.precision)
                for i in s:
                    formats[int(i)] = fmt
                if pool.disaggregation is not None:  # the prefill servers send each prompt's KV cache
                    d, sent = pool.disaggregation, s[pool.prefill_role > 0]
                    per_gpu = pool.kv_transfer_bytes_per_token / pool.layout.tensor_parallel
                    cols["kv_bytes_per_token"][sent] = pool.kv_transfer_bytes_per_token
                    cols["kv_s_per_token"][sent] = float(kv_transfer_time_s(per_gpu, d.bandwidth_b_s, 0.0))
                    cols["kv_latency_s"][sent] = d.latency_s
                    cols["kv_j_per_byte"][sent] = float(kv_transfer_energy_j(1.0, d.energy_j_per_bit))
            else:
                masks["training"][s] = True
                cols["mfu_over_eta"][s] = min(pool.mfu / acc.achieved_flop_fraction, 1.0)
                cols["mem_activity"][s] = pool.mem_activity
                cols["train_duty"][s] = 1.0 - pool.bubble
                cols["train_tokens_per_s_per_gpu"][s] = training_tokens_per_s(
                    pool.model.active_params, pool.peak_flop_s_per_gpu, pool.mfu
                )
        return cls(
            inference=masks["inference"],
            training=masks["training"],
            telemetry=masks["telemetry"],
            costs=StepCosts(**cost_cols),
            device=serving_device(acc, formats),
            **cols,
            compiled=compiled,
        )

    @classmethod
    def for_ranks(
        cls,
        costs: StepCosts,
        device: ServingDevice,
        max_batch: FloatArray,
        token_budget: FloatArray,
        kv_free_bytes: FloatArray,
    ) -> ServerConstants:
        """Constants of standalone serving ranks, one per column (the validation's replicas)."""
        n = np.asarray(max_batch).size
        zeros, ones = np.zeros(n), np.ones(n)
        return cls(
            inference=np.ones(n, dtype=bool),
            training=np.zeros(n, dtype=bool),
            telemetry=np.zeros(n, dtype=bool),
            ranks=ones,
            max_batch=np.asarray(max_batch, dtype=np.float64),
            token_budget=np.asarray(token_budget, dtype=np.float64) * ones,
            kv_free_bytes=np.asarray(kv_free_bytes, dtype=np.float64) * ones,
            costs=costs,
            device=device,
            mfu_over_eta=zeros,
            mem_activity=zeros,
            train_tokens_per_s_per_gpu=zeros,
            train_duty=ones,
            replay_mem_per_busy=zeros,
            replay_sm_per_busy=zeros,
            kv_bytes_per_token=zeros,
            kv_s_per_token=zeros,
            kv_latency_s=zeros,
            kv_j_per_byte=zeros,
        )

    @cached_property
    def inference_part(self) -> tuple[IntArray, ServerConstants] | None:
        """The inference columns and their constants where they are at most :data:`SOLVE_PART_BELOW` of all.

        The serving solve runs on them only: the other columns serve nothing. Built once per set
        of columns (the engine keeps one set until servers regroup).
        """
        n_inf = int(np.count_nonzero(self.inference))
        if n_inf > SOLVE_PART_BELOW * self.inference.size:
            return None
        idx = np.flatnonzero(self.inference)
        return idx, self.columns(operator.itemgetter(idx))

    @cached_property
    def kernel_columns(self) -> BoolArray:
        """The columns the compiled solve covers where :attr:`compiled`: inference ranks that route no experts."""
        experts = (np.asarray(self.costs.expert_bytes) != 0) | (np.asarray(self.costs.expert_flops_per_token) != 0)
        return np.asarray(self.compiled & self.inference & ~np.broadcast_to(experts, self.inference.shape))

    @cached_property
    def kernel_split(self) -> tuple[IntArray, IntArray, ServerConstants]:
        """The columns the compiled solve covers, then the other inference columns and their constants.

        The columns that serve nothing are in neither: the solve gives them zeros.
        """
        fast = np.flatnonzero(self.kernel_columns)
        slow = np.flatnonzero(~self.kernel_columns & self.inference)
        return fast, slow, self.columns(operator.itemgetter(slow))

    @cached_property
    def kernel_constants(self) -> FloatArray:
        """The per-column figures the compiled solve takes, ``(F, S)`` (:mod:`twin.engine.serve_kernel`)."""
        from twin.engine import serve_kernel as k

        rows = [getattr(self, name) for name in k.CONSTANT_FIGURES]
        rows += [getattr(self.costs, name) for name in k.COST_FIGURES]
        rows += [getattr(self.device, name) for name in k.DEVICE_FIGURES]
        n = self.inference.size
        return np.array([np.broadcast_to(np.asarray(r, dtype=np.float64), (n,)) for r in rows])

    def columns(self, take: Callable[[np.ndarray], np.ndarray]) -> ServerConstants:
        """The constants of grouped columns (``take`` maps a per-server array to columns)."""
        arrays: dict[str, Any] = {
            f.name: take(getattr(self, f.name)) for f in fields(self) if isinstance(getattr(self, f.name), np.ndarray)
        }
        return replace(self, costs=self.costs.take(take), device=self.device.take(take), **arrays)


@dataclass
class ServeResult:
    """Per tick and server (``(K, S)`` arrays) unless noted."""

    prefill_tokens: FloatArray
    decode_tokens: FloatArray
    training_tokens: FloatArray
    busy: FloatArray
    mem_activity: FloatArray
    sm_activity: FloatArray
    #: The busy share the power model takes (:meth:`twin.physics.step_costs.Step.power_busy`;
    #: ``busy`` on training and replay columns). [1]
    power_busy: FloatArray
    batch: FloatArray
    step_time_s: FloatArray
    backlog_prefill_tokens: FloatArray
    backlog_decode_tokens: FloatArray
    ttft_s: FloatArray
    tpot_s: FloatArray
    kv_transfer_w: FloatArray
    #: The backlogs per rank a column's next tick starts with: the solve's state (the backlogs above
    #: are these times the ranks; a rank's own figure is kept, not recovered by a division). [1]
    rank_backlog_prefill: FloatArray
    rank_backlog_decode: FloatArray


@overload
def column_cut(x: FloatArray, idx: IntArray, n: int) -> FloatArray: ...


@overload
def column_cut(x: None, idx: IntArray, n: int) -> None: ...


def column_cut(x: FloatArray | None, idx: IntArray, n: int) -> FloatArray | None:
    """The columns ``idx`` of an array over ``n`` columns (last axis); one broadcast along them, or None, as is."""
    return np.asarray(x)[..., idx] if x is not None and np.shape(x)[-1:] == (n,) else x


def result_columns(res: ServeResult, cols: IntArray) -> ServeResult:
    """The columns ``cols`` of a block's result."""
    shape = np.shape(res.busy)
    return replace(res, **{f.name: np.broadcast_to(getattr(res, f.name), shape)[:, cols] for f in fields(res)})
