"""The serving solve of :mod:`twin.engine.serving`, compiled: one loop per column over its ticks.

:func:`twin.engine.serve_numpy.serve_numpy` solves a block of ticks by columns in numpy: some
hundreds of whole-array passes per cell (the plan of each step, the fluid queue, the batch that
serves the rates by false position, the step and its activities, the latency estimates), and the
queue's walk from one backlogged tick to the next some tens of numpy calls per tick. Here each
column is one compiled loop (numba) over its ticks that computes, cell by cell, what those passes
compute, with the same floating-point operations in the same order: the result is the numpy
solve's to the bit where the roofline is the sum (``n = 1``: H100 and the accelerators without
serving measurements), and to the last bit of a power where it is smooth (numpy's vectorised power
and the C library's differ there now and then). ``tests/test_serve_kernel.py`` holds the two
against each other on random blocks of every kind of dense model and both rooflines.

It covers inference columns whose ranks route no experts (dense, windowed-attention and
hybrid-SSM models, disaggregated or not); columns with routed experts and the training and
replay columns keep the numpy solve. Which solve a column takes depends on that column only, so a
column comes out the same whatever others are solved with it (the governor re-solves columns
alone; threads split them).

Under the power governor the compiled columns are governed in the same pass as their queues by
:mod:`twin.engine.governor_kernel`, which calls this module's cell.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import numpy as np
from numba import njit

from twin._types import FloatArray, IntArray
from twin.physics.serving_rates import (
    PREFILL_CHUNK_RTOL,
    PREFILL_CHUNK_STEPS,
    RATE_SOLVER_RTOL,
    RATE_SOLVER_STEPS,
)

#: The per-column figures the kernel takes, in its order: of the
#: :class:`twin.engine.server_constants.ServerConstants`, then their :class:`StepCosts`, then their
#: :class:`ServingDevice`.
CONSTANT_FIGURES = (
    "ranks",
    "max_batch",
    "token_budget",
    "kv_free_bytes",
    "kv_bytes_per_token",
    "kv_s_per_token",
    "kv_latency_s",
    "kv_j_per_byte",
)
COST_FIGURES = (
    "dense_bytes",
    "decode_flops_per_token",
    "prefill_flops_per_token",
    "kv_bytes_per_token",
    "window_kv_bytes_per_token",
    "window_tokens",
    "attention_flops",
    "window_attention_flops",
    "prefill_attention_flops",
    "prefill_window_attention_flops",
    "state_bytes_per_sequence",
    "collective_steps",
    "collective_bytes_per_token",
)
DEVICE_FIGURES = (
    "bandwidth_b_s",
    "kv_bandwidth_b_s",
    "peak_bandwidth_b_s",
    "flop_s",
    "link_bandwidth_b_s",
    "link_latency_s",
    "overhead_s",
    "overhead_per_sequence_s",
    "gap_power_fraction",
    "roofline_exponent",
)
#: What the kernel returns per cell, in its order: the numpy solve's keys
#: (:data:`twin.engine.serve_numpy.OUTPUTS`; a test holds the two equal; the kernel imports nothing of
#: the engine).
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
#: The :class:`~twin.engine.server_constants.ServeResult` field each of :data:`OUTPUTS` becomes (a previous
#: solve's cells are copied from them).
RESULT_FIELDS = (
    "prefill_tokens",
    "decode_tokens",
    "busy",
    "power_busy",
    "mem_activity",
    "sm_activity",
    "batch",
    "step_time_s",
    "backlog_prefill_tokens",
    "backlog_decode_tokens",
    "ttft_s",
    "kv_transfer_w",
    "rank_backlog_prefill",
    "rank_backlog_decode",
)


#: A cell's plan (:func:`_cell`): FLOP/s at its clock, the dense weights' read time, attention
#: FLOPs per sequence and per prompt token, bytes read per sequence.
Plan = tuple[float, float, float, float, float]

# Indices of the figures in a column's row of :func:`constants` (module globals: numba compiles
# them in as constants).
RANKS, MAX_BATCH, TOKEN_BUDGET, KV_FREE, KV_SENT, KV_S_TOKEN, KV_LATENCY, KV_J_BYTE = range(8)
(
    DENSE_BYTES,
    DECODE_FLOPS,
    PREFILL_FLOPS,
    KV_BYTES,
    WINDOW_KV_BYTES,
    WINDOW_TOKENS,
    ATTN_FLOPS,
    WINDOW_ATTN_FLOPS,
    PREFILL_ATTN_FLOPS,
    PREFILL_WINDOW_ATTN_FLOPS,
    STATE_BYTES,
    COLL_STEPS,
    COLL_BYTES,
) = range(8, 21)
(
    BANDWIDTH,
    KV_BANDWIDTH,
    PEAK_BANDWIDTH,
    FLOP_S,
    LINK_BANDWIDTH,
    LINK_LATENCY,
    OVERHEAD,
    OVERHEAD_PER_SEQ,
    GAP_POWER,
    ROOFLINE_N,
) = range(21, 31)


@njit(cache=True, nogil=True, error_model="numpy")
def _roofline(memory_s: float, compute_s: float, n: float, linear: bool) -> float:
    """:func:`twin.physics.step_costs.roofline_time_s` of one cell."""
    if linear:
        return memory_s + compute_s
    hi = max(memory_s, compute_s)
    lo = min(memory_s, compute_s)
    ratio = lo / hi if hi > 0 else 0.0
    return hi * (1.0 + ratio**n) ** (1.0 / n)


@njit(cache=True, nogil=True, error_model="numpy")
def _terms(b: float, p: float, k: np.ndarray, q: Plan, linear: bool) -> tuple[float, float, float, float, float]:
    """``StepPlan._terms`` without experts: ``(t_dense, t_attn, t_coll, t_host, tokens)``.

    ``k``: the column's figures (:func:`constants`), ``q``: the cell's plan (:data:`Plan`).
    """
    tokens = b + p
    dense_flops = b * k[DECODE_FLOPS] + p * k[PREFILL_FLOPS]
    t_dense = _roofline(q[1], dense_flops / q[0], k[ROOFLINE_N], linear)
    attn_flops = b * q[2] + p * q[3]
    attn_bytes = b * q[4]
    t_attn = _roofline(attn_bytes / k[KV_BANDWIDTH], attn_flops / q[0], k[ROOFLINE_N], linear)
    t_coll = k[COLL_STEPS] * k[LINK_LATENCY] + tokens * k[COLL_BYTES] / k[LINK_BANDWIDTH]
    t_host = k[OVERHEAD] + k[OVERHEAD_PER_SEQ] * b
    return t_dense, t_attn, t_coll, t_host, tokens


@njit(cache=True, nogil=True, error_model="numpy")
def _time_s(b: float, p: float, k: np.ndarray, q: Plan, linear: bool) -> float:
    """``StepPlan.time_s(b, p)`` of one cell."""
    t_dense, t_attn, t_coll, t_host, tokens = _terms(b, p, k, q, linear)
    return t_dense + t_attn + t_coll + t_host if tokens > 0 else 0.0


@njit(cache=True, nogil=True, error_model="numpy")
def _full_rank(
    budget: float, prefill: float, decode: float, most: float, k: np.ndarray, q: Plan, linear: bool
) -> tuple[float, float, float]:
    """:func:`twin.engine.serve_numpy.full_rank` of one cell: (sequences, prompt tokens, step time)."""
    decoding = decode > 0
    rho = prefill / decode if decoding else 0.0
    cap = min(most, budget / (1.0 + rho))
    seqs = cap if decoding else 0.0
    chunk = rho * seqs if decoding else budget
    return seqs, chunk, _time_s(seqs, chunk, k, q, linear)


@njit(cache=True, nogil=True, error_model="numpy")
def _false_position_step(
    i: int, x: float, fx: float, lo: float, hi: float, f_lo: float, f_hi: float, side: float
) -> tuple[float, float, float, float, float]:
    """One cell's bracket after the point ``x`` (residual ``fx``) of step ``i`` of ``_false_position``."""
    up = fx > 0
    down = fx <= 0
    if up:
        hi, f_hi = x, fx
    if down:
        lo, f_lo = x, fx
    if i > 0:
        f_lo = f_lo * (0.5 if (up and side > 0) else 1.0)
        f_hi = f_hi * (0.5 if (down and side < 0) else 1.0)
    side = (1.0 if up else 0.0) - (1.0 if down else 0.0)
    return lo, hi, f_lo, f_hi, side


