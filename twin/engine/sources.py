"""What drives each pool, read and prepared once per run: request streams, telemetry, job traces.

Every source answers for a block of ticks ``[t0[k], t1[k])`` with ``(K, S_pool)`` arrays, one
column per server of its pool, computed from the trace held once (:mod:`twin.workload.periodic`):
no per-server copy of a trace is ever materialised.

Request streams (``arrivals.kind``)
-----------------------------------
* ``constant``, ``diurnal``: expected arrivals (closed-form integral of the rate), spread evenly.
* ``trace``: a request trace (Azure LLM 2023/2024, BurstGPT, Mooncake), times stretched by
  ``time_scale``, with period ``P`` = span plus one mean inter-arrival time
  (:func:`twin.workload.controls.trace_period_s`). Server ``s`` receives ``c`` copies of the trace
  shifted circularly by its offset ``o_s`` (uniform in ``[0, P)`` from the run's generator; the
  pool's first server, and every server when ``offsets`` is off, at 0; the servers of one replica
  share an offset). ``c = R / (S * N / P)`` makes the pool's mean rate ``R`` (``requests_per_s``,
  or ``rate_scale`` times the trace's ``N / P``, default 1); a fractional ``c`` is a fluid share
  of every request. A server carrying more than one copy's worth superposes ``n = ceil(c)``
  (at most :data:`MAX_COPIES`, or ``copies``) copies with their own offsets, each weighted
  ``c / n``, as merging independent streams does: scaling one copy by ``c`` would make its bursts
  ``c`` times taller instead of about ``sqrt(c)``. With ``loop`` a copy repeats every ``P``;
  without, nothing arrives after it.
* ``poisson``, ``bursty``: a stream of rate ``R / S`` is drawn with the run's generator (Poisson,
  Gamma renewal or MMPP-2, :mod:`twin.workload.synthetic`) over the run (or, past
  :data:`MAX_DRAWN_REQUESTS`, a shorter window that repeats) and handled as a trace with
  ``c = 1``: each server's stream is an exact realisation of the process; different servers
  are shifted copies of one realisation, not independent draws.

Per tick and server the request source gives the requests, prompt and output tokens, and the
two sequence lengths the serving model needs, exactly for the requests of that tick: the
token-weighted prompt length ``sum(p^2)/sum(p)`` (so that prefill FLOPs, which grow with the
prompt, sum exactly) and the decode context ``sum(o (p + o/2))/sum(o)``. Ticks without requests
use the trace-wide values.

Telemetry replay (``kind: telemetry``)
--------------------------------------
The trace's GPUs are averaged into one busy signal (utilisation, or power inverted with
:func:`twin.physics.accelerator.busy_for_power` through the fleet's accelerator), resampled with
zero-order hold onto its median sampling interval; server ``s`` replays it shifted by ``o_s``.

Job traces (``training.jobs``)
------------------------------
GPUs held by running jobs form a step function, clipped to the pool's GPUs (jobs beyond it are
not queued: the excess is reported as demanded but not placed); its mean over each tick is packed
onto the pool's servers in order (a scheduler filling whole nodes), so servers are fully busy or
idle except one partly filled server.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from twin._types import FloatArray
from twin.errors import FieldProblem, ScenarioError, TraceFormatError, UnknownNameError
from twin.facility import Facility, Pool
from twin.physics.accelerator import busy_for_power
from twin.scenario.schema import (
    Arrivals,
    BurstyArrivals,
    InferenceWorkload,
    PoissonArrivals,
    TelemetryWorkload,
    TraceArrivals,
    TrainingWorkload,
)
from twin.workload.binning import resample_telemetry
from twin.workload.builtin import resolve_trace
from twin.workload.controls import trace_period_s
from twin.workload.fluid import expected_arrivals
from twin.workload.periodic import PeriodicEvents, PeriodicSignal
from twin.workload.readers import FORMAT_KIND, read_trace
from twin.workload.synthetic import EmpiricalTokens, gamma_requests, mmpp2_requests, poisson_requests

#: Most requests drawn for one synthetic stream; beyond, a shorter window is drawn and repeated.
MAX_DRAWN_REQUESTS = 2_000_000
#: Most shifted copies of a trace superposed on one server by default (each costs a lookup).
MAX_COPIES = 8
#: Weights kept per request for the exact per-tick sums.
_WEIGHTS = ("prompt", "output", "prompt_sq", "context_x_output")


@dataclass
class RequestBlock:
    """``(K, S_pool)`` arrivals of one pool over a block of ticks."""

    requests: FloatArray
    prefill_tokens: FloatArray
    decode_tokens: FloatArray
    prompt_len: FloatArray
    context_len: FloatArray


class InputError:
    """Builds :class:`ScenarioError` for one scenario, naming the field a bad input came from."""

    def __init__(self, fac: Facility) -> None:
        sc = fac.scenario
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


def server_offsets_s(
    pool: Pool, gpus_per_server: int, period_s: float, on: bool, rng: np.random.Generator, copies: int = 1
) -> FloatArray | None:
    """Offsets in ``[0, period)`` of each server's copies, ``(S, copies)``; None when off.

    One row per replica (servers of a replica share it), drawn uniformly; the pool's first copy
    is not shifted. Without offsets every copy is the unshifted trace (None).
    """
    if not on or (pool.n_servers == 1 and copies == 1):
        return None
    per_replica = max(1, pool.gpus_per_replica // gpus_per_server)
    groups = np.arange(pool.n_servers) // per_replica
    drawn = rng.uniform(0.0, period_s, size=(int(groups[-1]) + 1, copies))
    drawn[0, 0] = 0.0
    return np.asarray(drawn[groups])


def _shifted(
    f: Callable[[FloatArray, FloatArray, FloatArray | float], Any],
    t0: FloatArray,
    t1: FloatArray,
    offsets: FloatArray | None,
) -> Any:
    """Evaluate a window function on ``(K, S)`` (or ``(K, 1)`` without offsets)."""
    o: FloatArray | float = 0.0 if offsets is None else offsets[None, :]
    return f(t0[:, None], t1[:, None], o)


def copies_per_server(scale: float, asked: int | None) -> int:
    """Shifted copies to superpose on a server carrying ``scale`` copies' worth of a trace."""
    if asked is not None:
        return asked
    return int(min(max(np.ceil(scale - 1e-9), 1), MAX_COPIES))


