"""Report intervals inside a block of ticks, and accumulators that close many intervals at once.

A committed block may span several report intervals: its ticks are split at the report
boundaries into *segments* (consecutive ticks of one interval). Per-interval sums and extremes
are then one ``np.add.reduceat`` / ``np.maximum.reduceat`` over the tick axis instead of one
Python commit and flush per interval; the first segment continues the interval left open by the
previous block, and the last stays open unless the block ends on a boundary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from twin._types import FloatArray, IntArray

Kind = Literal["sum", "max", "min"]
_EMPTY = {"sum": 0.0, "max": -np.inf, "min": np.inf}


@dataclass(frozen=True)
class Segments:
    """A block's ticks grouped by report interval.

    Attributes
    ----------
    starts : ndarray of int
        First tick of each segment (``starts[0] == 0``, strictly rising).
    n_ticks : int
        Ticks in the block.
    closed : int
        Leading segments that end a report interval (all of them, or all but the last).
    """

    starts: IntArray
    n_ticks: int
    closed: int

    @classmethod
    def whole(cls, n_ticks: int, closes: bool) -> Segments:
        """The whole block as one segment."""
        return cls(np.zeros(1, dtype=np.intp), n_ticks, int(closes))

    @property
    def n(self) -> int:
        """Number of segments."""
        return int(self.starts.size)

    @property
    def ends(self) -> IntArray:
        """One past the last tick of each segment."""
        return np.append(self.starts[1:], self.n_ticks)

    def sum(self, x: FloatArray) -> FloatArray:
        """Per-segment sums over the tick axis (axis 0)."""
        return np.add.reduceat(np.asarray(x, dtype=np.float64), self.starts, axis=0)

    def max(self, x: FloatArray) -> FloatArray:
        """Per-segment maxima over the tick axis (axis 0)."""
        return np.maximum.reduceat(np.asarray(x, dtype=np.float64), self.starts, axis=0)

    def last(self, x: FloatArray) -> FloatArray:
        """Value at each segment's last tick."""
        return np.asarray(x)[self.ends - 1]

    def tick_segment(self) -> IntArray:
        """Segment index of every tick."""
        return np.repeat(np.arange(self.n), np.diff(np.append(self.starts, self.n_ticks)))


class IntervalAccumulator:
    """Named per-interval sums/extremes: the open interval, and closed ones queued for their rows.

    Parameters
    ----------
    kinds : dict
        Name -> ``"sum"``, ``"max"`` or ``"min"``.
    """

    def __init__(self, kinds: dict[str, Kind]) -> None:
        self.kinds = dict(kinds)
        self.open = {k: _EMPTY[v] for k, v in self.kinds.items()}
        self._queued: dict[str, list[FloatArray]] = {k: [] for k in self.kinds}

    def add_scalar(self, name: str, value: float) -> None:
        """Fold a value into the open interval (an event's contribution)."""
        self.open[name] = _combine(self.kinds[name], self.open[name], value)

    def add(self, seg: Segments, values: dict[str, FloatArray]) -> None:
        """Fold per-segment values ``(seg.n,)``; queue the closed intervals, keep the last one open."""
        if seg.n == 1:  # the common case of a block inside one interval: plain floats
            for name, kind in self.kinds.items():
                x = _combine(kind, self.open[name], float(values[name][0])) if name in values else self.open[name]
                if seg.closed:
                    self._queued[name].append(np.array([x]))
                    x = _EMPTY[kind]
                self.open[name] = x
            return
        for name, kind in self.kinds.items():
            v = np.array(values[name], dtype=np.float64, copy=True) if name in values else np.full(seg.n, _EMPTY[kind])
            v[0] = _combine(kind, self.open[name], float(v[0]))
            if seg.closed:
                self._queued[name].append(v[: seg.closed])
            self.open[name] = float(v[-1]) if seg.closed < seg.n else _EMPTY[kind]

    def close_open(self) -> None:
        """Queue the open interval as closed (the run's end)."""
        for name, kind in self.kinds.items():
            self._queued[name].append(np.array([self.open[name]]))
            self.open[name] = _EMPTY[kind]

    def take(self) -> dict[str, FloatArray]:
        """The queued closed intervals, in order, and empty the queue."""
        out = {k: (np.concatenate(v) if v else np.zeros(0)) for k, v in self._queued.items()}
        self._queued = {k: [] for k in self.kinds}
        return out


def _combine(kind: Kind, a: float, b: float) -> float:
    if kind == "sum":
        return a + b
    if kind == "max":
        return max(a, b)
    return min(a, b)
