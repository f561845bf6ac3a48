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
from twin.facility import Facility, Pool
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


def _span(pool: Pool) -> slice:
    return slice(int(pool.servers[0]), int(pool.servers[-1]) + 1)


class _Sums:
    """Running sums of one pool over an interval and over the run."""

    def __init__(self) -> None:
        self.interval: dict[str, float] = {}
        self.run: dict[str, float] = {}

    def add(self, key: str, value: float) -> None:
        self.interval[key] = self.interval.get(key, 0.0) + value
        self.run[key] = self.run.get(key, 0.0) + value


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
        self.inference = [p for p in self.pools if p.kind == "inference"]
        self.jobs = {pool.name: job for pool, job in demand.jobs}
        self.sums = {p.name: _Sums() for p in self.pools}
        self.hist = {
            (p.name, m, scope): WeightedHistogram()
            for p in self.inference
            for m in ("ttft", "tpot")
            for scope in ("interval", "run")
        }

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

    def commit(self, b: Any) -> None:
        """Add a committed block (``twin.engine.kernel.Block``)."""
        dts = b.dts
        res = b.serve
        gpu_dt = b.gpus * dts[:, None]
        for p in self.pools:
            s = _span(p)
            sums = self.sums[p.name]
            sums.add("gpu_s", float(gpu_dt[:, s].sum()))
            sums.add("gpu_j", float(np.sum(b.site_w["_gpu_w"][:, s] * gpu_dt[:, s])))
            sums.add("busy_gpu_s", float(np.sum(res.busy[:, s] * gpu_dt[:, s])))
            sums.add("duration_s", float(dts.sum()))
            if p.name in self.jobs:
                sums.add("demanded_gpu_s", float(self.jobs[p.name].demanded.window_mean(b.t0, b.t1) @ dts))
            if p in self.inference:
                for m, values, weights in (
                    ("ttft", res.ttft_s[:, s], b.requests[:, s]),
                    ("tpot", res.tpot_s[:, s], res.decode_tokens[:, s]),
                ):
                    self.hist[(p.name, m, "interval")].add(values, weights)
                    self.hist[(p.name, m, "run")].add(values, weights)

    def _values(self, scope: str) -> dict[str, float]:
        out: dict[str, float] = {}
        for p in self.pools:
            n = p.name
            v = getattr(self.sums[n], scope)
            gpu_s = v.get("gpu_s", 0.0)
            out[f"{n}_gpu_power_mean_w"] = v.get("gpu_j", 0.0) / gpu_s if gpu_s > 0 else float("nan")
            out[f"{n}_busy_mean"] = v.get("busy_gpu_s", 0.0) / gpu_s if gpu_s > 0 else float("nan")
            if n in self.jobs:
                dur = v.get("duration_s", 0.0)
                demanded, placed = v.get("demanded_gpu_s", 0.0), v.get("busy_gpu_s", 0.0)
                if scope == "interval":
                    out[f"{n}_gpus_demanded_mean"] = demanded / dur if dur > 0 else float("nan")
                    out[f"{n}_gpus_in_jobs_mean"] = placed / dur if dur > 0 else float("nan")
                else:
                    out[f"{n}_job_gpu_h_demanded"] = demanded / S_PER_HOUR
                    out[f"{n}_job_gpu_h_run"] = placed / S_PER_HOUR
            if p in self.inference:
                for m in ("ttft", "tpot"):
                    h = self.hist[(n, m, scope)]
                    for q, frac in QUANTILES.items():
                        out[f"{n}_{m}_{q}_s"] = h.quantile(frac)
                    out[f"{n}_{m}_mean_s"] = h.mean()
        return out

    def flush(self) -> dict[str, float]:
        """The current interval's values; starts the next interval."""
        row = self._values("interval")
        for s in self.sums.values():
            s.interval = {}
        for (_, _, scope), h in self.hist.items():
            if scope == "interval":
                h.reset()
        return row

    def kpis(self) -> dict[str, float]:
        """Values over the whole run."""
        return self._values("run")
