"""One block's serving solve at successive clocks, redone only on the columns whose clocks changed.

The power governor (:func:`twin.physics.governor.governed_clock`) evaluates a block's serving
model again at every step of its search, but it moves the clocks of the cells still searching
only; the columns it leaves alone would come out as they did. Each column (server) is solved on
its own: its queue carries work from tick to tick within the column, never across columns, and
every vector iteration of the solve stops per cell. So a column solved alone is the column solved
with the others, to the bit (``tests/test_engine_threads.py`` relies on the same fact to split
a block over threads), and :class:`ClockSolves` solves the changed columns alone and takes the
others from the last solve.

In the heterogeneous benchmark fleets a governor step moves the clocks of 2-56 of ~250 serving
columns (median 35, ``mix-4k``), so the steps after the first cost a fraction of a whole solve.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import fields, replace

import numpy as np

from twin._types import BoolArray, FloatArray, IntArray
from twin.engine.server_constants import ServerConstants, ServeResult, column_cut, result_columns
from twin.engine.serving import serve_block, serve_governed_into, training_tokens
from twin.physics.accelerator import AcceleratorPowerParams, accelerator_power_w
from twin.physics.governor import FIT_RTOL, governed_clock

#: A solve of more than this share of the columns solves them all (splicing costs a copy per field).
WHOLE_ABOVE = 0.7

#: ``pause(result, columns)``: the result of those columns with paused training servers idle.
Pause = Callable[[ServeResult, IntArray], ServeResult]


class ClockSolves:
    """``serve(clock)`` over one block: :func:`~twin.engine.serving.serve_block` at ``clock`` ``(K, S)``.

    ``demand`` holds the block's ``(prefill, decode, prompt_len, context_len)`` tick by column,
    ``backlogs`` the queues each column starts with ``(S,)``; the keywords are
    :func:`serve_block`'s. The last solve is kept; a call solves the columns whose clock differs
    from it in some tick and copies the rest.
    """

    def __init__(
        self,
        c: ServerConstants,
        demand: tuple[FloatArray, FloatArray, FloatArray, FloatArray],
        backlogs: tuple[FloatArray, FloatArray],
        dts: FloatArray,
        *,
        requests: FloatArray | None = None,
        train_fraction: FloatArray | None = None,
        replay_busy: FloatArray | None = None,
    ) -> None:
        self.c, self.demand, self.backlogs, self.dts = c, demand, backlogs, dts
        self.extra = (requests, train_fraction, replay_busy)
        self.shape = (dts.size, c.inference.size)
        self.last: tuple[FloatArray, ServeResult] | None = None
        #: Columns solved, over all calls (a measure of the work done).
        self.columns_solved = 0

    def __call__(self, clock: FloatArray) -> ServeResult:
        """The block's serving result at ``clock`` (ticks by columns, or broadcast to them)."""
        full = np.broadcast_to(clock, self.shape)
        last = self.last
        changed = None if last is None else np.flatnonzero(np.any(full != last[0], axis=0))
        if last is None or changed is None or changed.size > WHOLE_ABOVE * self.shape[1]:
            res = self._solve(full, previous=last)
        elif changed.size == 0:
            res = last[1]
        else:
            before = (last[0][:, changed], result_columns(last[1], changed))
            res = spliced(last[1], (changed, self._solve(full[:, changed], changed, previous=before)))
        self.last = (np.array(full), res)
        return res

    def on(self, cols: IntArray, *, seeded: bool = True) -> ClockSolves:
        """The columns ``cols`` alone, as a solve of their own (``seeded``: whose last solve is this one's there)."""
        n = self.shape[1]
        prefill, decode, prompt, context = (column_cut(x, cols, n) for x in self.demand)
        qp, qd = (column_cut(x, cols, n) for x in self.backlogs)
        r, tf, rb = (column_cut(v, cols, n) for v in self.extra)
        c = self.c.columns(operator.itemgetter(cols))
        sub = ClockSolves(
            c, (prefill, decode, prompt, context), (qp, qd), self.dts, requests=r, train_fraction=tf, replay_busy=rb
        )
        if seeded and self.last is not None:
            sub.last = (self.last[0][:, cols], result_columns(self.last[1], cols))
        return sub

    def governed_into(
        self,
        cols: IntArray,
        limit_w: FloatArray,
        top: FloatArray,
        board: AcceleratorPowerParams,
        result: dict[str, FloatArray],
    ) -> tuple[FloatArray, BoolArray]:
        """:func:`serve_governed_into`: the columns ``cols`` (the compiled solve's) governed in ``result``.

        ``result``: the last solve's (at the top clocks ``top``, ticks by ``cols``), as whole,
        writeable, distinct arrays by field; the cells the governor moves are written there.
        ``limit_w``: the columns' limits on the model's power. Returns their clocks, and the ticks
        where a cell written leaves other backlogs than ``result`` held.
        """
        last = self.last
        assert last is not None, "no solve at the top clocks"
        self.columns_solved += cols.size
        return serve_governed_into(
            self.c,
            cols,
            self.demand,
            self.backlogs,
            self.dts,
            limit_w,
            top,
            board,
            result,
            requests=self.extra[0],
            prev_clock=last[0][:, cols],
        )

    def _solve(
        self, clock: FloatArray, cols: IntArray | None = None, previous: tuple[FloatArray, ServeResult] | None = None
    ) -> ServeResult:
        """:func:`serve_block` at ``clock`` on the columns ``cols`` (None: all; ``clock`` holds those columns).

        ``previous``: the clocks and result of a solve of the same columns (those columns only),
        whose unchanged cells the compiled solve copies (:func:`serve_block`).
        """
        if cols is not None:
            sub = self.on(cols, seeded=False)
            self.columns_solved += cols.size
            return sub._solve(clock, previous=previous)
        self.columns_solved += self.shape[1]
        r, tf, rb = self.extra
        return serve_block(
            self.c,
            *self.demand,
            clock,
            *self.backlogs,
            self.dts,
            requests=r,
            train_fraction=tf,
            replay_busy=rb,
            previous=previous,
        )


