"""Array helpers shared by the plant-component modules (`cooling`, `heat_rejection`)."""

from __future__ import annotations

import numpy as np

from twin._types import FloatArray, Numeric


def f64(value: Numeric) -> FloatArray:
    """``value`` as a ``float64`` array (no copy where it already is one)."""
    return np.asarray(value, dtype=np.float64)


def divide(num: Numeric, den: Numeric, fill: float) -> FloatArray:
    """``num / den`` where ``den > 0``, else ``fill``; broadcast, no warnings.

    Examples
    --------
    >>> divide([1.0, 1.0], [2.0, 0.0], -1.0).tolist()
    [0.5, -1.0]
    """
    n, d = f64(num), f64(den)
    out = np.full(np.broadcast_shapes(n.shape, d.shape), fill)
    return np.divide(n, d, out=out, where=d > 0.0)
