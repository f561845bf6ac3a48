"""Controls on request traces: stretch time, scale the rate, loop, and de-synchronise copies.

All functions are pure: they take a request frame (``arrival_s``, ``prompt_tokens``,
``output_tokens``) and return a new one, sorted by arrival, in the same dtypes. Random ones take
an explicit :class:`numpy.random.Generator`. Arrival times keep the input's time origin (they
are not rebased to the first kept request), so a scaled trace stays aligned with the original
window and with wall-clock effects such as a diurnal cycle.

The *period* of a trace is its span plus one mean inter-arrival time,
``P = (t_last - t_first) * n / (n - 1)``: repeating the trace every ``P`` keeps the mean rate
and leaves a typical gap at the seam.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from twin._types import FloatArray
from twin.workload.schema import REQUEST_COLUMNS


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    out = df.sort_values("arrival_s", kind="stable").reset_index(drop=True)
    return out.astype({"arrival_s": "float64", "prompt_tokens": "int64", "output_tokens": "int64"})


def trace_period_s(df: pd.DataFrame) -> float:
    """Return the period of a request trace: its span plus one mean inter-arrival time [s].

    Raises
    ------
    ValueError
        Fewer than two requests, or all at the same time (no inter-arrival time).
    """
    t = df["arrival_s"].to_numpy(dtype=np.float64)
    span = float(t.max() - t.min()) if len(t) else 0.0
    if len(t) < 2 or not span > 0:
        raise ValueError("a trace needs at least two requests at different times to repeat")
    return span * len(t) / (len(t) - 1)


def scale_time(df: pd.DataFrame, factor: float) -> pd.DataFrame:
    """Stretch (``factor > 1``) or compress (``factor < 1``) the arrival times.

    Arrivals become ``t0 + factor * (t - t0)`` with ``t0`` the first arrival, so the mean rate
    is divided by ``factor`` and the token columns are untouched.

    Parameters
    ----------
    df : pandas.DataFrame
        Request frame.
    factor : float
        Time factor, > 0.

    Returns
    -------
    pandas.DataFrame
        Request frame with the same rows.

    Examples
    --------
    >>> df = pd.DataFrame({"arrival_s": [10.0, 11.0, 14.0], "prompt_tokens": [5, 6, 7],
    ...                    "output_tokens": [1, 1, 1]})
    >>> scale_time(df, 0.5)["arrival_s"].tolist()
    [10.0, 10.5, 12.0]
    """
    if not factor > 0:
        raise ValueError(f"factor must be > 0, got {factor}")
    out = df.loc[:, list(REQUEST_COLUMNS)].copy()
    t = out["arrival_s"].to_numpy(dtype=np.float64)
    t0 = float(t.min()) if len(t) else 0.0
    out["arrival_s"] = t0 + factor * (t - t0)
    return _sorted(out)


def _circular_shift(t: FloatArray, offset_s: float | FloatArray, t0: float, period_s: float) -> FloatArray:
    return t0 + np.mod(t - t0 + offset_s, period_s)


def scale_rate(df: pd.DataFrame, factor: float, rng: np.random.Generator) -> pd.DataFrame:
    """Scale the mean request rate by ``factor`` while keeping the token distributions.

    ``factor < 1`` keeps a uniform random subset of ``round(factor * n)`` requests (thinning);
    ``factor > 1`` superposes ``floor(factor)`` copies of the trace, each after the first
    circularly shifted by a uniform random offset within the trace period (so the copies do not
    arrive in lockstep and all stay in the original window), plus a random subset of
    ``round(frac(factor) * n)`` requests of one more shifted copy. The result has
    ``floor(factor) * n + round(frac(factor) * n)`` requests in the same window; every request
    is a copy of an input request, so the token distributions are those of the input.

    Parameters
    ----------
    df : pandas.DataFrame
        Request frame.
    factor : float
        Rate factor, > 0.
    rng : numpy.random.Generator
        Source of randomness.

    Returns
    -------
    pandas.DataFrame
        Request frame.
    """
    if not factor > 0:
        raise ValueError(f"factor must be > 0, got {factor}")
    base = df.loc[:, list(REQUEST_COLUMNS)].reset_index(drop=True)
    n = len(base)
    whole = int(np.floor(factor))
    n_part = round((factor - whole) * n)
    if n == 0 or (whole == 0 and n_part == 0):
        return _sorted(base.iloc[:0])
    parts = []
    t = base["arrival_s"].to_numpy(dtype=np.float64)
    t0 = float(t.min())
    period = trace_period_s(base) if whole + (n_part > 0) > 1 else 0.0
    for k in range(whole + (n_part > 0)):
        copy = base if k < whole else base.iloc[np.sort(rng.choice(n, size=n_part, replace=False))]
        if k > 0:
            copy = copy.copy()
            shift = rng.uniform(0.0, period)
            copy["arrival_s"] = _circular_shift(copy["arrival_s"].to_numpy(dtype=np.float64), shift, t0, period)
        parts.append(copy)
    return _sorted(pd.concat(parts, ignore_index=True))


def loop_trace(df: pd.DataFrame, duration_s: float) -> pd.DataFrame:
    """Repeat a trace back to back until ``duration_s`` after its first arrival.

    Copy ``k`` is shifted by ``k * P``, with ``P`` the trace period (span plus one mean
    inter-arrival time), and requests at or after ``t_first + duration_s`` are dropped. A
    duration shorter than the trace truncates it.

    Parameters
    ----------
    df : pandas.DataFrame
        Request frame with at least two distinct arrival times.
    duration_s : float
        Length of the result, from the first arrival [s], > 0.

    Returns
    -------
    pandas.DataFrame
        Request frame.

    Examples
    --------
    >>> df = pd.DataFrame({"arrival_s": [0.0, 1.0, 2.0], "prompt_tokens": [5, 6, 7],
    ...                    "output_tokens": [1, 1, 1]})
    >>> loop_trace(df, 5.0)["arrival_s"].tolist()  # period 3 s
    [0.0, 1.0, 2.0, 3.0, 4.0]
    """
    if not duration_s > 0:
        raise ValueError(f"duration_s must be > 0, got {duration_s}")
    base = df.loc[:, list(REQUEST_COLUMNS)].reset_index(drop=True)
    period = trace_period_s(base)
    t = base["arrival_s"].to_numpy(dtype=np.float64)
    t0 = float(t.min())
    n_copies = int(np.ceil(duration_s / period))
    shifts = period * np.arange(n_copies, dtype=np.float64)
    arrival = (t[None, :] + shifts[:, None]).ravel()
    keep = arrival < t0 + duration_s
    rows = np.tile(np.arange(len(base)), n_copies)[keep]
    out = base.iloc[rows].reset_index(drop=True)
    out["arrival_s"] = arrival[keep]
    return _sorted(out)


def copy_offsets_s(
    df: pd.DataFrame,
    n_copies: int,
    rng: np.random.Generator | None = None,
    spacing_s: float | None = None,
) -> FloatArray:
    """Return one time offset per copy of a trace, so that copies do not run in lockstep.

    Give exactly one of ``rng`` (offsets uniform in ``[0, P)``, ``P`` the trace period; the
    first copy is not shifted) or ``spacing_s`` (offsets ``k * spacing_s``).

    Parameters
    ----------
    df : pandas.DataFrame
        Request frame.
    n_copies : int
        Number of copies (e.g. servers), >= 1.
    rng : numpy.random.Generator, optional
        Source of random offsets.
    spacing_s : float, optional
        Fixed spacing between copies [s].

    Returns
    -------
    numpy.ndarray of float64
        ``n_copies`` offsets [s].
    """
    if n_copies < 1:
        raise ValueError(f"n_copies must be >= 1, got {n_copies}")
    if (rng is None) == (spacing_s is None):
        raise ValueError("give exactly one of rng= or spacing_s=")
    if spacing_s is not None:
        return spacing_s * np.arange(n_copies, dtype=np.float64)
    assert rng is not None
    offsets = rng.uniform(0.0, trace_period_s(df), size=n_copies)
    offsets[0] = 0.0
    return offsets


def offset_copies(
    df: pd.DataFrame,
    n_copies: int,
    rng: np.random.Generator | None = None,
    spacing_s: float | None = None,
) -> pd.DataFrame:
    """Combine ``n_copies`` copies of a trace, each circularly shifted by its own offset.

    Offsets come from :func:`copy_offsets_s`. Each copy is shifted within the trace period, so
    every copy covers the same window as the input and the combined mean rate is
    ``n_copies`` times the input's.

    Parameters
    ----------
    df : pandas.DataFrame
        Request frame.
    n_copies : int
        Number of copies (e.g. servers), >= 1.
    rng : numpy.random.Generator, optional
        Source of random offsets.
    spacing_s : float, optional
        Fixed spacing between copies [s].

    Returns
    -------
    pandas.DataFrame
        Request frame with an extra ``copy`` column (int64, 0-based copy number), sorted by
        arrival.
    """
    offsets = copy_offsets_s(df, n_copies, rng=rng, spacing_s=spacing_s)
    base = df.loc[:, list(REQUEST_COLUMNS)].reset_index(drop=True)
    t = base["arrival_s"].to_numpy(dtype=np.float64)
    period = trace_period_s(base)
    t0 = float(t.min())
    arrival = _circular_shift(t[None, :], offsets[:, None], t0, period).ravel()
    out = base.iloc[np.tile(np.arange(len(base)), n_copies)].reset_index(drop=True)
    out["arrival_s"] = arrival
    out["copy"] = np.repeat(np.arange(n_copies, dtype=np.int64), len(base))
    out = out.sort_values(["arrival_s", "copy"], kind="stable").reset_index(drop=True)
    return out.astype({"arrival_s": "float64", "prompt_tokens": "int64", "output_tokens": "int64"})