def spliced(
    base: ServeResult,
    *parts: tuple[IntArray, ServeResult | dict[str, FloatArray]],
    in_place: frozenset[str] = frozenset(),
) -> ServeResult:
    """``base`` with the columns of each part ``(cols, sub)`` taken from ``sub`` (a solve of those columns alone).

    ``sub`` may be some fields only (a dict): the others keep ``base``'s values on those columns.
    The fields named in ``in_place`` take them in ``base``'s own array where it is a whole,
    writeable one that shares no memory with a field before it (``base`` is then spent); the
    others, and those, are copies.
    """
    return replace(base, **_spliced_into(wholes(base, in_place), parts))


def wholes(base: ServeResult, in_place: frozenset[str] = frozenset()) -> dict[str, FloatArray]:
    """``base``'s fields as whole, writeable, distinct arrays.

    Its own for the fields in ``in_place`` where they are such (``base`` is then spent), copies
    (C or F as the solve made them) otherwise.
    """
    shape = np.shape(base.busy)
    out: dict[str, FloatArray] = {}
    for f in fields(ServeResult):
        x = getattr(base, f.name)
        own = (
            f.name in in_place
            and isinstance(x, np.ndarray)
            and x.shape == shape
            and x.flags.writeable
            and not any(np.may_share_memory(x, y) for y in out.values())
        )
        out[f.name] = x if own else np.array(np.broadcast_to(x, shape), order="K")
    return out


def _spliced_into(
    whole: dict[str, FloatArray], parts: tuple[tuple[IntArray, ServeResult | dict[str, FloatArray]], ...]
) -> dict[str, FloatArray]:
    """The columns of each part ``(cols, sub)`` written into ``whole``'s arrays (a dict ``sub``: its fields only)."""
    for name, x in whole.items():
        for cols, sub in parts:
            if not isinstance(sub, dict):
                x[:, cols] = getattr(sub, name)
            elif name in sub:
                x[:, cols] = sub[name]
    return whole


