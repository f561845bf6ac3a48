"""Transient blocks: many ticks computed at once while the plant's nodes move fast.

:class:`TransientStepper` gives the kernel (:mod:`twin.engine.kernel`) what stepping one tick at a
time gives, computed in passes over a whole block; the kernel supplies how to compute a block of
ticks (``compute``) and where stepping tick by tick would change course (``cut``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from twin._types import FloatArray
from twin.engine.block import Block, head_excess
from twin.engine.cooling import IdealPlant, PhysicalPlant

#: Computes a block over ticks ``[t0, t1)`` from the nodes' states at each tick's start (None: the block's start).
Compute = Callable[[FloatArray, FloatArray, FloatArray | None], Block]
#: Ticks of a block to keep (None: all; :meth:`twin.engine.kernel.Engine._transient_cut`).
Cut = Callable[[Block], int | None]

#: Most ticks of a transient block (1: the plant's nodes are stepped one tick at a time, each
#: tick computed on its own; see :meth:`Engine._transient_block`).
TRANSIENT_TICKS = 4096
#: Passes over a transient block before its exact first ticks are kept (each pass makes at least
#: one more tick exact; a weak feedback settles in two to four).
TRANSIENT_PASSES = 8
#: Node excess within this of the state a tick was computed from counts as the same. [K]
TRANSIENT_TOL_K = 1e-11
#: A transient block that keeps fewer ticks than this sends the next ones one at a time, for as
#: many ticks, doubled after each such block up to TRANSIENT_BACKOFF_MAX (reset by a longer block).
TRANSIENT_MIN_TICKS = 8
TRANSIENT_BACKOFF_MAX = 512


class TransientStepper:
    """Transient blocks of one run, with the back-off that sends ticks one at a time where passes do not pay."""

    def __init__(self, step_s: float) -> None:
        self.step_s = step_s
        self.retry_s = -math.inf
        self.backoff = TRANSIENT_MIN_TICKS

    def block(
        self, compute: Compute, cut: Cut, plant: PhysicalPlant | IdealPlant, t0: FloatArray, t1: FloatArray
    ) -> Block:
        """A block of ticks while the plant's nodes move fast: what stepping one tick at a time gives.

        Stepped one tick at a time, each tick is computed with the inlets and the controller's
        pull-back of the nodes' state at its start (temperatures, throttling and heat feed back
        every tick). Here the whole block is computed at once with the nodes' state at every tick's
        start taken from the previous pass (the first holds the state at the block's start): a
        fixed-point iteration whose fixed point is the tick-by-tick result. A pass whose nodes
        start each tick where the previous tick ended (to :data:`TRANSIENT_TOL_K`) is that result;
        ticks up to the first that does not are exact in any pass, so after
        :data:`TRANSIENT_PASSES` those are kept. Where there is no feedback (servers down, or a
        heat that does not depend on the inlets) the second pass settles it.

        The block then ends where stepping tick by tick would have changed course: after the
        first tick where the nodes settle below :data:`~twin.engine.cooling.FINE_RATE_K_S`
        (coarse blocks follow), where the room air crosses the cold-plate servers' trip
        (the engine's ``_room_air_check``), before a tick where a die reaches its shutdown temperature
        (the crossing is solved on that tick alone), or before a tick where the power governor
        holds a serving GPU (the engine's ``_transient_cut``, passed in as ``cut``). A chilled-water
        store that is not full (its recharge is decided per block) keeps one tick at a time.
        """
        first = compute(t0[:1], t1[:1], None)
        n = min(t0.size, TRANSIENT_TICKS)
        if n == 1 or not isinstance(plant, PhysicalPlant) or not plant.store_full or t0[0] < self.retry_s:
            return first
        if cut(first) is not None:  # the block ends after its first tick anyway
            return first
        b = passes(compute, cut, plant, t0[:n], t1[:n])
        # Where blocks keep ending within a few ticks (queues and GPU Boost bins changing every
        # tick), the passes cost more than they save: one tick at a time for a while, longer
        # after each such block.
        kept = 1 if b is None else b.dts.size
        if kept < TRANSIENT_MIN_TICKS:
            self.retry_s = float(t0[0]) + self.backoff * self.step_s
            self.backoff = min(2 * self.backoff, TRANSIENT_BACKOFF_MAX)
        else:
            self.backoff = TRANSIENT_MIN_TICKS
        return first if b is None else b


def passes(compute: Compute, cut: Cut, plant: PhysicalPlant, t0: FloatArray, t1: FloatArray) -> Block | None:
    """The passes of :meth:`TransientStepper.block` over ``[t0, t1)``; None: only its first tick is to be kept."""
    n = t0.size
    x0 = np.array([[plant.loop_excess_k], [plant.room_excess_k]])
    guess = np.repeat(x0, n, axis=1)
    for _ in range(TRANSIENT_PASSES):
        b = compute(t0, t1, guess)
        assert b.plant.nodes_k is not None
        starts = np.concatenate((x0, b.plant.nodes_k[:, :-1]), axis=1)
        off = np.flatnonzero(np.any(np.abs(starts - guess) > TRANSIENT_TOL_K, axis=0))
        if not off.size:
            break
        exact, guess = int(off[0]), starts
        end = cut(b)
        if end is not None and end < t0.size:  # the block is likely to end there: no need to go on past it
            t0, t1, guess = t0[: end + 1], t1[: end + 1], guess[:, : end + 1]
    else:  # not settled: keep the ticks computed from the states they really start at
        b = compute(b.t0[:exact], b.t1[:exact], head_excess(b.excess_k, exact))
    if b.plant.storage_j < plant.storage_capacity_j:
        return None  # the store was drawn on: its recharge is decided per block
    end = cut(b)
    if end is None:
        return b
    return None if end <= 1 else compute(b.t0[:end], b.t1[:end], head_excess(b.excess_k, end))
