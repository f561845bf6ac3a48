"""The serving solve and the power governor over a block's columns: clocks, power and what was served.

A block's columns are served at GPU Boost's top clock (after the die settles under the boost
power), and where a cell's power is over its limit (the cap, or the thermal limit) the governor's
closed loop (:func:`twin.physics.governor.governed_clock`) lowers its clock until its power, at the
activity it has at that clock, meets the limit. The site power limit's bisection calls the same
solve again at other per-GPU limits (:attr:`Governed.run_at`). The threads compute contiguous
chunks of columns on their own and join them (:meth:`Governed.join`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from twin._types import BoolArray, FloatArray, IntArray
from twin.engine.clock_solves import ClockSolves, governed_columns
from twin.engine.columns import Columns
from twin.engine.controls import Controls
from twin.engine.demand import Demand
from twin.engine.fault_schedule import FaultSystem
from twin.engine.server_constants import ServerConstants, ServeResult
from twin.engine.state import FleetState
from twin.facility_parts.fleet import Facility
from twin.physics.accelerator import accelerator_power_w, die_steady_temp_c, thermal_power_limit_w
from twin.physics.governor import GovernorMemory, governed_clock
from twin.physics.silicon import boost_clock_fraction, leakage_excess_w

#: The governor steps the columns with a cell over its limit alone where they are at most this share
#: of a block's (:func:`twin.engine.clock_solves.governed_columns`); more, and it steps them all.
GOVERN_COLUMNS_BELOW = 0.7


def govern(
    fac: Facility,
    st: FleetState,
    cols: Columns,
    faults: FaultSystem,
    controls: Controls,
    c: ServerConstants,
    dem: Demand,
    inlet: FloatArray,
    dts: FloatArray,
    part: slice | None,
) -> Governed:
    """The serving solve and the power governor over the columns ``part`` of a block (None: all).

    Each column is computed on its own (its queues, clocks and die), so a part computes its
    columns as the whole block does, to the bit; ``c`` holds the part's constants. ``st`` and
    ``cols`` are the engine's fleet state and its columns, ``faults`` pauses training servers,
    ``controls`` holds the site power limit and the training power floor.
    """
    acc = fac.accelerator

    def cut(x: Any) -> Any:
        """The part's columns of a per-column array (None stays None)."""
        return x if part is None or x is None else x[..., part]

    requests, train_fraction, replay_busy = cut(dem.requests), cut(dem.train_fraction), cut(dem.replay_busy)
    serve_args = (cut(dem.prefill_tokens), cut(dem.decode_tokens), cut(dem.prompt_len), cut(dem.context_len))
    queues = (cut(cols.take(st.backlog_prefill_tokens)), cut(cols.take(st.backlog_decode_tokens)))
    ones = np.ones_like(requests)
    # The governor's steps move some columns' clocks: only those are solved again (clock_solves).
    solves = ClockSolves(
        c, serve_args, queues, dts, requests=requests, train_fraction=train_fraction, replay_busy=replay_busy
    )

    def serve(clock: FloatArray) -> ServeResult:
        return faults.pause_training(solves(clock), part)

    def pause_columns(res: ServeResult, idx: IntArray) -> ServeResult:
        """``pause_training`` of the columns ``idx`` of this part."""
        return faults.pause_training(res, idx if part is None else np.arange(cols.n)[part][idx])

    res0 = serve(ones)
    board = acc.power_params
    p_boost = accelerator_power_w(res0.power_busy, res0.mem_activity, res0.sm_activity, 1.0, params=board)
    r_th = fac.thermal_resistance_k_w
    inlet = cut(inlet)
    thermal_w = thermal_power_limit_w(inlet, acc.slowdown_temp_c, r_th)
    limit_w = np.minimum(cut(cols.take(st.power_cap_w)), thermal_w)
    # The die settles in seconds (die_time_constant_s), within a tick: GPU Boost's top bin and
    # the leakage beyond the fit follow the temperature it settles at under the power the tick
    # draws before the die responds (boost, or its limit where lower). One explicit pass, no
    # algebraic loop, and the same for any tick length (a shutdown crossing recomputes a
    # shorter tick and must find the same power). Replayed telemetry is measured board power:
    # its leakage and boost bins are in it already.
    die_c = die_steady_temp_c(inlet, np.minimum(p_boost, limit_w), r_th)
    modelled = ~c.telemetry
    top = np.where(modelled, boost_clock_fraction(die_c, params=acc.die_params), 1.0)
    extra_w = np.where(modelled, leakage_excess_w(die_c, inlet, r_th, params=acc.die_params), 0.0)
    if np.all(top >= 1.0):  # (top is at most 1: the boost clock, its result and power)
        res_top, p_top = res0, p_boost
    else:
        res_top = serve(top)
        p_top = accelerator_power_w(res_top.power_busy, res_top.mem_activity, res_top.sm_activity, top, params=board)
    p_full = p_top + extra_w

    def activity_at(clock: FloatArray) -> tuple[ServeResult, FloatArray, FloatArray, FloatArray]:
        res = serve(clock)
        return res, res.power_busy, res.mem_activity, res.sm_activity

    at_top = (res_top, res_top.power_busy, res_top.mem_activity, res_top.sm_activity)
    memory = GovernorMemory()  # the site limit's bisection solves again over the same block

    moved: list[BoolArray] = []  # the ticks whose backlogs the in-place governor moved

    def run_at(limit_w: FloatArray) -> tuple[ServeResult, FloatArray, FloatArray, FloatArray]:
        """Serve under a per-GPU power limit: the governor's closed loop.

        Each GPU's clock settles where its power, at the activity it has at that clock, meets
        the limit (:func:`twin.physics.governor.governed_clock`), at most GPU Boost's top
        clock; the leakage beyond the fitted model is the same at every clock (it follows the
        die temperature), so the model's power meets the limit less it. Where the top clock fits
        everywhere nothing is recomputed.
        """
        clock, res, p_gpu = top, res_top, p_full
        over = np.flatnonzero(np.any(p_full > limit_w, axis=0))
        alone = over.size <= GOVERN_COLUMNS_BELOW * p_full.shape[1] or c.compiled
        if over.size and controls.limit_w is None and alone:
            # The columns with a cell over its limit alone (no site limit's bisection to come,
            # which starts from the last solve of every column: `memory`). Where the compiled
            # solve is on, always: its columns are governed in one pass there, however many are
            # over, so a column's clocks do not depend on the others in its chunk.
            clock, p_model, res, moved_at = governed_columns(
                solves, over, limit_w - extra_w, top, res_top, p_top, board, pause_columns
            )
            moved.append(moved_at)
            p_gpu = p_model + extra_w
        elif over.size:
            clock, p_model, res = governed_clock(
                limit_w - extra_w, activity_at, params=board, at_boost=at_top, memory=memory, max_clock=top
            )
            p_gpu = p_model + extra_w
        p_gpu, floor_extra = controls.apply_floor(p_gpu, limit_w, part)
        return res, clock, p_gpu, floor_extra

    res, clock, p_gpu, floor_extra = run_at(limit_w)
    if moved and res_top is res0:  # (res0's backlogs were written over: the governor said where)
        apart = moved[0]
    else:  # (res0's own arrays)
        apart = _apart((res0.backlog_prefill_tokens, res0.backlog_decode_tokens), res)
    backlogs = (res0.backlog_prefill_tokens, res0.backlog_decode_tokens) if not moved else None
    return Governed(backlogs, apart, res, clock, p_gpu, floor_extra, p_full, thermal_w, limit_w, run_at)


