"""A trace as a cumulative function, so any window of any shifted, looped copy costs a lookup.

The engine needs, for every tick ``[a, b)`` and every server ``s``, what server ``s``'s copy of a
trace holds in that tick: its copy is the trace shifted circularly by an offset ``o_s`` within
the trace's period ``P`` and, when looping, repeated every ``P``. Materialising one copy per
server (or even one looped copy for the whole run) is what this module avoids. Instead the trace
is held once as a cumulative function ``G`` of time over its periodic extension,

    G(t) = floor(t / P) * G(P) + g(t mod P),

with ``g`` the running total within one period, and the window ``[a, b)`` of copy ``s`` is
``G(b + o_s) - G(a + o_s)``: exact (event sums are integer sums, signal integrals are exact for
a piecewise-constant signal), for arbitrary tick edges, with memory of one trace plus the
``(ticks x servers)`` block being computed. Without looping a copy covers ``[0, P)`` only:
times are clamped to ``P`` before the shift, so nothing arrives (or the signal is zero) after.

:class:`PeriodicEvents` does this for weighted point events (requests and their tokens, sums over
half-open windows as :func:`twin.workload.binning.bin_requests` counts them);
:class:`PeriodicSignal` for a piecewise-constant signal (utilisation, GPUs in use), whose window
means are the zero-order-hold means of :func:`twin.workload.binning.resample_telemetry`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from twin._types import FloatArray

#: Buckets of :class:`BucketedSearch` per value searched (more: shorter scans, more memory).
BUCKETS_PER_VALUE = 2
#: Most values of ``a`` a bucket of :class:`BucketedSearch` may hold (more: it keeps the binary search).
MAX_BUCKET = 64


class BucketedSearch:
    """``np.searchsorted(a, v, side)`` for one sorted ``a`` and many ``v``, in O(1) per query.

    ``a``'s range is cut into ``M`` equal buckets (``per_value`` per value); a query's
    bucket is found by index arithmetic (no search) and the values of ``a`` below it in its bucket
    by a scan, which on a regular grid (a resampled signal's starts) or a trace of spread events
    passes about one value. Exact: the bucket ``floor((v - a[0]) * M / span)`` (clipped to
    ``[0, M)``) is computed the same way for ``a`` and for the queries and never decreases with
    ``v``, so every value in a lower bucket is below the query and every value in a higher one
    above it. Where a bucket would hold more than :data:`MAX_BUCKET` values (ties, bursts) or
    ``a`` is not finite, the binary search is used instead.

    Examples
    --------
    >>> a = np.array([0.0, 1.0, 1.0, 2.5, 4.0])
    >>> v = np.array([-1.0, 0.0, 1.0, 3.0, 4.0, 9.0])
    >>> BucketedSearch(a, "left")(v).tolist(), np.searchsorted(a, v, "left").tolist()
    ([0, 0, 1, 4, 4, 5], [0, 0, 1, 4, 4, 5])
    """

    def __init__(
        self, a: ArrayLike, side: Literal["left", "right"] = "left", per_value: int = BUCKETS_PER_VALUE
    ) -> None:
        self.a = np.asarray(a, dtype=np.float64)
        if side not in ("left", "right"):
            raise ValueError(f"side must be 'left' or 'right', got {side!r}")
        self.side = side
        n = self.a.size
        m = max(per_value * n, 1)
        span = float(self.a[-1]) - float(self.a[0]) if n else 0.0  # inf past the float range
        # The buckets (read by the compiled request lookup, twin.engine.request_kernel, too): the
        # first value's bucket starts at base, each is 1 / scale wide, the last is top.
        self.base = float(self.a[0]) if n else 0.0
        self.top = float(m - 1)
        scale = m / span if span > 0 else 0.0
        self.scale = scale if np.isfinite(scale) else 0.0  # 0: one bucket
        counts = np.bincount(self._bucket(self.a), minlength=m)
        #: Values of ``a`` in the buckets below each bucket (and all of them at the end).
        self.first = np.concatenate(([0], np.cumsum(counts)))
        # A NaN after the last value ends every scan there (it compares false with everything).
        self._padded = np.append(self.a, np.nan)
        #: Whether the bucketed search answers (else the binary search).
        self.fast = n > 0 and int(counts.max()) <= MAX_BUCKET and bool(np.all(np.isfinite(self.a)))

    def _bucket(self, v: FloatArray) -> np.ndarray:
        """The bucket of each value (non-decreasing in ``v``). [index]"""
        if self.scale == 0.0:
            return np.zeros(np.shape(v), dtype=np.intp)
        with np.errstate(over="ignore"):  # a query beyond the float range from a[0] is in the end bucket
            return np.clip((v - self.base) * self.scale, 0.0, self.top).astype(np.intp)

    def __call__(self, v: ArrayLike) -> np.ndarray:
        """Where ``v`` would go in ``a`` (as :func:`numpy.searchsorted`; ``v`` holds no NaN)."""
        v = np.asarray(v, dtype=np.float64)
        if not self.fast:
            return np.asarray(np.searchsorted(self.a, v, side=self.side))
        before = np.less if self.side == "left" else np.less_equal
        flat_v = v.reshape(-1)
        pos = self.first[self._bucket(flat_v)]
        moving = np.flatnonzero(before(self._padded[pos], flat_v))
        while moving.size:  # the values of a query's bucket below it, one at a time
            pos[moving] += 1
            moving = moving[before(self._padded[pos[moving]], flat_v[moving])]
        return pos.reshape(v.shape)


def _check_period(period_s: float) -> None:
    if not (np.isfinite(period_s) and period_s > 0):
        raise ValueError(f"period_s must be finite and > 0, got {period_s}")


def _fold(tau: FloatArray, period_s: float) -> tuple[FloatArray, FloatArray]:
    """Split ``tau >= 0`` into whole periods and the remainder in ``[0, P)``."""
    q = np.floor(tau / period_s)
    r = tau - q * period_s
    # Rounding can put r a hair outside [0, P): move it into the neighbouring period (rarely
    # needed, so looked for before any array is rewritten).
    if np.any(r >= period_s):
        over = r >= period_s
        q = np.where(over, q + 1.0, q)
        r = np.where(over, r - period_s, r)
    if np.any(r < 0):
        under = r < 0
        q, r = np.where(under, q - 1.0, q), np.where(under, r + period_s, r)
    return q, r


class _Periodic:
    """Shared time handling: clamp when not looping, then shift by the copy's offset."""

    def __init__(self, period_s: float, loop: bool) -> None:
        _check_period(period_s)
        self.period_s = float(period_s)
        self.loop = bool(loop)

    def _tau(self, t_s: ArrayLike, offset_s: ArrayLike) -> FloatArray:
        t = np.maximum(np.asarray(t_s, dtype=np.float64), 0.0)
        if not self.loop:
            t = np.minimum(t, self.period_s)
        return np.asarray(t + np.asarray(offset_s, dtype=np.float64))


class PeriodicEvents(_Periodic):
    """Weighted point events on ``[0, P)`` and their windowed sums in shifted, looped copies.

    Parameters
    ----------
    t_s : array_like
        Event times in ``[0, period_s)`` [s]; sorted here (stable) if they are not.
    weights : mapping of str to array_like
        One weight per event for each quantity (e.g. ``prompt_tokens``); event counts are
        always available as ``"count"``.
    period_s : float
        The period ``P`` [s], greater than every event time.
    loop : bool
        Repeat every ``P`` (else a copy holds events only in ``[0, P)``).

    Examples
    --------
    Three requests in a 3 s period, looped: the window [2, 5) of the unshifted copy holds the
    request at 2 s and the repeats of those at 0 s and 1 s.

    >>> ev = PeriodicEvents([0.0, 1.0, 2.0], {"tokens": [10, 20, 30]}, 3.0, loop=True)
    >>> {k: v.tolist() for k, v in ev.window_sums([2.0], [5.0]).items()}
    {'count': [3.0], 'tokens': [60.0]}
    >>> ev.window_sums([2.0], [5.0], offset_s=1.0)["tokens"].tolist()  # window [3, 6)
    [60.0]
    """

    def __init__(self, t_s: ArrayLike, weights: Mapping[str, ArrayLike], period_s: float, loop: bool) -> None:
        super().__init__(period_s, loop)
        t = np.asarray(t_s, dtype=np.float64)
        order = np.argsort(t, kind="stable")
        t = t[order]
        if t.size and (t[0] < 0 or t[-1] >= self.period_s):
            raise ValueError(f"event times must lie in [0, {self.period_s}), got {t[0]}..{t[-1]}")
        self.t_s = t
        cols = {"count": np.ones(t.size)}
        for name, w in weights.items():
            arr = np.asarray(w, dtype=np.float64)
            if arr.shape != t.shape:
                raise ValueError(f"weights {name!r} have shape {arr.shape}, expected {t.shape}")
            cols[name] = arr[order]
        #: Running sums of each quantity over the sorted events, 0 first: ``(n + 1,)`` each.
        self.running = {name: np.concatenate(([0.0], np.cumsum(w))) for name, w in cols.items()}
        self.totals = {name: float(c[-1]) for name, c in self.running.items()}
        self._search = BucketedSearch(t, "left")

    @property
    def mean_rate_per_s(self) -> float:
        """Events per second of the periodic extension. [1/s]"""
        return self.totals["count"] / self.period_s

    def cumulative(self, tau_s: ArrayLike) -> dict[str, FloatArray]:
        """``G(tau)``: sums over the periodic extension's events in ``[0, tau)``, ``tau >= 0``."""
        q, r = _fold(np.asarray(tau_s, dtype=np.float64), self.period_s)
        idx = self._search(r)
        # The running count at an event is its index (a sum of ones): no lookup needed.
        return {name: q * self.totals[name] + (idx if name == "count" else c[idx]) for name, c in self.running.items()}

    def window_sums(self, t0_s: ArrayLike, t1_s: ArrayLike, offset_s: ArrayLike = 0.0) -> dict[str, FloatArray]:
        """Sums over the events of the copy shifted by ``offset_s`` in ``[t0, t1)``.

        ``t0``, ``t1`` and ``offset_s`` broadcast (ticks as a column, servers' offsets as a
        row give a ``(K, S)`` block). A copy's event at trace time ``u`` falls at
        ``(u - offset) mod P`` within each period.
        """
        g1 = self.cumulative(self._tau(t1_s, offset_s))
        g0 = self.cumulative(self._tau(t0_s, offset_s))
        return {name: g1[name] - g0[name] for name in g1}

    def edge_sums(self, edges_s: ArrayLike, offset_s: ArrayLike = 0.0, axis: int = 0) -> dict[str, FloatArray]:
        """Like :meth:`window_sums` for contiguous windows given by their ``K + 1`` edges (along ``axis``).

        Half the lookups of :meth:`window_sums` (each inner edge is looked up once); with the edges
        along the last axis and one copy's offset per row, each row's lookups are in time order,
        which is faster for :func:`numpy.searchsorted` than interleaving the copies.
        """
        g = self.cumulative_at(edges_s, offset_s)
        return {name: np.diff(v, axis=axis) for name, v in g.items()}

    def cumulative_at(self, t_s: ArrayLike, offset_s: ArrayLike = 0.0) -> dict[str, FloatArray]:
        """Sums over the events of the copy shifted by ``offset_s`` in ``[0, t)`` (broadcasts): ``G(t + o)``."""
        return self.cumulative(self._tau(t_s, offset_s))


class PeriodicSignal(_Periodic):
    """A piecewise-constant signal on ``[0, P)`` and its window means in shifted, looped copies.

    Parameters
    ----------
    starts_s : array_like
        Start of each constant piece; the first is 0 and all are below ``period_s`` [s].
    values : array_like
        Value of each piece, held until the next start (the last until ``period_s``).
    period_s : float
        The period ``P`` [s].
    loop : bool
        Repeat every ``P`` (else a copy is ``after`` from ``P`` on).
    after : float
        Value of a copy after its period when not looping.

    Examples
    --------
    A signal that is 1 for the first second of a 4 s period: the mean over [0, 8) is 0.25; a copy
    shifted by 0.5 s holds 1 only on [0, 0.5) within [0, 1).

    >>> sig = PeriodicSignal([0.0, 1.0], [1.0, 0.0], 4.0, loop=True)
    >>> sig.window_mean([0.0], [8.0]).tolist(), sig.window_mean([0.0], [1.0], offset_s=0.5).tolist()
    ([0.25], [0.5])
    """

    def __init__(self, starts_s: ArrayLike, values: ArrayLike, period_s: float, loop: bool, after: float = 0.0) -> None:
        super().__init__(period_s, loop)
        b = np.asarray(starts_s, dtype=np.float64)
        v = np.asarray(values, dtype=np.float64)
        if b.shape != v.shape or b.size == 0:
            raise ValueError("starts_s and values must be non-empty and of one length")
        if b[0] != 0.0 or np.any(np.diff(b) <= 0) or b[-1] >= self.period_s:
            raise ValueError("starts_s must rise strictly from 0 and stay below period_s")
        if not np.all(np.isfinite(v)):
            raise ValueError("values must be finite")
        self.starts_s = b
        self.values = v
        self.after = float(after)
        self._ends = np.append(b[1:], self.period_s)  # each piece's end
        widths = self._ends - b
        self._cum = np.concatenate(([0.0], np.cumsum(v * widths)))
        self.total = float(self._cum[-1])
        self._search = BucketedSearch(b, "right")

    @property
    def mean(self) -> float:
        """Mean of the signal over one period."""
        return self.total / self.period_s

    def value_range(self, t_s: float, from_s: float = 0.0) -> tuple[float, float]:
        """Least and greatest value the unshifted copy holds over ``[from_s, t_s)`` (``t_s > from_s >= 0``).

        >>> sig = PeriodicSignal([0.0, 1.0, 2.0], [5.0, 7.0, 6.0], 3.0, loop=True)
        >>> sig.value_range(2.0), sig.value_range(2.5, 1.5), sig.value_range(3.5, 2.5), sig.value_range(9.0, 4.0)
        ((5.0, 7.0), (6.0, 7.0), (5.0, 6.0), (5.0, 7.0))
        """
        p, ends = self.period_s, self._ends
        if self.loop:
            if t_s - from_s >= p:
                return float(self.values.min()), float(self.values.max())
            a = from_s % p
            b = a + (t_s - from_s)  # past p where the window wraps into the next period
            held = self.values[((self.starts_s < b) & (ends > a)) | (self.starts_s < b - p)]
        else:
            held = self.values[(self.starts_s < t_s) & (ends > from_s)]
            if t_s > p:
                held = np.append(held, self.after)
        return float(held.min()), float(held.max())

    def integral(self, tau_s: ArrayLike) -> FloatArray:
        """``I(tau)``: integral of the periodic extension over ``[0, tau)``, ``tau >= 0``."""
        q, r = _fold(np.asarray(tau_s, dtype=np.float64), self.period_s)
        j = self._search(r) - 1
        return np.asarray(q * self.total + self._cum[j] + self.values[j] * (r - self.starts_s[j]))

    def window_mean(self, t0_s: ArrayLike, t1_s: ArrayLike, offset_s: ArrayLike = 0.0) -> FloatArray:
        """Mean of the copy shifted by ``offset_s`` over ``[t0, t1)`` (``t1 > t0``; broadcasts)."""
        t0 = np.asarray(t0_s, dtype=np.float64)
        t1 = np.asarray(t1_s, dtype=np.float64)
        inside = self.integral(self._tau(t1, offset_s)) - self.integral(self._tau(t0, offset_s))
        if not self.loop:
            # Time of the window past the copy's period holds ``after``.
            beyond = np.maximum(t1, self.period_s) - np.maximum(t0, self.period_s)
            inside = inside + self.after * beyond
        return np.asarray(inside / (t1 - t0))
