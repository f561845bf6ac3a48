"""How many sequences a serving rank runs to keep up with its arrivals: the rate solves of :mod:`twin.physics.serving`.

A rank's step takes :meth:`twin.physics.serving.StepPlan.time_s` at ``B`` decoding sequences and ``C``
prompt tokens. :func:`batch_for_rates` finds the batch that sustains a decode and a prefill token
rate, :func:`prefill_chunk_for_rate` the prompt tokens per step of a rank that only prefills; both
are roots of a monotone residual found, cell by cell and all cells at once, by the Illinois
variant of false position (:func:`_false_position`).

References
----------
.. [1] M. Dowell and P. Jarratt, "A modified regula falsi method for computing the root of an
   equation", BIT 11, 1971 (the Illinois algorithm).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from twin._types import BoolArray, FloatArray, Numeric
from twin.physics.serving import StepPlan
from twin.physics.step_costs import ServingDevice, StepCosts

#: Most false-position steps of :func:`batch_for_rates` (it settles in a handful: the rate is
#: piecewise linear in the batch but for the touched-expert share).
RATE_SOLVER_STEPS = 60
#: Relative tolerance of :func:`batch_for_rates`.
RATE_SOLVER_RTOL = 1e-10
#: Most false-position steps of :func:`prefill_chunk_for_rate` (a prompt-only step is close to
#: affine in its tokens beyond the weight read, so it settles in a few), and its relative tolerance
#: on the residual.
PREFILL_CHUNK_STEPS = 30
PREFILL_CHUNK_RTOL = 1e-9


def batch_for_rates(
    c: StepCosts,
    dev: ServingDevice,
    decode_rate: Numeric,
    prefill_rate: Numeric,
    context_tokens: Numeric,
    prefill_position: Numeric,
    max_seqs: Numeric,
    clock_fraction: Numeric = 1.0,
    prompt_tokens: Numeric | None = None,
    plan: StepPlan | None = None,
) -> FloatArray:
    """Sequences a replica runs to sustain a decode and a prefill token rate.

    With ``B`` sequences and ``C = (lambda_p / lambda_d) B`` prompt tokens per step, the replica
    makes ``B / t(B, C)`` output tokens per second, which grows with ``B``; the batch is where it
    equals ``lambda_d``, found by the Illinois variant of false position on ``[0, max_seqs]``
    (a bracket keeps it safe where the touched-expert share bends the step time).

    Parameters
    ----------
    c, dev : StepCosts, ServingDevice
        As in :func:`step`.
    decode_rate, prefill_rate : numeric
        Output and prompt tokens per second the replica serves (``decode_rate > 0``). [1/s]
    context_tokens, prefill_position, clock_fraction, prompt_tokens : numeric
        As in :func:`step`.
    max_seqs : numeric
        Most sequences the replica holds; returned where even they do not reach the rate. [1]
    plan : StepPlan, optional
        ``StepPlan.at(c, dev, context_tokens, prefill_position, clock_fraction, prompt_tokens)``,
        when the caller has it already.

    Returns
    -------
    numpy.ndarray
        ``B`` in ``[0, max_seqs]`` (0 where ``decode_rate`` is 0). [1]

    Examples
    --------
    The batch found reproduces the rate it was asked for:

    >>> from twin.physics.serving import step
    >>> from twin.physics.step_costs import example_costs, example_device
    >>> c, d = example_costs(), example_device()
    >>> b = batch_for_rates(c, d, 5000.0, 2000.0, 1000.0, 250.0, 1024)
    >>> round(float(b / step(c, d, b, 0.4 * b, 1000.0, 250.0).time_s), 6)
    5000.0
    """
    lam = np.maximum(np.asarray(decode_rate, dtype=np.float64), 0.0)
    rho = np.divide(prefill_rate, lam, out=np.zeros_like(lam), where=lam > 0)
    hi = np.broadcast_to(np.asarray(max_seqs, dtype=np.float64), lam.shape).copy()
    shape = np.broadcast_shapes(lam.shape, hi.shape, np.shape(context_tokens), np.shape(clock_fraction))
    lam, rho, hi = (np.broadcast_to(a, shape).copy() for a in (lam, rho, hi))

    at = StepPlan.at(c, dev, context_tokens, prefill_position, clock_fraction, prompt_tokens) if plan is None else plan

    def h(b: FloatArray) -> FloatArray:
        return np.asarray(b - lam * at.time_s(b, rho * b))

    # The empty step takes no time: the bracket starts at a vanishing batch, where its residual is
    # taken (so the first secant is exact where the step is affine in the batch: dense models on a
    # linear roofline settle in one step).
    tiny = np.maximum(hi * 1e-9, 1e-12)
    f_lo = h(tiny)
    f_hi = h(hi)
    reach = (lam > 0) & (f_hi > 0)  # max_seqs reach the rate (else they are the answer)
    b = np.where(reach & (f_lo >= 0), 0.0, np.where(lam > 0, hi, 0.0))  # a vanishing batch keeps up: none
    todo = reach & (f_lo < 0)
    rtol = RATE_SOLVER_RTOL
    return _false_position(
        h, tiny, hi, f_lo, f_hi, b, todo, steps=RATE_SOLVER_STEPS, rtol=rtol, floor=1.0, bracket_rtol=rtol
    )


def prefill_chunk_for_rate(plan: StepPlan, one: Numeric, budget: Numeric, rate: Numeric) -> FloatArray:
    """Prompt tokens per step of a rank that only prefills, at ``rate`` prompt tokens per second.

    One prompt (``one`` tokens) per step while that keeps up; beyond, prompts wait and are
    batched into larger steps, up to the token budget: the chunk ``C`` with ``C = rate t(C)``
    (Illinois false position on ``[one, budget]``, as :func:`batch_for_rates`), so the rank is
    busy all the time.

    Parameters
    ----------
    plan : StepPlan
        The ranks' steps.
    one, budget : numeric
        Tokens of one prompt, and the token budget of a step (``budget >= one``). [1]
    rate : numeric
        Prompt tokens per second the rank serves. [1/s]

    Returns
    -------
    numpy.ndarray
        ``C`` in ``[one, budget]``: ``one`` where one prompt a step keeps up, ``budget`` where
        even the budget does not. [1]

    Examples
    --------
    Llama-3.1-8B prefilling 100-token prompts at 30 000 tokens/s: a step reads the weights in
    15.01 GB / 2.68 TB/s = 5.6 ms, so one prompt a step makes 17 800 tokens/s; 168 tokens a step
    (their 2.3 TFLOP take 4.0 ms: the read still sets the time) keep up:

    >>> from twin.physics.step_costs import example_costs, example_device
    >>> plan = StepPlan.at(example_costs(), example_device(), 0.0, 50.0)
    >>> c = prefill_chunk_for_rate(plan, 100.0, 8192.0, 30000.0)
    >>> round(float(c), 1), round(float(c / plan.time_s(0.0, c)), 3)
    (168.2, 30000.0)
    """
    lo, hi = np.asarray(one, dtype=np.float64), np.asarray(budget, dtype=np.float64)

    def f(chunk: FloatArray) -> FloatArray:
        return np.asarray(chunk - rate * plan.time_s(0.0, chunk))

    f_lo, f_hi = f(lo), f(hi)
    x = np.where(f_lo >= 0, lo, hi)  # keeps up with one prompt a step, or needs the whole budget
    todo = (f_lo < 0) & (f_hi > 0)
    # The bracket needs no test of its own: f(lo) < 0 < f(hi) keeps it open until the residual settles.
    steps, rtol = PREFILL_CHUNK_STEPS, PREFILL_CHUNK_RTOL
    return _false_position(f, lo, hi, f_lo, f_hi, x, todo, steps=steps, rtol=rtol, floor=0.0, bracket_rtol=0.0)


def _false_position(
    f: Callable[[FloatArray], FloatArray],
    lo: FloatArray,
    hi: FloatArray,
    f_lo: FloatArray,
    f_hi: FloatArray,
    x: FloatArray,
    todo: BoolArray,
    *,
    steps: int,
    rtol: float,
    floor: float,
    bracket_rtol: float,
) -> FloatArray:
    """The root of ``f`` in ``[lo, hi]`` on the cells ``todo`` (where ``f_lo < 0 < f_hi``); ``x`` on the others.

    The Illinois variant of false position [1]_, every cell at once: the secant through the
    bracket's ends, and the end kept twice in a row has its residual halved (so the bracket closes
    from both sides where ``f`` bends). A cell stops after ``steps``, once its bracket is within
    ``bracket_rtol`` of ``max(hi, 1)`` or its residual within ``rtol`` of ``max(x, floor)``, or at a
    NaN residual; it returns the last point tried.

    References
    ----------
    .. [1] M. Dowell, P. Jarratt, "A modified regula falsi method for computing the root of an
       equation", BIT 11, 1971, pp. 168-174.

    Examples
    --------
    The square root of 2 on ``[0, 2]`` (the second cell is left at 0):

    >>> f, todo = (lambda x: x**2 - 2.0), np.array([True, False])
    >>> lo, hi = np.zeros(2), np.full(2, 2.0)
    >>> _false_position(f, lo, hi, f(lo), f(hi), lo, todo, steps=60, rtol=1e-15, floor=1.0, bracket_rtol=0.0)
    array([1.41421356, 0.        ])
    """
    shape = np.shape(todo)
    lo, hi, f_lo, f_hi, x = (np.broadcast_to(a, shape) for a in (lo, hi, f_lo, f_hi, x))
    side = np.zeros(shape)  # +1: the last step moved the upper end, -1: the lower one
    for i in range(steps):
        if not np.any(todo):
            break
        den = np.where(todo, f_hi - f_lo, 1.0)
        x = np.where(todo, np.clip((lo * f_hi - hi * f_lo) / den, lo, hi), x)
        fx = f(x)
        up = todo & (fx > 0)
        down = todo & (fx <= 0)
        # Which end moves is a coin toss per cell: selected without branches (_pick), and the
        # Illinois halving of the end kept twice (none on the first step) as a factor of 0.5 or 1.
        hi, f_hi = _pick(up, (x, hi), (fx, f_hi))
        lo, f_lo = _pick(down, (x, lo), (fx, f_lo))
        if i > 0:
            f_lo = f_lo * (1.0 - 0.5 * (up & (side > 0)))
            f_hi = f_hi * (1.0 - 0.5 * (down & (side < 0)))
        side = np.where(todo, np.subtract(up, down, dtype=np.float64), side)
        todo = todo & (hi - lo > bracket_rtol * np.maximum(hi, 1.0)) & (np.abs(fx) > rtol * np.maximum(x, floor))
    return np.asarray(x)


def _pick(mask: BoolArray, *pairs: tuple[FloatArray, FloatArray]) -> tuple[FloatArray, ...]:
    """``np.where(mask, a, b)`` for each pair of float arrays of the mask's shape, to the bit, without branches.

    :func:`numpy.where` branches on each element; where the mask is true about half the time at
    random (which end of a root's bracket moves) most branches are mispredicted, and selecting
    the bits through an integer mask is about 3 times faster.

    Examples
    --------
    >>> _pick(np.array([True, False, True]), (np.array([1.0, 2.0, np.nan]), np.array([-0.0, -0.0, 3.0])))
    (array([ 1., -0., nan]),)
    """
    ones = -np.asarray(mask).view(np.int8).astype(np.int64)  # every bit set where true
    out = []
    for a, b in pairs:
        a_bits, b_bits = np.asarray(a, dtype=np.float64).view(np.int64), np.asarray(b, dtype=np.float64).view(np.int64)
        bits = np.bitwise_xor(a_bits, b_bits)
        bits &= ones
        bits ^= b_bits
        out.append(bits.view(np.float64))
    return tuple(out)
