"""Reader of job traces (training or batch jobs): start, end and GPU count per job.

The reader takes CSV with one row per job. Column names are found through :data:`VARIABLE_MAP`
(Helios-, Philly- and PAI-style names are built in) or given explicitly with ``columns``. Times
may be date-time text or numbers (seconds, or another unit through ``time_unit_s``); an end time
may be replaced by a duration column. Optional ``priority`` (higher first) and ``walltime_s``
(the requested time limit, in the unit of the times) columns feed a scheduler
(:mod:`twin.workload.scheduler`); the start is then read as the submit time.

Jobs are sorted by start (stable); ``start_s`` and ``end_s`` are seconds after the first start.
A job that ends at or before its start, holds fewer than one GPU (after ``drop_cpu_jobs``) or
more than :data:`MAX_JOB_GPUS`, has a time or duration beyond
:data:`~twin.workload._parse.MAX_ABS_TIME_S`, or has an unparsable or missing field raises
:class:`~twin.errors.TraceFormatError` naming the line.

References
----------
.. [1] Q. Hu et al., "Characterization and prediction of deep learning workloads in large-scale
   GPU datacenters", SC 2021 (Helios traces, ``cluster_log.csv``: ``job_id``, ``gpu_num``,
   ``submit_time``, ``start_time``, ``end_time``, ``duration``).
.. [2] M. Jeon et al., "Analysis of large-scale multi-tenant GPU clusters for DNN training
   workloads", USENIX ATC 2019 (Philly traces).
.. [3] A. Grattafiori et al., "The Llama 3 herd of models", arXiv:2407.21783, 2024 (training
   on up to 16,384 H100 GPUs); xAI's Colossus cluster, the largest announced, holds about
   200,000 GPUs (2025).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from twin.workload._frames import job_frame
from twin.workload._parse import (
    MAX_ABS_TIME_S,
    PathLike,
    Source,
    check_range,
    counts,
    numbers,
    pick_columns,
    read_csv,
    times,
)
from twin.workload.schema import TraceMeta

#: Most GPUs one job may hold. The largest training jobs published ran on 16 k GPUs and the
#: largest cluster announced holds about 200 k ([3]); a job on more than 1 M GPUs is a corrupt
#: cell (or GPUs written in another unit), not a job.
MAX_JOB_GPUS: int = 1_000_000

#: Source column -> standard column. For each standard column the first name present in the
#: file is used (case-insensitive). ``duration_s`` is used only when no end column is found.
VARIABLE_MAP: dict[str, dict[str, str]] = {
    "jobs": {
        "job_id": "job_id",
        "jobid": "job_id",
        "job_name": "job_id",
        "id": "job_id",
        "start_s": "start_s",
        "start_time": "start_s",
        "start": "start_s",
        "started": "start_s",
        "end_s": "end_s",
        "end_time": "end_s",
        "end": "end_s",
        "finish_time": "end_s",
        "finished_time": "end_s",
        "duration_s": "duration_s",
        "duration": "duration_s",
        "run_time": "duration_s",
        "gpus": "gpus",
        "gpu_num": "gpus",
        "num_gpu": "gpus",
        "num_gpus": "gpus",
        "gpu_count": "gpus",
        "ngpus": "gpus",
        "priority": "priority",
        "walltime_s": "walltime_s",
        "walltime": "walltime_s",
        "time_limit": "walltime_s",
        "timelimit": "walltime_s",
        "requested_time": "walltime_s",
    },
}


def parse_jobs(
    source: Source,
    frame: pd.DataFrame,
    chosen: Mapping[str, str],
    *,
    fmt: str,
    scale: Mapping[str, float] | None = None,
    time_unit_s: float = 1.0,
    time_format: str | None = None,
    drop_cpu_jobs: bool = True,
    drop_incomplete: bool = False,
    max_gpus: float | None = None,
) -> tuple[pd.DataFrame, TraceMeta]:
    """Turn a raw job table with known source columns into the standard job frame.

    Shared by :func:`read_jobs` and :func:`twin.workload.generic.read_generic`; ``chosen``
    maps standard names (``start_s``, ``end_s`` or ``duration_s``, ``gpus``, optional
    ``job_id``, ``priority``, ``walltime_s``) to source columns, ``scale`` multiplies numeric
    times, durations and counts. A job on more than ``max_gpus`` GPUs is refused (a pool that
    queues jobs could never start it).
    """
    scale = dict(scale or {})
    if "start_s" not in chosen or "gpus" not in chosen or not ("end_s" in chosen or "duration_s" in chosen):
        need = [n for n in ("start_s", "end_s", "gpus") if n not in chosen]
        if "duration_s" in chosen:
            need = [n for n in need if n != "end_s"]
        found = ", ".join(repr(c) for c in frame.columns)
        source.fail(
            -1,
            need[0],
            f"missing job column(s) {need} (map them with columns=...); found {found}",
        )
    end_key = "end_s" if "end_s" in chosen else "duration_s"
    extra: dict[str, object] = {"columns": dict(chosen)}
    positions = np.arange(len(frame))
    if drop_incomplete:
        complete = frame[[chosen["start_s"], chosen[end_key]]].notna().all(axis=1)
        extra["incomplete_dropped"] = int((~complete).sum())
        frame, positions = frame.loc[complete], positions[complete.to_numpy(dtype=bool)]
    gpus = counts(
        source,
        frame[chosen["gpus"]],
        chosen["gpus"],
        factor=scale.get("gpus", 1.0),
        positions=positions,
        maximum=MAX_JOB_GPUS,
    )
    if drop_cpu_jobs:
        keep = gpus > 0
        extra["cpu_jobs_dropped"] = int(np.count_nonzero(~keep))
        frame, positions, gpus = frame.loc[keep], positions[keep], gpus[keep]
    if max_gpus is not None and (gpus > max_gpus).any():
        i = int(np.argmax(gpus > max_gpus))
        source.fail(
            int(positions[i]),
            chosen["gpus"],
            f"a job on {gpus[i]} GPUs can never start on a pool of {max_gpus:g} GPUs",
        )
    optional: dict[str, np.ndarray] = {}
    if "priority" in chosen:
        raw_priority = frame[chosen["priority"]]
        priority = numbers(source, raw_priority, chosen["priority"], positions=positions, expected="a priority")
        source.fail_first(~np.isfinite(priority), raw_priority, chosen["priority"], "a finite priority", positions)
        optional["priority"] = priority
    if "walltime_s" in chosen:
        raw_wall = frame[chosen["walltime_s"]]
        optional["walltime_s"] = numbers(
            source, raw_wall, chosen["walltime_s"], factor=time_unit_s * scale.get("walltime_s", 1.0),
            positions=positions, expected="a walltime",
        )  # fmt: skip
        check_range(
            source, optional["walltime_s"], raw_wall, chosen["walltime_s"], np.nextafter(0.0, 1.0), MAX_ABS_TIME_S,
            f"a walltime above 0 and within {MAX_ABS_TIME_S:.0e} s", positions,
        )  # fmt: skip
    start, origin = times(
        source,
        frame[chosen["start_s"]],
        chosen["start_s"],
        time_format=time_format,
        numeric_unit_s=time_unit_s * scale.get("start_s", 1.0),
        positions=positions,
    )
    if end_key == "end_s":
        end, _ = times(
            source,
            frame[chosen["end_s"]],
            chosen["end_s"],
            time_format=time_format,
            numeric_unit_s=time_unit_s * scale.get("end_s", 1.0),
            origin=origin,
            positions=positions,
        )
    else:
        raw_duration = frame[chosen["duration_s"]]
        duration = numbers(
            source,
            raw_duration,
            chosen["duration_s"],
            factor=time_unit_s * scale.get("duration_s", 1.0),
            positions=positions,
            expected="a duration",
        )
        check_range(
            source,
            duration,
            raw_duration,
            chosen["duration_s"],
            -MAX_ABS_TIME_S,
            MAX_ABS_TIME_S,
            f"a duration within {MAX_ABS_TIME_S:.0e} s (a wrong time unit?)",
            positions,
        )
        end = start + duration
    if "job_id" in chosen:
        job_id = frame[chosen["job_id"]].astype("str").to_numpy(dtype=object)
    else:
        job_id = np.array([str(p) for p in positions], dtype=object)
    fields = dict(chosen)
    fields.setdefault("end_s", chosen.get("duration_s", "end"))
    return job_frame(
        source,
        job_id,
        start,
        end,
        gpus,
        fmt=fmt,
        origin=origin,
        positions=positions,
        fields=fields,
        extra=extra,
        optional=optional,
    )


def read_jobs(
    path: PathLike,
    *,
    columns: Mapping[str, str] | None = None,
    time_unit_s: float = 1.0,
    time_format: str | None = None,
    drop_cpu_jobs: bool = True,
    drop_incomplete: bool = False,
    max_gpus: float | None = None,
) -> tuple[pd.DataFrame, TraceMeta]:
    """Read a job trace CSV.

    Parameters
    ----------
    path : str or Path
        CSV, one row per job.
    columns : mapping of str to str, optional
        Standard name -> source column, overriding the built-in names of :data:`VARIABLE_MAP`
        (e.g. ``{"gpus": "plan_gpu_count"}``). Standard names: ``job_id``, ``start_s``,
        ``end_s``, ``duration_s``, ``gpus``, ``priority``, ``walltime_s``.
    time_unit_s : float
        Seconds per unit of numeric time and duration columns (e.g. 60 for minutes).
    time_format : str, optional
        strftime layout of date-time text, when it is not ISO 8601.
    drop_cpu_jobs : bool
        Drop jobs with 0 GPUs (CPU-only jobs, common in cluster logs) instead of raising.
    drop_incomplete : bool
        Drop jobs with an empty start or end (never started, still running) instead of raising.
    max_gpus : float, optional
        Refuse, naming its line, a job on more GPUs than this (the pool a scheduler queues on).

    Returns
    -------
    data : pandas.DataFrame
        Job frame (``job_id``, ``start_s``, ``end_s`` [s], ``gpus``; ``priority`` and
        ``walltime_s`` [s] when the trace has them).
    meta : TraceMeta
        ``extra["columns"]`` maps standard names to the source columns read; counts of dropped
        rows are in ``extra``.
    """
    fmt = "jobs"
    source = Source(path)
    frame = read_csv(source, dtype="str")
    chosen = pick_columns(frame, VARIABLE_MAP[fmt])
    for standard, col in (columns or {}).items():
        if col not in frame.columns:
            found = ", ".join(repr(c) for c in frame.columns)
            source.fail(-1, col, f"missing column mapped to {standard!r}; found {found}")
        chosen[standard] = col
    return parse_jobs(
        source,
        frame,
        chosen,
        fmt=fmt,
        time_unit_s=time_unit_s,
        time_format=time_format,
        drop_cpu_jobs=drop_cpu_jobs,
        drop_incomplete=drop_incomplete,
        max_gpus=max_gpus,
    )
