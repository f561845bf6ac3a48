"""Per-pool statistics recorded beside the time series: latency quantiles, GPU power, jobs.

Latency (inference pools). The serving model (:mod:`twin.engine.serving`) gives, per tick and
server, a time to first token and a time per output token from the fluid queue. They are
*interval-level* values: the quantiles reported here are quantiles of those values over ticks
and servers, each weighted by the requests that arrived in it (TTFT) or the tokens generated in
it (TPOT). A fluid model has no individual requests, so this is the distribution a request sees
across ticks and servers, not the spread among the requests of one tick; p99 therefore reflects
bursts and queues that last a tick or longer, not per-request tails.

Quantiles come from a weighted histogram with logarithmic bins (:data:`BINS_PER_DECADE` per
decade from :data:`LOW_S` to :data:`HIGH_S`) that also keeps the weighted sum of the values in
each bin: the quantile is the weighted mean of the values in the bin where the cumulative weight
crosses ``q`` (exact when that bin holds one value, otherwise within one bin, 1.2 %). Memory is
fixed however long the run, so the run's quantiles are exact to that resolution too.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np

from twin._types import FloatArray
from twin.engine.demand import DemandModel
from twin.engine.report_rows import ratio
from twin.engine.segments import IntervalAccumulator, Segments
from twin.facility_parts.fleet import Facility
from twin.units import S_PER_HOUR

if TYPE_CHECKING:
    from twin.engine.latency_kernel import CompiledBinning

LOW_S = 1e-6
HIGH_S = 1e5
BINS_PER_DECADE = 200
QUANTILES = {"p50": 0.50, "p99": 0.99}


N_BINS = round(np.log10(HIGH_S / LOW_S) * BINS_PER_DECADE)


def bin_index(values: FloatArray) -> np.ndarray:
    """Histogram bin of each (finite) value (clipped before the cast: a value past ~1.8e302 is inf here)."""
    pos = np.log10(np.maximum(values, LOW_S) / LOW_S) * BINS_PER_DECADE
    return np.clip(pos, 0, N_BINS - 1).astype(np.int64)


@cache
def bin_edges() -> FloatArray:
    """The least double :func:`bin_index` puts in each bin or above (``-inf`` for bin 0), ``(N_BINS,)``.

    Found by bisection on the doubles' bit patterns (ordered like the doubles they encode where
    positive), with :func:`bin_index` itself: where the binning rises with the value, a value's bin
    is the number of edges after the first at or below it (:mod:`twin.engine.latency_kernel`).
    """
    k = np.arange(1, N_BINS)
    lo = np.full(k.size, np.float64(LOW_S)).view(np.int64)  # bin 0 < k
    hi = np.full(k.size, np.float64(HIGH_S)).view(np.int64)  # bin N_BINS - 1 (clipped) >= k
    while np.any(hi - lo > 1):
        mid = lo + (hi - lo) // 2
        up = bin_index(mid.view(np.float64)) >= k
        hi, lo = np.where(up, mid, hi), np.where(up, lo, mid)
    return np.concatenate(([-np.inf], hi.view(np.float64)))


class WeightedHistogram:
    """Log-binned histogram of positive values with weights; see the module docstring."""

    def __init__(self) -> None:
        self.n_bins = N_BINS
        self.weight = np.zeros(self.n_bins)
        self.weighted_value = np.zeros(self.n_bins)

    def add(self, values: FloatArray, weights: FloatArray) -> None:
        """Add values with weights (non-positive weights and non-finite values are ignored)."""
        v = np.asarray(values, dtype=np.float64).ravel()
        w = np.asarray(weights, dtype=np.float64).ravel()
        keep = (w > 0) & np.isfinite(v)
        if not keep.any():
            return
        v, w = v[keep], w[keep]
        self.add_binned(bin_index(v), w, w * v)

    def add_binned(self, idx: np.ndarray, weights: FloatArray, weighted_values: FloatArray) -> None:
        """Add entries already binned (:func:`bin_index`) with their weights and weight x value."""
        self.weight += np.bincount(idx, weights=weights, minlength=self.n_bins)
        self.weighted_value += np.bincount(idx, weights=weighted_values, minlength=self.n_bins)

    def merge(self, other: WeightedHistogram) -> None:
        """Add another histogram's contents."""
        self.weight += other.weight
        self.weighted_value += other.weighted_value

    def reset(self) -> None:
        """Empty the histogram."""
        self.weight[:] = 0.0
        self.weighted_value[:] = 0.0

    @property
    def total_weight(self) -> float:
        """Sum of the weights."""
        return float(self.weight.sum())

    def mean(self) -> float:
        """Weighted mean (NaN when empty)."""
        total = self.total_weight
        return float(self.weighted_value.sum() / total) if total > 0 else float("nan")

    def quantile(self, q: float) -> float:
        """Weighted quantile to one bin (NaN when empty)."""
        total = self.total_weight
        if not total > 0:
            return float("nan")
        filled = np.flatnonzero(self.weight > 0)
        cum = np.cumsum(self.weight[filled])
        k = min(int(np.searchsorted(cum, q * total, side="left")), filled.size - 1)
        j = filled[k]
        return float(self.weighted_value[j] / self.weight[j])


