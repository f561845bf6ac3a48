"""The standard frames the trace readers build from parsed SI columns (requests, telemetry, jobs).

Each reader (:mod:`twin.workload.requests`, :mod:`twin.workload.telemetry`,
:mod:`twin.workload.jobs`) parses its format's fields with :mod:`twin.workload._parse`, then hands
them here: times are moved to start at 0 and sorted (stably), and the trace's
:class:`~twin.workload.schema.TraceMeta` is written. A job that ends before it starts, or holds no
GPU, and a cumulative energy counter that decreases, raise a located
:class:`~twin.errors.TraceFormatError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

import numpy as np
import pandas as pd

from twin._types import FloatArray, IntArray
from twin.workload._parse import PathLike, Source, TimeOrigin
from twin.workload.schema import TELEMETRY_COLUMNS, TraceMeta


def _meta(
    path: PathLike, fmt: str, origin: TimeOrigin | None, t0_s: float, duration_s: float, extra: dict[str, object]
) -> TraceMeta:
    """The trace's metadata: its start is the origin's time ``t0_s`` after it (None without an origin)."""
    start = None if origin is None else origin.to_datetime() + timedelta(seconds=t0_s)
    return TraceMeta(source=str(path), format=fmt, start=start, duration_s=duration_s, extra=extra)


def request_frame(
    arrival_s: FloatArray,
    prompt_tokens: IntArray,
    output_tokens: IntArray,
    *,
    path: PathLike,
    fmt: str,
    origin: TimeOrigin | None,
    extra: dict[str, object] | None = None,
) -> tuple[pd.DataFrame, TraceMeta]:
    """Build the standard request frame: times after the first request, stably sorted.

    Rows out of time order are sorted (stable), not rejected: request logs merged from several
    front ends are legitimately out of order by a few milliseconds. Their count is reported in
    ``meta.extra["rows_out_of_order"]``. When the source times are plain numbers, the source
    value of ``t = 0`` is kept in ``meta.extra["source_t0_s"]``.
    """
    extra = dict(extra or {})
    t = np.asarray(arrival_s, dtype=np.float64)
    n = len(t)
    t0 = float(t.min()) if n else 0.0
    if origin is None:
        extra["source_t0_s"] = t0
    t = t - t0
    extra["rows_out_of_order"] = int(np.count_nonzero(np.diff(t) < 0))
    order = np.argsort(t, kind="stable")
    frame = pd.DataFrame(
        {
            "arrival_s": t[order],
            "prompt_tokens": np.asarray(prompt_tokens, dtype=np.int64)[order],
            "output_tokens": np.asarray(output_tokens, dtype=np.int64)[order],
        }
    )
    return frame, _meta(path, fmt, origin, t0, float(t.max()) if n else 0.0, extra)


def telemetry_frame(
    source: Source,
    columns: Mapping[str, np.ndarray],
    *,
    fmt: str,
    origin: TimeOrigin | None,
    positions: np.ndarray | None = None,
    extra: dict[str, object] | None = None,
) -> tuple[pd.DataFrame, TraceMeta]:
    """Build the standard telemetry frame from parsed SI columns.

    ``columns`` must hold ``time_s`` and ``gpu_index``; absent measurement columns become NaN.
    Rows are sorted by time then GPU (stable). A cumulative energy counter is rebased to 0 J at
    each GPU's first sample with a value; a counter that decreases within a GPU (a reset or a
    corrupt row) raises a :class:`TraceFormatError` naming the line.
    """
    extra = dict(extra or {})
    t = np.asarray(columns["time_s"], dtype=np.float64)
    n = len(t)
    gpu = np.asarray(columns["gpu_index"], dtype=np.int64)
    pos = np.arange(n) if positions is None else np.asarray(positions)
    data = {
        name: np.asarray(columns.get(name, np.full(n, np.nan)), dtype=np.float64)
        for name in TELEMETRY_COLUMNS
        if name not in ("time_s", "gpu_index")
    }
    t0 = float(t.min()) if n else 0.0
    if origin is None:
        extra["source_t0_s"] = t0
    t = t - t0
    energy = data["energy_j"]
    if n and not np.isnan(energy).all():
        by_gpu = np.lexsort((t, gpu))
        e = energy[by_gpu]
        valid = ~np.isnan(e)
        ev, gv, pv = e[valid], gpu[by_gpu][valid], pos[by_gpu][valid]
        drop = (np.diff(ev) < 0) & (gv[1:] == gv[:-1])
        if drop.any():
            j = int(np.argmax(drop)) + 1
            source.fail(
                int(pv[j]),
                str(extra.get("energy_field", "energy")),
                f"expected a non-decreasing cumulative energy counter for GPU {gv[j]}, "
                f"got {ev[j]:.6g} J after {ev[j - 1]:.6g} J (counter reset?)",
            )
        base = pd.Series(energy).groupby(gpu).transform("first").to_numpy(dtype=np.float64)
        data["energy_j"] = energy - base
    order = np.lexsort((gpu, t))
    frame = pd.DataFrame({"time_s": t[order], "gpu_index": gpu[order]})
    for name, values in data.items():
        frame[name] = values[order]
    frame = frame[list(TELEMETRY_COLUMNS)]
    extra["gpus"] = sorted(int(g) for g in np.unique(gpu))
    return frame, _meta(source.path, fmt, origin, t0, float(t.max()) if n else 0.0, extra)


def job_frame(
    source: Source,
    job_id: np.ndarray,
    start_s: FloatArray,
    end_s: FloatArray,
    gpus: IntArray,
    *,
    fmt: str,
    origin: TimeOrigin | None,
    positions: np.ndarray,
    fields: Mapping[str, str],
    extra: dict[str, object] | None = None,
    optional: Mapping[str, np.ndarray] | None = None,
) -> tuple[pd.DataFrame, TraceMeta]:
    """Build the standard job frame; raise where a job ends before it starts or holds no GPU.

    ``optional`` columns (``priority``, ``walltime_s``) follow the standard ones, in the same order.
    """
    extra = dict(extra or {})
    start = np.asarray(start_s, dtype=np.float64)
    end = np.asarray(end_s, dtype=np.float64)
    gpus = np.asarray(gpus, dtype=np.int64)
    bad = ~(end > start)
    if bad.any():
        i = int(np.argmax(bad))
        source.fail(
            int(positions[i]),
            fields.get("end_s", "end"),
            f"expected an end time after the start, got a duration of {end[i] - start[i]:.6g} s",
        )
    bad = gpus < 1
    if bad.any():
        i = int(np.argmax(bad))
        source.fail(int(positions[i]), fields.get("gpus", "gpus"), f"expected at least 1 GPU, got {gpus[i]}")
    n = len(start)
    t0 = float(start.min()) if n else 0.0
    if origin is None:
        extra["source_t0_s"] = t0
    order = np.argsort(start, kind="stable")
    frame = pd.DataFrame(
        {
            "job_id": pd.array(np.asarray(job_id, dtype=object)[order], dtype="str"),
            "start_s": start[order] - t0,
            "end_s": end[order] - t0,
            "gpus": gpus[order],
            **{name: np.asarray(values)[order] for name, values in (optional or {}).items()},
        }
    )
    return frame, _meta(source.path, fmt, origin, t0, float(end.max() - t0) if n else 0.0, extra)
