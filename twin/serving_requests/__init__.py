"""Requests one by one: a vLLM-like continuous-batching scheduler per serving rank, and its latency statistics.

:mod:`~twin.serving_requests.scheduler` runs one rank (one vLLM engine core) request by request
with step times from :func:`twin.physics.serving.step`; :mod:`~twin.serving_requests.stats` turns
the per-request times into distributions, percentiles (with confidence intervals), SLO attainment
and goodput. The fluid model (:mod:`twin.engine.serving`) stays the fast path of a run; this is
its request-level companion.
"""

from twin.serving_requests.scheduler import (
    RequestRun,
    SchedulerConfig,
    physics_step_time,
    simulate_frame,
    simulate_rank,
    step_clock,
)
from twin.serving_requests.stats import LatencySummary, StreamingQuantiles, percentile_ci, slo_attainment, summarize

__all__ = [
    "LatencySummary",
    "RequestRun",
    "SchedulerConfig",
    "StreamingQuantiles",
    "percentile_ci",
    "physics_step_time",
    "simulate_frame",
    "simulate_rank",
    "slo_attainment",
    "step_clock",
    "summarize",
]
