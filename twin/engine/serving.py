"""The serving model over a block of ticks: queues, batches and GPU activity per server.

Each server hosts ``ranks`` attention ranks of its pool (:class:`twin.facility.Pool`; fractional
when a rank spans servers), each running steps of the continuous-batching model of
:mod:`twin.physics.serving`. In each tick a rank serves its prompt and output tokens as flows:

* **Capacity.** A full rank holds ``B = min(max_batch, KV fit, budget / (1 + rho))`` sequences
  (the KV fit: what the HBM left beside the weights holds at the tick's context), where
  ``rho`` is the tick's prompt tokens per output token (decode and prefill share the step's
  token budget), and prefills ``rho B`` prompt tokens per step; its decode capacity is ``B`` per
  step time of that step. Demand plus backlog beyond it waits (the fluid queue), first-come in
  proportion.
* **Batch.** The sequences ``B`` whose steps make the served output rate, ``B / t(B, C) =
  lambda_d`` with ``C = (lambda_p / lambda_d) B`` (:func:`twin.physics.serving_rates.batch_for_rates`).
  Below one sequence the rank runs single-sequence steps part of the time (its duty cycle).
* **Activity.** The step's busy share, HBM and SM activity (times the duty cycle) go to the
  accelerator power model.

Tokens are booked when served; a request's decode spreads over seconds, so generated tokens are
booked up to a request's duration early (the tick is the resolution of the model).

Latency estimates (per tick and server, from the same fluid queue): a request arriving in a tick
waits for the work left queued at the tick's end to drain at the rank's capacity, then its prompt
joins a step, ``TTFT = w + t(B, C + L_p)`` with ``L_p`` the tick's mean prompt length; each
sequence then gets one token per step, ``TPOT = t``. These are interval-level values: a fluid
model has no individual requests, so their spread over ticks and servers (weighted by requests or
by tokens, :mod:`twin.engine.pool_stats`) stands for the distribution.

Disaggregated pools (:class:`twin.facility_parts.fleet.Disaggregation`): the demand model sends
a pool's prompt tokens to its prefill servers and its output tokens to its decode servers, so a
prefill server runs prompt-only steps (one token budget of prompts, compute-bound) and a decode
server decode-only ones. A prefill server's prompts leave as KV cache over the scale-out network:
its power gains ``tokens/s x bytes per token x 8 x J/bit`` (``kv_transfer_w``, booked with the
server's other power) and its TTFT the transfer's time.

The solve runs in numpy (whole-array passes over a block's cells) or, for inference columns
whose ranks route no experts once a run has solved :data:`COMPILED_FROM_CELLS` cells, compiled
(:mod:`twin.engine.serve_kernel`: one loop per column, the same operations in the same order).

Training servers run at full activity on the share ``train_fraction`` of their GPUs (1 for a
steady job, from a job trace otherwise), idle in the pipeline bubble; telemetry servers replay a
measured busy fraction ``u`` with HBM and SM activity ``a_m u`` and ``a_s u``.
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
from twin.physics.accelerator import AcceleratorPowerParams
from twin.physics.interconnect import kv_transfer_energy_j, kv_transfer_time_s
from twin.physics.serving import StepPlan, sequences_that_fit, training_tokens_per_s
from twin.physics.serving_rates import batch_for_rates, prefill_chunk_for_rate
from twin.physics.step_costs import ServingDevice, StepCosts
from twin.replica import expert_format, serving_device

#: The serving solve runs on the inference columns alone when they are at most this share of all.
SOLVE_PART_BELOW = 0.8
#: A queue's slots are compacted when fewer than this share of them still queue (:func:`_fluid_queue`).
COMPACT_BELOW = 0.5
#: A run's serving solve (and its governor) goes compiled (:mod:`twin.engine.serve_kernel`, on the
#: columns it covers) once it has solved this many inference cells (ticks x grouped columns) in
#: numpy, about what numpy takes in the ~0.5 s a process takes to load the compiled solve
#: (``Engine._compile_serving``). [1]
COMPILED_FROM_CELLS = 2e6


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


def max_sequences(c: ServerConstants, context_len: FloatArray) -> FloatArray:
    """Most sequences a rank runs: its ``max_batch``, or fewer where their KV cache does not fit."""
    fit = sequences_that_fit(c.kv_free_bytes, c.costs, context_len)
    return np.asarray(np.where(c.inference, np.minimum(c.max_batch, fit), c.max_batch))


def full_rank(
    token_budget: FloatArray, plan: StepPlan, prefill: FloatArray, decode: FloatArray, most: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """A full rank at the mix of ``prefill`` and ``decode`` tokens: (sequences, prompt tokens, step time) per step.

    ``plan`` steps the ranks at the tick's context, prompt position and clock; ``most`` is
    :func:`max_sequences` at that context. With no output tokens to decode the step carries one
    token budget of prompts.
    """
    decoding = decode > 0
    rho = np.divide(prefill, decode, out=np.zeros_like(prefill), where=decoding)
    cap = np.minimum(most, token_budget / (1.0 + rho))
    seqs = np.where(decoding, cap, 0.0)
    chunk = np.where(decoding, rho * seqs, token_budget)
    return seqs, chunk, plan.time_s(seqs, chunk)


def serve_block(
    c: ServerConstants,
    prefill_demand: FloatArray,
    decode_demand: FloatArray,
    prompt_len: FloatArray,
    context_len: FloatArray,
    clock: FloatArray,
    backlog_prefill: FloatArray,
    backlog_decode: FloatArray,
    dts: FloatArray,
    *,
    requests: FloatArray | None = None,
    train_fraction: FloatArray | None = None,
    replay_busy: FloatArray | None = None,
    previous: tuple[FloatArray, ServeResult] | None = None,
) -> ServeResult:
    """Serve a block of ticks.

    Parameters
    ----------
    c : ServerConstants
        Per-server constants.
    prefill_demand, decode_demand : ndarray (K, S)
        Prompt and output tokens arriving at each server in each tick. [1]
    prompt_len, context_len : ndarray (K, S)
        Mean prompt length and mean decode context per sequence. [1]
    clock : ndarray (K, S)
        SM clock fraction. [1]
    backlog_prefill, backlog_decode : ndarray (S,)
        Tokens waiting at the start. [1]
    dts : ndarray (K,)
        Tick lengths. [s]
    requests : ndarray (K, S), optional
        Requests arriving (for the mean prompt per request in TTFT; default: ``prompt_len``). [1]
    train_fraction : ndarray (K, S), optional
        Share of a training server's GPUs in jobs (default 1). [1]
    replay_busy : ndarray (K, S), optional
        Measured busy fraction of telemetry servers (default 0). [1]
    previous : (ndarray (K, S), ServeResult), optional
        The clocks and result of a solve of the same block (same demand and starting backlogs) at
        other clocks: the compiled solve copies its cells whose clock and starting backlog are the
        same (the same cell, so the same result), and solves the others.

    Returns
    -------
    ServeResult
    """
    dt = dts[:, None]
    shape = np.broadcast_shapes(np.shape(prefill_demand), (dts.size, c.inference.size))
    args = (prefill_demand, decode_demand, prompt_len, context_len, clock, backlog_prefill, backlog_decode)
    part = c.inference_part
    if part is None or c.kernel_columns.any():
        # Every column serves (or grouping left few), or the compiled solve, which skips the columns
        # that serve nothing itself, is on: solve them all as they are.
        inf = _serve_inference(c, *args, dt, requests, previous)
    else:  # solve the inference columns only; the others serve nothing (zeros, as the solve gives them)
        idx, sub = part
        got = _serve_inference(sub, *_cut(idx, c.inference.size, args, requests, previous, dt))
        inf = {}
        for k, v in got.items():
            full = np.zeros(shape)
            full[:, idx] = v
            inf[k] = full
    return _result(c, inf, clock, dt, train_fraction, replay_busy)


def serve_governed(
    c: ServerConstants,
    prefill_demand: FloatArray,
    decode_demand: FloatArray,
    prompt_len: FloatArray,
    context_len: FloatArray,
    backlog_prefill: FloatArray,
    backlog_decode: FloatArray,
    dts: FloatArray,
    limit_w: FloatArray,
    top: FloatArray,
    board: AcceleratorPowerParams,
    *,
    requests: FloatArray | None = None,
    previous: tuple[FloatArray, ServeResult] | None = None,
) -> tuple[FloatArray, ServeResult]:
    """:func:`serve_block` of columns the compiled solve covers, under the power governor: clocks and result.

    Each cell at the highest clock up to ``top`` whose model power (``board``), at the activity
    it has there, fits ``limit_w``, solved tick by tick from the backlogs each tick really starts
    with (:func:`twin.engine.serve_kernel._serve_governed`); the clock where the power meets the
    limit (to ``CONVERGED_RTOL`` from below) is :func:`twin.physics.governor.governed_clock`'s,
    found in one pass in time instead of steps over the whole block. Every column must be one of
    :attr:`ServerConstants.kernel_columns`. ``previous``: as :func:`serve_block`'s (the solve at the
    top clocks: the cells the governor leaves there are copied from it).
    """
    from twin.engine import serve_kernel

    assert c.kernel_columns.all(), "a governed compiled solve of columns it does not cover"
    dt = dts[:, None]
    inf, clock = serve_kernel.serve_governed(
        c.kernel_constants,
        c.device.linear_roofline,
        prefill_demand,
        decode_demand,
        prompt_len,
        context_len,
        backlog_prefill,
        backlog_decode,
        dt,
        requests,
        limit_w,
        top,
        board,
        previous,
    )
    return clock, _result(c, inf, clock, dt, None, None)


def _result(
    c: ServerConstants,
    inf: dict[str, FloatArray],
    clock: FloatArray,
    dt: FloatArray,
    train_fraction: FloatArray | None,
    replay_busy: FloatArray | None,
) -> ServeResult:
    """The :class:`ServeResult` of the serving solve's outputs ``inf``, with the training and replay columns."""
    busy, mem, sm = inf["busy"], inf["mem"], inf["sm"]
    # Training servers: compute-bound steps, throughput proportional to clock; idle in the bubble.
    train = c.training
    tf = (1.0 if train_fraction is None else train_fraction) * c.train_duty
    busy = np.where(train, tf, busy)
    mem = np.where(train, c.mem_activity * tf, mem)
    sm = np.where(train, c.mfu_over_eta * tf, sm)
    train_tok = np.where(train, c.train_tokens_per_s_per_gpu * clock * dt * tf, 0.0)
    # Telemetry servers: the measured busy fraction drives the power model.
    if replay_busy is not None:
        tel = c.telemetry
        busy = np.where(tel, replay_busy, busy)
        mem = np.where(tel, c.replay_mem_per_busy * replay_busy, mem)
        sm = np.where(tel, c.replay_sm_per_busy * replay_busy, sm)
    power_busy = np.where(c.inference, inf["power_busy"], busy)
    return ServeResult(
        prefill_tokens=inf["prefill"],
        decode_tokens=inf["decode"],
        training_tokens=train_tok,
        busy=np.clip(busy, 0.0, 1.0),
        power_busy=np.clip(power_busy, 0.0, 1.0),
        mem_activity=np.clip(mem, 0.0, 1.0),
        sm_activity=np.clip(sm, 0.0, 1.0),
        batch=inf["batch"],
        step_time_s=inf["step"],
        backlog_prefill_tokens=inf["backlog_prefill"],
        backlog_decode_tokens=inf["backlog_decode"],
        ttft_s=inf["ttft"],
        tpot_s=inf["step"],
        kv_transfer_w=inf["kv_w"],
        rank_backlog_prefill=inf["rank_backlog_prefill"],
        rank_backlog_decode=inf["rank_backlog_decode"],
    )


