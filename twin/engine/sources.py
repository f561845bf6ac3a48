"""What drives each pool over a run: request streams, telemetry, job traces (read by twin.facility_traces).

Every source answers for a block of ticks ``[t0[k], t1[k])`` with ``(K, S_pool)`` arrays, one
column per server of its pool, computed from the trace held once (:mod:`twin.workload.periodic`):
no per-server copy of a trace is ever materialised.

Request streams (``arrivals.kind``)
-----------------------------------
* ``constant``, ``diurnal``: expected arrivals (closed-form integral of the rate), spread evenly.
* ``trace``: a request trace (Azure LLM 2023/2024, BurstGPT, Mooncake), times stretched by
  ``time_scale``, with period ``P`` = span plus one mean inter-arrival time
  (:func:`twin.workload.controls.trace_period_s`). Server ``s`` receives ``c`` copies of the trace
  shifted circularly by its offset ``o_s`` (:func:`server_offsets_s`: a whole number of ticks,
  drawn uniformly from those the period holds with the run's generator; the pool's first server,
  and every server when ``offsets`` is off, at 0; the servers of one replica share an offset).
  ``c = R / (S * N / P)`` makes the pool's mean rate ``R`` (``requests_per_s``, or ``rate_scale``
  times the trace's ``N / P``, default 1); a fractional ``c`` is a fluid share of every request.
  A server carrying more than one copy's worth superposes ``n = ceil(c)`` (at most
  :data:`twin.facility_traces.MAX_COPIES`, or ``copies``) copies, the others shifted uniformly in
  ``[0, P)`` (drawn once per offset), each weighted ``c / n``, as merging independent streams
  does: scaling one copy by ``c`` would make its bursts ``c`` times taller instead of about
  ``sqrt(c)``. With ``loop`` a copy repeats every ``P``; without, nothing arrives after it.
  Servers on one offset receive identical streams: the sources look the trace up once per
  distinct offset, and the engine computes such servers as one column while their states agree.
  A large run looks its edges up compiled (:mod:`twin.engine.request_kernel`), to the bit.
* ``poisson``, ``bursty``: a stream of rate ``R / S`` is drawn with the run's generator (Poisson,
  Gamma renewal or MMPP-2, :mod:`twin.workload.synthetic`) over the run (or, past
  :data:`twin.facility_traces.MAX_DRAWN_REQUESTS`, a shorter window that repeats) and handled as a trace with
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
from typing import Any

import numpy as np

from twin._types import FloatArray, IntArray
from twin.engine.columns import distinct_rows
from twin.facility_parts.fleet import Pool
from twin.facility_parts.sources import DrawnRequests, FluidRequests, ReplaySignal, RequestSpec, TraceRequests
from twin.workload.fluid import expected_arrivals
from twin.workload.periodic import BucketedSearch, PeriodicEvents, PeriodicSignal
from twin.workload.synthetic import EmpiricalTokens, gamma_requests, mmpp2_requests, poisson_requests

#: Buckets per request of the compiled lookup's search (numpy's takes
#: :data:`twin.workload.periodic.BUCKETS_PER_VALUE`): a bucket then holds fewer requests below an
#: edge to pass one by one, each a branch the processor mispredicts. On ``mix-38k``'s sources an
#: edge costs 12.4-14.4 ns with 16, 13.0-14.5 with 8, 15.7-17.5 with 2 (best of 7, two processes).
COMPILED_BUCKETS_PER_VALUE = 8
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


def server_offsets_s(
    pool: Pool,
    gpus_per_server: int,
    period_s: float,
    on: bool,
    rng: np.random.Generator,
    step_s: float,
    copies: int = 1,
) -> FloatArray | None:
    """Offsets in ``[0, period)`` of each server's copies, ``(S, copies)``; None when off.

    Each replica (its servers share it) draws a phase ``m`` uniformly from the ``floor(period /
    step_s)`` whole ticks the period holds (at least one): its first copy is shifted by ``m *
    step_s``, its other copies by shifts uniform in ``[0, period)`` drawn once per phase. The
    pool's first replica is at phase 0. Replicas on distinct phases thus merge independently
    shifted copies, as if drawn per replica, and replicas on one phase receive identical streams.

    Why whole ticks: a shift finer than a tick only moves requests between two neighbouring ticks
    of a server (its load over any longer window, its bursts and the pool's totals are the same
    draws), while on whole ticks a pool holds at most ``period / step_s`` distinct streams whatever
    its size: 172 742 servers at 15 s ticks over the Azure hour replay at most 240 per trace, which
    the engine computes once each (``benchmarks``, ``mix-1.5m``). Where a pool has fewer replicas
    than phases, nearly every replica has its own, and the statistics are those of shifts drawn per
    replica. Measured on ``scenarios/azure-llm-trace.yaml`` over seeds 1-72, against continuous
    shifts drawn per server and copy: facility energy 964.93 against 964.84 kWh, chat p99 TTFT
    0.746 against 0.738 s and p99 TPOT 89.5 against 89.2 ms (seed to seed they span 0.70-0.81 s
    and 87.6-91.8 ms), code p99 TTFT 1.039 against 1.042 s.
    """
    if not on or (pool.n_servers == 1 and copies == 1):
        return None
    if not step_s > 0:
        raise ValueError(f"step_s must be positive, got {step_s}")
    per_replica = max(1, pool.gpus_per_replica // gpus_per_server)
    groups = np.arange(pool.n_servers) // per_replica
    m = rng.integers(0, max(1, int(period_s // step_s)), size=int(groups[-1]) + 1)
    m[0] = 0
    used, phase_of = np.unique(m, return_inverse=True)
    rows = np.column_stack((used * step_s, rng.uniform(0.0, period_s, size=(used.size, copies - 1))))
    return np.asarray(rows[phase_of.reshape(-1)][groups])


class _Phases:
    """The distinct rows of per-server offsets ``(S, n)``: each looked up once, then given to its servers."""

    def __init__(self, offsets: FloatArray) -> None:
        offsets = np.asarray(offsets, dtype=np.float64).reshape(offsets.shape[0], -1)
        #: First server of each distinct row, and each server's row.
        self.first, self.row_of = distinct_rows([offsets[:, j] for j in range(offsets.shape[1])])
        self.rows = offsets[self.first]

    def spread(self, xs: list[FloatArray], servers: slice | IntArray) -> list[FloatArray]:
        """Per-row columns ``(K, U)`` given to the ``servers`` (positions in the pool), the rows picked once."""
        rows = self.row_of[servers]
        return [np.take(x, rows, axis=1) for x in xs]


def _count(servers: slice | IntArray, n: int) -> int:
    """How many of ``n`` servers ``servers`` selects."""
    return len(range(n)[servers]) if isinstance(servers, slice) else int(np.size(servers))


def _shifted(
    f: Callable[[FloatArray, FloatArray, FloatArray | float], Any],
    t0: FloatArray,
    t1: FloatArray,
    offsets: FloatArray | None,
) -> Any:
    """Evaluate a window function on ``(K, S)`` (or ``(K, 1)`` without offsets)."""
    o: FloatArray | float = 0.0 if offsets is None else offsets[None, :]
    return f(t0[:, None], t1[:, None], o)


class RequestSource:
    """A pool's request stream: ``scale`` copies' worth per server of a periodic stream.

    ``offsets`` is ``(S, n)``: server ``s`` superposes ``n`` copies shifted by ``offsets[s]``,
    each weighted ``scale / n``; None puts ``scale`` unshifted copies on every server. Each
    distinct row of offsets is looked up once (:class:`_Phases`).
    """

    varies = True

    def __init__(self, events: PeriodicEvents, scale: float, offsets: FloatArray | None, n_servers: int) -> None:
        self.events = events
        self.scale = float(scale)
        self.offsets = offsets
        self.phases = None if offsets is None else _Phases(offsets)
        self.n_servers = n_servers
        tot = events.totals
        self.mean_prompt_len = tot["prompt_sq"] / tot["prompt"] if tot["prompt"] > 0 else 1.0
        self.mean_context_len = tot["context_x_output"] / tot["output"] if tot["output"] > 0 else 1.0
        #: Per copy: the last edge looked up and its cumulative sums per server.
        self._last_edge: dict[int, tuple[float, dict[str, FloatArray]]] = {}
        #: Look contiguous ticks up compiled (:mod:`twin.engine.request_kernel`, the same columns to
        #: the bit): set with the run's compiled serving (:meth:`twin.engine.demand.DemandModel.compile`).
        self.compiled = False
        #: The compiled lookup's last edge and its ``G`` per copy and row (:func:`request_rows`).
        self._kernel_edge: tuple[float, FloatArray] | None = None
        self._consts: tuple[FloatArray, IntArray, FloatArray, FloatArray] | None = None

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

    def _copy_sums(
        self, t0: FloatArray, t1: FloatArray, offsets: FloatArray | None, copy: int
    ) -> dict[str, FloatArray]:
        """Window sums of one copy per server, ``(K, S)`` (or ``(K, 1)`` unshifted).

        Contiguous ticks are looked up once per edge, one server's edges in time order (a row):
        the same sums as :meth:`PeriodicEvents.window_sums`, faster. The last edge's sums are kept
        for the next block, which starts there (a one-tick block then looks up one edge, not two).
        """
        if not (t0.size == 1 or np.array_equal(t1[:-1], t0[1:])):
            return dict(_shifted(self.events.window_sums, t0, t1, offsets))
        edges = np.append(t0, t1[-1])
        kept = self._last_edge.get(copy)
        reuse = kept is not None and kept[0] == edges[0]
        o = 0.0 if offsets is None else offsets[:, None]
        g = self.events.cumulative_at(edges[None, 1:] if reuse else edges[None, :], o)  # (S or 1, E)
        self._last_edge[copy] = (float(edges[-1]), {k: v[:, -1].copy() for k, v in g.items()})
        out = {}
        for k, v in g.items():
            if reuse:
                assert kept is not None
                d = np.empty((v.shape[0], t0.size))
                d[:, 0] = v[:, 0] - kept[1][k]
                np.subtract(v[:, 1:], v[:, :-1], out=d[:, 1:])
            else:
                d = np.diff(v, axis=1)
            out[k] = d.T
        return out

    def _compiled_rows(self, t0: FloatArray, t1: FloatArray) -> tuple[FloatArray, ...] | None:
        """The five per-row columns ``(K, U)`` from the compiled lookup, or None where numpy answers.

        Numpy answers where the source is not :attr:`compiled` and a block whose ticks are not
        contiguous: the two give the same columns to the bit.
        """
        if not (self.compiled and (t0.size == 1 or np.array_equal(t1[:-1], t0[1:]))):
            self._kernel_edge = None
            return None
        rows = np.zeros((1, 1)) if self.phases is None else self.phases.rows
        from twin.engine.request_kernel import request_rows

        ev = self.events
        if self._consts is None:  # per event its time and running sums; a search's buckets
            table = np.column_stack([np.append(ev.t_s, np.inf)] + [ev.running[k] for k in _WEIGHTS])
            totals = np.array([ev.totals[k] for k in ("count", *_WEIGHTS)])
            search = BucketedSearch(ev.t_s, "left", COMPILED_BUCKETS_PER_VALUE)
            buckets = np.array([search.base, search.scale if search.fast else -1.0, search.top])
            self._consts = (table, search.first, totals, buckets)
        table, first, totals, buckets = self._consts
        kept = self._kernel_edge
        reuse = kept is not None and kept[0] == t0[0]
        g = kept[1] if kept is not None and reuse else np.empty((rows.shape[1], rows.shape[0], 5))
        edges = np.append(t0, t1[-1])
        out = request_rows(
            table,
            first,
            buckets,
            totals,
            ev.period_s,
            ev.loop,
            edges,
            rows,
            g,
            reuse,
            self.scale / rows.shape[1],
            self.mean_prompt_len,
            self.mean_context_len,
        )
        self._kernel_edge = (float(edges[-1]), g)
        return tuple(x.T for x in out)

    def _numpy_rows(self, t0: FloatArray, t1: FloatArray) -> tuple[FloatArray, ...]:
        """The five per-row columns ``(K, U)`` (``(K, 1)`` without offsets), looked up in numpy."""
        if self.phases is None:
            sums = self._copy_sums(t0, t1, None, 0)
            c = self.scale
        else:
            rows = self.phases.rows
            sums = self._copy_sums(t0, t1, rows[:, 0], 0)
            for j in range(1, rows.shape[1]):
                more = self._copy_sums(t0, t1, rows[:, j], j)
                for k, v in sums.items():
                    v += more[k]  # in place: the first copy's sums are this block's own arrays
            c = self.scale / rows.shape[1]
        n, p, o = sums["count"], sums["prompt"], sums["output"]
        prompt_len = np.divide(sums["prompt_sq"], p, out=np.full(p.shape, self.mean_prompt_len), where=p > 0)
        context_len = np.divide(sums["context_x_output"], o, out=np.full(o.shape, self.mean_context_len), where=o > 0)
        return c * n, c * p, c * o, np.maximum(prompt_len, 1.0), context_len

    def block(self, t0: FloatArray, t1: FloatArray, servers: slice | IntArray = slice(None)) -> RequestBlock:
        """Arrivals per tick and server, ``(K, S)`` for the pool's ``servers`` (positions in the pool)."""
        per_row = self._compiled_rows(t0, t1) or self._numpy_rows(t0, t1)
        if self.phases is None:  # one column, broadcast: no (K, S) copy
            shape = (t0.size, _count(servers, self.n_servers))
            got = [np.broadcast_to(x, shape) for x in per_row]
        else:
            got = self.phases.spread(list(per_row), servers)
        return RequestBlock(*got)


