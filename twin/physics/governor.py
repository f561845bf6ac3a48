"""The GPU power governor as a closed loop: the highest clock whose power, at that clock's own activity, fits a limit.

:func:`twin.physics.accelerator.clock_for_power_limit` answers the question for a *given* activity.
But a served load's activity depends on the clock: at a lower clock compute-bound prefill keeps the
GPU busy longer while memory-bound decode barely slows, so the mix of the work shifts. The power at
a clock chosen from the boost-clock activity therefore misses the limit, below it or above it.
NVIDIA's governor is a feedback loop on the measured board power: "the clocks have been optimized
to ensure not to exceed currently set power limits" [1]_, and it lowers them no further than that
(or to its floor). :func:`governed_clock` solves for that operating point, ``P(a(f), f) = limit``,
per cell, with the activity ``a(f)`` given by a callable (the engine's serving model).

References
----------
.. [1] NVIDIA, *NVML API Reference*, ``nvmlClocksEventReasonSwPowerCap``,
   docs.nvidia.com/deploy/nvml-api/api/group__nvmlClocksEventReasons.html; the power-cap range
   (``nvidia-smi -pl``) is in parameters.md 1.1, and Samsi et al. 2023's measured effect of a cap
   on LLM inference in parameters.md 5.1.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np

from twin._types import BoolArray, FloatArray, IntArray, Numeric
from twin.physics.accelerator import AcceleratorPowerParams, accelerator_power_w, clock_for_power_limit

#: Power above the limit, relative to it, that still counts as within it (float rounding).
FIT_RTOL = 1e-9
#: The loop stops where the power is within this much below the limit, relative to it.
CONVERGED_RTOL = 1e-9
#: A bracket on the clock this narrow ends the search (a jump in the activity at one clock).
CLOCK_EPS = 1e-7
#: Clock step of the difference that gives the power's slope at a held activity.
_DIFF_STEP = 1e-7
#: A power slope in the clock below this share of the slope at the activity held counts as flat.
PLATEAU = 0.1
#: Evaluations after which an end of a cell's bracket is tried again before a step may pass it.
STALE_AGE = 2.0
#: Relative margins below the limit of the repair rounds after ``MAX_STEPS`` (then the floor).
REPAIR_MARGINS = (0.0, 1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2)
#: Most search steps after the boost clock (each one evaluation of the activity, a serving-model
#: call in the engine); most cells settle in 2 to 4, a few behind a queue or at a jump take more.
MAX_STEPS = 8

#: Whatever the activity callable returns besides the activities (the engine's serving result).
T = TypeVar("T")
#: ``activity_at(clock) -> (payload, busy, mem_activity, sm_activity)``.
ActivityAt = Callable[[FloatArray], tuple[T, FloatArray, FloatArray, FloatArray]]


def governed_clock(
    power_limit_w: Numeric,
    activity_at: ActivityAt[T],
    *,
    params: AcceleratorPowerParams,
    at_boost: tuple[T, FloatArray, FloatArray, FloatArray] | None = None,
    memory: GovernorMemory | None = None,
    max_clock: Numeric = 1.0,
) -> tuple[FloatArray, FloatArray, T]:
    """Clock of a power-limited accelerator whose activity depends on its clock (the closed loop).

    Parameters
    ----------
    power_limit_w : numeric
        Power limit per cell (cap or thermal limit). [W]
    activity_at : callable
        ``activity_at(clock)`` with ``clock`` an array of the cells' shape returns
        ``(payload, busy, mem_activity, sm_activity)`` at that clock (activities as in
        :func:`twin.physics.accelerator.accelerator_power_w`); cells may depend on each other
        (a queue carries work from one tick to the next), so it is always called on every cell.
    params : AcceleratorPowerParams
        The board's coefficients, with the lowest clock the governor uses (``min_clock_fraction``,
        one value for all cells).
    at_boost : tuple, optional
        ``activity_at(max_clock)`` if the caller has it already (saves a call).
    memory : GovernorMemory, optional
        Clocks and powers a previous solve over the same ``activity_at`` evaluated last; read to
        start this solve, then replaced by this one's.
    max_clock : numeric
        Highest clock per cell, over boost (GPU Boost's top bin at the die temperature,
        :func:`twin.physics.silicon.boost_clock_fraction`); not below ``min_clock_fraction``. [1]

    Returns
    -------
    clock : numpy.ndarray
        Clock fraction per cell in ``[min_clock_fraction, max_clock]``. [1]
    power_w : numpy.ndarray
        Board power at that clock and its activity. [W]
    payload
        What ``activity_at`` returned with those activities: always one call's result at the
        returned clocks (so a queue in it is consistent from tick to tick).

    Notes
    -----
    Per cell: ``max_clock`` if it fits; otherwise the clock where ``P(a(f), f)`` meets the limit
    to ``CONVERGED_RTOL`` (from below; never above it by more than ``FIT_RTOL``), or
    ``min_clock_fraction`` where even that does not fit (the governor sits at its floor).

    The search runs per cell, all cells evaluated together at each step. The first step is
    :func:`~twin.physics.accelerator.clock_for_power_limit` at the activity just evaluated: Newton
    with the activity held, exact where the activity does not depend on the clock (training).
    Later steps are quasi-Newton: the power's slope in the clock is the model's own at the
    activity held (a difference) plus the activity's effect, a secant through the last two
    points; where the activity did not change they are the held-activity solve again. Each cell
    keeps a bracket, the highest clock seen to fit and the lowest seen not to, and a step outside
    it bisects it; a bracket narrower than ``CLOCK_EPS`` (a jump in the activity) ends the search
    at its fitting end. Where the activity is not monotone in the clock the search ends on the
    limit at a clock above every clock it saw fit. Cells that share a queue change each other's
    activity, so an end of a bracket seen ``STALE_AGE`` steps ago is tried again before a step
    may pass it.

    After ``MAX_STEPS`` a cell that fits keeps its clock (at a jump, or still settling behind a
    queue); one above the limit takes the clock that meets the limit at its activity held, or the
    highest clock this solve saw fit if that is higher; if still above, that clock less a growing
    margin (``REPAIR_MARGINS``; one evaluation of all cells each, since lowering one clock can push
    the ticks queued behind it over the limit); at the end the floor. The power therefore never
    exceeds the limit by more than
    ``FIT_RTOL`` except at the floor.

    Examples
    --------
    A job busy all the time whose HBM traffic per second falls with the clock (``m = 0.8 f``, SM
    activity at boost 0.5), under a 400 W limit: the clock chosen from its boost activity draws
    376 W once the job runs at it; the closed loop settles higher, on the limit.

    >>> from twin.physics.accelerator import AcceleratorPowerParams, accelerator_power_w, clock_for_power_limit
    >>> def act(f):
    ...     return None, np.ones_like(f), 0.8 * f, np.full_like(f, 0.5)
    >>> board = AcceleratorPowerParams(
    ...     idle_power_w=70.0, full_power_w=700.0, static_power_fraction=0.15,
    ...     mem_power_fraction=0.30, uncore_power_fraction=0.0,
    ...     clock_exponent=3.0, voltage_floor_fraction=0.69, min_clock_fraction=0.25,
    ... )
    >>> f1 = clock_for_power_limit(400.0, 1.0, 0.8, 0.5, params=board)
    >>> _, busy, mem, sm = act(np.atleast_1d(f1))
    >>> p1 = accelerator_power_w(busy, mem, sm, f1, params=board)
    >>> round(float(f1), 3), round(float(p1[0]), 1)
    (0.841, 376.0)
    >>> f, p, _ = governed_clock(np.full(1, 400.0), act, params=board)
    >>> round(float(f[0]), 3), round(float(p[0]), 6)
    (0.878, 400.0)
    """

    def power(f: FloatArray, a: tuple[T, FloatArray, FloatArray, FloatArray]) -> FloatArray:
        return _power(a[1:], f, params)

    def evaluate(f: FloatArray) -> tuple[tuple[T, FloatArray, FloatArray, FloatArray], FloatArray]:
        """The activity and power at clocks ``f``, kept in ``seen``."""
        a = activity_at(f)
        p = power(f, a)
        seen.append(_Point(f, p, a[1:]))
        return a, p

    f_min = float(np.clip(params.min_clock_fraction, 0.0, 1.0))
    top = np.clip(np.asarray(max_clock, dtype=np.float64), f_min, 1.0)
    act = at_boost
    if act is None:
        act = activity_at(np.broadcast_to(top, np.broadcast_shapes(np.shape(power_limit_w), top.shape)).copy())
    shape = np.broadcast_shapes(np.shape(power_limit_w), np.shape(act[1]), top.shape)
    limit = np.broadcast_to(np.asarray(power_limit_w, dtype=np.float64), shape)
    top = np.broadcast_to(top, shape)
    slack = FIT_RTOL * np.abs(limit)
    reach = CONVERGED_RTOL * np.abs(limit)
    f = top.copy()
    p = power(f, act)
    r = p - limit
    done = _done(f, r, r <= slack, top, reach, f_min, top)
    if done.all():
        return f, p, act[0]
    br = _Bracket.start(top, f_min)
    br.see(f, r <= slack, f_min)
    seen = [_Point(f, p, act[1:])]
    # The first step: from the last two clocks a previous solve over the same activity evaluated
    # (their powers hold whatever the limit), else from boost alone.
    cur, prev = seen[0], None
    if memory is not None and len(memory.points) == 2:
        prev, cur = memory.points
        br.see(prev.f, prev.p - limit <= slack, f_min, now=False)
        br.see(cur.f, cur.p - limit <= slack, f_min, now=False)
    for _ in range(MAX_STEPS):
        todo = np.flatnonzero(~done)
        f = f.copy()
        f.reshape(-1)[todo] = _propose(limit, cur, prev, br, todo, params, f_min)
        act, p = evaluate(f)
        r = p - limit
        fits = r <= slack
        done = _done(f, r, fits, br.hi, reach, f_min, top)
        if done.all():
            break
        br.see(f, fits, f_min)
        prev, cur = cur, seen[-1]
    else:
        # Not settled everywhere. Cells that fit keep their clock; a cell above the limit takes
        # the highest clock this solve saw fit, else the clock that meets the limit (less a
        # margin) at its activity held. Lowering a clock can push cells that share its queue
        # over the limit: they get the same, with wider margins, and at the end the floor.
        p_before = p
        for margin in (*REPAIR_MARGINS, None):
            bad = (p - limit > slack) & (f > f_min)
            if not bad.any():
                break
            i = np.flatnonzero(bad)
            if margin is None:
                new = np.full(i.size, f_min)
            else:
                fi, pi, li = f.reshape(-1)[i], p.reshape(-1)[i], limit.reshape(-1)[i]
                busy, mem, sm = (np.broadcast_to(a, shape).reshape(-1)[i] for a in act[1:])
                new = clock_for_power_limit(
                    li * (1.0 - margin), busy, mem, sm, params=params, max_clock=top.reshape(-1)[i]
                )
                # The highest clock this solve saw fit, where it is higher, or where the last
                # lowering did not bring the power half way down (it is flat in the clock there).
                lo = br.lo.reshape(-1)[i]
                flat = pi > 0.5 * (p_before.reshape(-1)[i] + li)
                use_lo = br.tried.reshape(-1)[i] & (lo < fi) & ((lo > new) | (flat & (margin > 0.0)))
                new = np.minimum(np.where(use_lo, lo, new), fi * (1.0 - 1e-12))
            p_before = p
            f = f.copy()
            f.reshape(-1)[i] = np.maximum(new, f_min)
            act, p = evaluate(f)
        while np.any(bad := (p - limit > slack) & (f > f_min)):  # the floor's own knock-on effects
            f = np.where(bad, f_min, f)
            act, p = evaluate(f)
    if memory is not None:
        memory.points = seen[-2:]
    return f, p, act[0]


@dataclass(frozen=True)
class _Point:
    """Clocks evaluated together, the power there and the activity (busy, HBM, SM) there."""

    f: FloatArray
    p: FloatArray
    act: tuple[FloatArray, FloatArray, FloatArray]


@dataclass
class GovernorMemory:
    """The last two clocks a solve evaluated, with their powers, per cell.

    A later solve against another limit over the *same* activity (the site power limit's bisection
    within one block of ticks) starts with a secant through them.
    """

    points: list[_Point] = field(default_factory=list)


@dataclass
class _Bracket:
    """Per cell: the highest clock seen to fit (``lo``, else the floor) and the lowest seen not to.

    ``tried``: ``lo`` was evaluated in this solve (not only by a previous one, nor the untried
    floor). ``lo_age``, ``hi_age``: evaluations since each end was last seen; cells that share a
    queue can make an old one stale, so a step beyond an old end tries that end again. ``top``:
    the highest clock allowed (where an upper end opens again).
    """

    lo: FloatArray
    tried: BoolArray
    hi: FloatArray
    lo_age: FloatArray
    hi_age: FloatArray
    top: FloatArray

    @classmethod
    def start(cls, top: FloatArray, f_min: float) -> _Bracket:
        shape = top.shape
        zeros = np.zeros(shape)
        return cls(np.full(shape, f_min), np.zeros(shape, dtype=bool), top.copy(), zeros, zeros.copy(), top)

    def see(self, f: FloatArray, fits: BoolArray, f_min: float, now: bool = True) -> None:
        """Narrow the bracket with clocks ``f`` evaluated together (``now``: in this solve).

        A clock seen to fit that now does not drops the lower end to the floor, one seen not to
        fit that now does opens the upper end to ``top`` (a shared queue changed in between).
        """
        age = 0.0 if now else STALE_AGE
        self.lo_age += 1.0
        self.hi_age += 1.0
        set_lo = fits & (f >= self.lo)
        stale_lo = ~fits & (f <= self.lo)
        self.lo = np.where(set_lo, f, np.where(stale_lo, f_min, self.lo))
        self.tried = np.where(set_lo, now, self.tried & ~stale_lo)
        self.lo_age = np.where(set_lo | stale_lo, age, self.lo_age)
        set_hi = ~fits & (f <= self.hi)
        stale_hi = fits & (f >= self.hi)
        self.hi = np.where(set_hi, f, np.where(stale_hi, self.top, self.hi))
        self.hi_age = np.where(set_hi | stale_hi, age, self.hi_age)


def _power(act: Sequence[FloatArray], f: FloatArray, params: AcceleratorPowerParams) -> FloatArray:
    return accelerator_power_w(act[0], act[1], act[2], f, params=params)


def _done(
    f: FloatArray, r: FloatArray, fits: BoolArray, hi: FloatArray, reach: FloatArray, f_min: float, top: FloatArray
) -> BoolArray:
    """Cells whose clock is final: on the limit, the top clock fits, a collapsed bracket, or at the floor."""
    on_limit = fits & ((r >= -reach) | (f >= top) | (hi - f <= CLOCK_EPS))
    return np.asarray(on_limit | (~fits & (f <= f_min)))


def _propose(
    target: FloatArray,
    cur: _Point,
    prev: _Point | None,
    br: _Bracket,
    todo: IntArray,
    params: AcceleratorPowerParams,
    f_min: float,
) -> FloatArray:
    """Next clock of cells ``todo`` (flat indices), aiming at the power ``target``.

    A secant through ``prev`` and ``cur`` where the power rises between them and the activity
    changed; Newton with the activity at ``cur`` held where it did not change (then exact) or
    there is no secant; bisection where the step leaves the bracket.
    """
    shape = cur.f.shape
    every = todo.size == cur.f.size

    def take(a: FloatArray | BoolArray) -> FloatArray:
        flat = (a if a.shape == shape else np.broadcast_to(a, shape)).reshape(-1)
        return np.asarray(flat if every else flat[todo])

    lim = take(target)
    ft = take(cur.f)
    rt = take(cur.p) - lim
    a_t = [take(a) for a in cur.act]
    step = np.full(todo.size, np.nan)
    flat = np.zeros(todo.size, dtype=bool)
    if prev is not None:
        df = ft - take(prev.f)
        moved = np.zeros(todo.size, dtype=bool)
        for a, b in zip(a_t, prev.act, strict=True):
            moved |= a != take(b)
        # Quasi-Newton: the power's slope in the clock at the activity held (the model's own,
        # by a difference) plus the slope from the activity's change between the two points.
        ok = moved & (df != 0.0)
        if ok.any():
            a_prev = [take(b) for b in prev.act]
            p_cur = rt + lim
            held_slope = (p_cur - _power(a_t, ft - _DIFF_STEP, params)) / _DIFF_STEP
            act_slope = (p_cur - _power(a_prev, ft, params)) / np.where(ok, df, 1.0)
            slope = held_slope + act_slope
            # Where the activity's change all but cancels the clock's (compute-bound work below
            # the voltage knee: busy ~ 1/f, power ~ f), the power is flat: bisect.
            flat = ok & (slope <= PLATEAU * np.abs(held_slope))
            ok &= ~flat
            step = np.where(ok, ft - rt / np.where(ok, slope, 1.0), np.nan)
    held = np.flatnonzero(np.isnan(step))
    if held.size:
        step[held] = clock_for_power_limit(
            lim[held], a_t[0][held], a_t[1][held], a_t[2][held], params=params, max_clock=take(br.top)[held]
        )
    lo, hi = take(br.lo), take(br.hi)
    # Strictly inside the bracket; at or below its lower end, that end itself if this solve has
    # not tried it (a clock a previous solve saw fit, or the floor). Beyond an end seen a while
    # ago, that end again (it may be stale); else bisection.
    tried = take(br.tried).astype(bool)
    step = np.where(~tried & (step <= lo), lo, np.maximum(step, f_min))
    low = (step < lo) | ((step == lo) & tried)
    high = step >= hi
    if prev is not None:  # a flat stretch: bisect (not a re-try of an end)
        low |= flat
        high &= ~flat
    again_lo = low & ~flat & tried & (take(br.lo_age) >= STALE_AGE)
    again_hi = high & (take(br.hi_age) >= STALE_AGE)
    mid = 0.5 * (lo + hi)
    return np.where(low | high, np.where(again_lo, lo, np.where(again_hi, hi, mid)), step)
