"""Request and telemetry traces put on the engine's fixed time grid.

The grid is ``n_steps`` half-open intervals ``[t0_s + i*step_s, t0_s + (i+1)*step_s)``.
:func:`bin_requests` counts requests and sums their tokens per interval exactly (a request
belongs to the interval its arrival falls in, so the sums over all intervals equal the trace's
sums over the window). :func:`resample_telemetry` averages a sampled quantity over each interval,
weighting each sample by the time it holds (zero-order hold, i.e. forward fill).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from twin._types import FloatArray


@dataclass(frozen=True, eq=False)
class RequestBins:
    """Requests and tokens per interval of a fixed time grid.

    Attributes
    ----------
    t0_s : float
        Start of the first interval [s].
    step_s : float
        Interval length [s].
    requests : numpy.ndarray of float64
        Requests arriving in each interval (count; float so that fluid, expected-value bins
        share the type).
    prompt_tokens : numpy.ndarray of float64
        Prompt tokens of those requests.
    output_tokens : numpy.ndarray of float64
        Output tokens of those requests.
    """

    t0_s: float
    step_s: float
    requests: FloatArray
    prompt_tokens: FloatArray
    output_tokens: FloatArray

    @property
    def n_steps(self) -> int:
        """Number of intervals."""
        return len(self.requests)

    @property
    def edges_s(self) -> FloatArray:
        """Interval edges, ``n_steps + 1`` values [s]."""
        return _edges(self.t0_s, self.step_s, self.n_steps)

    def rate_per_s(self) -> FloatArray:
        """Mean request rate in each interval [1/s]."""
        return self.requests / self.step_s


def _edges(t0_s: float, step_s: float, n_steps: int) -> FloatArray:
    return t0_s + step_s * np.arange(n_steps + 1, dtype=np.float64)


def _check_grid(step_s: float, n_steps: int) -> None:
    if not step_s > 0:
        raise ValueError(f"step_s must be > 0, got {step_s}")
    if n_steps < 0:
        raise ValueError(f"n_steps must be >= 0, got {n_steps}")


def bin_index(t_s: FloatArray, t0_s: float, step_s: float, n_steps: int) -> np.ndarray:
    """Return the interval of each time, or -1 outside ``[t0_s, t0_s + n_steps*step_s)``.

    Edges are computed once as ``t0_s + step_s * i`` and times are placed by binary search, so
    a time equal to an edge always goes to the interval that starts there, without rounding
    surprises from ``floor((t - t0) / step)``.
    """
    edges = _edges(t0_s, step_s, n_steps)
    idx = np.searchsorted(edges, np.asarray(t_s, dtype=np.float64), side="right") - 1
    idx[(idx < 0) | (idx >= n_steps)] = -1
    return idx


def bin_requests(df: pd.DataFrame, t0_s: float, step_s: float, n_steps: int) -> RequestBins:
    """Count requests and sum their tokens per interval.

    Parameters
    ----------
    df : pandas.DataFrame
        Request frame (``arrival_s`` [s], ``prompt_tokens``, ``output_tokens``).
    t0_s : float
        Start of the grid, on the frame's time axis [s].
    step_s : float
        Interval length [s].
    n_steps : int
        Number of intervals.

    Returns
    -------
    RequestBins
        Arrays of length ``n_steps``. Requests outside the window are left out; within it,
        token sums are exact (float64 holds integer sums exactly below 2**53).

    Examples
    --------
    >>> df = pd.DataFrame({"arrival_s": [0.0, 0.5, 1.0, 2.5], "prompt_tokens": [10, 20, 30, 40],
    ...                    "output_tokens": [1, 2, 3, 4]})
    >>> bins = bin_requests(df, 0.0, 1.0, 2)
    >>> bins.requests.tolist(), bins.prompt_tokens.tolist()
    ([2.0, 1.0], [30.0, 30.0])
    """
    _check_grid(step_s, n_steps)
    idx = bin_index(df["arrival_s"].to_numpy(dtype=np.float64), t0_s, step_s, n_steps)
    inside = idx >= 0
    idx = idx[inside]

    def total(column: str) -> FloatArray:
        weights = df[column].to_numpy(dtype=np.float64)[inside]
        return np.bincount(idx, weights=weights, minlength=n_steps).astype(np.float64)

    return RequestBins(
        t0_s=float(t0_s),
        step_s=float(step_s),
        requests=np.bincount(idx, minlength=n_steps).astype(np.float64),
        prompt_tokens=total("prompt_tokens"),
        output_tokens=total("output_tokens"),
    )


def _zoh_mean(t_s: FloatArray, v: FloatArray, edges_s: FloatArray) -> FloatArray:
    """Average a zero-order-hold signal over each interval of ``edges_s``.

    The signal is ``v[k]`` from ``t_s[k]`` until the next sample and ``v[-1]`` after the last;
    it is undefined before ``t_s[0]``. An interval partly before the first sample is averaged
    over its defined part; one wholly before it is NaN.
    """
    n = len(edges_s) - 1
    if len(t_s) == 0:
        return np.full(n, np.nan)
    # F(t) = integral of the signal from t_s[0] to t, exact for a piecewise-constant signal.
    cum = np.concatenate(([0.0], np.cumsum(v[:-1] * np.diff(t_s))))
    clipped = np.maximum(edges_s, t_s[0])
    j = np.searchsorted(t_s, clipped, side="right") - 1
    integral = cum[j] + v[j] * (clipped - t_s[j])
    width = np.diff(clipped)
    out = np.full(n, np.nan)
    np.divide(np.diff(integral), width, out=out, where=width > 0)
    return out


def resample_telemetry(
    df: pd.DataFrame,
    t0_s: float,
    step_s: float,
    n_steps: int,
    column: str,
    gpu_index: int | None = None,
    *,
    reduce: str = "mean",
) -> FloatArray:
    """Average a telemetry column over each interval, time-weighted and forward-filled.

    Each sample holds its value until the next sample of the same GPU (zero-order hold);
    samples with NaN in ``column`` are skipped, so the previous value carries on. After the
    last sample the last value holds; before a GPU's first sample its value is undefined.

    Parameters
    ----------
    df : pandas.DataFrame
        Telemetry frame (``time_s``, ``gpu_index``, ``column``).
    t0_s, step_s, n_steps : float, float, int
        The grid [s, s, -].
    column : str
        Column to resample (e.g. ``"power_w"``).
    gpu_index : int, optional
        One GPU. When None, every GPU is resampled and the results are combined by ``reduce``.
    reduce : {"mean", "sum"}
        How GPUs are combined when ``gpu_index`` is None (``"sum"`` for fleet power). GPUs with
        no value yet in an interval are left out; an interval where no GPU has one is NaN.

    Returns
    -------
    numpy.ndarray of float64
        Length ``n_steps``, in the unit of ``column``.

    Examples
    --------
    >>> df = pd.DataFrame({"time_s": [0.0, 1.0], "gpu_index": [0, 0], "power_w": [100.0, 200.0]})
    >>> resample_telemetry(df, 0.0, 0.5, 4, "power_w").tolist()
    [100.0, 100.0, 200.0, 200.0]
    >>> resample_telemetry(df, 0.0, 2.0, 1, "power_w").tolist()
    [150.0]
    """
    _check_grid(step_s, n_steps)
    if reduce not in ("mean", "sum"):
        raise ValueError(f"reduce must be 'mean' or 'sum', got {reduce!r}")
    edges = _edges(t0_s, step_s, n_steps)
    sub = df[["time_s", "gpu_index", column]].dropna(subset=[column])
    if gpu_index is not None:
        sub = sub[sub["gpu_index"] == gpu_index]
    per_gpu = []
    for _, g in sub.groupby("gpu_index", sort=True):
        g = g.sort_values("time_s", kind="stable")
        per_gpu.append(
            _zoh_mean(
                g["time_s"].to_numpy(dtype=np.float64),
                g[column].to_numpy(dtype=np.float64),
                edges,
            )
        )
    if not per_gpu:
        return np.full(n_steps, np.nan)
    stack = np.vstack(per_gpu)
    have = ~np.isnan(stack)
    n_have = have.sum(axis=0)
    total = np.where(have, stack, 0.0).sum(axis=0)
    out = np.full(n_steps, np.nan)
    if reduce == "sum":
        out[n_have > 0] = total[n_have > 0]
    else:
        np.divide(total, n_have, out=out, where=n_have > 0)
    return out