@njit(cache=True, nogil=True, error_model="numpy")
def _secant(lo: float, hi: float, f_lo: float, f_hi: float) -> float:
    """The false-position point of a bracket, clipped to it (``np.clip``)."""
    return min(max((lo * f_hi - hi * f_lo) / (f_hi - f_lo), lo), hi)


@njit(cache=True, nogil=True, error_model="numpy")
def _batch_for_rates(
    lam_d: float, lam_p: float, most: float, k: np.ndarray, q: Plan, linear: bool
) -> tuple[float, bool, float, float, float, float, float]:
    """:func:`twin.physics.serving_rates.batch_for_rates` of one cell, and the step there.

    Out: the batch ``x``; whether the step's :func:`_terms` at ``(x, rho x)`` were computed on the
    way (the last point tried, or the bracket's top where the rates reach it), and those terms.
    """
    lam = max(lam_d, 0.0)
    rho = lam_p / lam if lam > 0 else 0.0
    hi = most
    tiny = max(hi * 1e-9, 1e-12)
    lo = tiny
    f_lo = lo - lam * _time_s(lo, rho * lo, k, q, linear)
    t_dense, t_attn, t_coll, t_host, tokens = _terms(hi, rho * hi, k, q, linear)
    f_hi = hi - lam * (t_dense + t_attn + t_coll + t_host if tokens > 0 else 0.0)
    reach = lam > 0 and f_hi > 0
    x = 0.0 if (reach and f_lo >= 0) else (hi if lam > 0 else 0.0)
    known = lam > 0 and not (reach and f_lo >= 0)  # x is the top, whose terms these are
    todo = reach and f_lo < 0
    side = 0.0
    rtol = RATE_SOLVER_RTOL
    for i in range(RATE_SOLVER_STEPS):
        if not todo:
            break
        x = _secant(lo, hi, f_lo, f_hi)
        t_dense, t_attn, t_coll, t_host, tokens = _terms(x, rho * x, k, q, linear)
        known = True
        fx = x - lam * (t_dense + t_attn + t_coll + t_host if tokens > 0 else 0.0)
        lo, hi, f_lo, f_hi, side = _false_position_step(i, x, fx, lo, hi, f_lo, f_hi, side)
        todo = (hi - lo > rtol * max(hi, 1.0)) and (abs(fx) > rtol * max(x, 1.0))
    return x, known, t_dense, t_attn, t_coll, t_host, tokens