#: The fields of the governor's top-clock result that take its governed columns in place
#: (:func:`governed_columns`): all of them (:func:`governed_columns` says on which ticks the
#: backlogs moved, which is what :func:`twin.engine.governed.govern` needs of the top solve's).
SPLICED_IN_PLACE = frozenset(f.name for f in fields(ServeResult))


def governed_columns(
    solves: ClockSolves,
    over: IntArray,
    limit_w: FloatArray,
    top: FloatArray,
    at_top: ServeResult,
    p_top_w: FloatArray,
    params: AcceleratorPowerParams,
    pause: Pause,
) -> tuple[FloatArray, FloatArray, ServeResult, BoolArray]:
    """:func:`~twin.physics.governor.governed_clock` on the columns ``over`` alone: clock, power, result, moved.

    ``solves``' last solve is at the top clocks ``top`` (ticks by columns), with the result
    ``at_top`` (paused servers idle) and the model's power ``p_top_w`` there; ``limit_w`` is the
    model's limit per cell. Every cell of the other columns fits at the top clock, so the governor
    leaves them there, on their top result: it is solved on ``over`` only, as it would come out
    there with all columns (it steps each cell on its own), and costs its steps on those columns.
    Where the compiled solve is on, the columns it covers are governed in one pass in time
    (:meth:`ClockSolves.governed_into`), in the result's own arrays: only the cells the governor
    moves (and the ticks their queues carry that to) are written, the others are left as the top
    solve made them; the columns that serve nothing (training, replay, idle: their activity does
    not depend on the clock) are governed in closed form (:func:`_governed_held`); the others (and
    every column where it is off) by :func:`governed_clock`'s steps.

    ``at_top`` is spent: the governed columns are written into its arrays
    (:data:`SPLICED_IN_PLACE`, :func:`wholes`), as nothing solves from it again (``govern`` takes
    this path only without a site limit, whose bisection would), nor asks ``solves`` for the top
    clocks again (which would give it back). ``moved`` ``(K,)``: the ticks where some column's
    backlogs at the tick's end are not ``at_top``'s.
    """
    shape = np.shape(p_top_w)
    last = solves.last
    assert last is not None, "no solve at the top clocks"
    clock = np.array(np.broadcast_to(top, shape))
    # (its first tick: the whole block's comparison cost 1 % of a run)
    assert np.array_equal(last[0][0], clock[0], equal_nan=True), "the last solve is not at top"
    power_w = np.array(p_top_w)
    whole = wholes(at_top, SPLICED_IN_PLACE)
    parts: list[tuple[IntArray, ServeResult | dict[str, FloatArray]]] = []
    moved = np.zeros(shape[0], dtype=np.bool_)
    c = solves.c
    fast = c.kernel_columns[over] if c.compiled else np.zeros(over.size, dtype=bool)
    held = ~c.inference[over] & c.compiled
    steps = ~fast & ~held
    for cols, how in ((over[fast], "compiled"), (over[held], "held"), (over[steps], "steps")):
        if not cols.size:
            continue
        lim, hi = (np.broadcast_to(x, shape)[:, cols] for x in (limit_w, top))
        if how == "compiled":  # written in place: the cells kept at the top clock are not touched
            # (no pause: the compiled columns serve, and only training servers are paused)
            f, moved_here = solves.governed_into(cols, lim, hi, params, whole)
            moved |= moved_here
            busy, mem, sm = (whole[k][:, cols] for k in ("power_busy", "mem_activity", "sm_activity"))
            p = accelerator_power_w(busy, mem, sm, f, params=params)
        elif how == "steps":
            f, p, res = _governed_steps(solves, cols, lim, hi, at_top, params, pause)
            parts.append((cols, res))
            for name in ("backlog_prefill_tokens", "backlog_decode_tokens"):  # (before they are spliced in)
                moved |= np.any(getattr(res, name) != whole[name][:, cols], axis=1)
        else:  # (only the training tokens follow the clock: the other fields stay at_top's)
            f, p, tokens = _governed_held(solves, cols, lim, hi, at_top, p_top_w, params, pause)
            parts.append((cols, {"training_tokens": tokens}))
        clock[:, cols] = f
        power_w[:, cols] = p
    return clock, power_w, replace(at_top, **_spliced_into(whole, tuple(parts))), moved