class FluidSource:
    """Expected arrivals of the constant or diurnal profile, spread evenly over the pool."""

    def __init__(self, arr: FluidRequests, start_hour: float, n_servers: int) -> None:
        self.arr = arr
        self.start_hour = start_hour
        self.n_servers = n_servers
        self.varies = arr.profile != "constant"

    def block(self, t0: FloatArray, t1: FloatArray, servers: slice | IntArray = slice(None)) -> RequestBlock:
        """Arrivals per tick and server, ``(K, S)`` for the pool's ``servers`` (positions in the pool)."""
        a = self.arr
        peak = a.peak_to_mean if a.profile == "diurnal" else 1.0
        req = expected_arrivals(t0, t1, a.requests_per_s, peak, a.peak_hour, self.start_hour)
        shape = (t0.size, _count(servers, self.n_servers))
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
        self.phases = None if offsets is None else _Phases(offsets)
        self.n_servers = n_servers

    def block(self, t0: FloatArray, t1: FloatArray, servers: slice | IntArray = slice(None)) -> FloatArray:
        """Mean of each server's copy over each tick, ``(K, S)`` for the pool's ``servers``."""
        if self.phases is None:
            mean = _shifted(self.signal.window_mean, t0, t1, None)
            return np.asarray(np.broadcast_to(mean, (t0.size, _count(servers, self.n_servers))))
        return self.phases.spread([_shifted(self.signal.window_mean, t0, t1, self.phases.rows[:, 0])], servers)[0]