@njit(cache=True, nogil=True, error_model="numpy")
def _prefill_chunk(one: float, budget: float, rate: float, k: np.ndarray, q: Plan, linear: bool) -> float:
    """:func:`twin.physics.serving_rates.prefill_chunk_for_rate` of one cell."""
    lo, hi = one, budget
    f_lo = lo - rate * _time_s(0.0, lo, k, q, linear)
    f_hi = hi - rate * _time_s(0.0, hi, k, q, linear)
    x = lo if f_lo >= 0 else hi
    todo = f_lo < 0 and f_hi > 0
    side = 0.0
    for i in range(PREFILL_CHUNK_STEPS):
        if not todo:
            break
        x = _secant(lo, hi, f_lo, f_hi)
        fx = x - rate * _time_s(0.0, x, k, q, linear)
        lo, hi, f_lo, f_hi, side = _false_position_step(i, x, fx, lo, hi, f_lo, f_hi, side)
        todo = (hi - lo > 0.0 * max(hi, 1.0)) and (abs(fx) > PREFILL_CHUNK_RTOL * max(x, 0.0))
    return x


@njit(cache=True, nogil=True, error_model="numpy")
def _windowed(context: float, full: float, windowed: float, window: float) -> float:
    """``twin.physics.serving._windowed`` of one cell."""
    seen = min(context, window) if window > 0 else context
    return full * context + windowed * seen


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _cell(
    pre: float,
    dec: float,
    length_in: float,
    ctx_in: float,
    clk: float,
    req: float,
    has_requests: bool,
    dt: float,
    qp: float,
    qd: float,
    k: np.ndarray,
    dense_read_s: float,
    linear: bool,
    res: np.ndarray,
) -> None:
    """One cell of :func:`_serve`: its :data:`OUTPUTS` into ``res``, from the backlogs per rank it starts with.

    ``k``: the column's figures; ``dense_read_s``: its dense weights' read time. The cell's plan
    ``q`` is a tuple (values, not memory the compiler must reload after every store).
    """
    rep, budget = k[RANKS], k[TOKEN_BUDGET]
    # StepPlan.at: the cell's context, prompt position and clock.
    ctx, length = ctx_in, length_in
    x = 0.5 * length
    window = k[WINDOW_TOKENS]
    kv = _windowed(ctx, k[KV_BYTES], k[WINDOW_KV_BYTES], window)
    q = (  # FLOP/s, dense read time, attention FLOPs per sequence and per prompt token, bytes per sequence
        k[FLOP_S] * min(max(clk, 1e-6), 1.0),
        dense_read_s,
        _windowed(ctx, k[ATTN_FLOPS], k[WINDOW_ATTN_FLOPS], window),
        _windowed(x, k[PREFILL_ATTN_FLOPS], k[PREFILL_WINDOW_ATTN_FLOPS], window),
        kv + k[STATE_BYTES],
    )
    # max_sequences: the batch, or what the KV cache holds.
    per_seq = kv + 0.5 * k[STATE_BYTES]
    free = max(k[KV_FREE], 0.0)
    most = min(k[MAX_BATCH], free / per_seq if per_seq > 0 else np.inf)
    # The fluid queue: this tick's demand plus the backlog it starts with (_fluid_queue).
    p_in, d_in = pre / rep, dec / rep
    tp, td = (qp + p_in, qd + d_in) if (qp > 0 or qd > 0) else (p_in, d_in)
    seqs, chunk, st = _full_rank(budget, tp, td, most, k, q, linear)
    decoding = td > 0
    made = (seqs if decoding else chunk) * (dt / st if st > 0 else 0.0)
    want = td if decoding else tp
    r = min(1.0, made / want if want > 0 else 1.0)
    p_srv, d_srv = r * tp, r * td
    qp, qd = tp - p_srv, td - d_srv
    # The batch that serves the rates, and the step it runs.
    lam_d, lam_p = d_srv / dt, p_srv / dt
    seqs, known, t_dense, t_attn, t_coll, t_host, tokens = _batch_for_rates(lam_d, lam_p, most, k, q, linear)
    mix = lam_p / lam_d if lam_d > 0 else 0.0
    chunk = mix * seqs  # (rho x: the batch's own step, whose terms may be known, where lam_d > 0)
    decoding = d_srv > 0
    if decoding and seqs < 1.0:  # single-sequence steps part of the time
        seqs, chunk = 1.0, mix
        known = False
    if not decoding and p_srv > 0:  # prompt-only
        chunk = min(budget, max(length, 1.0))
        chunk = _prefill_chunk(chunk, max(budget, chunk), lam_p, k, q, linear)
        known = False
    # StepPlan.step and the Step's activities (no experts: their terms add zeros).
    if not (known and lam_d > 0):
        t_dense, t_attn, t_coll, t_host, tokens = _terms(seqs, chunk, k, q, linear)
    if tokens > 0:
        kernel_s = t_dense + 0.0 + t_attn
        moved = k[DENSE_BYTES] + 0.0 + seqs * q[4]
        t_step = t_dense + t_attn + t_coll + t_host
    else:
        kernel_s = moved = t_step = 0.0
    flops = (seqs * k[DECODE_FLOPS] + chunk * k[PREFILL_FLOPS]) + 0.0 + (seqs * q[2] + chunk * q[3])
    ran = t_step > 0
    busy = min(max(kernel_s / t_step, 0.0), 1.0) if ran else 0.0
    power_busy = busy + k[GAP_POWER] * (1.0 - busy) if ran else 0.0
    t_or_inf = t_step if ran else np.inf
    mem = min(max(moved / (t_or_inf * k[PEAK_BANDWIDTH]), 0.0), 1.0)
    sm = min(max(flops / (t_or_inf * k[FLOP_S]) + 0.0, 0.0), 1.0)
    made = seqs if decoding else chunk
    rate = lam_d if decoding else lam_p
    duty = min(max(rate * t_step / made if made > 0 else 0.0, 0.0), 1.0)
    # Latency: the queue left drains at a full rank's capacity, then the prompt joins a step.
    ppr = length
    if has_requests and req > 0:
        ppr = pre / req
    wait = 0.0
    if qp > 0 or qd > 0:
        f_seqs, f_chunk, t_full = _full_rank(budget, p_in + qp, d_in + qd, most, k, q, linear)
        capacity = (f_seqs + f_chunk) / t_full if t_full > 0 else 0.0
        wait = (qp + qd) / capacity if capacity > 0 else 0.0
    ttft = wait + _time_s(seqs, chunk + ppr, k, q, linear)
    ttft = ttft + ((k[KV_LATENCY] + k[KV_S_TOKEN] * ppr) if p_srv > 0 else 0.0)
    res[0] = p_srv * rep
    res[1] = d_srv * rep
    res[2] = duty * busy
    res[3] = duty * power_busy
    res[4] = duty * mem
    res[5] = duty * sm
    res[6] = seqs if decoding else 0.0
    res[7] = t_step if decoding else 0.0
    res[8] = qp * rep
    res[9] = qd * rep
    res[10] = ttft
    res[11] = p_srv * rep * k[KV_SENT] * k[KV_J_BYTE] / dt
    res[12] = qp
    res[13] = qd