def _apart(backlogs0: tuple[FloatArray, FloatArray], res: ServeResult) -> BoolArray:
    """The ticks where some column's backlogs at the tick's end are not the clock-1 solve's ``backlogs0``."""
    prefill0, decode0 = backlogs0
    return np.asarray(
        np.any(prefill0 != res.backlog_prefill_tokens, axis=1) | np.any(decode0 != res.backlog_decode_tokens, axis=1)
    )


@dataclass(frozen=True)
class Governed:
    """What :func:`govern` finds for a block's columns (see there)."""

    #: Prefill and decode backlogs of the solve at clock 1 (boost), per tick and column; None where
    #: the governor wrote its columns over them (without a site limit: nothing solves again).
    backlogs0: tuple[FloatArray, FloatArray] | None
    #: The ticks ``(K,)`` where ``res``'s backlogs at the tick's end are not the clock-1 solve's.
    apart: BoolArray
    res: ServeResult
    clock: FloatArray
    p_gpu: FloatArray
    floor_extra: FloatArray
    p_full: FloatArray
    thermal_w: FloatArray
    limit_w: FloatArray
    #: Serves the columns under other per-GPU limits (the site limit's solve); None once joined.
    run_at: Callable[[FloatArray], tuple[ServeResult, FloatArray, FloatArray, FloatArray]] | None

    @classmethod
    def join(cls, parts: list[Governed]) -> Governed:
        """The parts of contiguous chunks of columns, in order, as one."""
        res = ServeResult(**{f.name: _join([getattr(p.res, f.name) for p in parts]) for f in fields(ServeResult)})
        kept = [p.backlogs0 for p in parts]
        backlogs0 = None
        if all(b is not None for b in kept):
            backlogs0 = (_join([b[0] for b in kept if b]), _join([b[1] for b in kept if b]))
        apart = np.logical_or.reduce([p.apart for p in parts])
        arrays = ("clock", "p_gpu", "floor_extra", "p_full", "thermal_w", "limit_w")
        joined = {name: _join([getattr(p, name) for p in parts]) for name in arrays}
        return cls(backlogs0, apart, res, run_at=None, **joined)


def _join(xs: list[np.ndarray]) -> np.ndarray:
    """Per-column arrays of contiguous chunks side by side, laid out in memory as each chunk is.

    Later sums over columns then run in the order they run on the array computed whole.
    """
    a = xs[0]
    fortran = a.ndim > 1 and a.flags.f_contiguous and not a.flags.c_contiguous
    shape = (*a.shape[:-1], sum(x.shape[-1] for x in xs))
    out = np.empty(shape, dtype=np.result_type(*xs), order="F" if fortran else "C")
    return np.concatenate(xs, axis=-1, out=out)
