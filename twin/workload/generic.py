"""Reader of any CSV trace, given an explicit column mapping and unit factors.

Example: a request log with times in milliseconds and tokens in columns ``in`` and ``out``::

    read_generic(path, kind="requests",
                 columns={"arrival_s": "t_ms", "prompt_tokens": "in", "output_tokens": "out"},
                 scale={"arrival_s": 1e-3})

``columns`` maps each standard column of :mod:`twin.workload.schema` to the source column;
``scale`` maps a standard column to the factor that turns a source value into the SI value
(``1e-3`` for ms, ``0.01`` for percent, ``1e6`` for MHz, ``1e-3`` for mJ). Times may also be
date-time text (then no scale applies). The result has the same guarantees as the dedicated
readers: standard columns and dtypes, sorted rows, located :class:`~twin.errors.TraceFormatError`.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from twin.errors import UnknownNameError
from twin.workload._frames import request_frame, telemetry_frame
from twin.workload._parse import (
    PathLike,
    Source,
    counts,
    numbers,
    read_csv,
    times,
)
from twin.workload.jobs import parse_jobs
from twin.workload.requests import MAX_TOKENS_PER_REQUEST
from twin.workload.schema import JOB_COLUMNS, JOB_OPTIONAL_COLUMNS, REQUEST_COLUMNS, TELEMETRY_COLUMNS, TraceMeta
from twin.workload.telemetry import UNITS, check_plausible

#: Standard columns each kind accepts, and those it requires.
KINDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "requests": (REQUEST_COLUMNS, REQUEST_COLUMNS),
    "telemetry": (TELEMETRY_COLUMNS, ("time_s",)),
    "jobs": ((*JOB_COLUMNS, "duration_s", *JOB_OPTIONAL_COLUMNS), ("start_s", "gpus")),
}


def read_generic(
    path: PathLike,
    kind: str,
    columns: Mapping[str, str],
    scale: Mapping[str, float] | None = None,
    *,
    time_format: str | None = None,
    sep: str = ",",
) -> tuple[pd.DataFrame, TraceMeta]:
    """Read a CSV trace through an explicit column mapping.

    Parameters
    ----------
    path : str or Path
        CSV file with a header.
    kind : {"requests", "telemetry", "jobs"}
        Which standard frame to build.
    columns : mapping of str to str
        Standard column -> source column. Requests need ``arrival_s``, ``prompt_tokens``,
        ``output_tokens``; telemetry needs ``time_s`` (``gpu_index`` defaults to 0, other
        columns to NaN); jobs need ``start_s``, ``gpus`` and ``end_s`` or ``duration_s``.
    scale : mapping of str to float, optional
        Standard column -> factor from the source unit to SI (default 1).
    time_format : str, optional
        strftime layout of date-time text, when it is not ISO 8601.
    sep : str
        Field separator.

    Returns
    -------
    data : pandas.DataFrame
        The standard frame of ``kind``.
    meta : TraceMeta
        ``format`` is ``"generic"``; ``extra["kind"]``, ``extra["columns"]`` and
        ``extra["scale"]`` record the mapping used.

    Raises
    ------
    UnknownNameError
        Unknown ``kind`` or standard column name.
    ValueError
        A required standard column is not mapped.
    TraceFormatError
        A mapped column is missing or a value is malformed.
    """
    if kind not in KINDS:
        raise UnknownNameError("trace kind", kind, list(KINDS))
    allowed, required = KINDS[kind]
    scale = dict(scale or {})
    for name in [*columns, *scale]:
        if name not in allowed:
            raise UnknownNameError(f"{kind} column", name, list(allowed))
    source = Source(path)
    frame = read_csv(source, dtype="str", sep=sep)
    found = ", ".join(repr(c) for c in frame.columns)
    missing = [name for name in required if name not in columns]
    if missing:
        raise ValueError(f"read_generic(kind={kind!r}) needs columns= entries for {missing}")
    for standard, col in columns.items():
        if col not in frame.columns:
            source.fail(-1, col, f"missing column mapped to {standard!r}; found {found}")
    extra: dict[str, object] = {"kind": kind, "columns": dict(columns), "scale": scale}
    fmt = "generic"
    if kind == "jobs":
        jobs, meta = parse_jobs(source, frame, columns, fmt=fmt, scale=scale, time_format=time_format)
        meta.extra.update(extra)
        return jobs, meta
    time_key = "arrival_s" if kind == "requests" else "time_s"
    t, origin = times(
        source,
        frame[columns[time_key]],
        columns[time_key],
        time_format=time_format,
        numeric_unit_s=scale.get(time_key, 1.0),
    )
    if kind == "requests":
        prompt, output = (
            counts(source, frame[columns[k]], columns[k], factor=scale.get(k, 1.0), maximum=MAX_TOKENS_PER_REQUEST)
            for k in ("prompt_tokens", "output_tokens")
        )
        return request_frame(t, prompt, output, path=path, fmt=fmt, origin=origin, extra=extra)
    data: dict[str, np.ndarray] = {"time_s": t}
    if "gpu_index" in columns:
        data["gpu_index"] = counts(source, frame[columns["gpu_index"]], columns["gpu_index"])
    else:
        data["gpu_index"] = np.zeros(len(frame), dtype=np.int64)
    for standard, col in columns.items():
        if standard in ("time_s", "gpu_index"):
            continue
        data[standard] = numbers(
            source,
            frame[col],
            col,
            units=UNITS[standard],
            factor=scale.get(standard, 1.0),
            allow_missing=True,
        )
        check_plausible(source, standard, data[standard], frame[col], col)
    if "energy_j" in columns:
        extra["energy_field"] = columns["energy_j"]
    return telemetry_frame(source, data, fmt=fmt, origin=origin, extra=extra)