class RequestSource:
    """A pool's request stream: ``scale`` copies' worth per server of a periodic stream.

    ``offsets`` is ``(S, n)``: server ``s`` superposes ``n`` copies shifted by ``offsets[s]``,
    each weighted ``scale / n``; None puts ``scale`` unshifted copies on every server.
    """

    varies = True

    def __init__(self, events: PeriodicEvents, scale: float, offsets: FloatArray | None, n_servers: int) -> None:
        self.events = events
        self.scale = float(scale)
        self.offsets = offsets
        self.n_servers = n_servers
        tot = events.totals
        self.mean_prompt_len = tot["prompt_sq"] / tot["prompt"] if tot["prompt"] > 0 else 1.0
        self.mean_context_len = tot["context_x_output"] / tot["output"] if tot["output"] > 0 else 1.0

    @classmethod
    def from_frame(
        cls,
        t_s: FloatArray,
        prompt: FloatArray,
        output: FloatArray,
        period_s: float,
        loop: bool,
        scale: float,
        offsets: FloatArray | None,
        n_servers: int,
    ) -> RequestSource:
        """Build from per-request times (in ``[0, period)``) and token counts."""
        p = np.asarray(prompt, dtype=np.float64)
        o = np.asarray(output, dtype=np.float64)
        weights = {"prompt": p, "output": o, "prompt_sq": p * p, "context_x_output": o * (p + o / 2.0)}
        return cls(PeriodicEvents(t_s, weights, period_s, loop), scale, offsets, n_servers)

    def _copy_sums(self, t0: FloatArray, t1: FloatArray, offsets: FloatArray | None) -> dict[str, FloatArray]:
        """Window sums of one copy per server, ``(K, S)`` (or ``(K, 1)`` unshifted).

        Contiguous ticks are looked up once per edge, one server's edges in time order (a row),
        then transposed: the same sums as :meth:`PeriodicEvents.window_sums`, faster.
        """
        if t0.size > 1 and np.array_equal(t1[:-1], t0[1:]):
            edges = np.append(t0, t1[-1])
            if offsets is None:
                return self.events.edge_sums(edges[:, None])
            sums = self.events.edge_sums(edges[None, :], offsets[:, None], axis=1)
            return {k: v.T for k, v in sums.items()}
        return dict(_shifted(self.events.window_sums, t0, t1, offsets))

    def block(self, t0: FloatArray, t1: FloatArray) -> RequestBlock:
        """Arrivals per tick and server."""
        if self.offsets is None:
            sums = self._copy_sums(t0, t1, None)
            c = self.scale
        else:
            n_copies = self.offsets.shape[1]
            sums = self._copy_sums(t0, t1, self.offsets[:, 0])
            for j in range(1, n_copies):
                more = self._copy_sums(t0, t1, self.offsets[:, j])
                sums = {k: v + more[k] for k, v in sums.items()}
            c = self.scale / n_copies
        shape = (t0.size, self.n_servers)
        n, p, o = sums["count"], sums["prompt"], sums["output"]
        prompt_len = np.divide(sums["prompt_sq"], p, out=np.full(p.shape, self.mean_prompt_len), where=p > 0)
        context_len = np.divide(sums["context_x_output"], o, out=np.full(o.shape, self.mean_context_len), where=o > 0)
        return RequestBlock(
            requests=np.broadcast_to(c * n, shape),
            prefill_tokens=np.broadcast_to(c * p, shape),
            decode_tokens=np.broadcast_to(c * o, shape),
            prompt_len=np.broadcast_to(np.maximum(prompt_len, 1.0), shape),
            context_len=np.broadcast_to(context_len, shape),
        )


