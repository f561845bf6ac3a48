"""Synthetic request traces: Poisson, diurnal, bursty; and their expected-value (fluid) forms.

Every generator takes an explicit :class:`numpy.random.Generator` and a token sampler
(:class:`LognormalTokens` or :class:`EmpiricalTokens`) and returns a request frame
(``arrival_s``, ``prompt_tokens``, ``output_tokens``) sorted by arrival. Time 0 is the start of
the generated window (the first request arrives at some ``t >= 0``), not the first request.

Arrival processes
-----------------
- Homogeneous Poisson: the count in ``[0, T)`` is Poisson(``rate * T``) and, given the count,
  the arrival times are i.i.d. uniform on ``[0, T)`` (exact, vectorised).
- Diurnal: non-homogeneous Poisson with
  ``rate(t) = mean * (1 + a * cos(2 pi (t + s0 - t_peak) / 86400))``, ``a = peak_to_mean - 1``,
  simulated by thinning a Poisson process of rate ``mean * (1 + a)`` [1]_.
- Bursty: a Gamma renewal process (inter-arrival times Gamma with coefficient of variation
  ``cv``; ``cv > 1`` is burstier than Poisson), the model BurstGPT fits to LLM request
  inter-arrival times [2]_; or a two-state Markov-modulated Poisson process (MMPP-2) [3]_.

References
----------
.. [1] P. A. W. Lewis and G. S. Shedler, "Simulation of nonhomogeneous Poisson processes by
   thinning", Naval Research Logistics Quarterly 26(3), 403-413, 1979,
   doi:10.1002/nav.3800260304.
.. [2] Y. Wang et al., "BurstGPT: A real-world workload dataset to optimize LLM serving
   systems", arXiv:2401.17644, 2024.
.. [3] W. Fischer and K. Meier-Hellstern, "The Markov-modulated Poisson process (MMPP)
   cookbook", Performance Evaluation 18(2), 149-171, 1993, doi:10.1016/0166-5316(93)90035-S.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd

from twin._types import FloatArray, IntArray, Numeric
from twin.units import S_PER_DAY, S_PER_HOUR
from twin.workload.binning import RequestBins


class TokenSampler(Protocol):
    """Anything that draws ``n`` (prompt, output) token-count pairs."""

    def sample(self, n: int, rng: np.random.Generator) -> tuple[IntArray, IntArray]:
        """Draw ``n`` prompt and output token counts."""
        ...


@dataclass(frozen=True)
class LognormalTokens:
    """Independent lognormal prompt and output lengths with given means.

    A lognormal with mean ``m`` and log-space standard deviation ``sigma`` has
    ``mu = ln(m) - sigma**2 / 2``. Draws are rounded to integers and floored at
    ``min_tokens``; for means well above ``min_tokens`` this shifts the mean negligibly.

    Attributes
    ----------
    mean_prompt_tokens, mean_output_tokens : float
        Mean lengths [tokens].
    sigma_prompt, sigma_output : float
        Standard deviations of the log lengths (no default: fit them, e.g. with
        :meth:`fit`, or state their source).
    min_tokens : int
        Smallest length drawn.
    """

    mean_prompt_tokens: float
    mean_output_tokens: float
    sigma_prompt: float
    sigma_output: float
    min_tokens: int = 1

    def sample(self, n: int, rng: np.random.Generator) -> tuple[IntArray, IntArray]:
        """Draw ``n`` prompt and output lengths."""

        def draw(mean: float, sigma: float) -> IntArray:
            mu = np.log(mean) - 0.5 * sigma**2
            x = np.rint(rng.lognormal(mu, sigma, size=n))
            return np.maximum(x, self.min_tokens).astype(np.int64)

        return (
            draw(self.mean_prompt_tokens, self.sigma_prompt),
            draw(self.mean_output_tokens, self.sigma_output),
        )

    @classmethod
    def fit(cls, df: pd.DataFrame, min_tokens: int = 1) -> LognormalTokens:
        """Fit means and log-space deviations to a request frame (rows with 0 tokens ignored).

        The means are the sample means; the sigmas are the standard deviations of the logs.
        """

        def fit_one(x: np.ndarray) -> tuple[float, float]:
            x = x[x > 0].astype(np.float64)
            return float(x.mean()), float(np.log(x).std())

        mp, sp = fit_one(df["prompt_tokens"].to_numpy())
        mo, so = fit_one(df["output_tokens"].to_numpy())
        return cls(mp, mo, sp, so, min_tokens)


@dataclass(frozen=True, eq=False)
class EmpiricalTokens:
    """(prompt, output) pairs resampled with replacement from a trace, keeping their joint law.

    Attributes
    ----------
    prompt_tokens, output_tokens : numpy.ndarray of int64
        The pairs to draw from.
    """

    prompt_tokens: IntArray
    output_tokens: IntArray

    @classmethod
    def from_trace(cls, df: pd.DataFrame) -> EmpiricalTokens:
        """Take the pairs of a request frame."""
        return cls(
            df["prompt_tokens"].to_numpy(dtype=np.int64),
            df["output_tokens"].to_numpy(dtype=np.int64),
        )

    def sample(self, n: int, rng: np.random.Generator) -> tuple[IntArray, IntArray]:
        """Draw ``n`` pairs uniformly with replacement."""
        if len(self.prompt_tokens) == 0:
            raise ValueError("cannot resample from an empty trace")
        idx = rng.integers(0, len(self.prompt_tokens), size=n)
        return self.prompt_tokens[idx], self.output_tokens[idx]


def _frame(arrival_s: FloatArray, tokens: TokenSampler, rng: np.random.Generator) -> pd.DataFrame:
    arrival_s = np.sort(np.asarray(arrival_s, dtype=np.float64))
    prompt, output = tokens.sample(len(arrival_s), rng)
    return pd.DataFrame(
        {
            "arrival_s": arrival_s,
            "prompt_tokens": np.asarray(prompt, dtype=np.int64),
            "output_tokens": np.asarray(output, dtype=np.int64),
        }
    )


def _check_positive(**values: float) -> None:
    for name, value in values.items():
        if not value > 0:
            raise ValueError(f"{name} must be > 0, got {value}")


def poisson_arrivals_s(rate_per_s: float, duration_s: float, rng: np.random.Generator) -> FloatArray:
    """Draw the arrival times of a homogeneous Poisson process on ``[0, duration_s)`` [s]."""
    if rate_per_s < 0:
        raise ValueError(f"rate_per_s must be >= 0, got {rate_per_s}")
    _check_positive(duration_s=duration_s)
    n = rng.poisson(rate_per_s * duration_s)
    return np.sort(rng.uniform(0.0, duration_s, size=n))


def poisson_requests(
    rate_per_s: float, duration_s: float, rng: np.random.Generator, tokens: TokenSampler
) -> pd.DataFrame:
    """Generate requests arriving as a Poisson process of constant rate.

    Parameters
    ----------
    rate_per_s : float
        Mean arrival rate [1/s].
    duration_s : float
        Window length [s].
    rng : numpy.random.Generator
        Source of randomness.
    tokens : TokenSampler
        Draws prompt and output lengths.

    Returns
    -------
    pandas.DataFrame
        Request frame.
    """
    return _frame(poisson_arrivals_s(rate_per_s, duration_s, rng), tokens, rng)


def expected_rate(
    t_s: Numeric,
    mean_rate_per_s: float,
    peak_to_mean: float = 1.0,
    peak_hour: float = 0.0,
    start_s_of_day: float = 0.0,
) -> FloatArray:
    """Return the expected request rate of the diurnal model at times ``t_s`` [1/s].

    Parameters
    ----------
    t_s : float or array_like
        Times after the window start [s].
    mean_rate_per_s : float
        Daily mean rate [1/s].
    peak_to_mean : float
        Ratio of the peak rate to the mean, in [1, 2] (1: constant rate).
    peak_hour : float
        Time of day of the peak [h], 0..24.
    start_s_of_day : float
        Time of day at ``t = 0`` [s after midnight].

    Returns
    -------
    numpy.ndarray of float64
        Rate at each time [1/s].

    Notes
    -----
    ``rate(t) = mean * (1 + a * cos(2 pi (t + s0 - 3600 h_peak) / 86400))`` with
    ``a = peak_to_mean - 1``; its daily mean is ``mean`` and its minimum
    ``mean * (2 - peak_to_mean) >= 0``.

    Examples
    --------
    >>> expected_rate([0.0, 43200.0], 10.0, peak_to_mean=1.5, peak_hour=12.0).tolist()
    [5.0, 15.0]
    """
    a = _amplitude(mean_rate_per_s, peak_to_mean)
    t = np.asarray(t_s, dtype=np.float64)
    phase = 2.0 * np.pi * (t + start_s_of_day - peak_hour * S_PER_HOUR) / S_PER_DAY
    return mean_rate_per_s * (1.0 + a * np.cos(phase))


def _amplitude(mean_rate_per_s: float, peak_to_mean: float) -> float:
    if mean_rate_per_s < 0:
        raise ValueError(f"mean_rate_per_s must be >= 0, got {mean_rate_per_s}")
    if not 1.0 <= peak_to_mean <= 2.0:
        raise ValueError(f"peak_to_mean must be in [1, 2] (rate >= 0), got {peak_to_mean}")
    return peak_to_mean - 1.0


def expected_requests(
    t0_s: float,
    step_s: float,
    n_steps: int,
    mean_rate_per_s: float,
    peak_to_mean: float = 1.0,
    peak_hour: float = 0.0,
    start_s_of_day: float = 0.0,
) -> FloatArray:
    """Return the expected diurnal-model arrivals in each interval of a grid (exact integral).

    Notes
    -----
    ``N_i = mean * [dt + a * (sin(w (b_i + c)) - sin(w (a_i + c))) / w]`` over
    ``[a_i, b_i)``, with ``w = 2 pi / 86400`` and ``c = s0 - 3600 h_peak``.
    """
    a = _amplitude(mean_rate_per_s, peak_to_mean)
    _check_positive(step_s=step_s)
    edges = t0_s + step_s * np.arange(n_steps + 1, dtype=np.float64)
    w = 2.0 * np.pi / S_PER_DAY
    c = start_s_of_day - peak_hour * S_PER_HOUR
    s = np.sin(w * (edges + c))
    return mean_rate_per_s * (np.diff(edges) + a * np.diff(s) / w)


def expected_request_bins(
    t0_s: float,
    step_s: float,
    n_steps: int,
    mean_rate_per_s: float,
    mean_prompt_tokens: float,
    mean_output_tokens: float,
    *,
    peak_to_mean: float = 1.0,
    peak_hour: float = 0.0,
    start_s_of_day: float = 0.0,
) -> RequestBins:
    """Return expected requests and tokens per interval of the diurnal model (fluid use).

    Returns the same :class:`~twin.workload.binning.RequestBins` that
    :func:`~twin.workload.binning.bin_requests` gives for a sampled trace, with fractional
    counts: requests from :func:`expected_requests`, tokens = requests x mean length.
    """
    n = expected_requests(t0_s, step_s, n_steps, mean_rate_per_s, peak_to_mean, peak_hour, start_s_of_day)
    return RequestBins(
        t0_s=float(t0_s),
        step_s=float(step_s),
        requests=n,
        prompt_tokens=n * mean_prompt_tokens,
        output_tokens=n * mean_output_tokens,
    )


def diurnal_requests(
    mean_rate_per_s: float,
    peak_to_mean: float,
    peak_hour: float,
    duration_s: float,
    rng: np.random.Generator,
    tokens: TokenSampler,
    *,
    start_s_of_day: float = 0.0,
) -> pd.DataFrame:
    """Generate requests from a non-homogeneous Poisson process with a daily cosine rate.

    Parameters
    ----------
    mean_rate_per_s : float
        Daily mean rate [1/s].
    peak_to_mean : float
        Ratio of the peak rate to the mean, in [1, 2].
    peak_hour : float
        Time of day of the peak [h].
    duration_s : float
        Window length [s].
    rng : numpy.random.Generator
        Source of randomness.
    tokens : TokenSampler
        Draws prompt and output lengths.
    start_s_of_day : float
        Time of day at ``t = 0`` [s after midnight].

    Returns
    -------
    pandas.DataFrame
        Request frame.

    Notes
    -----
    Thinning [1]_: candidates from a Poisson process of rate ``mean * peak_to_mean`` are kept
    with probability ``rate(t) / (mean * peak_to_mean)`` (:func:`expected_rate`).
    """
    _amplitude(mean_rate_per_s, peak_to_mean)
    rate_max = mean_rate_per_s * peak_to_mean
    candidates = poisson_arrivals_s(rate_max, duration_s, rng)
    if rate_max == 0:
        return _frame(candidates, tokens, rng)
    rate = expected_rate(candidates, mean_rate_per_s, peak_to_mean, peak_hour, start_s_of_day)
    keep = rng.uniform(0.0, 1.0, size=len(candidates)) * rate_max < rate
    return _frame(candidates[keep], tokens, rng)


def gamma_requests(
    rate_per_s: float,
    cv: float,
    duration_s: float,
    rng: np.random.Generator,
    tokens: TokenSampler,
) -> pd.DataFrame:
    """Generate requests from a Gamma renewal process (bursty for ``cv > 1``).

    Parameters
    ----------
    rate_per_s : float
        Mean arrival rate [1/s].
    cv : float
        Coefficient of variation of the inter-arrival times (1: Poisson; > 1: bursty).
    duration_s : float
        Window length [s].
    rng : numpy.random.Generator
        Source of randomness.
    tokens : TokenSampler
        Draws prompt and output lengths.

    Returns
    -------
    pandas.DataFrame
        Request frame.

    Notes
    -----
    Inter-arrival times are Gamma with shape ``k = 1 / cv**2`` and scale
    ``1 / (rate * k)`` (mean ``1 / rate``, standard deviation ``cv / rate``); the first
    arrival is one inter-arrival time after 0 (an ordinary renewal process).
    """
    _check_positive(rate_per_s=rate_per_s, cv=cv, duration_s=duration_s)
    shape = 1.0 / cv**2
    scale = 1.0 / (rate_per_s * shape)
    expected = rate_per_s * duration_s
    batch = int(expected + 6.0 * cv * np.sqrt(expected) + 16)
    chunks: list[FloatArray] = []
    t_end = 0.0
    while t_end < duration_s:
        arrivals = t_end + np.cumsum(rng.gamma(shape, scale, size=batch))
        chunks.append(arrivals)
        t_end = float(arrivals[-1])
    t = np.concatenate(chunks)
    return _frame(t[t < duration_s], tokens, rng)


def mmpp2_requests(
    rate_low_per_s: float,
    rate_high_per_s: float,
    mean_low_s: float,
    mean_high_s: float,
    duration_s: float,
    rng: np.random.Generator,
    tokens: TokenSampler,
) -> pd.DataFrame:
    """Generate requests from a two-state Markov-modulated Poisson process (MMPP-2).

    The process alternates between a low and a high state with exponentially distributed
    sojourn times of means ``mean_low_s`` and ``mean_high_s``, and arrives as a Poisson process
    of the state's rate. It starts in its stationary state distribution, so the long-run mean
    rate is ``(rate_low * mean_low + rate_high * mean_high) / (mean_low + mean_high)``.

    Parameters
    ----------
    rate_low_per_s, rate_high_per_s : float
        Arrival rates in the two states [1/s], >= 0.
    mean_low_s, mean_high_s : float
        Mean sojourn times [s], > 0.
    duration_s : float
        Window length [s].
    rng : numpy.random.Generator
        Source of randomness.
    tokens : TokenSampler
        Draws prompt and output lengths.

    Returns
    -------
    pandas.DataFrame
        Request frame.
    """
    _check_positive(mean_low_s=mean_low_s, mean_high_s=mean_high_s, duration_s=duration_s)
    if rate_low_per_s < 0 or rate_high_per_s < 0:
        raise ValueError("rates must be >= 0")
    p_high = mean_high_s / (mean_low_s + mean_high_s)
    state = int(rng.uniform() < p_high)  # 1 = high
    batch = int(2.0 * duration_s / (mean_low_s + mean_high_s)) + 16
    states: list[IntArray] = []
    sojourns: list[FloatArray] = []
    total = 0.0
    while total < duration_s:
        s = (state + np.arange(batch)) % 2
        d = rng.exponential(np.where(s == 1, mean_high_s, mean_low_s))
        states.append(s)
        sojourns.append(d)
        total += float(d.sum())
        state = (state + batch) % 2
    is_high = np.concatenate(states) == 1
    length = np.concatenate(sojourns)
    start = np.concatenate(([0.0], np.cumsum(length)[:-1]))
    inside = start < duration_s
    is_high, start = is_high[inside], start[inside]
    length = np.minimum(length[inside], duration_s - start)
    rate = np.where(is_high, rate_high_per_s, rate_low_per_s)
    count = rng.poisson(rate * length)
    t = np.repeat(start, count) + rng.uniform(0.0, 1.0, size=int(count.sum())) * np.repeat(length, count)
    return _frame(t, tokens, rng)
