"""The serving model over a block of ticks: queues, batches and GPU activity per server.

Each server hosts ``gpus_per_server / tensor_parallel`` replicas (fractional when a replica spans
servers). In each tick a replica has ``dt`` seconds; prefill costs ``c_p`` seconds per prompt token
and decode ``t_step(B_max)/B_max`` per token at the largest batch. Demand plus backlog is served
first-come in proportion when it exceeds the tick (the fluid queue); the decode batch is the one
that sustains the served token rate (:func:`twin.physics.serving.decode_batch_for_rate`), at least
one sequence while any token is generated. Tokens are booked when served; a request's decode
spreads over seconds, so generated tokens are booked up to a request's duration early (the tick is
the resolution of the model).

Latency estimates (per tick and server, from the same fluid queue): a request arriving in a tick
waits for the work left queued at the tick's end, ``w = q_p c_p + q_d c_d`` seconds (backlog over
service rate), then its prompt is prefilled at the replica's FLOP/s, so
``TTFT = w + L_p c_p`` with ``L_p`` the tick's mean prompt length; each sequence then gets one
token per decode step while the replica decodes, ``TPOT = t_step(B) / (1 - phi_p)`` with ``B`` the
tick's batch and ``phi_p`` its prefill share. These are interval-level values: a fluid model
has no individual requests, so their spread over ticks and servers (weighted by requests or by
tokens, :mod:`twin.engine.pool_stats`) stands for the distribution; the spread of requests within
a tick (FCFS order, chunked prefill interleaving) is not modelled.

Training servers run at full activity on the share ``train_fraction`` of their GPUs (1 for a
steady job, from a job trace otherwise); telemetry servers replay a measured busy fraction
``u`` with HBM and SM activity ``a_m u`` and ``a_s u``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from twin._types import BoolArray, FloatArray
from twin.facility import Facility
from twin.physics.serving import (
    decode_batch_for_rate,
    decode_step_time_s,
    moe_weight_bytes_per_step,
    prefill_time_per_token_s,
)

#: Fixed-point iterations for the batch of a mixture-of-experts model (weight bytes depend on B).
MOE_ITERATIONS = 6


@dataclass(frozen=True)
class ServerConstants:
    """Per-server constants of the pool each server belongs to (idle servers: zeros)."""

    inference: BoolArray
    training: BoolArray
    replicas: FloatArray
    max_batch: FloatArray
    dense_bytes: FloatArray
    expert_bytes: FloatArray
    n_experts: FloatArray
    experts_per_token: FloatArray
    kv_bytes: FloatArray
    flops_per_token: FloatArray
    bandwidth_b_s: FloatArray
    flop_s: FloatArray
    n_layers: FloatArray
    d_model: FloatArray
    overhead_s: float
    mfu_over_eta: FloatArray
    mem_activity: FloatArray
    train_tokens_per_s_per_gpu: FloatArray
    telemetry: BoolArray
    replay_mem_per_busy: FloatArray
    replay_sm_per_busy: FloatArray

    @classmethod
    def build(cls, fac: Facility) -> ServerConstants:
        """Gather each pool's constants onto its servers."""
        n = fac.n_servers
        acc = fac.accelerator
        cols: dict[str, FloatArray] = {
            name: np.zeros(n)
            for name in (
                "replicas",
                "max_batch",
                "dense_bytes",
                "expert_bytes",
                "kv_bytes",
                "flops_per_token",
                "mfu_over_eta",
                "mem_activity",
                "train_tokens_per_s_per_gpu",
                "replay_mem_per_busy",
                "replay_sm_per_busy",
            )
        }
        ones = ("n_experts", "experts_per_token", "bandwidth_b_s", "flop_s", "n_layers", "d_model")
        cols.update({name: np.ones(n) for name in ones})
        inference = np.zeros(n, dtype=bool)
        training = np.zeros(n, dtype=bool)
        telemetry = np.zeros(n, dtype=bool)
        for pool in fac.pools:
            s = pool.servers
            m = pool.model
            if m is None:  # telemetry replay: activity comes from the trace
                spec = pool.spec
                telemetry[s] = True
                cols["replay_mem_per_busy"][s] = getattr(spec, "mem_activity_per_busy", 1.0)
                cols["replay_sm_per_busy"][s] = getattr(spec, "sm_activity_per_busy", 1.0)
                continue
            cols["n_experts"][s] = m.n_experts
            cols["experts_per_token"][s] = m.experts_per_token
            cols["n_layers"][s] = m.n_layers
            cols["d_model"][s] = m.d_model
            cols["flops_per_token"][s] = pool.flops_per_token
            if pool.kind == "inference":
                inference[s] = True
                cols["replicas"][s] = fac.gpus_per_server / pool.gpus_per_replica
                cols["max_batch"][s] = pool.max_batch
                cols["dense_bytes"][s] = pool.dense_weight_bytes
                cols["expert_bytes"][s] = pool.expert_weight_bytes
                cols["kv_bytes"][s] = pool.kv_bytes_per_token
                cols["bandwidth_b_s"][s] = pool.replica_bandwidth_b_s
                cols["flop_s"][s] = pool.replica_flop_s
            else:
                training[s] = True
                cols["mfu_over_eta"][s] = min(pool.mfu / acc.achieved_flop_fraction, 1.0)
                cols["mem_activity"][s] = pool.mem_activity
                cols["train_tokens_per_s_per_gpu"][s] = pool.mfu * pool.peak_flop_s_per_gpu / (6.0 * m.active_params)
        return cls(inference=inference, training=training, telemetry=telemetry, overhead_s=acc.step_overhead_s, **cols)