def result_columns(res: ServeResult, cols: IntArray) -> ServeResult:
    """The columns ``cols`` of a block's result."""
    shape = np.shape(res.busy)
    return replace(res, **{f.name: np.broadcast_to(getattr(res, f.name), shape)[:, cols] for f in fields(res)})


def _serve_inference(
    c: ServerConstants,
    prefill_demand: FloatArray,
    decode_demand: FloatArray,
    prompt_len: FloatArray,
    context_len: FloatArray,
    clock: FloatArray,
    backlog_prefill: FloatArray,
    backlog_decode: FloatArray,
    dt: FloatArray,
    requests: FloatArray | None,
    previous: tuple[FloatArray, ServeResult] | None = None,
) -> dict[str, FloatArray]:
    """The serving solve of :func:`serve_block` (inference columns; others come out idle).

    Compiled on the columns :attr:`ServerConstants.kernel_columns` names
    (:mod:`twin.engine.serve_kernel`), in numpy on the others (:func:`_serve_numpy`); a column's
    result depends on its own inputs only, whichever solve and whatever company.
    """
    args = (prefill_demand, decode_demand, prompt_len, context_len, clock, backlog_prefill, backlog_decode)
    fast = c.kernel_columns
    if not fast.any():
        return _serve_numpy(c, *args, dt, requests)
    from twin.engine import serve_kernel

    idx_fast, idx_slow, c_slow = c.kernel_split
    # The compiled columns in place (the others zeros, as the columns that serve nothing come out),
    # then the other inference columns' numpy solve into theirs.
    out = serve_kernel.serve(
        c.kernel_constants,
        c.device.linear_roofline,
        *args,
        dt,
        requests,
        previous,
        columns=None if fast.all() else idx_fast,
    )
    if idx_slow.size:
        for key, v in _serve_numpy(c_slow, *_cut(idx_slow, fast.size, args, requests, None, dt)[:-1]).items():
            out[key][:, idx_slow] = v
    return out