class JobSource:
    """GPUs held by a job trace, clipped to the pool and packed onto its servers."""

    varies = True

    def __init__(self, demanded: PeriodicSignal, placed: PeriodicSignal, gpus_per_server: int, n_servers: int):
        self.demanded = demanded
        self.placed = placed
        self.gpus_per_server = gpus_per_server
        self.n_servers = n_servers

    def steady(self, t_s: float, from_s: float = 0.0) -> tuple[int, int]:
        """Servers ``[0, full)`` in jobs and ``[idle, S_pool)`` idle in every tick of ``[from_s, t_s)``.

        Packing fills servers in order, so these parts hold whatever the jobs do; a server's margin
        on each side keeps the rounding of a tick's mean from filling a server of them in part.
        """
        lo, hi = self.placed.value_range(t_s, from_s)
        full = int(np.clip(np.floor(lo / self.gpus_per_server) - 1, 0, self.n_servers))
        idle = int(np.clip(np.ceil(hi / self.gpus_per_server) + 1, full, self.n_servers))
        return full, idle

    def block(self, t0: FloatArray, t1: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Share of each server's GPUs in jobs ``(K, S_pool)`` and GPUs demanded per tick ``(K,)``."""
        placed = self.placed.window_mean(t0, t1) / self.gpus_per_server
        fill = np.clip(placed[:, None] - np.arange(self.n_servers)[None, :], 0.0, 1.0)
        return fill, self.demanded.window_mean(t0, t1)


# ------------------------------------------------------------------------------- building


def request_source(
    pool: Pool, spec: RequestSpec, gpus_per_server: int, rng: np.random.Generator, start_hour: float, step_s: float
) -> RequestSource | FluidSource:
    """The request source of an inference pool (offsets, on the ``step_s`` grid, and drawn streams use ``rng``)."""
    n = pool.n_servers
    if isinstance(spec, FluidRequests):
        return FluidSource(spec, start_hour, n)
    if isinstance(spec, TraceRequests):
        offsets = server_offsets_s(pool, gpus_per_server, spec.period_s, spec.offsets, rng, step_s, spec.copies)
        return RequestSource.from_frame(
            spec.arrival_s, spec.prompt_tokens, spec.output_tokens, spec.period_s, spec.loop, spec.scale, offsets, n
        )
    return _drawn_source(pool, spec, gpus_per_server, rng, step_s)


class _NoTokens:
    """Token sampler for fixed lengths: the lengths are set after drawing the times."""

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        zeros = np.zeros(n, dtype=np.int64)
        return zeros, zeros


def _drawn_source(
    pool: Pool, arr: DrawnRequests, gpus_per_server: int, rng: np.random.Generator, step_s: float
) -> RequestSource:
    rate, window = arr.rate_per_server, arr.window_s
    tokens: EmpiricalTokens | _NoTokens = _NoTokens() if arr.tokens is None else arr.tokens
    if arr.process == "poisson":
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
    if arr.tokens is None:
        prompt = np.full(len(df), arr.prompt_tokens)
        output = np.full(len(df), arr.output_tokens)
    else:
        prompt = df["prompt_tokens"].to_numpy(dtype=np.float64)
        output = df["output_tokens"].to_numpy(dtype=np.float64)
    offsets = server_offsets_s(pool, gpus_per_server, window, arr.offsets, rng, step_s)
    t = df["arrival_s"].to_numpy(dtype=np.float64)
    return RequestSource.from_frame(t, prompt, output, window, True, 1.0, offsets, pool.n_servers)


def signal_source(
    pool: Pool, spec: ReplaySignal, gpus_per_server: int, rng: np.random.Generator, step_s: float
) -> SignalSource:
    """The replayed busy signal of a telemetry pool, shifted per server (on the ``step_s`` grid)."""
    offsets = server_offsets_s(pool, gpus_per_server, spec.signal.period_s, spec.offsets, rng, step_s)
    return SignalSource(spec.signal, None if offsets is None else offsets[:, 0], pool.n_servers)
