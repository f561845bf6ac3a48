"""The compiled serving solve under the power governor: each tick's clock found in the queue's own pass.

Under the power governor (:func:`_serve_governed`) a column the compiled solve covers
(:mod:`twin.engine.serve_kernel`, whose cell it calls) finds each tick's clock in the same pass as
its queue, from the backlogs that tick really starts with: the highest clock whose power, at the
activity the cell has there, fits its limit (:func:`twin.physics.governor.governed_clock`'s
definition), each trial the cell solved again. The numpy governor steps every cell of a block
together instead, and a cell behind a queue whose backlog moves while it searches can end below
its limit after its last step; here every governed cell ends within ``CLOCK_EPS`` of a clock that
does not fit. So where the governor binds, a compiled run is not the numpy run to the bit: on an
hour of ``day-trace-10k`` (41 600 governed cells) the compiled cells sit below their limit by at
most 1.1e-7 (median 5.6e-9), the numpy steps' by up to 0.15 (34 cells more than 1e-3), and the
runs' energy differs by 1.4e-7. The engine governs a block's columns in its top solve's own arrays
(:func:`serve_governed_into`): the kernel reads the demand and the top solve's cells where they lie
and writes only the cells it solves again, so a cell the governor leaves at its top clock is
neither copied in nor out.

The columns that serve nothing (training, replay) are governed in closed form
(:func:`twin.engine.clock_solves._governed_held`) by
:func:`twin.engine.power_kernel.clocks_for_limits`, the cell-by-cell
:func:`twin.physics.accelerator.clock_for_power_limit`; :mod:`twin.engine.power_kernel` holds the
board's power of one cell the governor here calls too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import numpy as np
from numba import njit

from twin._types import BoolArray, FloatArray, IntArray
from twin.engine.power_kernel import cell_power_w, power_figures
from twin.engine.serve_kernel import (
    BANDWIDTH,
    DENSE_BYTES,
    OUTPUTS,
    RANKS,
    RESULT_FIELDS,
    _cell,
    _false_position_step,
    _secant,
)
from twin.physics.governor import CLOCK_EPS, CONVERGED_RTOL, FIT_RTOL

#: Most false-position steps of a governed cell's clock (it settles in a few; then the best clock that fits).
GOVERNOR_STEPS = 40


@njit(cache=True, nogil=True, error_model="numpy")
def _clip01(x: float) -> float:
    """``np.clip(x, 0.0, 1.0)`` of one value (NaN stays NaN, ``-0.0`` stays ``-0.0``)."""
    return 0.0 if x < 0.0 else (1.0 if x > 1.0 else x)


@njit(cache=True, nogil=True, error_model="numpy")
def _serve_governed(
    prefill: np.ndarray,
    decode: np.ndarray,
    prompt_len: np.ndarray,
    context_len: np.ndarray,
    requests: np.ndarray,
    has_requests: bool,
    dts: np.ndarray,
    backlog: np.ndarray,
    consts: np.ndarray,
    top: np.ndarray,
    limit: np.ndarray,
    linear: bool,
    pw: np.ndarray,
    f_min: float,
    cols: np.ndarray,
    has_prev: bool,
    prev_clock: np.ndarray,
    r0: np.ndarray,
    r1: np.ndarray,
    r2: np.ndarray,
    r3: np.ndarray,
    r4: np.ndarray,
    r5: np.ndarray,
    r6: np.ndarray,
    r7: np.ndarray,
    r8: np.ndarray,
    r9: np.ndarray,
    r10: np.ndarray,
    r11: np.ndarray,
    r12: np.ndarray,
    r13: np.ndarray,
    r_tpot: np.ndarray,
    clock: np.ndarray,
    moved: np.ndarray,
) -> None:
    """:func:`_serve` under the power governor: each cell at the highest clock whose power fits its limit.

    Tick by tick, each cell is served from the backlogs its tick really starts with (those the
    tick before left at its own governed clock): at its top clock ``top`` where its power, at the
    activity it has there, fits ``limit`` (to :data:`FIT_RTOL`); otherwise at the clock in
    ``[f_min, top]`` where it meets the limit to :data:`CONVERGED_RTOL` from below (Illinois false
    position on the power less the limit, the cell solved again at each clock), or at ``f_min``
    where even that does not fit. ``clock`` ``(K, U)`` receives the clocks; ``moved`` ``(K,)`` is
    set where a cell written leaves other backlogs than those it was written over.

    The ``U`` columns are the columns ``cols`` of the block's arrays ``(K, W)``: the demand
    (``prefill`` ... ``requests``) and the result, ``r0`` ... ``r13`` its :data:`RESULT_FIELDS`
    and ``r_tpot`` its TPOT, written in place: a cell solved here gets its :data:`OUTPUTS` there
    (busy, power-busy, memory and SM activity clipped to ``[0, 1]``, the step time in both step
    and TPOT, as :func:`twin.engine.serving._result` gives an inference column). ``backlog``
    ``(2, U)``, ``consts`` ``(F, U)``, ``top``, ``limit`` ``(K, U)`` are the columns' own.
    ``has_prev``: the result arrays hold a solve of these cells at the clocks ``prev_clock``
    ``(K, U)`` (the top clock, mostly): a cell at that clock that starts with its backlogs per rank
    is that solve's (its inputs are the same) and, where it fits, is left as it is; only the cells
    the governor lowers, and the ticks their queues carry that to, are solved and written.
    """
    n_k, n_u = top.shape
    n_o = len(OUTPUTS)
    trial = np.empty(n_o)
    best = np.empty(n_o)
    for u in range(n_u):
        w = cols[u]
        k = consts[:, u].copy()
        rep = k[RANKS]
        dense_read_s = k[DENSE_BYTES] / k[BANDWIDTH]
        qp = backlog[0, u] / rep
        qd = backlog[1, u] / rep
        qp_before, qd_before = qp, qd  # the backlogs the previous solve's tick started with
        for t in range(n_k):
            pre, dec, length, ctx, dt = prefill[t, w], decode[t, w], prompt_len[t, w], context_len[t, w], dts[t]
            req = requests[t, w]
            lim = limit[t, u]
            slack, reach = FIT_RTOL * abs(lim), CONVERGED_RTOL * abs(lim)
            f = max(min(top[t, u], 1.0), f_min)
            solved = not (has_prev and f == prev_clock[t, u] and qp == qp_before and qd == qd_before)
            if not solved:  # the previous solve's cell, as it is there
                best[0], best[1], best[2], best[3] = r0[t, w], r1[t, w], r2[t, w], r3[t, w]
                best[4], best[5], best[6], best[7] = r4[t, w], r5[t, w], r6[t, w], r7[t, w]
                best[8], best[9], best[10], best[11] = r8[t, w], r9[t, w], r10[t, w], r11[t, w]
                best[12], best[13] = r12[t, w], r13[t, w]
            else:
                _cell(pre, dec, length, ctx, f, req, has_requests, dt, qp, qd, k, dense_read_s, linear, best)
            if has_prev:  # (read before this tick's cell is written over it)
                qp_before, qd_before = r12[t, w], r13[t, w]
            r_hi = cell_power_w(best[3], best[4], best[5], f, pw) - lim
            if r_hi > slack:  # over its limit at the top clock: the governor's search
                solved = True
                hi = f
                f = f_min
                _cell(pre, dec, length, ctx, f, req, has_requests, dt, qp, qd, k, dense_read_s, linear, best)
                r_lo = cell_power_w(best[3], best[4], best[5], f, pw) - lim
                if r_lo <= slack and r_lo < -reach:  # the floor fits below the limit: the crossing between
                    lo = f
                    side = 0.0
                    for i in range(GOVERNOR_STEPS):
                        if hi - lo <= CLOCK_EPS:
                            break
                        x = _secant(lo, hi, r_lo, r_hi)
                        if not (lo < x < hi):
                            x = 0.5 * (lo + hi)
                        _cell(pre, dec, length, ctx, x, req, has_requests, dt, qp, qd, k, dense_read_s, linear, trial)
                        rx = cell_power_w(trial[3], trial[4], trial[5], x, pw) - lim
                        if rx <= slack:  # fits: the best so far
                            f = x
                            for o in range(n_o):
                                best[o] = trial[o]
                            if rx >= -reach:
                                break
                        lo, hi, r_lo, r_hi, side = _false_position_step(i, x, rx, lo, hi, r_lo, r_hi, side)
            if solved:
                r0[t, w], r1[t, w] = best[0], best[1]
                r2[t, w], r3[t, w] = _clip01(best[2]), _clip01(best[3])
                r4[t, w], r5[t, w] = _clip01(best[4]), _clip01(best[5])
                r6[t, w], r7[t, w], r_tpot[t, w] = best[6], best[7], best[7]
                if r8[t, w] != best[8] or r9[t, w] != best[9]:
                    moved[t] = True
                r8[t, w], r9[t, w], r10[t, w], r11[t, w] = best[8], best[9], best[10], best[11]
                r12[t, w], r13[t, w] = best[12], best[13]
            clock[t, u] = f
            qp, qd = best[12], best[13]


def serve_governed_into(
    consts: FloatArray,
    linear: bool,
    demand: tuple[FloatArray, FloatArray, FloatArray, FloatArray],
    backlogs: tuple[FloatArray, FloatArray],
    dt: FloatArray,
    requests: FloatArray | None,
    limit_w: FloatArray,
    top: FloatArray,
    board: Any,
    cols: IntArray,
    result: dict[str, FloatArray],
    prev_clock: FloatArray | None,
) -> tuple[FloatArray, BoolArray]:
    """The columns ``cols`` of a block governed in its result's own arrays (:func:`_serve_governed`).

    ``consts`` ``(F, U)``, ``backlogs`` ``(U,)``, ``limit_w`` and ``top`` ``(K, U)`` are these
    columns'; ``demand`` (prefill, decode, prompt and context lengths) and ``requests`` the
    block's ``(K, W)`` (or broadcast to it); ``result`` holds the block's result as whole, writeable,
    distinct arrays ``(K, W)``, one per :data:`RESULT_FIELDS` and ``"tpot_s"`` (which may be the step
    time's): the cells solved are written there. ``prev_clock``: the result holds a solve at these
    clocks ``(K, U)`` (the top clocks), whose cells that fit at them are kept; None, it holds none.
    Returns the clocks ``(K, U)``, and the ticks ``(K,)`` where a cell written leaves other backlogs
    than the result held.
    """
    n_k = np.shape(dt)[0]
    wide = (n_k, np.shape(result["busy"])[1])
    shape = (n_k, cols.size)

    def view(x: FloatArray) -> FloatArray:
        return np.broadcast_to(np.asarray(x, dtype=np.float64), wide)

    def cells(x: FloatArray) -> FloatArray:
        return np.ascontiguousarray(np.broadcast_to(np.asarray(x, dtype=np.float64), shape))

    backlog = np.array([np.broadcast_to(np.asarray(b, dtype=np.float64), (cols.size,)) for b in backlogs])
    dts = np.ascontiguousarray(np.broadcast_to(np.asarray(dt, dtype=np.float64), (n_k, 1))[:, 0])
    clock = np.empty(shape)
    moved = np.zeros(n_k, dtype=np.bool_)
    cast(Callable[..., None], _serve_governed)(  # (numba's dispatcher types its own call)
        *(view(x) for x in demand),
        view(requests if requests is not None else np.zeros(())),
        requests is not None,
        dts,
        backlog,
        np.ascontiguousarray(consts),
        cells(top),
        cells(limit_w),
        bool(linear),
        power_figures(board),
        float(np.clip(board.min_clock_fraction, 0.0, 1.0)),
        np.asarray(cols, dtype=np.intp),
        prev_clock is not None,
        cells(prev_clock) if prev_clock is not None else np.zeros((1, 1)),
        *(result[f] for f in RESULT_FIELDS),
        result["tpot_s"],
        clock,
        moved,
    )
    return clock, moved