def _cut(
    idx: IntArray,
    n: int,
    args: tuple[FloatArray, ...],
    requests: FloatArray | None,
    previous: tuple[FloatArray, ServeResult] | None,
    dt: FloatArray,
) -> tuple[Any, ...]:
    """:func:`_serve_inference`'s arguments for the columns ``idx`` of ``n`` (``args``: its first seven)."""
    before = None if previous is None else (previous[0][:, idx], result_columns(previous[1], idx))
    return (*(column_cut(x, idx, n) for x in args), dt, column_cut(requests, idx, n), before)


def _serve_numpy(
    c: ServerConstants,
    prefill_demand: FloatArray,
    decode_demand: FloatArray,
    prompt_len: FloatArray,
    context_len: FloatArray,
    clock: FloatArray,
    backlog_prefill: FloatArray,
    backlog_decode: FloatArray,
    dt: FloatArray,
    requests: FloatArray | None,
) -> dict[str, FloatArray]:
    """:func:`_serve_inference` in numpy: whole-array passes over the block's cells."""
    rep = np.where(c.inference, c.ranks, 1.0)
    position = 0.5 * prompt_len  # mean position of a prefilled token in its prompt
    # Per rank from here on.
    p_in = np.where(c.inference, prefill_demand / rep, 0.0)
    d_in = np.where(c.inference, decode_demand / rep, 0.0)
    qp0 = np.where(c.inference, backlog_prefill / rep, 0.0)
    qd0 = np.where(c.inference, backlog_decode / rep, 0.0)
    most = np.broadcast_to(max_sequences(c, context_len), p_in.shape)
    # Every step below is at these; prompts arrive whole (the steps are a stream's mean).
    plan = StepPlan.at(c.costs, c.device, context_len, position, clock, prompt_len)
    p_srv, d_srv, qp, qd = _fluid_queue(c, plan, p_in, d_in, qp0, qd0, dt, most)
    lam_d, lam_p = d_srv / dt, p_srv / dt
    seqs = batch_for_rates(c.costs, c.device, lam_d, lam_p, context_len, position, most, clock, plan=plan)
    mix = np.divide(lam_p, lam_d, out=np.zeros_like(lam_p), where=lam_d > 0)  # prompt per output token
    chunk = mix * seqs
    # Below one sequence the rank runs single-sequence steps part of the time.
    decoding = d_srv > 0
    small = decoding & (seqs < 1.0)
    prefill_only = (d_srv <= 0) & (p_srv > 0)
    seqs = np.where(small, 1.0, seqs)
    chunk = np.where(small, mix, chunk)
    chunk = np.where(prefill_only, np.minimum(c.token_budget, np.maximum(prompt_len, 1.0)), chunk)
    if np.any(prefill_only):
        budget = np.maximum(c.token_budget, chunk)
        chunk = np.where(prefill_only, prefill_chunk_for_rate(plan, chunk, budget, lam_p), chunk)
    st = plan.step(seqs, chunk)
    made = np.where(decoding, seqs, chunk)  # tokens a step makes of the kind that sets the pace
    rate = np.where(decoding, lam_d, lam_p)
    duty = np.clip(np.divide(rate * st.time_s, made, out=np.zeros_like(rate), where=made > 0), 0.0, 1.0)
    step_s = np.where(decoding, st.time_s, 0.0)
    # Latency estimates (module docstring).
    prompt_per_request = prompt_len
    if requests is not None:
        prompt_per_request = np.divide(
            prefill_demand, requests, out=np.array(prompt_len, dtype=np.float64), where=requests > 0
        )
    wait = _queue_wait(c, plan, p_in, d_in, qp, qd, most)
    first = replace(plan, prompt_tokens=None).time_s(seqs, chunk + prompt_per_request)  # carries its prompt
    ttft = np.where(c.inference, wait + first, 0.0)
    kv_w = np.zeros_like(ttft)
    if np.any(c.kv_bytes_per_token):  # a disaggregated pool's prefill servers send KV caches
        ttft = ttft + np.where(p_srv > 0, c.kv_latency_s + c.kv_s_per_token * prompt_per_request, 0.0)
        kv_w = p_srv * rep * c.kv_bytes_per_token * c.kv_j_per_byte / dt
    return {
        "prefill": p_srv * rep,
        "decode": d_srv * rep,
        "busy": duty * st.busy,
        "power_busy": duty * st.power_busy(c.device),
        "mem": duty * st.mem_activity(c.device),
        "sm": duty * st.sm_activity(c.device),
        "batch": np.where(decoding, seqs, 0.0),
        "step": step_s,
        "backlog_prefill": qp * rep,
        "backlog_decode": qd * rep,
        "ttft": ttft,
        "kv_w": kv_w,
        "rank_backlog_prefill": qp,
        "rank_backlog_decode": qd,
    }


