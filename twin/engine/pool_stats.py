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

from typing import Any

import numpy as np

from twin._types import FloatArray
from twin.engine.demand import DemandModel
from twin.engine.segments import IntervalAccumulator, Segments
from twin.facility import Facility
from twin.units import S_PER_HOUR

LOW_S = 1e-6
HIGH_S = 1e5
BINS_PER_DECADE = 200
QUANTILES = {"p50": 0.50, "p99": 0.99}


class WeightedHistogram:
    """Log-binned histogram of positive values with weights; see the module docstring."""

    def __init__(self) -> None:
        self.n_bins = round(np.log10(HIGH_S / LOW_S) * BINS_PER_DECADE)
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
        pos = np.log10(np.maximum(v, LOW_S) / LOW_S) * BINS_PER_DECADE
        idx = np.clip(pos.astype(np.int64), 0, self.n_bins - 1)
        self.weight += np.bincount(idx, weights=w, minlength=self.n_bins)
        self.weighted_value += np.bincount(idx, weights=w * v, minlength=self.n_bins)

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


class _IntervalHistograms:
    """Per-interval quantiles of one latency metric: the open interval's histogram, and closed rows."""

    def __init__(self) -> None:
        self.open = WeightedHistogram()
        self._rows: list[dict[str, FloatArray]] = []

    def add(self, seg: Segments, values: FloatArray, weights: FloatArray) -> None:
        """Add a block's ``(K, n)`` values and weights, closing ``seg.closed`` intervals."""
        if seg.closed == 0:
            self.open.add(values, weights)
            return
        ends = seg.ends
        first = int(ends[0])
        self.open.add(values[:first], weights[:first])
        self._close()
        if seg.closed > 1:
            lo, hi = first, int(ends[seg.closed - 1])
            self._rows.append(_segment_stats(values[lo:hi], weights[lo:hi], seg.tick_segment()[lo:hi] - 1))
        if seg.closed < seg.n:
            lo = int(seg.starts[-1])
            self.open.add(values[lo:], weights[lo:])

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


def _segment_stats(values: FloatArray, weights: FloatArray, segment: np.ndarray) -> dict[str, FloatArray]:
    """Quantiles and means per segment of ``(K, n)`` values, as :class:`WeightedHistogram` gives them.

    ``segment`` is the segment (0, 1, ...) of each of the ``K`` ticks. The (segment, bin) weights
    and weighted values are summed over the entries sorted by segment and bin; the quantile is the
    first filled bin of a segment where its cumulative weight reaches ``q`` times its total.
    """
    n_seg = int(segment[-1]) + 1
    seg_of = np.broadcast_to(segment[:, None], values.shape).ravel()
    v = np.asarray(values, dtype=np.float64).ravel()
    w = np.asarray(weights, dtype=np.float64).ravel()
    keep = (w > 0) & np.isfinite(v)
    v, w, seg_of = v[keep], w[keep], seg_of[keep]
    out = {q: np.full(n_seg, np.nan) for q in (*QUANTILES, "mean")}
    if not v.size:
        return out
    n_bins = round(np.log10(HIGH_S / LOW_S) * BINS_PER_DECADE)
    pos = np.log10(np.maximum(v, LOW_S) / LOW_S) * BINS_PER_DECADE
    key = seg_of * n_bins + np.clip(pos.astype(np.int64), 0, n_bins - 1)
    order = np.argsort(key, kind="stable")
    key, w, wv = key[order], w[order], (w * v)[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    bin_key = key[starts]
    bin_w = np.add.reduceat(w, starts)
    bin_wv = np.add.reduceat(wv, starts)
    bin_seg = bin_key // n_bins
    seg_start = np.flatnonzero(np.r_[True, bin_seg[1:] != bin_seg[:-1]])
    segs = bin_seg[seg_start]
    total = np.add.reduceat(bin_w, seg_start)
    out["mean"][segs] = np.add.reduceat(bin_wv, seg_start) / total
    cum = np.cumsum(bin_w)
    before = np.r_[0.0, cum[seg_start[1:] - 1]]
    seg_end = np.r_[seg_start[1:], bin_w.size] - 1
    for q, frac in QUANTILES.items():
        k = np.searchsorted(cum, before + frac * total, side="left")
        k = np.minimum(k, seg_end)
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

    def columns(self) -> list[str]:
        """Time-series columns this recorder fills."""
        cols: list[str] = []
        for p in self.pools:
            cols += [f"{p.name}_gpu_power_mean_w", f"{p.name}_busy_mean"]
            if p in self.inference:
                cols += [f"{p.name}_{m}_{q}_s" for m in ("ttft", "tpot") for q in (*QUANTILES, "mean")]
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
            s = cols.take(self.pool_of_server == p.index)
            per_tick = {
                "gpu_s": cols.total(gpu_dt, s),
                "gpu_j": cols.total(b.site_w["_gpu_w"] * gpu_dt, s),
                "busy_gpu_s": cols.total(res.busy * gpu_dt, s),
                "duration_s": dts,
            }
            if p.name in self.jobs:
                per_tick["demanded_gpu_s"] = self.jobs[p.name].demanded.window_mean(b.t0, b.t1) * dts
            self.sums[p.name].add(seg, per_tick)
            if p in self.inference:
                w = cols.weight[s]
                for m, values, weights in (
                    ("ttft", res.ttft_s[:, s], b.requests[:, s]),
                    ("tpot", res.tpot_s[:, s], res.decode_tokens[:, s]),
                ):
                    weights = weights if cols.identity else weights * w
                    self.run_hist[(p.name, m)].add(values, weights)
                    self.interval_hist[(p.name, m)].add(seg, values, weights)

    def _values(self, v: dict[str, Any], hist: dict[str, dict[str, Any]], run: bool) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for p in self.pools:
            n = p.name
            s = v[n]
            gpu_s = s["gpu_s"]
            out[f"{n}_gpu_power_mean_w"] = _ratio(s["gpu_j"], gpu_s)
            out[f"{n}_busy_mean"] = _ratio(s["busy_gpu_s"], gpu_s)
            if n in self.jobs:
                dur = s["duration_s"]
                demanded, placed = s["demanded_gpu_s"], s["busy_gpu_s"]
                if not run:
                    out[f"{n}_gpus_demanded_mean"] = _ratio(demanded, dur)
                    out[f"{n}_gpus_in_jobs_mean"] = _ratio(placed, dur)
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


def _ratio(num: Any, den: Any) -> Any:
    """``num / den`` where ``den > 0``, else NaN (scalars or arrays)."""
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    out = np.divide(num, den, out=np.full(np.shape(num), np.nan), where=den > 0)
    return out if out.ndim else float(out)
