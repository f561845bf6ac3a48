"""What drives each pool, read and checked while building: request streams, telemetry, job traces.

Trace files are read here (by :func:`twin.facility.build_facility`), so a bad path or row is
refused before a run. What is drawn with the run's generator (per-server offsets, synthetic
streams) is left to the engine (:mod:`twin.engine.sources`), in pool order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from twin._types import FloatArray
from twin.workload.periodic import PeriodicSignal
from twin.workload.scheduler import Schedule
from twin.workload.synthetic import EmpiricalTokens


@dataclass(frozen=True)
class FluidRequests:
    """Expected arrivals of a constant or diurnal profile (the whole pool)."""

    profile: str
    requests_per_s: float
    peak_to_mean: float
    peak_hour: float
    prompt_tokens: float
    output_tokens: float


@dataclass(frozen=True)
class TraceRequests:
    """A request trace, rebased to 0 and stretched, replayed as ``scale`` copies' worth per server.

    ``copies`` shifted copies are superposed per server when ``offsets`` is on.
    """

    arrival_s: FloatArray = field(repr=False)
    prompt_tokens: FloatArray = field(repr=False)
    output_tokens: FloatArray = field(repr=False)
    period_s: float
    loop: bool
    scale: float
    offsets: bool
    copies: int


@dataclass(frozen=True)
class DrawnRequests:
    """A stream drawn with the run's generator: ``poisson``, ``gamma`` renewal or ``mmpp`` (MMPP-2).

    ``rate_per_server`` requests/s are drawn over ``window_s`` (repeated beyond). Token counts are
    fixed (``prompt_tokens``, ``output_tokens``) unless ``tokens`` resamples them from a trace.
    """

    process: str
    rate_per_server: float
    window_s: float
    prompt_tokens: float
    output_tokens: float
    tokens: EmpiricalTokens | None = field(default=None, repr=False)
    cv: float | None = None
    burst_factor: float | None = None
    mean_low_s: float | None = None
    mean_high_s: float | None = None
    offsets: bool = True


RequestSpec = FluidRequests | TraceRequests | DrawnRequests


@dataclass(frozen=True)
class ReplaySignal:
    """A telemetry pool's busy signal, replayed on every server (shifted per server with ``offsets``).

    ``mem_per_busy`` and ``sm_per_busy`` turn busy into HBM and SM activity. [-]
    """

    signal: PeriodicSignal = field(repr=False)
    offsets: bool
    mem_per_busy: float
    sm_per_busy: float


@dataclass(frozen=True)
class JobLoad:
    """GPUs held by a job trace: as demanded, and as placed on the pool (clipped, or scheduled).

    ``schedule`` is each job's submit, start and end when a scheduler queues them (``None``
    without one); ``job_id`` names the jobs, in the schedule's order.
    """

    demanded: PeriodicSignal = field(repr=False)
    placed: PeriodicSignal = field(repr=False)
    schedule: Schedule | None = field(default=None, repr=False)
    job_id: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=object), repr=False)


@dataclass(frozen=True)
class Checkpoints:
    """A training job's checkpointing: interval, write stall and restart after a fault. [s]"""

    interval_s: float
    stall_s: float
    restart_s: float