def _plan_at(plan: StepPlan, shape: tuple[int, ...], k: IntArray, s: IntArray) -> StepPlan:
    """The block's ``plan`` (of ``shape``: ticks, columns) at the cells ``(k, s)``."""
    return plan.take(_cells(shape, k, s), operator.itemgetter(s))


def _cells(shape: tuple[int, ...], k: IntArray, s: IntArray) -> Callable[[FloatArray], FloatArray]:
    """``x -> broadcast_to(x, shape)[k, s]``, without the broadcast where ``x`` is 2-D (each axis full or 1)."""

    def cell(x: FloatArray) -> FloatArray:
        if x.ndim == 2:
            return np.asarray(x[k if x.shape[0] > 1 else 0, s if x.shape[1] > 1 else 0])
        return np.asarray(np.broadcast_to(x, shape)[k, s])

    return cell


def _queue_wait(
    c: ServerConstants,
    plan: StepPlan,
    p_in: FloatArray,
    d_in: FloatArray,
    qp: FloatArray,
    qd: FloatArray,
    most: FloatArray,
) -> FloatArray:
    """Time the work queued at each tick's end takes to drain at a full rank's capacity. [s]

    Computed on the ticks and columns with a queue only (a few per cent of them): the others wait
    for nothing.
    """
    wait = np.zeros(np.shape(qp))
    k, s = np.nonzero((qp > 0) | (qd > 0))
    if not k.size:
        return wait
    shape = wait.shape
    qp_ks, qd_ks = qp[k, s], qd[k, s]
    p_ks, d_ks, most_ks = (np.broadcast_to(x, shape)[k, s] for x in (p_in, d_in, most))
    at = _plan_at(plan, shape, k, s)
    full_seqs, full_chunk, t_full = full_rank(c.token_budget[s], at, p_ks + qp_ks, d_ks + qd_ks, most_ks)
    capacity = np.divide(full_seqs + full_chunk, t_full, out=np.zeros_like(t_full), where=t_full > 0)  # tokens/s
    wait[k, s] = np.divide(qp_ks + qd_ks, capacity, out=np.zeros_like(capacity), where=capacity > 0)
    return wait


