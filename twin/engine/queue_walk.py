"""The fluid queue's tick-by-tick walk, compiled: one loop per column instead of a numpy pass per tick.

:func:`twin.engine.serving._fluid_queue` serves each tick's demand plus the backlog it starts
with. A tick that starts with a backlog depends on the tick before, so its numpy form steps all
queuing columns one tick at a time, some tens of numpy calls per tick on a few cells each: on the
heterogeneous benchmark fleets that walk was a quarter of the run. Here each column is one loop
over its ticks, compiled with numba, computing what the numpy form computes in the same order of
floating-point operations, so the result is the same to the bit
(``tests/test_queue_walk.py`` checks it against the numpy walk on random blocks and models).

It covers ranks without routed experts (:attr:`twin.physics.step_costs.StepCosts.has_experts`
false: dense, windowed-attention and hybrid-SSM models; the windows and SSM state are in the
plan's per-cell figures already); pools with experts keep the numpy walk.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import numpy as np
from numba import njit

from twin._types import FloatArray, IntArray
from twin.physics.serving import StepPlan


@njit(cache=True, nogil=True)
def _roofline(memory_s: float, compute_s: float, n: float, linear: bool) -> float:
    """:func:`twin.physics.step_costs.roofline_time_s` of one cell."""
    if linear:
        return memory_s + compute_s
    hi = max(memory_s, compute_s)
    lo = min(memory_s, compute_s)
    ratio = lo / hi if hi > 0 else 0.0
    return hi * (1.0 + ratio**n) ** (1.0 / n)


@njit(cache=True, nogil=True)
def _walk(
    p_in: np.ndarray,
    d_in: np.ndarray,
    r0: np.ndarray,
    dts: np.ndarray,
    most: np.ndarray,
    qp0: np.ndarray,
    qd0: np.ndarray,
    budget: np.ndarray,
    cell: np.ndarray,
    rank: np.ndarray,
    linear: bool,
    out: np.ndarray,
) -> None:
    """Walk ``U`` columns over ``K`` ticks; ``out[i, k, u]``: prefill, decode served and their backlogs.

    ``p_in`` ... ``most`` are ``(K, U)``, ``qp0``, ``qd0``, ``budget`` ``(U,)``; ``cell[f, k, u]``
    the plan's per-cell figures (FLOP/s, attention FLOPs per sequence and per prompt token,
    attention bytes per sequence), ``rank[f, u]`` the per-rank ones (:data:`RANK_FIGURES`).
    """
    n_k, n_u = p_in.shape
    for u in range(n_u):
        qp, qd = qp0[u], qd0[u]
        carry = qp > 0 or qd > 0
        dense_read_s, dec_fpt, pre_fpt, n, kv_bw = rank[0, u], rank[1, u], rank[2, u], rank[3, u], rank[4, u]
        c_steps, c_bytes, link_bw, link_lat = rank[5, u], rank[6, u], rank[7, u], rank[8, u]
        host_s, host_per_seq, b_tok = rank[9, u], rank[10, u], budget[u]
        for k in range(n_k):
            p, d = p_in[k, u], d_in[k, u]
            if carry:
                tp, td = qp + p, qd + d
                # _capacity: a full rank at this mix (full_rank), then the share of it served.
                decoding = td > 0
                rho = tp / td if decoding else 0.0
                cap = min(most[k, u], b_tok / (1.0 + rho))
                b = cap if decoding else 0.0
                c = rho * b if decoding else b_tok
                # StepPlan.time_s(b, c) for ranks without routed experts.
                fl = cell[0, k, u]
                tokens = b + c
                t_dense = _roofline(dense_read_s, (b * dec_fpt + c * pre_fpt) / fl, n, linear)
                attn_flops = b * cell[1, k, u] + c * cell[2, k, u]
                attn_bytes = b * cell[3, k, u]
                t_attn = _roofline(attn_bytes / kv_bw, attn_flops / fl, n, linear)
                t_coll = c_steps * link_lat + tokens * c_bytes / link_bw
                t_host = host_s + host_per_seq * b
                t = t_dense + t_attn + t_coll + t_host if tokens > 0 else 0.0
                made = (b if decoding else c) * (dts[k, u] / t if t > 0 else 0.0)
                want = td if decoding else tp
                r = min(1.0, made / want if want > 0 else 1.0)
            else:
                tp, td, r = p, d, r0[k, u]
            p_s, d_s = r * tp, r * td
            qp, qd = tp - p_s, td - d_s
            out[0, k, u], out[1, k, u], out[2, k, u], out[3, k, u] = p_s, d_s, qp, qd
            carry = qp > 0 or qd > 0


#: The per-rank figures :func:`_walk` takes, in its order: of the plan, its costs or its device.
RANK_FIGURES = (
    "dense_read_s",
    "decode_flops_per_token",
    "prefill_flops_per_token",
    "roofline_exponent",
    "kv_bandwidth_b_s",
    "collective_steps",
    "collective_bytes_per_token",
    "link_bandwidth_b_s",
    "link_latency_s",
    "overhead_s",
    "overhead_per_sequence_s",
)
#: The per-cell figures of the plan :func:`_walk` takes, in its order.
CELL_FIGURES = ("flop_s", "attn_flops_per_seq", "attn_flops_per_prompt_token", "attn_bytes_per_seq")


def walk_queues(
    plan: StepPlan,
    part: Callable[[np.ndarray], np.ndarray],
    cols: IntArray,
    token_budget: FloatArray,
    qp0: FloatArray,
    qd0: FloatArray,
    p_in: FloatArray,
    d_in: FloatArray,
    r0: FloatArray,
    dt: FloatArray,
    most: FloatArray,
) -> FloatArray:
    """The columns ``cols`` of a block served tick by tick: ``(4, K, U)`` prefill, decode, their backlogs.

    Arguments as :func:`twin.engine.serving._fluid_queue` has them (per rank: ``p_in``, ``d_in``,
    ``most`` and ``r0``, the share served of a tick that starts without a backlog, per tick and
    column; ``dt`` per tick; ``token_budget``, ``qp0``, ``qd0`` per column); ``part`` takes the
    columns ``cols`` of a per-cell figure, ``(K, U)`` flattened. The columns' ranks route no experts.
    """
    n_u = cols.size
    n_k = np.shape(p_in)[0]
    shape = (n_k, n_u)
    owners = (plan, plan.costs, plan.device)
    rank = np.empty((len(RANK_FIGURES), n_u))
    for i, name in enumerate(RANK_FIGURES):
        x = np.asarray(getattr(next(o for o in owners if hasattr(o, name)), name), dtype=np.float64)
        rank[i] = x[cols] if x.ndim else x
    cell = np.empty((len(CELL_FIGURES), n_k, n_u))
    for i, name in enumerate(CELL_FIGURES):
        cell[i] = part(getattr(plan, name)).reshape(shape)

    def per_column(x: FloatArray) -> FloatArray:
        return np.ascontiguousarray(np.broadcast_to(np.asarray(x, dtype=np.float64), np.shape(token_budget))[cols])

    out = np.empty((4, n_k, n_u))
    cast(Callable[..., None], _walk)(  # (numba's dispatcher types its own call)
        *(part(np.asarray(x, dtype=np.float64)).reshape(shape) for x in (p_in, d_in, r0, dt, most)),
        per_column(qp0),
        per_column(qd0),
        per_column(token_budget),
        cell,
        rank,
        bool(plan.device.linear_roofline),
        out,
    )
    return out