class _Sums:
    """Running sums of one pool over the intervals and over the run."""

    KEYS = ("gpu_s", "gpu_j", "busy_gpu_s", "duration_s", "demanded_gpu_s")

    def __init__(self) -> None:
        self.interval = IntervalAccumulator(dict.fromkeys(self.KEYS, "sum"))
        self.run: dict[str, float] = dict.fromkeys(self.KEYS, 0.0)

    def add(self, seg: Segments, per_tick: dict[str, FloatArray]) -> None:
        self.interval.add(seg, {k: seg.sum(v) for k, v in per_tick.items()})
        for k, v in per_tick.items():
            self.run[k] += float(v.sum())


class _Binned:
    """A block's ``(K, n)`` values with positive weights and finite values, binned once.

    ``col_weight`` ``(n,)`` (None: ones) multiplies the weights. ``compiled``: binned in one compiled
    pass (the same entries to the bit), into its scratch: valid until it bins again.
    """

    def __init__(
        self,
        values: FloatArray,
        weights: FloatArray,
        col_weight: FloatArray | None = None,
        compiled: CompiledBinning | None = None,
    ) -> None:
        if compiled is not None:
            self.tick, self.w, self.wv, self.idx = compiled(values, weights, col_weight)
            return
        if col_weight is not None:
            weights = weights * col_weight
        v = np.asarray(values, dtype=np.float64).ravel()
        w = np.asarray(weights, dtype=np.float64).ravel()
        keep = np.flatnonzero((w > 0) & np.isfinite(v))
        self.tick = keep // max(np.shape(values)[-1], 1)
        v, self.w = v[keep], w[keep]
        self.wv = self.w * v
        self.idx = bin_index(v)

    def part(self, lo: int, hi: int) -> slice:
        """Entries of ticks ``[lo, hi)`` (entries are in tick order)."""
        a, b = np.searchsorted(self.tick, [lo, hi])
        return slice(int(a), int(b))


class _IntervalHistograms:
    """Per-interval quantiles of one latency metric: the open interval's histogram, and closed rows."""

    def __init__(self) -> None:
        self.open = WeightedHistogram()
        self._rows: list[dict[str, FloatArray]] = []

    def add(self, seg: Segments, b: _Binned) -> None:
        """Add a block's binned entries, closing ``seg.closed`` intervals."""
        ends = seg.ends
        first = int(ends[0])
        p = b.part(0, first)
        self.open.add_binned(b.idx[p], b.w[p], b.wv[p])
        if seg.closed == 0:
            return
        self._close()
        if seg.closed > 1:
            p = b.part(first, int(ends[seg.closed - 1]))
            segment = np.searchsorted(ends, b.tick[p], side="right")  # 1 .. closed - 1
            self._rows.append(_segment_stats(b.idx[p], b.w[p], b.wv[p], segment - 1, seg.closed - 1))
        if seg.closed < seg.n:
            p = b.part(int(seg.starts[-1]), seg.n_ticks)
            self.open.add_binned(b.idx[p], b.w[p], b.wv[p])

    def close_open(self) -> None:
        self._close()

    def _close(self) -> None:
        h = self.open
        row = {q: np.array([h.quantile(frac)]) for q, frac in QUANTILES.items()}
        row["mean"] = np.array([h.mean()])
        self._rows.append(row)
        h.reset()

    def take(self) -> dict[str, FloatArray]:
        out = {k: np.concatenate([r[k] for r in self._rows]) for k in (*QUANTILES, "mean")}
        self._rows = []
        return out