class FluidSource:
    """Expected arrivals of the constant or diurnal profile, spread evenly over the pool."""

    def __init__(self, arr: Arrivals, start_hour: float, n_servers: int) -> None:
        self.arr = arr
        self.start_hour = start_hour
        self.n_servers = n_servers
        self.varies = arr.kind != "constant"

    def block(self, t0: FloatArray, t1: FloatArray) -> RequestBlock:
        """Arrivals per tick and server."""
        a = self.arr
        peak = a.peak_to_mean if a.kind == "diurnal" else 1.0
        req = expected_arrivals(t0, t1, a.requests_per_s, peak, a.peak_hour, self.start_hour)
        shape = (t0.size, self.n_servers)
        per_server = (req / self.n_servers)[:, None]  # one column, broadcast: no (K, S) copy
        return RequestBlock(
            requests=np.broadcast_to(per_server, shape),
            prefill_tokens=np.broadcast_to(per_server * a.prompt_tokens, shape),
            decode_tokens=np.broadcast_to(per_server * a.output_tokens, shape),
            prompt_len=np.broadcast_to(max(a.prompt_tokens, 1.0), shape),
            context_len=np.broadcast_to(a.prompt_tokens + a.output_tokens / 2.0, shape),
        )


class SignalSource:
    """A periodic signal replayed on every server of a pool, shifted per server."""

    varies = True

    def __init__(self, signal: PeriodicSignal, offsets: FloatArray | None, n_servers: int) -> None:
        self.signal = signal
        self.offsets = offsets
        self.n_servers = n_servers

    def block(self, t0: FloatArray, t1: FloatArray) -> FloatArray:
        """Mean of each server's copy over each tick, ``(K, S_pool)``."""
        mean = _shifted(self.signal.window_mean, t0, t1, self.offsets)
        return np.asarray(np.broadcast_to(mean, (t0.size, self.n_servers)))


