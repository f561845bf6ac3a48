"""Read and prepare what drives each pool: request traces and streams, telemetry replay, job traces.

Trace files are read once while building (a bad path or row is refused by ``twin validate``); the
engine's :mod:`twin.engine.sources` then draws offsets and synthetic streams with the run's
generator. The conventions (periods, copies, packing) are described there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from twin.catalog import AcceleratorSpec
from twin.errors import FieldProblem, ScenarioError, TraceFormatError, UnknownNameError
from twin.facility_parts.sources import (
    Checkpoints,
    DrawnRequests,
    FluidRequests,
    JobLoad,
    ReplaySignal,
    RequestSpec,
    TraceRequests,
)
from twin.physics.accelerator import busy_for_power
from twin.scenario.schema import Scenario
from twin.scenario.workload_schema import (
    Arrivals,
    BurstyArrivals,
    PoissonArrivals,
    TelemetryWorkload,
    TraceArrivals,
    TrainingWorkload,
)
from twin.workload.binning import resample_telemetry
from twin.workload.builtin import resolve_trace
from twin.workload.controls import trace_period_s
from twin.workload.periodic import PeriodicSignal
from twin.workload.readers import FORMAT_KIND, read_trace
from twin.workload.scheduler import held_gpus, schedule_jobs
from twin.workload.synthetic import EmpiricalTokens

#: Most requests drawn for one synthetic stream; beyond, a shorter window is drawn and repeated.
MAX_DRAWN_REQUESTS = 2_000_000
#: Most shifted copies of a trace superposed on one server by default (each costs a lookup).
MAX_COPIES = 8


class InputError:
    """Builds :class:`ScenarioError` for one scenario, naming the field a bad input came from."""

    def __init__(self, sc: Scenario) -> None:
        self.source = f"{sc.name!r}" + (f" (from {sc.source_dir})" if sc.source_dir is not None else "")
        self.base_dir: Path | None = sc.source_dir

    def fail(self, field: str, message: str) -> ScenarioError:
        """The error to raise for ``field``."""
        return ScenarioError(self.source, [FieldProblem(field, message)])

    def read(self, ref: str, field: str, kind: str, fmt: str | None = None, **kwargs: Any) -> pd.DataFrame:
        """Read the trace ``ref`` for ``field``, which must give a ``kind`` frame."""
        try:
            path = resolve_trace(ref, self.base_dir)
        except FileNotFoundError as exc:
            raise self.fail(field, str(exc)) from None
        try:
            data, meta = read_trace(path, fmt, **kwargs)
        except (TraceFormatError, UnknownNameError) as exc:
            raise self.fail(field, f"bad trace: {exc}") from exc
        got = FORMAT_KIND.get(meta.format, "")
        if got != kind:
            raise self.fail(field, f"expected a {kind} trace, got {meta.format} ({got}) from {path}")
        if data.empty:
            raise self.fail(field, f"trace {path} has no rows")
        return data


def copies_per_server(scale: float, asked: int | None) -> int:
    """Shifted copies to superpose on a server carrying ``scale`` copies' worth of a trace."""
    if asked is not None:
        return asked
    return int(min(max(np.ceil(scale - 1e-9), 1), MAX_COPIES))


def request_spec(
    arr: Arrivals | TraceArrivals | PoissonArrivals | BurstyArrivals, index: int, n_servers: int, duration_s: float,
    errors: InputError,
) -> RequestSpec:  # fmt: skip
    """What drives an inference pool of ``n_servers``: a profile, a trace read here, or a stream to draw."""
    field = f"workloads.{index}.arrivals"
    if isinstance(arr, Arrivals):
        return FluidRequests(
            arr.kind, arr.requests_per_s, arr.peak_to_mean, arr.peak_hour, arr.prompt_tokens, arr.output_tokens
        )
    if isinstance(arr, TraceArrivals):
        df = errors.read(arr.path, f"{field}.path", "requests", arr.format)
        t = df["arrival_s"].to_numpy(dtype=np.float64)
        t = t - t.min()
        try:
            period = trace_period_s(df) * arr.time_scale
        except ValueError as exc:
            raise errors.fail(f"{field}.path", str(exc)) from None
        base_rate = len(df) / period
        pool_rate = arr.requests_per_s if arr.requests_per_s is not None else (arr.rate_scale or 1.0) * base_rate
        scale = pool_rate / (n_servers * base_rate)
        return TraceRequests(
            arrival_s=t * arr.time_scale,
            prompt_tokens=df["prompt_tokens"].to_numpy(),
            output_tokens=df["output_tokens"].to_numpy(),
            period_s=period,
            loop=arr.loop,
            scale=scale,
            offsets=arr.offsets,
            copies=copies_per_server(scale, arr.copies),
        )
    rate = arr.requests_per_s / n_servers
    tokens = None
    if arr.tokens_from is not None:
        tokens = EmpiricalTokens.from_trace(errors.read(arr.tokens_from, f"{field}.tokens_from", "requests"))
    bursty = {}
    if isinstance(arr, BurstyArrivals):
        bursty = {
            "cv": arr.cv, "burst_factor": arr.burst_factor, "mean_low_s": arr.mean_low_s, "mean_high_s": arr.mean_high_s
        }  # fmt: skip
    return DrawnRequests(
        process="poisson" if isinstance(arr, PoissonArrivals) else arr.process,
        rate_per_server=rate,
        window_s=min(duration_s, MAX_DRAWN_REQUESTS / rate),
        prompt_tokens=arr.prompt_tokens,
        output_tokens=arr.output_tokens,
        tokens=tokens,
        offsets=arr.offsets,
        **bursty,
    )