def _governed_held(
    solves: ClockSolves,
    cols: IntArray,
    lim: FloatArray,
    hi: FloatArray,
    at_top: ServeResult,
    p_top_w: FloatArray,
    params: AcceleratorPowerParams,
    pause: Pause,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """The columns ``cols``, which serve nothing, governed in closed form: clock, the model's power, training tokens.

    ``lim`` and ``hi`` are their cells' limits on the model's power and top clocks; ``at_top`` is the
    block's result at the top clocks (paused servers idle).

    A training, replay or idle column's activity is the same at every clock
    (:func:`twin.engine.serving.serve_block`: only its training tokens follow the clock), so the
    governor's answer, the highest clock whose power fits the limit, is
    :func:`~twin.physics.accelerator.clock_for_power_limit` at the activity it has at the top
    clock (the first step of :func:`governed_clock`, exact there; compiled, as only a compiled
    run takes this path) where the top clock does not fit to ``FIT_RTOL``. The result there is the
    top clock's but for the training tokens (:func:`~twin.engine.serving.training_tokens` at those
    clocks, paused servers' zero): what solving those columns again at those clocks gives, to the
    bit, without the solve.
    """
    from twin.engine.power_kernel import clocks_for_limits

    busy, mem, sm = (
        np.broadcast_to(x, solves.shape)[:, cols] for x in (at_top.power_busy, at_top.mem_activity, at_top.sm_activity)
    )
    f = np.where(
        p_top_w[:, cols] - lim <= FIT_RTOL * np.abs(lim), hi, clocks_for_limits(lim, busy, mem, sm, hi, params)
    )
    c, n = solves.c, solves.shape[1]
    train_fraction = column_cut(solves.extra[1], cols, n)
    share = (1.0 if train_fraction is None else train_fraction) * c.train_duty[cols]
    tokens = training_tokens(c.training[cols], c.train_tokens_per_s_per_gpu[cols], share, f, solves.dts[:, None])
    row = np.zeros((1, cols.size))  # (the other fields, which pause() also zeroes, are at_top's already)
    paused = pause(ServeResult(**{f.name: row for f in fields(ServeResult)} | {"training_tokens": tokens}), cols)
    tokens = paused.training_tokens
    return f, accelerator_power_w(busy, mem, sm, f, params=params), tokens


def _governed_steps(
    solves: ClockSolves,
    cols: IntArray,
    lim: FloatArray,
    hi: FloatArray,
    at_top: ServeResult,
    params: AcceleratorPowerParams,
    pause: Pause,
) -> tuple[FloatArray, FloatArray, ServeResult]:
    """The columns ``cols`` governed by :func:`governed_clock`'s steps: clock, power, result.

    ``lim`` and ``hi`` are their cells' limits on the model's power and top clocks.
    """
    sub = solves.on(cols)

    def activity_at(clock: FloatArray) -> tuple[ServeResult, FloatArray, FloatArray, FloatArray]:
        res = pause(sub(clock), cols)
        return res, res.power_busy, res.mem_activity, res.sm_activity

    res = result_columns(at_top, cols)
    f, p, res = governed_clock(
        lim, activity_at, params=params, at_boost=(res, res.power_busy, res.mem_activity, res.sm_activity), max_clock=hi
    )
    return f, p, res