@dataclass
class ServeResult:
    """Per tick and server (``(K, S)`` arrays) unless noted."""

    prefill_tokens: FloatArray
    decode_tokens: FloatArray
    training_tokens: FloatArray
    busy: FloatArray
    mem_activity: FloatArray
    sm_activity: FloatArray
    batch: FloatArray
    step_time_s: FloatArray
    backlog_prefill_tokens: FloatArray
    backlog_decode_tokens: FloatArray
    ttft_s: FloatArray
    tpot_s: FloatArray


def weight_bytes(c: ServerConstants, batch: FloatArray) -> FloatArray:
    """Weight bytes read per decode step at ``batch`` (all weights for dense models)."""
    return moe_weight_bytes_per_step(batch, c.dense_bytes, c.expert_bytes, c.n_experts, c.experts_per_token)


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

    Returns
    -------
    ServeResult
    """
    dt = dts[:, None]
    rep = np.where(c.replicas > 0, c.replicas, 1.0)
    bmax = np.maximum(c.max_batch, 1.0)
    c_p = prefill_time_per_token_s(c.flops_per_token, prompt_len, c.n_layers, c.d_model, c.flop_s, clock)
    t_max = decode_step_time_s(
        bmax,
        weight_bytes(c, bmax),
        c.kv_bytes,
        context_len,
        c.flops_per_token,
        c.bandwidth_b_s,
        c.flop_s,
        clock,
        c.overhead_s,
    )
    c_d = t_max / bmax
    # Per replica from here on.
    p_in = np.where(c.inference, prefill_demand / rep, 0.0)
    d_in = np.where(c.inference, decode_demand / rep, 0.0)
    qp0 = backlog_prefill / rep
    qd0 = backlog_decode / rep
    served_frac = _fluid_queue(p_in, d_in, c_p, c_d, qp0, qd0, dt)
    p_srv, d_srv, qp, qd = served_frac
    phi_p = np.minimum(p_srv * c_p / dt, 1.0)
    dec_time = dt * (1.0 - phi_p)
    lam = np.divide(d_srv, dec_time, out=np.zeros_like(d_srv), where=dec_time > 0)
    batch = _batch_for_rate(c, lam, context_len, clock)
    saturated = (qp + qd) > 0
    batch = np.where(saturated, bmax, np.minimum(batch, bmax))
    b_eff = np.where(d_srv > 0, np.maximum(batch, 1.0), 0.0)
    b_safe = np.maximum(b_eff, 1.0)
    w_eff = weight_bytes(c, b_safe)
    t_step = decode_step_time_s(
        b_safe, w_eff, c.kv_bytes, context_len, c.flops_per_token, c.bandwidth_b_s, c.flop_s, clock, c.overhead_s
    )
    busy_d = np.minimum(d_srv * t_step / b_safe / dt, 1.0 - phi_p)
    kernel_share = np.clip(1.0 - c.overhead_s / t_step, 0.0, 1.0)
    m_d = (w_eff + b_safe * context_len * c.kv_bytes) / (t_step * c.bandwidth_b_s)
    s_d = b_safe * c.flops_per_token / (t_step * c.flop_s)
    busy = phi_p + busy_d * kernel_share
    mem = busy_d * m_d
    sm = phi_p * clock + busy_d * s_d
    # Training servers: compute-bound steps, throughput proportional to clock.
    train = c.training
    tf = 1.0 if train_fraction is None else train_fraction
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
    # Latency estimates (module docstring).
    prompt_per_request = prompt_len
    if requests is not None:
        prompt_per_request = np.divide(
            prefill_demand, requests, out=np.array(prompt_len, dtype=np.float64), where=requests > 0
        )
    wait = qp * c_p + qd * c_d
    ttft = np.where(c.inference, wait + prompt_per_request * c_p, 0.0)
    tpot = np.divide(t_step, 1.0 - phi_p, out=np.full_like(t_step, np.inf), where=phi_p < 1.0)
    tpot = np.where(d_srv > 0, tpot, 0.0)
    return ServeResult(
        prefill_tokens=p_srv * rep,
        decode_tokens=d_srv * rep,
        training_tokens=train_tok,
        busy=np.clip(busy, 0.0, 1.0),
        mem_activity=np.clip(mem, 0.0, 1.0),
        sm_activity=np.clip(sm, 0.0, 1.0),
        batch=np.where(d_srv > 0, b_eff, 0.0),
        step_time_s=np.where(d_srv > 0, t_step, 0.0),
        backlog_prefill_tokens=qp * rep,
        backlog_decode_tokens=qd * rep,
        ttft_s=ttft,
        tpot_s=tpot,
    )


def _fluid_queue(
    p_in: FloatArray,
    d_in: FloatArray,
    c_p: FloatArray,
    c_d: FloatArray,
    qp0: FloatArray,
    qd0: FloatArray,
    dt: FloatArray,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Serve demand plus backlog within each tick's time; return served and backlog per tick."""
    work = p_in * c_p + d_in * c_d
    if not (np.any(qp0 > 0) or np.any(qd0 > 0)) and np.all(work <= dt):
        zeros = np.zeros_like(p_in)
        return p_in, d_in, zeros, zeros.copy()
    k_ticks = p_in.shape[0]
    p_srv = np.empty_like(p_in)
    d_srv = np.empty_like(d_in)
    qp_out = np.empty_like(p_in)
    qd_out = np.empty_like(d_in)
    qp, qd = qp0.copy(), qd0.copy()
    for k in range(k_ticks):
        tp = qp + p_in[k]
        td = qd + d_in[k]
        w = tp * c_p[k] + td * c_d[k]
        r = np.minimum(1.0, np.divide(dt[k], w, out=np.ones_like(w), where=w > 0))
        p_srv[k] = r * tp
        d_srv[k] = r * td
        qp = tp - p_srv[k]
        qd = td - d_srv[k]
        qp_out[k] = qp
        qd_out[k] = qd
    return p_srv, d_srv, qp_out, qd_out


def _batch_for_rate(c: ServerConstants, lam: FloatArray, context_len: FloatArray, clock: FloatArray) -> FloatArray:
    bmax = np.maximum(c.max_batch, 1.0)
    w = weight_bytes(c, bmax)
    args = (c.kv_bytes, context_len, c.flops_per_token, c.bandwidth_b_s, c.flop_s, clock, c.overhead_s)
    batch = decode_batch_for_rate(lam, w, *args)
    if np.any(c.expert_bytes > 0):
        for _ in range(MOE_ITERATIONS):
            w = weight_bytes(c, np.minimum(np.maximum(batch, 1.0), bmax))
            batch = decode_batch_for_rate(lam, w, *args)
    return batch
