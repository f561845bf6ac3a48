"""A trace request source's block, compiled: one loop per distinct row of offsets and copy.

:meth:`twin.engine.sources.RequestSource.block` looks a block's tick edges up in the trace held
as a cumulative function (:class:`twin.workload.periodic.PeriodicEvents`) for every distinct row
of offsets and every copy, in numpy: the edges clamped, shifted and folded into the period, a
bucketed search, five gathers and five differences, the copies summed, then the two sequence
lengths divided out, some thirty whole-array passes over ``(U, K)``. Here one loop per copy and
row does the same floating-point operations in the same order, edge by edge, finds each edge's
place with a bucketed search of finer buckets
(:data:`twin.engine.sources.COMPILED_BUCKETS_PER_VALUE`; a place is exact whatever the buckets)
and reads one row of a table (an event's time and the four running sums before it) per edge:
the result is the numpy one's to the bit (``tests/test_request_kernel.py`` holds the two against
each other on random traces, bursts, offsets, copies and blocks, looped or not). On
``mix-38k``'s sources (2 146 rows of one copy, 842 of eight) an edge costs ~13-15 ns here
against numpy's ~28-30.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from twin._types import FloatArray, IntArray


@njit(cache=True)
def request_rows(
    table: FloatArray,
    first: IntArray,
    bucket: FloatArray,
    totals: FloatArray,
    period_s: float,
    loop: bool,
    edges: FloatArray,
    offsets: FloatArray,
    kept: FloatArray,
    reuse: bool,
    per_copy: float,
    mean_prompt_len: float,
    mean_context_len: float,
) -> FloatArray:
    """The five request columns ``(5, U, K)`` of ``U`` rows of offsets ``(U, C)`` over ``K + 1`` edges.

    ``table`` ``(n + 1, 5)``: per sorted event (and ``+inf`` after the last) its time and the
    running sums before it of prompt, output, prompt squared and context times output tokens (a
    row is what one edge reads: the count is the place itself); ``totals`` the five period totals,
    count first. An edge's place among the events is :class:`twin.workload.periodic.BucketedSearch`'s:
    ``first`` its buckets' first places and ``bucket`` its base, scale and last bucket (a scale of
    ``-1``: the binary search). ``kept`` ``(C, U, 5)`` holds each row and copy's ``G`` at ``edges[0]``
    where ``reuse`` (the last edge of the block before), and is overwritten with ``G`` at
    ``edges[-1]``. Out: requests, prefill and decode tokens (``per_copy`` times the sums: the
    source's scale over ``C``), the token-weighted prompt length (at least 1) and the decode
    context, the means where nothing came.
    """
    n_rows, n_copies = offsets.shape
    n_k = edges.size - 1
    out = np.empty((5, n_rows, n_k))
    base, scale, top = bucket[0], bucket[1], bucket[2]
    times = table[:-1, 0]
    clamped = np.empty(n_k + 1)  # the edges clamped at 0 (and, not looping, at the period) before the shift
    for e in range(n_k + 1):
        t = max(edges[e], 0.0)
        clamped[e] = min(t, period_s) if not loop else t
    for c in range(n_copies):
        for u in range(n_rows):
            o = offsets[u, c]
            g0 = kept[c, u, 0]
            g1 = kept[c, u, 1]
            g2 = kept[c, u, 2]
            g3 = kept[c, u, 3]
            g4 = kept[c, u, 4]
            for e in range(0 if not reuse else 1, n_k + 1):
                tau = clamped[e] + o
                q = np.floor(tau / period_s)
                r = tau - q * period_s
                if r >= period_s:
                    q = q + 1.0
                    r = r - period_s
                if r < 0:
                    q = q - 1.0
                    r = r + period_s
                if scale >= 0.0:
                    b = min(max((r - base) * scale, 0.0), top)
                    j = first[int(b)]
                    while table[j, 0] < r:
                        j += 1
                else:
                    j = int(np.searchsorted(times, r))
                h0 = q * totals[0] + float(j)
                h1 = q * totals[1] + table[j, 1]
                h2 = q * totals[2] + table[j, 2]
                h3 = q * totals[3] + table[j, 3]
                h4 = q * totals[4] + table[j, 4]
                if e > 0:
                    k = e - 1
                    if c == 0:
                        out[0, u, k] = h0 - g0
                        out[1, u, k] = h1 - g1
                        out[2, u, k] = h2 - g2
                        out[3, u, k] = h3 - g3
                        out[4, u, k] = h4 - g4
                    else:
                        out[0, u, k] += h0 - g0
                        out[1, u, k] += h1 - g1
                        out[2, u, k] += h2 - g2
                        out[3, u, k] += h3 - g3
                        out[4, u, k] += h4 - g4
                g0, g1, g2, g3, g4 = h0, h1, h2, h3, h4
            kept[c, u, 0] = g0
            kept[c, u, 1] = g1
            kept[c, u, 2] = g2
            kept[c, u, 3] = g3
            kept[c, u, 4] = g4
    for u in range(n_rows):
        for k in range(n_k):
            p = out[1, u, k]
            o_tok = out[2, u, k]
            out[0, u, k] = per_copy * out[0, u, k]
            out[1, u, k] = per_copy * p
            out[2, u, k] = per_copy * o_tok
            out[3, u, k] = max(out[3, u, k] / p if p > 0 else mean_prompt_len, 1.0)
            out[4, u, k] = out[4, u, k] / o_tok if o_tok > 0 else mean_context_len
    return out
