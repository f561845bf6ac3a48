"""Latency statistics of request-level runs: streaming quantiles, percentiles with intervals, SLOs.

* Inter-token latencies are too many to keep for a long run: :class:`StreamingQuantiles` keeps
  the values exactly up to a cap, then folds them into a fixed log-spaced histogram (bins
  ``10**(1/BINS_PER_DECADE)`` wide, 0.23 % at 1000 per decade), so a percentile is exact for a
  small run and within half a bin for a huge one.
* A percentile of ``n`` i.i.d. values has a distribution-free confidence interval between two
  order statistics whose ranks are binomial quantiles (:func:`percentile_ci`, [1]_).
* SLO attainment is DistServe's: the share of requests that meet both the TTFT and the TPOT
  target; goodput is such requests per second [2]_.

References
----------
.. [1] W. J. Conover, *Practical Nonparametric Statistics*, 3rd ed., Wiley, 1999, sec. 3.2
   (confidence interval for a quantile from order statistics).
.. [2] Y. Zhong et al., "DistServe: Disaggregating Prefill and Decoding for Goodput-optimized
   Large Language Model Serving", OSDI 2024, sec. 2 (goodput: requests per second that meet
   their TTFT and TPOT SLOs).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.stats import binom

from twin._types import FloatArray

#: Percentiles reported. [%]
PERCENTILES: tuple[float, ...] = (50.0, 90.0, 95.0, 99.0)
#: Bins per decade of the folded histogram (bin width 0.23 %).
BINS_PER_DECADE = 1000
#: Range the folded histogram covers; values outside fall in its end bins. [s]
HIST_MIN_S, HIST_MAX_S = 1e-6, 1e4
#: Values kept exactly before folding into the histogram.
EXACT_CAP = 2_000_000


@dataclass
class StreamingQuantiles:
    """Quantiles of a stream of positive values (seconds) in bounded memory (module docstring)."""

    cap: int = EXACT_CAP
    _buf: FloatArray = field(default_factory=lambda: np.empty(1024), repr=False)
    _held: int = 0
    _counts: np.ndarray | None = field(default=None, repr=False)
    count: int = 0
    total: float = 0.0

    def add(self, values: FloatArray) -> None:
        """Take a batch of values (copied into a buffer that doubles up to ``cap``, then folds)."""
        v = np.asarray(values, dtype=np.float64).ravel()
        if v.size == 0:
            return
        self.count += v.size
        self.total += float(v.sum())
        end = self._held + v.size
        if end > self._buf.size and end <= self.cap:
            grown = np.empty(min(max(2 * self._buf.size, end), self.cap))
            grown[: self._held] = self._buf[: self._held]
            self._buf = grown
        if end <= self._buf.size:
            self._buf[self._held : end] = v
            self._held = end
        else:  # over the cap: fold what is held and these values
            self._fold(v)

    def merge(self, other: StreamingQuantiles) -> None:
        """Take every value of ``other`` (exactly while both hold theirs)."""
        if other.exact:
            self.add(other.values())
            return
        self._fold()
        other._fold()
        assert self._counts is not None
        assert other._counts is not None
        self._counts += other._counts
        self.count += other.count
        self.total += other.total

    def _fold(self, extra: FloatArray | None = None) -> None:
        edges = self.edges()
        if self._counts is None:
            self._counts = np.zeros(edges.size - 1, dtype=np.int64)
        v = self._buf[: self._held] if extra is None else np.concatenate([self._buf[: self._held], extra])
        if v.size:
            idx = np.clip(np.searchsorted(edges, v, side="right") - 1, 0, edges.size - 2)
            self._counts += np.bincount(idx, minlength=edges.size - 1)
        self._held = 0

    @staticmethod
    def edges() -> FloatArray:
        """Edges of the folded histogram. [s]"""
        decades = np.log10(HIST_MAX_S / HIST_MIN_S)
        return np.asarray(HIST_MIN_S * 10.0 ** (np.arange(int(decades * BINS_PER_DECADE) + 1) / BINS_PER_DECADE))

    @property
    def exact(self) -> bool:
        """True while every value is held (percentiles are exact)."""
        return self._counts is None

    def values(self) -> FloatArray:
        """Every value (only while :attr:`exact`)."""
        if not self.exact:
            raise ValueError("the values were folded into a histogram; use quantile()")
        return self._buf[: self._held].copy()

    def quantile(self, q: float) -> float:
        """The ``q``-quantile (0..1): exact while held, else the geometric interpolation in its bin. [s]"""
        if self.count == 0:
            return float("nan")
        if self.exact:
            return float(np.quantile(self.values(), q))
        self._fold()
        assert self._counts is not None
        cum = np.cumsum(self._counts)
        target = q * (self.count - 1) + 1
        i = int(np.searchsorted(cum, target))
        edges = self.edges()
        below = cum[i - 1] if i > 0 else 0
        share = (target - below) / max(self._counts[i], 1)
        return float(edges[i] * (edges[i + 1] / edges[i]) ** share)

    def histogram(self, bins_per_decade: int = 20) -> tuple[FloatArray, FloatArray]:
        """Counts on a coarser log grid: ``(edges, counts)`` for a plot or a table. [s], [1]"""
        fine = self.edges()
        step = BINS_PER_DECADE // bins_per_decade
        coarse = fine[::step]
        if self.exact:
            counts, _ = np.histogram(np.clip(self.values(), fine[0], fine[-1]), coarse)
            return coarse, counts.astype(np.float64)
        self._fold()
        assert self._counts is not None
        cum = np.concatenate([[0], np.cumsum(self._counts)])
        return coarse, np.diff(cum[::step]).astype(np.float64)


def percentile_ci(values: FloatArray, q: float, confidence: float = 0.95) -> tuple[float, float, float]:
    """The ``q``-th percentile of i.i.d. ``values`` and a distribution-free confidence interval.

    The interval runs between the order statistics ``X_(l)`` and ``X_(u)`` with ``l`` and ``u``
    the ``(1 -+ confidence) / 2`` quantiles of Binomial(n, q/100) [1]_ (its coverage is at least
    ``confidence`` up to the binomial's discreteness); NaN ends where ``n`` is too small.

    Examples
    --------
    >>> p, lo, hi = percentile_ci(np.arange(1.0, 1001.0), 50.0)
    >>> float(p), float(lo), float(hi)
    (500.5, 469.0, 532.0)
    """
    v = np.sort(np.asarray(values, dtype=np.float64))
    v = v[np.isfinite(v)]
    n = v.size
    if n == 0:
        return float("nan"), float("nan"), float("nan")
    p = q / 100.0
    alpha = 1.0 - confidence
    lo = int(binom.ppf(alpha / 2.0, n, p))  # X_(lo) with 1-based rank lo
    hi = int(binom.ppf(1.0 - alpha / 2.0, n, p)) + 1
    low = float(v[lo - 1]) if lo >= 1 else float("nan")
    high = float(v[hi - 1]) if hi <= n else float("nan")
    return float(np.percentile(v, q)), low, high


def slo_attainment(ttft_s: FloatArray, tpot_s: FloatArray, ttft_slo_s: float, tpot_slo_s: float) -> FloatArray:
    """Which requests meet both targets (DistServe [2]_; a one-token request has no TPOT and meets it)."""
    tpot = np.nan_to_num(np.asarray(tpot_s, dtype=np.float64), nan=0.0)
    ttft = np.asarray(ttft_s, dtype=np.float64)
    return np.asarray((ttft <= ttft_slo_s) & (tpot <= tpot_slo_s))


@dataclass(frozen=True)
class LatencySummary:
    """Percentiles (with confidence intervals) of one set of requests, and their SLO attainment.

    ``percentiles[metric][q] = (value, low, high)`` in seconds for ``metric`` in ``ttft``,
    ``tpot``, ``e2e``, ``queue`` (order-statistic intervals) and ``itl`` (no interval: ITLs of one
    request are not independent; NaN ends).
    """

    requests: int
    served: int
    duration_s: float
    percentiles: dict[str, dict[float, tuple[float, float, float]]]
    slo_ttft_s: float
    slo_tpot_s: float
    attainment: float
    goodput_per_s: float

    def rows(self) -> list[dict[str, float | str]]:
        """One row per metric and percentile (for a table or CSV)."""
        return [
            {"metric": m, "percentile": q, "value_s": v[0], "ci_low_s": v[1], "ci_high_s": v[2]}
            for m, by_q in self.percentiles.items()
            for q, v in by_q.items()
        ]


def summarize(
    ttft_s: FloatArray,
    tpot_s: FloatArray,
    e2e_s: FloatArray,
    queue_s: FloatArray,
    itl: StreamingQuantiles,
    duration_s: float,
    slo_ttft_s: float,
    slo_tpot_s: float,
    confidence: float = 0.95,
) -> LatencySummary:
    """Percentiles, SLO attainment and goodput of served requests (NaN entries: not served)."""
    ttft = np.asarray(ttft_s, dtype=np.float64)
    served = np.isfinite(ttft)
    pct: dict[str, dict[float, tuple[float, float, float]]] = {}
    for name, values in (("ttft", ttft), ("tpot", tpot_s), ("e2e", e2e_s), ("queue", queue_s)):
        pct[name] = {q: percentile_ci(np.asarray(values)[served], q, confidence) for q in PERCENTILES}
    pct["itl"] = {q: (itl.quantile(q / 100.0), float("nan"), float("nan")) for q in PERCENTILES}
    met = slo_attainment(ttft[served], np.asarray(tpot_s)[served], slo_ttft_s, slo_tpot_s)
    n = int(ttft.size)
    return LatencySummary(
        requests=n,
        served=int(served.sum()),
        duration_s=duration_s,
        percentiles=pct,
        slo_ttft_s=slo_ttft_s,
        slo_tpot_s=slo_tpot_s,
        attainment=float(met.sum() / n) if n else float("nan"),
        goodput_per_s=float(met.sum() / duration_s) if duration_s > 0 else float("nan"),
    )


__all__ = [
    "PERCENTILES",
    "LatencySummary",
    "StreamingQuantiles",
    "percentile_ci",
    "slo_attainment",
    "summarize",
]
