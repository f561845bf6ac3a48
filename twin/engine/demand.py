"""Demand per tick for each pool, mapped onto the pool's servers.

Inference pools get requests and tokens from their source (expected arrivals, a replayed trace
or a drawn stream; :mod:`twin.engine.sources`), telemetry pools a replayed busy fraction,
training pools with a job trace the share of their GPUs in jobs. Sources are built once per run;
every draw uses the run's generator, and a block's demand depends only on its ticks (the engine
may compute a block twice when it cuts it at a regime change).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from twin._types import BoolArray, FloatArray
from twin.engine.columns import Columns
from twin.engine.sources import FluidSource, JobSource, RequestSource, SignalSource, request_source, signal_source
from twin.facility_parts.fleet import Facility, Pool


@dataclass
class Demand:
    """``(K, S)`` arrays of tokens arriving per server and the sequence lengths they imply.

    ``train_fraction`` (share of a training server's GPUs in jobs) and ``replay_busy`` (measured
    busy fraction of a telemetry server) are None when no pool needs them; ``gpus_demanded``
    maps a job-trace pool's name to the GPUs its jobs ask for in each tick ``(K,)``.
    """

    requests: FloatArray
    prefill_tokens: FloatArray
    decode_tokens: FloatArray
    prompt_len: FloatArray
    context_len: FloatArray
    train_fraction: FloatArray | None = None
    replay_busy: FloatArray | None = None
    gpus_demanded: dict[str, FloatArray] | None = None


def _span(pool: Pool) -> slice:
    return slice(int(pool.servers[0]), int(pool.servers[-1]) + 1)


class DemandModel:
    """The sources of every pool, evaluated over blocks of ticks.

    Parameters
    ----------
    fac : Facility
        The facility.
    rng : numpy.random.Generator, optional
        The run's generator (per-server offsets, drawn streams). Needed only when a pool draws;
        a fresh seeded one from the scenario is used when omitted.

    Traces were read and checked when the facility was built (:mod:`twin.facility_traces`).
    """

    def __init__(self, fac: Facility, rng: np.random.Generator | None = None) -> None:
        self.fac = fac
        rng = np.random.default_rng(fac.run.seed) if rng is None else rng
        start = fac.run.start
        start_hour = start.hour + start.minute / 60.0 + start.second / 3600.0
        gps = fac.gpus_per_server
        step = fac.run.step_s
        self.requests: list[tuple[Pool, RequestSource | FluidSource]] = []
        self.telemetry: list[tuple[Pool, SignalSource]] = []
        self.jobs: list[tuple[Pool, JobSource]] = []
        self._classes: FloatArray | None = None  # server_classes without the job pools' windows
        #: The job pools' parts (in jobs, idle) of the last window and the classes they gave.
        self._job_parts: tuple[list[tuple[int, int]], FloatArray] = ([], np.empty(0))
        for pool in fac.pools:
            if pool.requests is not None:
                self.requests.append((pool, request_source(pool, pool.requests, gps, rng, start_hour, step)))
            elif pool.replay is not None:
                self.telemetry.append((pool, signal_source(pool, pool.replay, gps, rng, step)))
            elif pool.jobs is not None:
                self.jobs.append((pool, JobSource(pool.jobs.demanded, pool.jobs.placed, gps, pool.n_servers)))
        # A disaggregated pool's prompts go to its prefill servers, its output tokens to its decode
        # servers, each role's share scaled up so the pool's totals stay (twin.facility_parts.fleet.Disaggregation).
        self.role_weights: tuple[FloatArray, FloatArray] | None = None
        split = [p for p in fac.pools if p.disaggregation is not None and p.requests is not None]
        if split:
            pw, dw = np.ones(fac.n_servers), np.ones(fac.n_servers)
            for pool in split:
                role = pool.prefill_role
                n_p = float(role.sum())
                pw[_span(pool)] = role * pool.n_servers / n_p
                dw[_span(pool)] = (1.0 - role) * pool.n_servers / (pool.n_servers - n_p)
            self.role_weights = (pw, dw)

    def compile(self) -> None:
        """Look the trace requests up compiled from now on (the engine's run has loaded numba).

        :mod:`twin.engine.request_kernel` gives the numpy lookup's columns to the bit; loading it
        costs ~10 ms once numba is up (~0.4 s before), so it follows the run's compiled serving.
        """
        for _, src in self.requests:
            if isinstance(src, RequestSource):
                src.compiled = True

    @property
    def varies(self) -> bool:
        """True when some input changes within a tick grid (a tick-by-tick advance is needed)."""
        return any(src.varies for _, src in (*self.requests, *self.telemetry, *self.jobs))

    def server_classes(self, t_s: float, from_s: float = 0.0) -> FloatArray:
        """Per server, a number equal for servers that receive identical demand in every tick of ``[from_s, t_s)``.

        Servers of a pool share their pool's class when its source gives every server the same
        column (a fluid profile, an unshifted trace or signal); a shifted copy per server, or a job
        trace packed onto servers in order, makes each server (or replica sharing an offset) its own,
        except a job pool's servers that are in jobs throughout the window (one class) or idle
        throughout it (another). Windows whose job pools split alike return the same array.
        """
        if self._classes is None:  # all but the job pools' parts holds for the whole run
            out = np.arange(self.fac.n_servers, dtype=np.float64) + len(self.fac.pools)
            for pool in self.fac.pools:
                out[_span(pool)] = pool.index
            for pool, src in (*self.requests, *self.telemetry):
                phases = getattr(src, "phases", None)
                if phases is not None:  # servers on one offset row share its class
                    out[_span(pool)] = len(self.fac.pools) + pool.servers[phases.first][phases.row_of]
            for pool in self.fac.pools:  # a disaggregated pool's prefill servers get other demand
                out[_span(pool)] += 0.5 * pool.prefill_role
            self._classes = out
        parts = [job.steady(t_s, from_s) for _, job in self.jobs]  # in jobs [0, full), idle [idle, S)
        if not self.jobs or parts == self._job_parts[0]:
            return self._job_parts[1] if self.jobs else self._classes
        out = self._classes.copy()
        for (pool, _), (full, idle) in zip(self.jobs, parts, strict=True):
            own = len(self.fac.pools) + pool.servers + 0.5 * pool.prefill_role
            own[:full] = own[0]  # each part takes its first server's class
            own[idle:] = own[min(idle, pool.n_servers - 1)]
            out[_span(pool)] = own
        self._job_parts = (parts, out)
        return out

    def block(self, t0: FloatArray, t1: FloatArray, servers: np.ndarray | None = None) -> Demand:
        """Demand over the ticks ``[t0[k], t1[k])``, for every server or the ``servers`` given (ascending)."""
        n_k = t0.size
        n_s = self.fac.n_servers if servers is None else servers.size

        def cols(pool: Pool) -> tuple[slice | np.ndarray, slice | np.ndarray]:
            """Where the pool's columns go in the output, and which of its servers they are."""
            if servers is None:
                return _span(pool), slice(None)
            lo, hi = int(pool.servers[0]), int(pool.servers[-1]) + 1
            a, b = np.searchsorted(servers, [lo, hi])
            return slice(int(a), int(b)), servers[a:b] - lo

        out = {k: np.zeros((n_k, n_s)) for k in ("requests", "prefill_tokens", "decode_tokens")}
        prompt = np.ones((n_k, n_s))
        context = np.ones((n_k, n_s))
        for pool, src in self.requests:
            s, local = cols(pool)
            b = src.block(t0, t1, local)
            out["requests"][:, s] = b.requests
            out["prefill_tokens"][:, s] = b.prefill_tokens
            out["decode_tokens"][:, s] = b.decode_tokens
            prompt[:, s] = b.prompt_len
            context[:, s] = b.context_len
        if self.role_weights is not None:
            pw, dw = (w if servers is None else w[servers] for w in self.role_weights)
            out["requests"] *= pw
            out["prefill_tokens"] *= pw
            out["decode_tokens"] *= dw
        demand = Demand(out["requests"], out["prefill_tokens"], out["decode_tokens"], prompt, context)
        if self.telemetry:
            demand.replay_busy = np.zeros((n_k, n_s))
            for pool, sig in self.telemetry:
                s, local = cols(pool)
                demand.replay_busy[:, s] = sig.block(t0, t1, local)
        if self.jobs:
            demand.train_fraction = np.ones((n_k, n_s))
            demand.gpus_demanded = {}
            for pool, job in self.jobs:
                s, local = cols(pool)
                fill, wanted = job.block(t0, t1)
                demand.train_fraction[:, s] = fill[:, local]
                demand.gpus_demanded[pool.name] = wanted
        return demand


@dataclass(frozen=True)
class DroppedTokens:
    """Tokens of arrivals no server of their pool was up to take, per tick ``(K,)``."""

    decode: FloatArray
    prefill: FloatArray


def route_demand(
    dem: Demand, cols: Columns, server_up: BoolArray, inference_pools: list[BoolArray]
) -> tuple[Demand, DroppedTokens]:
    """Spread each inference pool's arrivals over its servers that are up (a load balancer).

    ``dem`` holds the columns ``cols``; sums over servers are weighted by the servers in each
    column. ``inference_pools`` are the inference pools' server masks. Arrivals while no server
    of a pool is up are dropped.
    """
    up = cols.take(server_up)
    dropped = DroppedTokens(np.zeros(dem.requests.shape[0]), np.zeros(dem.requests.shape[0]))
    if up.all() or not inference_pools:
        return dem, dropped
    arrays = {"requests": dem.requests, "prefill_tokens": dem.prefill_tokens, "decode_tokens": dem.decode_tokens}
    out: dict[str, Any] = {k: v.copy() for k, v in arrays.items()}
    for pool_s in inference_pools:
        pool = cols.take(pool_s)
        live = pool & up
        if cols.count(live) == cols.count(pool):
            continue
        n_live = cols.count(live)
        for key, arr in arrays.items():
            total = cols.total(arr, pool)
            if live.any():
                live_sum = cols.total(arr, live)[:, None]
                share = np.divide(
                    arr[:, live],
                    live_sum,
                    out=np.full((arr.shape[0], int(live.sum())), 1.0 / max(n_live, 1.0)),
                    where=live_sum > 0,
                )
                out[key][:, live] = share * total[:, None]
            elif key == "decode_tokens":
                dropped.decode[:] += total
            elif key == "prefill_tokens":
                dropped.prefill[:] += total
            out[key][:, pool & ~up] = 0.0
    return replace(dem, **out), dropped