def median_interval_s(df: pd.DataFrame) -> float:
    """Median time between consecutive samples of one GPU, over all GPUs. [s]"""
    gaps = [np.diff(np.unique(g["time_s"].to_numpy(dtype=np.float64))) for _, g in df.groupby("gpu_index")]
    pos = np.concatenate(gaps) if gaps else np.empty(0)
    pos = pos[pos > 0]
    return float(np.median(pos)) if pos.size else 0.0


def replay_signal(spec: TelemetryWorkload, index: int, acc: AcceleratorSpec, errors: InputError) -> ReplaySignal:
    """The busy signal of a telemetry pool, averaged over the trace's GPUs and resampled."""
    field = f"workloads.{index}"
    df = errors.read(spec.path, f"{field}.path", "telemetry", spec.format)
    signal = spec.signal
    if signal == "auto":
        signal = "utilization" if df["utilization"].notna().any() else "power"
    column = "utilization" if signal == "utilization" else "power_w"
    if not df[column].notna().any():
        raise errors.fail(f"{field}.signal", f"trace {spec.path!r} records no {column}")
    if signal == "power":
        busy = busy_for_power(
            df["power_w"].to_numpy(dtype=np.float64),
            params=acc.power_params,
            mem_per_busy=spec.mem_activity_per_busy,
            sm_per_busy=spec.sm_activity_per_busy,
        )
        busy = np.where(df["power_w"].isna().to_numpy(), np.nan, busy)
    else:
        busy = np.clip(df["utilization"].to_numpy(dtype=np.float64), 0.0, 1.0)
    frame = pd.DataFrame(
        {"time_s": df["time_s"].to_numpy(dtype=np.float64), "gpu_index": df["gpu_index"], "busy": busy}
    )
    step = median_interval_s(frame)
    if not step > 0:
        raise errors.fail(f"{field}.path", f"trace {spec.path!r} needs samples at two or more times")
    n_bins = int(np.floor(frame["time_s"].max() / step + 1e-9)) + 1
    values = resample_telemetry(frame, 0.0, step, n_bins, "busy", reduce="mean")
    values = pd.Series(values).ffill().fillna(0.0).to_numpy()
    step *= spec.time_scale
    sig = PeriodicSignal(step * np.arange(n_bins), values, step * n_bins, spec.loop)
    return ReplaySignal(sig, spec.offsets, spec.mem_activity_per_busy, spec.sm_activity_per_busy)


def job_load(spec: TrainingWorkload, index: int, capacity_gpus: float, errors: InputError) -> JobLoad | None:
    """GPUs in jobs for a training pool with a job trace (None: one steady job).

    ``demanded`` holds each job from its trace start for its duration. Without a scheduler the
    pool runs what fits of that (``placed`` is it clipped to the capacity); with one, the starts
    are submit times and ``placed`` holds each job from the start the scheduler gives it.
    """
    if spec.jobs is None:
        return None
    jt = spec.jobs
    field = f"workloads.{index}.jobs"
    queued = jt.scheduler != "none"
    df = errors.read(
        jt.path, f"{field}.path", "jobs", "jobs", columns=jt.columns.given() or None, time_unit_s=jt.time_unit_s,
        max_gpus=capacity_gpus if queued else None,
    )  # fmt: skip
    submit = df["start_s"].to_numpy(dtype=np.float64) * jt.time_scale
    end = df["end_s"].to_numpy(dtype=np.float64) * jt.time_scale
    gpus = df["gpus"].to_numpy(dtype=np.float64)
    schedule = None
    if queued:
        try:
            schedule = schedule_jobs(
                submit, gpus, end - submit, capacity_gpus, jt.scheduler,
                priority=df["priority"].to_numpy(dtype=np.float64) if "priority" in df else None,
                walltime_s=df["walltime_s"].to_numpy(dtype=np.float64) * jt.time_scale if "walltime_s" in df else None,
            )  # fmt: skip
        except ValueError as exc:  # the reader refuses such jobs first, naming the line
            raise errors.fail(f"{field}.path", str(exc)) from None
    period = float(end.max()) if schedule is None else max(float(end.max()), schedule.makespan_s)

    def signal(start: np.ndarray, stop: np.ndarray, clip: float) -> PeriodicSignal:
        times, held = held_gpus(start, stop, gpus)
        keep = times < period
        starts, held = times[keep], np.minimum(held[keep], clip)
        if starts[0] > 0:  # no job at 0 (the reader rebases the first start to 0; keep the guard)
            starts, held = np.concatenate(([0.0], starts)), np.concatenate(([0.0], held))
        return PeriodicSignal(starts, held, period, jt.loop)

    demanded = signal(submit, end, np.inf)
    if schedule is None:
        return JobLoad(demanded, signal(submit, end, capacity_gpus))
    placed = signal(schedule.start_s, schedule.end_s, capacity_gpus)
    return JobLoad(demanded, placed, schedule, df["job_id"].to_numpy(dtype=object))


def checkpoints(spec: TrainingWorkload) -> Checkpoints:
    """A training job's checkpoint interval, write stall and restart time."""
    return Checkpoints(spec.checkpoint_interval_s, spec.checkpoint_stall_s, spec.restart_s)