@njit(cache=True, nogil=True, error_model="numpy")
def _serve(
    prefill: np.ndarray,
    decode: np.ndarray,
    prompt_len: np.ndarray,
    context_len: np.ndarray,
    clock: np.ndarray,
    requests: np.ndarray,
    has_requests: bool,
    dts: np.ndarray,
    backlog: np.ndarray,
    consts: np.ndarray,
    linear: bool,
    prev_clock: np.ndarray,
    prev: np.ndarray,
    has_prev: bool,
    columns: np.ndarray,
    out: np.ndarray,
) -> None:
    """Serve the ``columns`` of ``U`` over ``K`` ticks into ``out[o, k, u]`` (:data:`OUTPUTS`; others untouched).

    Per cell ``(K, U)``: ``prefill`` ... ``requests``; per tick ``dts``; per column ``backlog``
    ``(2, U)`` (prefill, decode at the start) and ``consts`` ``(F, U)``, the figures of
    :data:`CONSTANT_FIGURES`, :data:`COST_FIGURES` and :data:`DEVICE_FIGURES` in that order.
    ``has_prev``: ``prev`` ``(O, K, U)`` is a solve of the same cells at the clocks ``prev_clock``;
    a cell at the same clock that starts with the same backlogs per rank is that solve's cell
    (its inputs are the same), copied.
    """
    n_k = prefill.shape[0]
    for u in columns:
        k = consts[:, u].copy()
        rep = k[RANKS]
        dense_read_s = k[DENSE_BYTES] / k[BANDWIDTH]
        qp = backlog[0, u] / rep
        qd = backlog[1, u] / rep
        qp_before, qd_before = qp, qd  # the backlogs the previous solve's tick started with
        for t in range(n_k):
            if has_prev:
                if clock[t, u] == prev_clock[t, u] and qp == qp_before and qd == qd_before:
                    for o in range(out.shape[0]):
                        out[o, t, u] = prev[o, t, u]
                    qp, qd = prev[12, t, u], prev[13, t, u]
                    qp_before, qd_before = qp, qd
                    continue
                qp_before, qd_before = prev[12, t, u], prev[13, t, u]
            _cell(
                prefill[t, u],
                decode[t, u],
                prompt_len[t, u],
                context_len[t, u],
                clock[t, u],
                requests[t, u],
                has_requests,
                dts[t],
                qp,
                qd,
                k,
                dense_read_s,
                linear,
                out[:, t, u],
            )
            qp, qd = out[12, t, u], out[13, t, u]