class JobSource:
    """GPUs held by a job trace, clipped to the pool and packed onto its servers."""

    varies = True

    def __init__(self, demanded: PeriodicSignal, placed: PeriodicSignal, gpus_per_server: int, n_servers: int):
        self.demanded = demanded
        self.placed = placed
        self.gpus_per_server = gpus_per_server
        self.n_servers = n_servers

    def block(self, t0: FloatArray, t1: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Share of each server's GPUs in jobs ``(K, S_pool)`` and GPUs demanded per tick ``(K,)``."""
        placed = self.placed.window_mean(t0, t1) / self.gpus_per_server
        fill = np.clip(placed[:, None] - np.arange(self.n_servers)[None, :], 0.0, 1.0)
        return fill, self.demanded.window_mean(t0, t1)


# ------------------------------------------------------------------------------- building


def build_request_source(
    pool: Pool, index: int, fac: Facility, rng: np.random.Generator, errors: InputError, start_hour: float
) -> RequestSource | FluidSource:
    """The request source of an inference pool."""
    spec = pool.spec
    assert isinstance(spec, InferenceWorkload)
    arr = spec.arrivals
    field = f"workloads.{index}.arrivals"
    gps = fac.gpus_per_server
    n = pool.n_servers
    if isinstance(arr, Arrivals):
        return FluidSource(arr, start_hour, n)
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
        scale = pool_rate / (n * base_rate)
        offsets = server_offsets_s(pool, gps, period, arr.offsets, rng, copies_per_server(scale, arr.copies))
        return RequestSource.from_frame(
            t * arr.time_scale,
            df["prompt_tokens"].to_numpy(),
            df["output_tokens"].to_numpy(),
            period,
            arr.loop,
            scale,
            offsets,
            n,
        )
    return _drawn_source(pool, arr, field, fac, rng, errors)


class _NoTokens:
    """Token sampler for fixed lengths: the lengths are set after drawing the times."""

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        zeros = np.zeros(n, dtype=np.int64)
        return zeros, zeros


def _drawn_source(
    pool: Pool,
    arr: PoissonArrivals | BurstyArrivals,
    field: str,
    fac: Facility,
    rng: np.random.Generator,
    errors: InputError,
) -> RequestSource:
    n = pool.n_servers
    rate = arr.requests_per_s / n
    window = min(fac.scenario.duration_s, MAX_DRAWN_REQUESTS / rate)
    tokens: EmpiricalTokens | _NoTokens = _NoTokens()
    if arr.tokens_from is not None:
        tokens = EmpiricalTokens.from_trace(errors.read(arr.tokens_from, f"{field}.tokens_from", "requests"))
    if isinstance(arr, PoissonArrivals):
        df = poisson_requests(rate, window, rng, tokens)
    elif arr.process == "gamma":
        assert arr.cv is not None
        df = gamma_requests(rate, arr.cv, window, rng, tokens)
    else:
        assert arr.burst_factor is not None
        assert arr.mean_low_s is not None
        assert arr.mean_high_s is not None
        lo, hi = arr.mean_low_s, arr.mean_high_s
        rate_low = rate * (lo + hi) / (lo + arr.burst_factor * hi)
        df = mmpp2_requests(rate_low, arr.burst_factor * rate_low, lo, hi, window, rng, tokens)
    if arr.tokens_from is None:
        prompt = np.full(len(df), arr.prompt_tokens)
        output = np.full(len(df), arr.output_tokens)
    else:
        prompt = df["prompt_tokens"].to_numpy(dtype=np.float64)
        output = df["output_tokens"].to_numpy(dtype=np.float64)
    offsets = server_offsets_s(pool, fac.gpus_per_server, window, arr.offsets, rng)
    t = df["arrival_s"].to_numpy(dtype=np.float64)
    return RequestSource.from_frame(t, prompt, output, window, True, 1.0, offsets, n)


def median_interval_s(df: pd.DataFrame) -> float:
    """Median time between consecutive samples of one GPU, over all GPUs. [s]"""
    gaps = [np.diff(np.unique(g["time_s"].to_numpy(dtype=np.float64))) for _, g in df.groupby("gpu_index")]
    pos = np.concatenate(gaps) if gaps else np.empty(0)
    pos = pos[pos > 0]
    return float(np.median(pos)) if pos.size else 0.0


def build_telemetry_source(
    pool: Pool, index: int, fac: Facility, rng: np.random.Generator, errors: InputError
) -> SignalSource:
    """The replayed busy signal of a telemetry pool."""
    spec = pool.spec
    assert isinstance(spec, TelemetryWorkload)
    field = f"workloads.{index}"
    df = errors.read(spec.path, f"{field}.path", "telemetry", spec.format)
    signal = spec.signal
    if signal == "auto":
        signal = "utilization" if df["utilization"].notna().any() else "power"
    column = "utilization" if signal == "utilization" else "power_w"
    if not df[column].notna().any():
        raise errors.fail(f"{field}.signal", f"trace {spec.path!r} records no {column}")
    acc = fac.accelerator
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
    offsets = server_offsets_s(pool, fac.gpus_per_server, sig.period_s, spec.offsets, rng)
    return SignalSource(sig, None if offsets is None else offsets[:, 0], pool.n_servers)


def build_job_source(pool: Pool, index: int, fac: Facility, errors: InputError) -> JobSource | None:
    """GPUs in jobs for a training pool with a job trace (None: one steady job)."""
    spec = pool.spec
    assert isinstance(spec, TrainingWorkload)
    if spec.jobs is None:
        return None
    jt = spec.jobs
    field = f"workloads.{index}.jobs"
    df = errors.read(jt.path, f"{field}.path", "jobs", "jobs", columns=jt.columns or None, time_unit_s=jt.time_unit_s)
    start = df["start_s"].to_numpy(dtype=np.float64) * jt.time_scale
    end = df["end_s"].to_numpy(dtype=np.float64) * jt.time_scale
    gpus = df["gpus"].to_numpy(dtype=np.float64)
    t = np.concatenate((start, end))
    delta = np.concatenate((gpus, -gpus))
    times, inverse = np.unique(t, return_inverse=True)
    held = np.cumsum(np.bincount(inverse, weights=delta))
    period = float(end.max())
    keep = times < period
    starts, held = times[keep], held[keep]
    if starts[0] > 0:  # the first job starts at 0 after the reader's rebasing; keep the guard
        starts, held = np.concatenate(([0.0], starts)), np.concatenate(([0.0], held))
    capacity = float(pool.n_servers * fac.gpus_per_server)
    demanded = PeriodicSignal(starts, held, period, jt.loop)
    placed = PeriodicSignal(starts, np.minimum(held, capacity), period, jt.loop)
    return JobSource(demanded, placed, fac.gpus_per_server, pool.n_servers)