def _capacity(
    token_budget: FloatArray, plan: StepPlan, prefill: FloatArray, decode: FloatArray, dt: FloatArray, most: FloatArray
) -> FloatArray:
    """Share of ``prefill`` and ``decode`` tokens a full rank serves in ``dt`` (at most 1)."""
    seqs, chunk, t = full_rank(token_budget, plan, prefill, decode, most)
    decoding = decode > 0
    made = np.where(decoding, seqs, chunk) * np.divide(dt, t, out=np.zeros_like(t), where=t > 0)
    want = np.where(decoding, decode, prefill)
    return np.asarray(np.minimum(1.0, np.divide(made, want, out=np.ones_like(want), where=want > 0)))


def _fluid_queue(
    c: ServerConstants,
    plan: StepPlan,
    p_in: FloatArray,
    d_in: FloatArray,
    qp0: FloatArray,
    qd0: FloatArray,
    dt: FloatArray,
    most: FloatArray,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Serve demand plus backlog within each tick's time; return served and backlog per tick.

    A tick that starts without a backlog serves what arrives in the share ``r0`` its capacity
    allows, computed for every tick at once. A tick that starts with one (queued before the block,
    or left by the tick before) is solved again: the backlog changes the mix a full rank serves.
    Those ticks are solved column by column (:func:`_walk`).
    """
    r0 = _capacity(c.token_budget, plan, p_in, d_in, dt, most)
    queued = (qp0 > 0) | (qd0 > 0)
    if not np.any(queued) and np.all(r0 >= 1.0):
        zeros = np.zeros_like(p_in)
        return p_in, d_in, zeros, zeros.copy()
    shape = p_in.shape
    # Columns that may queue in this block; the others serve what arrives (r0 = 1, no backlog).
    cols = np.flatnonzero(np.broadcast_to(queued, shape[1:]) | np.any(r0 < 1.0, axis=0))
    outs = (
        np.array(p_in, dtype=np.float64, order="C"),  # C order: written through ravel() (_scatter)
        np.array(d_in, dtype=np.float64, order="C"),
        np.zeros(shape),
        np.zeros(shape),
    )
    _scatter(cols, shape, outs, _walk(c, plan, p_in, d_in, qp0, qd0, dt, most, r0, queued, cols))
    return outs[0], outs[1], outs[2], outs[3]


def _columns_of(shape: tuple[int, ...], cols: IntArray) -> Callable[[FloatArray], FloatArray]:
    """The columns ``cols`` of a ``(K, S)`` (or broadcast) array, ``(K, U)`` flattened."""

    def part(x: FloatArray) -> FloatArray:
        return np.take(np.broadcast_to(x, shape), cols, axis=1).ravel()  # (faster than x[:, cols])

    return part


def _walk(
    c: ServerConstants,
    plan: StepPlan,
    p_in: FloatArray,
    d_in: FloatArray,
    qp0: FloatArray,
    qd0: FloatArray,
    dt: FloatArray,
    most: FloatArray,
    r0: FloatArray,
    queued: BoolArray,
    cols: IntArray,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """The queue of :func:`_fluid_queue` on the columns ``cols``, in numpy: served and backlogs, ``(K, U)`` flattened.

    Each column's queue is followed from one backlogged tick to the next, all columns at once,
    jumping over the ticks it starts without a backlog (on most columns a queue lasts a few
    ticks, so this takes fewer steps than the block has ticks).
    """
    shape = np.shape(p_in)
    n_k, n_u = shape[0], cols.size
    p_u, d_u, r0_u, dts, most_u = map(_columns_of(shape, cols), (p_in, d_in, r0, dt, most))
    # Every tick as if it started without a backlog; then the backlog each leaves.
    ps, ds = r0_u * p_u, r0_u * d_u
    qps, qds = p_u - ps, d_u - ds
    left = ((qps > 0) | (qds > 0)).reshape(n_k, n_u)
    # First tick from k on that leaves a backlog having started without one (n_k: none).
    ticks = np.where(left, np.arange(n_k)[:, None], n_k)
    leaves = np.vstack((np.minimum.accumulate(ticks[::-1], axis=0)[::-1], np.full((1, n_u), n_k)))
    # One slot per column that queues: the tick its queue is at, and the backlog that tick starts with.
    u = np.arange(n_u)
    start = np.broadcast_to(queued, shape[1:])[cols]
    first = leaves[0]
    k = np.where(start, 0, first + 1)
    at_first = np.minimum(first, n_k - 1) * n_u + u
    qp = np.where(start, np.broadcast_to(qp0, shape[1:])[cols], qps[at_first])
    qd = np.where(start, np.broadcast_to(qd0, shape[1:])[cols], qds[at_first])
    alive = k < n_k
    # The slots' ranks are taken once, and again each time fewer than half the slots still queue
    # (then those alone are kept); their cells, tick by tick. A slot done is computed (elementwise,
    # at its last tick) until then, and not kept.
    ranks = plan.with_ranks(operator.itemgetter(cols[u]))
    budget = c.token_budget[cols[u]]
    while np.any(alive):
        if np.count_nonzero(alive) < COMPACT_BELOW * alive.size:
            keep = np.flatnonzero(alive)
            u, k, qp, qd, alive, budget = u[keep], k[keep], qp[keep], qd[keep], alive[keep], budget[keep]
            ranks = ranks.with_ranks(operator.itemgetter(keep))
        kk = np.minimum(k, n_k - 1)
        cell = kk * n_u + u
        tp = qp + p_u[cell]
        td = qd + d_u[cell]
        r = _capacity(budget, ranks.at_cells(_cells(shape, kk, cols[u])), tp, td, dts[cell], most_u[cell])
        p_s, d_s = r * tp, r * td
        qp_s, qd_s = tp - p_s, td - d_s
        w = cell[alive]
        ps[w], ds[w], qps[w], qds[w] = p_s[alive], d_s[alive], qp_s[alive], qd_s[alive]
        # The next tick starts with the backlog left, or (none left) the next that leaves one does.
        k1 = kk + 1
        carried = (qp_s > 0) | (qd_s > 0)
        nxt = leaves[k1, u]
        at_nxt = np.minimum(nxt, n_k - 1) * n_u + u
        qp = np.where(carried, qp_s, qps[at_nxt])
        qd = np.where(carried, qd_s, qds[at_nxt])
        k = np.where(alive, np.where(carried, k1, nxt + 1), k)
        alive = k < n_k
    return ps, ds, qps, qds


def _scatter(
    cols: IntArray, shape: tuple[int, ...], outs: tuple[FloatArray, ...], values: tuple[FloatArray, ...]
) -> None:
    """Set the columns ``cols`` of ``outs`` (``(K, S)``, C order) to ``values`` (``(K, U)`` flattened)."""
    cells = (np.arange(shape[0])[:, None] * shape[1] + cols).ravel()  # the queuing columns, flat
    for out, v in zip(outs, values, strict=True):
        out.ravel()[cells] = v  # (faster than out[:, cols] = v)