def serve(
    consts: FloatArray,
    linear: bool,
    prefill_demand: FloatArray,
    decode_demand: FloatArray,
    prompt_len: FloatArray,
    context_len: FloatArray,
    clock: FloatArray,
    backlog_prefill: FloatArray,
    backlog_decode: FloatArray,
    dt: FloatArray,
    requests: FloatArray | None,
    previous: tuple[FloatArray, Any] | None = None,
    columns: IntArray | None = None,
) -> dict[str, FloatArray]:
    """:func:`twin.engine.serving._serve_inference` of the ``columns`` (None: all) the compiled solve takes.

    ``consts``: the columns' figures ``(F, S)`` (:data:`CONSTANT_FIGURES`, :data:`COST_FIGURES`,
    :data:`DEVICE_FIGURES`); ``linear``: whether every roofline is the sum; ``previous``: the clocks
    and :class:`~twin.engine.server_constants.ServeResult` of a solve of the same cells (its
    :data:`RESULT_FIELDS` are read). The other arguments are that function's, over all ``S``
    columns: the outputs are too, zeros on the columns not solved.
    """
    shape, cells, demand, after = _inputs(
        consts, prefill_demand, decode_demand, prompt_len, context_len, backlog_prefill, backlog_decode, dt, requests
    )
    solved = np.arange(shape[1]) if columns is None else np.asarray(columns, dtype=np.intp)
    out = (np.empty if columns is None else np.zeros)((len(OUTPUTS), *shape))
    prev_clock, prev = _previous(previous, shape, cells)
    cast(Callable[..., None], _serve)(  # (numba's dispatcher types its own call)
        *demand, cells(clock), *after, bool(linear), prev_clock, prev, previous is not None, solved, out
    )
    return dict(zip(OUTPUTS, out, strict=True))


