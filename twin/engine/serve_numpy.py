"""The serving solve in numpy: whole-array passes over a block's cells (the model: :mod:`twin.engine.serving`).

Each step of the model runs over every cell at once: the plan of each step, the fluid queue and
its walk from one backlogged tick to the next (:func:`_fluid_queue`), the batch that serves the
rates, the step and its activities, the latency estimates. :mod:`twin.engine.serve_kernel` is the
same solve compiled, cell by cell.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from twin._types import BoolArray, FloatArray, IntArray
from twin.engine.server_constants import ServerConstants
from twin.physics.serving import StepPlan, sequences_that_fit
from twin.physics.serving_rates import batch_for_rates, prefill_chunk_for_rate

#: What the solve gives per cell, by key (numpy and compiled alike): the outputs
#: :func:`twin.engine.serving._result` turns into a :class:`~twin.engine.server_constants.ServeResult`.
OUTPUTS = (
    "prefill",
    "decode",
    "busy",
    "power_busy",
    "mem",
    "sm",
    "batch",
    "step",
    "backlog_prefill",
    "backlog_decode",
    "ttft",
    "kv_w",
    "rank_backlog_prefill",
    "rank_backlog_decode",
)
#: A queue's slots are compacted when fewer than this share of them still queue (:func:`_fluid_queue`).
COMPACT_BELOW = 0.5


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


def serve_numpy(
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
    """:func:`twin.engine.serving.serve_block`'s solve in numpy: whole-array passes over the block's cells.

    The other columns come out idle (zeros).
    """
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
