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

The solve runs in numpy (:mod:`twin.engine.serve_numpy`: whole-array passes over a block's cells)
or, for inference columns whose ranks route no experts once a run has solved
:data:`COMPILED_FROM_CELLS` cells, compiled (:mod:`twin.engine.serve_kernel`: one loop per column,
the same operations in the same order); this module dispatches between them. What it takes per
server and gives per tick and server: :mod:`twin.engine.server_constants`.

Training servers run at full activity on the share ``train_fraction`` of their GPUs (1 for a
steady job, from a job trace otherwise), idle in the pipeline bubble; telemetry servers replay a
measured busy fraction ``u`` with HBM and SM activity ``a_m u`` and ``a_s u``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from twin._types import BoolArray, FloatArray, IntArray
from twin.engine.serve_numpy import OUTPUTS, serve_numpy
from twin.engine.server_constants import ServerConstants, ServeResult, column_cut, result_columns
from twin.physics.accelerator import AcceleratorPowerParams

#: A run's serving solve (and its governor) goes compiled (:mod:`twin.engine.serve_kernel`, on the
#: columns it covers) once it has solved this many inference cells (ticks x grouped columns) in
#: numpy, about what numpy takes in the ~0.5 s a process takes to load the compiled solve
#: (``Engine._compile_serving``). [1]
COMPILED_FROM_CELLS = 2e6


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
        got = _serve_inference(sub, *_cut(idx, c.inference.size, args, requests, previous, dt)) if idx.size else {}
        inf = {}
        for k in OUTPUTS:
            full = np.zeros(shape)
            if idx.size:
                full[:, idx] = got[k]
            inf[k] = full
    return _result(c, inf, clock, dt, train_fraction, replay_busy)


def serve_governed_into(
    c: ServerConstants,
    cols: IntArray,
    demand: tuple[FloatArray, FloatArray, FloatArray, FloatArray],
    backlogs: tuple[FloatArray, FloatArray],
    dts: FloatArray,
    limit_w: FloatArray,
    top: FloatArray,
    board: AcceleratorPowerParams,
    result: dict[str, FloatArray],
    *,
    requests: FloatArray | None = None,
    prev_clock: FloatArray | None = None,
) -> tuple[FloatArray, BoolArray]:
    """:func:`serve_block` of the block's columns ``cols`` under the power governor, written into its result's arrays.

    Each cell at the highest clock up to ``top`` whose model power (``board``), at the activity it
    has there, fits ``limit_w``, solved tick by tick from the backlogs each tick really starts with
    (:func:`twin.engine.governor_kernel._serve_governed`); the clock where the power meets the limit
    (to ``CONVERGED_RTOL`` from below) is :func:`twin.physics.governor.governed_clock`'s, found in
    one pass in time instead of steps over the whole block.

    ``c``, ``demand``, ``requests`` are the block's (``(K, W)``), ``backlogs`` ``(W,)``; ``limit_w``
    and ``top`` ``(K, U)`` are the columns'. ``result``: the block's result as whole, writeable,
    distinct arrays, by :class:`ServeResult` field (the TPOT's may be the step time's), holding its
    solve at the clocks ``prev_clock`` ``(K, U)`` on these columns: the cells the governor lowers,
    and the ticks their queues carry that to, are solved again and written there (as
    :func:`_result` gives an inference column), the others are left
    (:func:`twin.engine.governor_kernel.serve_governed_into`); without ``prev_clock`` every cell of
    the columns is solved and written. Every column must be one of
    :attr:`ServerConstants.kernel_columns`. Returns the clocks ``(K, U)`` and the ticks ``(K,)``
    where a cell written leaves other backlogs than the result held.
    """
    from twin.engine import governor_kernel

    assert c.kernel_columns[cols].all(), "a governed compiled solve of columns it does not cover"
    n = c.inference.size
    return governor_kernel.serve_governed_into(
        c.kernel_constants[:, cols],
        c.device.linear_roofline,
        demand,
        (column_cut(backlogs[0], cols, n), column_cut(backlogs[1], cols, n)),
        dts[:, None],
        requests,
        limit_w,
        top,
        board,
        cols,
        result,
        prev_clock,
    )


def training_tokens(
    training: BoolArray, tokens_per_s_per_gpu: FloatArray, share: FloatArray, clock: FloatArray, dt: FloatArray
) -> FloatArray:
    """Tokens a training column's GPUs make in a tick: proportional to the clock (compute-bound steps).

    ``training``: which columns train; ``share``: the share of the tick the GPUs train (the share
    in jobs times the pipeline's duty); ``dt``: the ticks' lengths ``(K, 1)``. Zero elsewhere.
    """
    return np.where(training, tokens_per_s_per_gpu * clock * dt * share, 0.0)


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
    # (Each `where` is skipped where no column takes its other side: the same values.)
    train = c.training
    if train.any():
        tf = (1.0 if train_fraction is None else train_fraction) * c.train_duty
        busy = np.where(train, tf, busy)
        mem = np.where(train, c.mem_activity * tf, mem)
        sm = np.where(train, c.mfu_over_eta * tf, sm)
        train_tok = training_tokens(train, c.train_tokens_per_s_per_gpu, tf, clock, dt)
    else:
        train_tok = np.zeros(np.shape(busy))
    # Telemetry servers: the measured busy fraction drives the power model.
    if replay_busy is not None and c.telemetry.any():
        tel = c.telemetry
        busy = np.where(tel, replay_busy, busy)
        mem = np.where(tel, c.replay_mem_per_busy * replay_busy, mem)
        sm = np.where(tel, c.replay_sm_per_busy * replay_busy, sm)
    power_busy = inf["power_busy"] if c.inference.all() else np.where(c.inference, inf["power_busy"], busy)
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
    (:mod:`twin.engine.serve_kernel`), in numpy on the others (:func:`twin.engine.serve_numpy.serve_numpy`); a column's
    result depends on its own inputs only, whichever solve and whatever company.
    """
    args = (prefill_demand, decode_demand, prompt_len, context_len, clock, backlog_prefill, backlog_decode)
    fast = c.kernel_columns
    if not fast.any():
        return serve_numpy(c, *args, dt, requests)
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
        for key, v in serve_numpy(c_slow, *_cut(idx_slow, fast.size, args, requests, None, dt)[:-1]).items():
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