def _previous(
    previous: tuple[Any, ...] | None, shape: tuple[int, int], cells: Callable[[FloatArray], FloatArray]
) -> tuple[FloatArray, FloatArray]:
    """A previous solve's clocks ``(K, U)`` and its :data:`RESULT_FIELDS` ``(O, K, U)`` as :func:`_serve` takes them.

    ``previous``: its clocks and result, of these columns.
    """
    if previous is None:
        return np.zeros((1, 1)), np.zeros((1, 1, 1))
    prev = np.array([np.broadcast_to(getattr(previous[1], f), shape) for f in RESULT_FIELDS], dtype=np.float64)
    return cells(previous[0]), prev


def _inputs(
    consts: FloatArray,
    prefill_demand: FloatArray,
    decode_demand: FloatArray,
    prompt_len: FloatArray,
    context_len: FloatArray,
    backlog_prefill: FloatArray,
    backlog_decode: FloatArray,
    dt: FloatArray,
    requests: FloatArray | None,
) -> tuple[tuple[int, int], Callable[[FloatArray], FloatArray], tuple[FloatArray, ...], tuple[object, ...]]:
    """What :func:`_serve` takes: the block's shape, a cast of per-cell figures to it, and its arguments.

    The demand before the clocks (prefill, decode, prompt and context lengths) and what follows
    them (requests, whether there are any, tick lengths, starting backlogs, the columns' figures).
    """
    n_s = consts.shape[1]
    n_k = np.shape(dt)[0]
    shape = (n_k, n_s)

    def cells(x: FloatArray) -> FloatArray:
        return np.ascontiguousarray(np.broadcast_to(np.asarray(x, dtype=np.float64), shape))

    backlog = np.array(
        [np.broadcast_to(np.asarray(b, dtype=np.float64), (n_s,)) for b in (backlog_prefill, backlog_decode)]
    )
    dts = np.ascontiguousarray(np.broadcast_to(np.asarray(dt, dtype=np.float64), (n_k, 1))[:, 0])
    demand = tuple(cells(x) for x in (prefill_demand, decode_demand, prompt_len, context_len))
    after = (cells(requests if requests is not None else np.zeros(())), requests is not None, dts, backlog, consts)
    return shape, cells, demand, after
