"""A block's latency entries binned compiled: one pass over its cells for the log-binned histograms.

:class:`twin.engine.pool_stats.PoolStats` bins each block's time to first token and time per
output token, weighted by requests and tokens, into logarithmic bins
(:func:`twin.engine.pool_stats.bin_index`). In numpy that is some fifteen whole-array passes (the
weights times the columns' server counts, the mask of positive weights and finite values, its
places, the ticks, three gathers, the weighted values, then the bin: a maximum, a division, a
``log10``, a product, a cast and a clip). Here one loop over the cells does the same products and
keeps the same entries in the same order, without a branch, into scratch reused block after block
(fresh arrays would cost more than the loop: ~8 ns a cell in page faults on this machine): ~3-6 ns
a cell against numpy's ~13-15.

The bin is not computed with a ``log10``: the C library's differs from numpy's vectorised one in the
last bit now and then (which would move a value at a bin's edge to the next bin), and costs ~20 ns
a value against numpy's ~2. It is the number of bin edges at or below the value, the edges being
the least doubles numpy's own :func:`~twin.engine.pool_stats.bin_index` puts in each bin
(:func:`twin.engine.pool_stats.bin_edges`): a table read by the top bits of the value's double
gives the bin of its cell's least value, and one comparison with the next edge finishes it. So
the bin is numpy's to the bit wherever numpy's binning rises with the value, which
``tests/test_latency_kernel.py`` checks a few hundred doubles either side of every edge.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from twin._types import FloatArray, IntArray

#: A value's bin is first read from a table by the top bits of its double (sign, exponent and
#: this many leading bits of its mantissa): a table cell spans ~0.34 bins at 200 a decade, so at most
#: one edge lies in it and one comparison finishes the bin.
MANTISSA_BITS = 8
_SHIFT = 52 - MANTISSA_BITS


class CompiledBinning:
    """Bins latencies compiled (:func:`binned`): the bins' edges, the guess table, and scratch for the entries.

    ``edges`` ``(N,)``: the least double of each bin (``-inf`` first), ``low_s`` and ``high_s``: the
    values below and above which every value is in the first and last bin.
    """

    def __init__(self, edges: FloatArray, low_s: float, high_s: float) -> None:
        self.edges = np.ascontiguousarray(edges, dtype=np.float64)
        self.lo_bits = (int(np.float64(low_s).view(np.int64)) >> _SHIFT) << _SHIFT
        self.hi_bits = int(np.float64(high_s).view(np.int64))
        least = np.arange(self.lo_bits, self.hi_bits + 1, 1 << _SHIFT, dtype=np.int64).view(np.float64)
        self.table = np.maximum(np.searchsorted(self.edges, least, side="right") - 1, 0).astype(np.int64)
        if np.any(np.diff(self.table) > 1):  # (a cell would hold two edges: one step would not do)
            raise ValueError(f"bins finer than {MANTISSA_BITS} bits of mantissa")
        self._scratch = (np.empty(0, dtype=np.int64), np.empty(0), np.empty(0), np.empty(0, dtype=np.int64))

    def __call__(
        self, values: FloatArray, weights: FloatArray, col_weight: FloatArray | None
    ) -> tuple[IntArray, FloatArray, FloatArray, IntArray]:
        """:class:`twin.engine.pool_stats._Binned`'s entries of ``(K, n)`` values and weights (times ``col_weight``).

        Views of this binning's scratch, valid until its next call.
        """
        shape = np.shape(values)
        v = np.asarray(np.broadcast_to(values, shape), dtype=np.float64)
        w = np.asarray(np.broadcast_to(weights, shape), dtype=np.float64)
        if self._scratch[0].size < v.size:
            n = v.size
            self._scratch = (np.empty(n, dtype=np.int64), np.empty(n), np.empty(n), np.empty(n, dtype=np.int64))
        by = col_weight is not None
        cw = np.asarray(col_weight if by else np.ones(0), dtype=np.float64)
        m = binned(v, v.view(np.int64), w, cw, by, self.edges, self.table, self.lo_bits, self.hi_bits, *self._scratch)
        tick, w_out, wv_out, idx = self._scratch
        return tick[:m], w_out[:m], wv_out[:m], idx[:m]


@njit(cache=True, nogil=True, error_model="numpy")
def binned(
    values: FloatArray,
    bits: IntArray,
    weights: FloatArray,
    col_weight: FloatArray,
    by_columns: bool,
    edges: FloatArray,
    table: IntArray,
    lo_bits: int,
    hi_bits: int,
    tick: IntArray,
    w_out: FloatArray,
    wv_out: FloatArray,
    idx: IntArray,
) -> int:
    """Write the entries of ``(K, n)`` ``values`` whose weight is positive and value finite, in cell order.

    ``bits``: the values' doubles as integers; ``weights`` ``(K, n)``, times ``col_weight`` ``(n,)``
    where ``by_columns``; ``edges``, ``table``, ``lo_bits``, ``hi_bits``: :class:`CompiledBinning`'s.
    Each entry's tick, weight, weight times value and bin (:func:`twin.engine.pool_stats.bin_index`)
    go to the outputs (``K n`` long), whose first entries they fill; returns how many. Branch-free:
    every cell is written, and the place moves on past those kept.
    """
    n_k, n = values.shape
    last = edges.size - 1
    m = 0
    for t in range(n_k):
        for j in range(n):
            w = weights[t, j] * col_weight[j] if by_columns else weights[t, j]
            v = values[t, j]
            keep = (w > 0) & math.isfinite(v)
            b = table[(min(max(bits[t, j], lo_bits), hi_bits) - lo_bits) >> _SHIFT]
            b += (b < last) & (v >= edges[min(b + 1, last)])
            tick[m] = t
            w_out[m] = w
            wv_out[m] = w * v
            idx[m] = b
            m += keep
    return m