def _segment_stats(
    idx: np.ndarray, w: FloatArray, wv: FloatArray, segment: np.ndarray, n_seg: int, dense: bool | None = None
) -> dict[str, FloatArray]:
    """Quantiles and means per segment of binned entries, as one :class:`WeightedHistogram` each gives them.

    ``segment`` (0 .. n_seg - 1, non-decreasing) is each entry's segment. With few segments for
    their entries the histograms are built whole, ``(n_seg, bins)``, and read as
    :meth:`WeightedHistogram.quantile` does; with many (long blocks of short intervals) only the
    filled (segment, bin) pairs are summed, in entry order, and searched per segment (``dense``
    forces either way).
    """
    out = {q: np.full(n_seg, np.nan) for q in (*QUANTILES, "mean")}
    if not idx.size:
        return out
    key = segment * N_BINS + idx
    if dense if dense is not None else n_seg * N_BINS <= max(4 * idx.size, 1 << 16):
        weight = np.bincount(key, weights=w, minlength=n_seg * N_BINS).reshape(n_seg, N_BINS)
        wval = np.bincount(key, weights=wv, minlength=n_seg * N_BINS).reshape(n_seg, N_BINS)
        total = weight.sum(axis=1)
        rows = np.flatnonzero(total > 0)
        weight, wval, total = weight[rows], wval[rows], total[rows]
        out["mean"][rows] = wval.sum(axis=1) / total
        cum = np.cumsum(weight, axis=1)
        last_filled = N_BINS - 1 - np.argmax(weight[:, ::-1] > 0, axis=1)
        r = np.arange(rows.size)
        for q, frac in QUANTILES.items():
            reached = cum >= (frac * total)[:, None]
            j = np.where(reached.any(axis=1), np.argmax(reached, axis=1), last_filled)
            out[q][rows] = wval[r, j] / weight[r, j]
        return out
    order = np.argsort(key, kind="stable")
    key, w, wv = key[order], w[order], wv[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    bin_w = np.add.reduceat(w, starts)
    bin_wv = np.add.reduceat(wv, starts)
    bin_seg = key[starts] // N_BINS
    seg_start = np.flatnonzero(np.r_[True, bin_seg[1:] != bin_seg[:-1]])
    segs = bin_seg[seg_start]
    total = np.add.reduceat(bin_w, seg_start)
    out["mean"][segs] = np.add.reduceat(bin_wv, seg_start) / total
    cum = np.cumsum(bin_w)
    before = np.r_[0.0, cum[seg_start[1:] - 1]]
    seg_end = np.r_[seg_start[1:], bin_w.size] - 1
    for q, frac in QUANTILES.items():
        k = np.minimum(np.searchsorted(cum, before + frac * total, side="left"), seg_end)
        out[q][segs] = bin_wv[k] / bin_w[k]
    return out


class PoolStats:
    """Per-pool latency, GPU power and job statistics, per report interval and for the run.

    Parameters
    ----------
    fac : Facility
        The facility.
    demand : DemandModel
        The run's demand (its job sources give the GPUs jobs ask for).
    """

    def __init__(self, fac: Facility, demand: DemandModel) -> None:
        self.pools = list(fac.pools)
        self.pool_of_server = fac.pool_of_server
        self.inference = [p for p in self.pools if p.kind == "inference"]
        self.jobs = {pool.name: job for pool, job in demand.jobs}
        self.sums = {p.name: _Sums() for p in self.pools}
        self.run_hist = {(p.name, m): WeightedHistogram() for p in self.inference for m in ("ttft", "tpot")}
        self.interval_hist = {(p.name, m): _IntervalHistograms() for p in self.inference for m in ("ttft", "tpot")}
        #: Bins the latencies compiled (:mod:`twin.engine.latency_kernel`, the same entries to the
        #: bit) once :meth:`compile` is called, with the run's compiled serving (numba loaded).
        self.compiled: CompiledBinning | None = None

    def compile(self) -> None:
        """Bin the latencies compiled from now on (:mod:`twin.engine.latency_kernel`)."""
        from twin.engine.latency_kernel import CompiledBinning

        self.compiled = CompiledBinning(bin_edges(), LOW_S, HIGH_S)

    def columns(self) -> list[str]:
        """Time-series columns this recorder fills."""
        cols: list[str] = []
        for p in self.pools:
            cols += [f"{p.name}_gpu_power_mean_w", f"{p.name}_busy_mean"]
            if p in self.inference:
                cols += [f"{p.name}_{m}_{q}_s" for m in ("ttft", "tpot") for q in (*QUANTILES, "mean")]
                cols.append(f"{p.name}_gpus_up_mean")
            if p.name in self.jobs:
                cols += [f"{p.name}_gpus_demanded_mean", f"{p.name}_gpus_in_jobs_mean"]
        return cols

    def commit(self, b: Any, seg: Segments) -> None:
        """Add a committed block (``twin.engine.kernel.Block``) split into report segments."""
        dts = b.dts
        res = b.serve
        cols = b.cols
        gpu_dt = b.gpus * dts[:, None]
        for p in self.pools:
            s = cols.pool_columns(p.servers, self.pool_of_server.size)
            per_tick = {
                "gpu_s": cols.total(gpu_dt, s),
                "gpu_j": cols.total(b.site_w["_gpu_w"], s, gpu_dt),
                "busy_gpu_s": cols.total(res.busy, s, gpu_dt),
                "duration_s": dts,
            }
            if p.name in self.jobs:
                per_tick["demanded_gpu_s"] = self.jobs[p.name].demanded.window_mean(b.t0, b.t1) * dts
            self.sums[p.name].add(seg, per_tick)
            if p in self.inference:
                w = None if cols.identity else cols.weight[s]
                for m, values, weights in (
                    ("ttft", res.ttft_s[:, s], b.requests[:, s]),
                    ("tpot", res.tpot_s[:, s], res.decode_tokens[:, s]),
                ):
                    binned = _Binned(values, weights, w, self.compiled)
                    self.run_hist[(p.name, m)].add_binned(binned.idx, binned.w, binned.wv)
                    self.interval_hist[(p.name, m)].add(seg, binned)

    def _values(self, v: dict[str, Any], hist: dict[str, dict[str, Any]], run: bool) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for p in self.pools:
            n = p.name
            s = v[n]
            gpu_s = s["gpu_s"]
            out[f"{n}_gpu_power_mean_w"] = ratio(s["gpu_j"], gpu_s)
            out[f"{n}_busy_mean"] = ratio(s["busy_gpu_s"], gpu_s)
            if p in self.inference and not run:  # the request-level replay shares requests among the ranks up
                out[f"{n}_gpus_up_mean"] = ratio(gpu_s, s["duration_s"])
            if n in self.jobs:
                dur = s["duration_s"]
                demanded, placed = s["demanded_gpu_s"], s["busy_gpu_s"]
                if not run:
                    out[f"{n}_gpus_demanded_mean"] = ratio(demanded, dur)
                    out[f"{n}_gpus_in_jobs_mean"] = ratio(placed, dur)
                else:
                    out[f"{n}_job_gpu_h_demanded"] = demanded / S_PER_HOUR
                    out[f"{n}_job_gpu_h_run"] = placed / S_PER_HOUR
            if p in self.inference:
                for m in ("ttft", "tpot"):
                    h = hist[f"{n}:{m}"]
                    for q in QUANTILES:
                        out[f"{n}_{m}_{q}_s"] = h[q]
                    out[f"{n}_{m}_mean_s"] = h["mean"]
        return out

    def close_open(self) -> None:
        """Close the open interval (the run's end)."""
        for s in self.sums.values():
            s.interval.close_open()
        for h in self.interval_hist.values():
            h.close_open()

    def rows(self) -> dict[str, Any]:
        """Values of the intervals closed since the last call."""
        v = {name: s.interval.take() for name, s in self.sums.items()}
        hist = {f"{name}:{m}": h.take() for (name, m), h in self.interval_hist.items()}
        return self._values(v, hist, run=False)

    def kpis(self) -> dict[str, float]:
        """Values over the whole run."""
        v = {name: s.run for name, s in self.sums.items()}
        hist: dict[str, dict[str, Any]] = {}
        for (name, m), h in self.run_hist.items():
            hist[f"{name}:{m}"] = {q: h.quantile(frac) for q, frac in QUANTILES.items()} | {"mean": h.mean()}
        return {k: float(x) for k, x in self._values(v, hist, run=True).items()}
