"""Request-level latency of a finished run: a declared sample of each pool's ranks, request by request.

A run's serving model is a fluid queue (:mod:`twin.engine.serving`); its latency figures are
interval averages. :func:`replay_latency` replays ``ranks`` attention ranks of every inference
pool through the request-level scheduler (:func:`twin.serving_requests.simulate_rank`) over a
window of the run:

* **Arrivals.** Each rank gets its share (one over the pool's ranks) of the requests the run
  booked to the pool in each report interval (``<pool>_requests``), as a Poisson stream of that
  piecewise-constant rate (counts Poisson per interval, times uniform within it). Every rank's
  stream has its own seed (run seed, pool, rank), so rank ``k`` draws the same requests whatever
  the sample size, and a sample of every rank *is* the exact request-level run of the pool.
* **Lengths.** A trace pool's (prompt, output) pairs are drawn from its trace; a drawn stream's
  from its token sampler; otherwise the pool's fixed lengths. A count of 0 is taken as 1 (vLLM
  prefills at least one token and generates at least one; failed requests in BurstGPT log 0).
* **Step times** are the pool's own (its costs and the accelerator's serving figures, as the
  engine uses them) at the run's per-interval mean clock fraction (``clock_fraction_mean``:
  fleet-wide, so power caps, the site limit and throttling slow the steps).
* **Limits.** ``max_num_seqs`` is the pool's ``max_batch``, the token budget its
  ``token_budget`` and the KV cache what the pool's HBM beside the weights holds
  (``kv_free_bytes`` over the KV bytes per token of all attention layers, windowed ones too).

**Disaggregated pools** (:class:`twin.facility_parts.fleet.Disaggregation`). A request arrives at
a prefill rank (its share one over the pool's prefill ranks), is prefilled there with its first
token sampled (vLLM's disaggregated prefill runs the prefill instance with one output token),
then its KV cache crosses the scale-out network
(:func:`twin.physics.interconnect.kv_transfer_time_s`: the prompt's bytes per GPU over the
per-GPU bandwidth, plus the latency) and it queues at a decode rank, taken round-robin in the
order the caches land, which decodes the rest (``simulate_rank(..., prefilled=True)``). TTFT is
arrival to the cache landing (the decode rank streams the first token then), TPOT and ITL are the
decode rank's. The sample is ``k_p`` prefill ranks and the ``k_d = k_p n_d / n_p`` decode ranks
that carry their output at the pool's load per decode rank: ``k_p`` is the smallest number at
least ``min(ranks, n_p)`` that makes ``k_d`` whole (at most ``n_p``: all ranks, the exact run).

Each pool's latency distribution comes with its sample size and an order-statistic confidence
interval per percentile (:func:`twin.serving_requests.percentile_ci`; the ranks are
exchangeable, so their requests pool). SLO targets are each workload's ``slo`` (arguments
override them per metric). Faults: each interval's requests go to the ranks up in it
(``{pool}_gpus_up_mean``; :func:`rank_share`), the ranks down taken to be the last, so a sample
of the first ranks sees the survivors' load; a request in flight on a rank that goes down is
not modelled (it finishes), nor is load imbalance between ranks. A disaggregated pool's roles
share their requests among all their ranks.

:func:`request_level_report` is what ``twin run`` adds when the scenario asks for it
(``request_level``, or ``twin run --request-level N``): per-pool KPIs (``{pool}_ttft_p99_replay_s``,
``{pool}_slo_attainment``, ...), the percentile table (``latency.csv``) and the histograms (``histogram.csv``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from twin._types import FloatArray, IntArray
from twin.errors import InvalidInputError
from twin.facility import build_facility
from twin.facility_parts.fleet import Facility, Pool
from twin.facility_parts.sources import DrawnRequests, TraceRequests
from twin.physics.interconnect import kv_transfer_time_s
from twin.replica import expert_format, serving_device
from twin.results import Result
from twin.scenario.schema import Scenario
from twin.scenario.workload_schema import InferenceWorkload
from twin.serving_requests import (
    LatencySummary,
    RequestRun,
    SchedulerConfig,
    StreamingQuantiles,
    physics_step_time,
    simulate_rank,
    step_clock,
    summarize,
)

#: Default SLO targets: DistServe's chatbot targets (TTFT 2.5 s, TPOT 0.15 s) [EST for other pools]. [s]
DEFAULT_SLO_TTFT_S = 2.5
DEFAULT_SLO_TPOT_S = 0.15
#: The DistServe targets ``(ttft_s, tpot_s)``. [s]
DEFAULT_SLO: tuple[float, float] = (DEFAULT_SLO_TTFT_S, DEFAULT_SLO_TPOT_S)

Tokens = Callable[[int, np.random.Generator], tuple[IntArray, IntArray]]


class LatencyInputError(InvalidInputError):
    """A request-level replay that cannot be run (no inference pool, a window outside the run)."""


@dataclass(frozen=True)
class PoolLatency:
    """One pool's request-level latency over the window."""

    pool: str
    ranks: int
    sampled: int
    window_s: tuple[float, float]
    summary: LatencySummary
    runs: list[RequestRun]
    itl: StreamingQuantiles
    has_slo: bool = True

    def histogram(self, bins_per_decade: int = 20) -> pd.DataFrame:
        """Counts of TTFT, TPOT and inter-token latency on a log grid (``metric, low_s, high_s, count``)."""
        frames = []
        for metric, q in (("ttft", self.concat("ttft_s")), ("tpot", self.concat("tpot_s")), ("itl", None)):
            if q is None:
                edges, counts = self.itl.histogram(bins_per_decade)
            else:
                held = StreamingQuantiles()
                held.add(q[np.isfinite(q)])
                edges, counts = held.histogram(bins_per_decade)
            nz = counts > 0
            frames.append(
                pd.DataFrame({"metric": metric, "low_s": edges[:-1][nz], "high_s": edges[1:][nz], "count": counts[nz]})
            )
        return pd.concat(frames, ignore_index=True).assign(pool=self.pool)

    def concat(self, name: str) -> FloatArray:
        """A per-request quantity (``ttft_s``, ``tpot_s``, ``e2e_s``, ``queue_s``) over the sampled ranks."""
        return np.concatenate([getattr(r, name) for r in self.runs]) if self.runs else np.zeros(0)


def kv_capacity_tokens(pool: Pool) -> float:
    """Tokens one rank's KV cache holds (``inf`` for a model without an attention cache)."""
    assert pool.costs is not None
    per_token = float(pool.costs.kv_bytes_per_token) + float(pool.costs.window_kv_bytes_per_token)
    return pool.kv_free_bytes / per_token if per_token > 0 else float("inf")


def _tokens(pool: Pool) -> Tokens:
    spec = pool.requests
    if isinstance(spec, TraceRequests):
        p, o = np.asarray(spec.prompt_tokens), np.asarray(spec.output_tokens)

        def from_trace(n: int, rng: np.random.Generator) -> tuple[IntArray, IntArray]:
            i = rng.integers(0, p.size, n)
            return np.maximum(p[i], 1).astype(np.int64), np.maximum(o[i], 1).astype(np.int64)

        return from_trace
    if isinstance(spec, DrawnRequests) and spec.tokens is not None:
        sampler = spec.tokens

        def drawn(n: int, rng: np.random.Generator) -> tuple[IntArray, IntArray]:
            a, b = sampler.sample(n, rng)
            return np.maximum(a, 1).astype(np.int64), np.maximum(b, 1).astype(np.int64)

        return drawn
    prompt = max(round(float(getattr(spec, "prompt_tokens", 1.0))), 1)
    output = max(round(float(getattr(spec, "output_tokens", 1.0))), 1)

    def fixed(n: int, _rng: np.random.Generator) -> tuple[IntArray, IntArray]:
        return np.full(n, prompt, dtype=np.int64), np.full(n, output, dtype=np.int64)

    return fixed


def rank_arrivals_s(
    counts: FloatArray,
    starts_s: FloatArray,
    durations_s: FloatArray,
    share: float | FloatArray,
    rng: np.random.Generator,
) -> FloatArray:
    """A Poisson stream of ``share`` (one, or one per interval) of each interval's ``counts``, uniform within it. [s]"""
    k = rng.poisson(np.maximum(np.asarray(counts, dtype=np.float64), 0.0) * share)
    t = np.repeat(starts_s, k) + rng.uniform(0.0, 1.0, int(k.sum())) * np.repeat(durations_s, k)
    return np.sort(t)


def ranks_up(timeseries: pd.DataFrame, pool: Pool, gpus_per_server: int) -> FloatArray:
    """The pool's attention ranks up in each report interval (its mean GPUs up over its GPUs). [1]

    From ``{pool}_gpus_up_mean``; every rank where the run has no such column (older results). A
    rank with one of its GPUs down counts as that share of a rank (the run tallies GPUs).
    """
    n = float(pool.n_ranks)
    col = f"{pool.name}_gpus_up_mean"
    if col not in timeseries:
        return np.full(len(timeseries), n)
    gpus = timeseries[col].to_numpy(dtype=np.float64)
    return np.clip(np.nan_to_num(gpus, nan=0.0) / (pool.n_servers * gpus_per_server), 0.0, 1.0) * n


def rank_share(up: FloatArray, rank: int) -> FloatArray:
    """Share of the pool's requests rank ``rank`` gets in each interval, with ``up`` ranks up.

    The ranks are exchangeable, so the ones down are taken to be the last: rank ``k`` is up for
    ``clip(up - k, 0, 1)`` of the interval and shares the requests with the others up. Nothing
    where no rank is up (the run dropped those requests).

    >>> rank_share(np.array([4.0, 2.5, 0.0]), 2).round(3).tolist()
    [0.25, 0.2, 0.0]
    """
    mine = np.clip(up - rank, 0.0, 1.0)
    return np.divide(mine, up, out=np.zeros_like(up, dtype=np.float64), where=up > 0)


def replay_latency(
    result: Result,
    scenario: Scenario,
    ranks: int | None = 4,
    start_s: float | None = None,
    duration_s: float | None = None,
    slo_ttft_s: float | None = None,
    slo_tpot_s: float | None = None,
    confidence: float = 0.95,
    default_slo: tuple[float, float] | None = DEFAULT_SLO,
    fac: Facility | None = None,
) -> list[PoolLatency]:
    """Replay ``ranks`` ranks of each inference pool (None: all) over a window of ``result`` (module docstring).

    The window is ``[start_s, start_s + duration_s)`` (default: the whole run). Each pool's SLO
    targets are :func:`pool_slo`'s. ``fac`` is the scenario's built facility (built when not given).
    """
    fac = build_facility(scenario) if fac is None else fac
    ts = result.timeseries
    t0 = ts["time_s"].to_numpy(dtype=np.float64)
    dur = ts["duration_s"].to_numpy(dtype=np.float64)
    run_end = float(t0[-1] + dur[-1]) if t0.size else 0.0
    lo = 0.0 if start_s is None else float(start_s)
    hi = run_end if duration_s is None else lo + float(duration_s)
    if not (0.0 <= lo < hi <= run_end + 1e-9):
        raise LatencyInputError(f"window [{lo}, {hi}) s is not inside the run's [0, {run_end}) s")
    if ranks is not None and ranks < 1:
        raise LatencyInputError(f"ranks must be >= 1, got {ranks}")
    pools = fac.served_pools()
    if not pools:
        raise LatencyInputError("the scenario has no inference pool to replay request by request")
    # the window's part of each interval
    a = np.clip(t0, lo, hi)
    b = np.clip(t0 + dur, lo, hi)
    part = np.divide(b - a, dur, out=np.zeros_like(dur), where=dur > 0)
    clock = step_clock(t0, pd.Series(ts["clock_fraction_mean"]).ffill().fillna(1.0).to_numpy())
    out = []
    workloads = {w.name: w for w in scenario.workloads if isinstance(w, InferenceWorkload)}
    for pool in pools:
        assert pool.costs is not None
        assert pool.model is not None
        slo = pool_slo(workloads[pool.name], slo_ttft_s, slo_tpot_s, default_slo)
        n_ranks = pool.n_ranks
        k = n_ranks if ranks is None else min(ranks, n_ranks)
        counts = ts[f"{pool.name}_requests"].to_numpy(dtype=np.float64) * part
        step_time = physics_step_time(
            pool.costs, serving_device(fac.accelerator, expert_format(pool.model, pool.precision))
        )
        config = SchedulerConfig(
            max_num_seqs=max(round(pool.max_batch), 1),
            max_num_batched_tokens=max(round(pool.token_budget), 1),
            kv_capacity_tokens=kv_capacity_tokens(pool),
        )
        tokens = _tokens(pool)
        if pool.disaggregation is not None:
            args = (counts, a, b - a, config, step_time, clock, tokens, (scenario.seed, pool.index))
            n_p, runs, itl_d = _disaggregated_runs(pool, ranks, *args)
            out.append(_pool_latency(pool.name, n_p, runs, (lo, hi), slo, confidence, itl_d))
            continue
        up = ranks_up(ts, pool, fac.gpus_per_server)
        runs = []
        for rank in range(k):
            rng = np.random.default_rng([scenario.seed, pool.index, rank])
            arrivals = rank_arrivals_s(counts, a, b - a, rank_share(up, rank), rng)
            prompt, output = tokens(arrivals.size, rng)
            runs.append(simulate_rank(arrivals, prompt, output, config, step_time, clock))
        out.append(_pool_latency(pool.name, n_ranks, runs, (lo, hi), slo, confidence))
    return out


def _disaggregated_runs(
    pool: Pool,
    ranks: int | None,
    counts: FloatArray,
    starts_s: FloatArray,
    durations_s: FloatArray,
    config: SchedulerConfig,
    step_time: Callable[[float, float, float, float, float], float],
    clock: Callable[[float], float],
    tokens: Tokens,
    seed: tuple[int, int],
) -> tuple[int, list[RequestRun], StreamingQuantiles]:
    """Prefill ranks, KV transfer, decode ranks (module docstring).

    Returns the pool's prefill ranks, one run per sampled prefill rank with each request's whole
    journey (first token when its cache lands, finish on its decode rank) and the decode ranks'
    inter-token latencies.
    """
    d = pool.disaggregation
    assert d is not None
    n_p = pool.role_ranks()[0]
    k_p, k_d = pool.role_sample(ranks)
    per_gpu_token_b = pool.kv_transfer_bytes_per_token / pool.layout.tensor_parallel
    prefill: list[RequestRun] = []
    for rank in range(k_p):
        rng = np.random.default_rng([*seed, rank])
        arrivals = rank_arrivals_s(counts, starts_s, durations_s, 1.0 / n_p, rng)
        prompt, output = tokens(arrivals.size, rng)
        run = simulate_rank(arrivals, prompt, np.ones_like(output), config, step_time, clock)
        landed = run.first_token_s + kv_transfer_time_s(prompt * per_gpu_token_b, d.bandwidth_b_s, d.latency_s)
        prefill.append(replace(run, output_tokens=output, first_token_s=landed, itl=StreamingQuantiles()))
    # every sampled request, its prefill rank's run and its place there
    landed_all = np.concatenate([r.first_token_s for r in prefill])
    which = np.concatenate([np.full(r.arrival_s.size, i) for i, r in enumerate(prefill)])
    local = np.concatenate([np.arange(r.arrival_s.size) for r in prefill])
    ok = np.flatnonzero(np.isfinite(landed_all))
    order = ok[np.argsort(landed_all[ok], kind="stable")]
    finish = [np.full(r.arrival_s.size, np.nan) for r in prefill]
    preempt = [r.preemptions.copy() for r in prefill]
    itl = StreamingQuantiles()
    for j in range(k_d):  # round-robin in the order the caches land
        sel = order[j::k_d]
        src, idx = which[sel], local[sel]
        prompt = np.array([prefill[a].prompt_tokens[b] for a, b in zip(src, idx, strict=True)], dtype=np.int64)
        output = np.array([prefill[a].output_tokens[b] for a, b in zip(src, idx, strict=True)], dtype=np.int64)
        dec = simulate_rank(landed_all[sel], prompt, output, config, step_time, clock, prefilled=True)
        itl.merge(dec.itl)
        for m, (a, b) in enumerate(zip(src, idx, strict=True)):
            finish[a][b] = dec.finish_s[m]
            preempt[a][b] += dec.preemptions[m]
    runs = [
        replace(r, first_token_s=np.where(np.isfinite(f), r.first_token_s, np.nan), finish_s=f, preemptions=n)
        for r, f, n in zip(prefill, finish, preempt, strict=True)
    ]
    return n_p, runs, itl


def pool_slo(
    workload: InferenceWorkload,
    ttft_s: float | None = None,
    tpot_s: float | None = None,
    default: tuple[float, float] | None = DEFAULT_SLO,
) -> tuple[float, float] | None:
    """A pool's ``(ttft_s, tpot_s)`` targets, ``inf`` where none; ``None``: no SLO at all. [s]

    The workload's ``slo`` (a target it leaves out: none), else ``default``; ``ttft_s`` and
    ``tpot_s`` (the CLI's options) override their metric.

    Examples
    --------
    >>> from twin.scenario.workload_schema import InferenceWorkload, Slo
    >>> w = InferenceWorkload(name="chat", model="Llama-3-70B", arrivals={"requests_per_s": 1.0})
    >>> pool_slo(w, default=None), pool_slo(w, tpot_s=0.1, default=None)
    (None, (inf, 0.1))
    >>> pool_slo(w.model_copy(update={"slo": Slo(ttft_s=1.0)}), tpot_s=0.05)
    (1.0, 0.05)
    """
    inf = float("inf")
    if workload.slo is not None:
        base: tuple[float, float] | None = (workload.slo.ttft_s or inf, workload.slo.tpot_s or inf)
    else:
        base = default
    if ttft_s is None and tpot_s is None:
        return base
    held = base or (inf, inf)
    return (held[0] if ttft_s is None else ttft_s, held[1] if tpot_s is None else tpot_s)


def busiest_start_s(result: Result, duration_s: float) -> float:
    """Start of a window of ``duration_s`` at the report interval with the most requests (clipped to the run). [s]"""
    ts = result.timeseries
    cols = [c for c in ts.columns if c.endswith("_requests")]
    total = ts[cols].sum(axis=1).to_numpy() if cols else np.zeros(len(ts))
    t0 = ts["time_s"].to_numpy(dtype=np.float64)
    run_end = float(t0[-1] + ts["duration_s"].iloc[-1]) if t0.size else 0.0
    start = float(t0[int(np.argmax(total))]) if t0.size else 0.0
    return max(min(start, run_end - duration_s), 0.0)


#: The fluid model's interval statistics :func:`fluid_latency` averages, with their weights.
FLUID_STATS: tuple[tuple[str, str, str], ...] = (
    ("ttft", "p50", "requests"),
    ("ttft", "p99", "requests"),
    ("ttft", "mean", "requests"),
    ("tpot", "p50", "tokens_generated"),
    ("tpot", "p99", "tokens_generated"),
    ("tpot", "mean", "tokens_generated"),
)


def fluid_latency(timeseries: pd.DataFrame, pools: list[str], start_s: float, end_s: float) -> pd.DataFrame:
    """What a run's fluid model gives over a replay's window, to set beside the replay.

    One row per pool, metric (``ttft``, ``tpot``) and statistic (``p50``, ``p99``, ``mean``):
    the report intervals' values (``{pool}_ttft_p99_s``, ...: quantiles over the ticks and servers of
    each interval, :mod:`twin.engine.pool_stats`) averaged over the intervals that start in
    ``[start_s, end_s)``, weighted by the interval's requests (TTFT) or generated tokens (TPOT).
    ``value_s`` is NaN (null in a report) where the window holds no weight.

    >>> ts = pd.DataFrame({"time_s": [0.0, 60.0, 120.0], "p_requests": [1.0, 3.0, 9.0],
    ...                    "p_ttft_p50_s": [0.1, 0.2, 9.0]})
    >>> f = fluid_latency(ts, ["p"], 0.0, 120.0)  # (1 x 0.1 + 3 x 0.2) / 4
    >>> round(float(f.loc[f["stat"] == "p50", "value_s"].iloc[0]), 3)
    0.175
    """
    ts = timeseries
    t = ts["time_s"].to_numpy(dtype=np.float64)
    inside = (t >= start_s) & (t < end_s)
    rows = []
    for pool in pools:
        for metric, stat, weight in FLUID_STATS:
            col, wcol = f"{pool}_{metric}_{stat}_s", f"{pool}_{weight}"
            value = np.nan
            if col in ts and wcol in ts:
                v = ts.loc[inside, col].to_numpy(dtype=np.float64)
                w = ts.loc[inside, wcol].to_numpy(dtype=np.float64)
                keep = np.isfinite(v) & (w > 0)
                if keep.any():
                    value = float(np.sum(v[keep] * w[keep]) / np.sum(w[keep]))
            rows.append({"pool": pool, "metric": metric, "stat": stat, "value_s": value})
    return pd.DataFrame(rows, columns=["pool", "metric", "stat", "value_s"])


def request_level_report(result: Result, scenario: Scenario, fac: Facility | None = None) -> Result:
    """``result`` with the request-level replay its scenario's ``request_level`` asks for.

    Adds per-pool KPIs (:func:`request_level_kpis`), ``latency`` (:func:`latency_frames`' percentile
    table: ``latency.csv``), ``latency_histogram`` (``histogram.csv``) and ``meta["request_level"]``
    (the window and sample). Pools without an ``slo`` get no attainment or goodput.
    """
    spec = scenario.request_level
    if spec is None:
        return result
    ts = result.timeseries
    run_end = float(ts["time_s"].iloc[-1] + ts["duration_s"].iloc[-1]) if len(ts) else 0.0
    window = run_end if spec.window_s is None else min(spec.window_s, run_end)
    start = busiest_start_s(result, window) if spec.start_s is None else spec.start_s
    end = min(start + window, run_end)
    pools = replay_latency(result, scenario, spec.ranks, start, end - start, default_slo=None, fac=fac)
    percentiles, _ = latency_frames(pools, requests=False)
    meta = {"start_s": start, "end_s": end, "ranks": spec.ranks}
    return replace(
        result,
        kpis={**result.kpis, **request_level_kpis(pools)},
        meta={**result.meta, "request_level": meta},
        latency=percentiles,
        latency_histogram=pd.concat([p.histogram() for p in pools], ignore_index=True),
    )


def request_level_kpis(pools: list[PoolLatency]) -> dict[str, float]:
    """Per-pool KPIs of a replay (twin.kpis: ``_replay_s`` percentiles; attainment and goodput only with an SLO).

    The goodput is the sample's per rank times the pool's ranks (the ranks are exchangeable).
    """
    out: dict[str, float] = {}
    for p in pools:
        pct = p.summary.percentiles
        out[f"{p.pool}_ranks_replayed"] = float(p.sampled)
        out[f"{p.pool}_requests_replayed"] = float(p.summary.requests)
        for metric in ("ttft", "tpot"):
            for q in (50.0, 99.0):
                out[f"{p.pool}_{metric}_p{q:.0f}_replay_s"] = pct[metric][q][0]
        out[f"{p.pool}_itl_p99_replay_s"] = pct["itl"][99.0][0]
        if p.has_slo:
            out[f"{p.pool}_slo_attainment"] = p.summary.attainment
            out[f"{p.pool}_goodput_req_per_s"] = p.summary.goodput_per_s * p.ranks
    return out


def latency_frames(pools: list[PoolLatency], requests: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Percentiles (one row per pool, metric, percentile) and, if ``requests``, one row per replayed request."""
    pct = pd.DataFrame(
        [
            {"pool": p.pool, "ranks": p.ranks, "sampled": p.sampled, "requests": p.summary.requests, **row}
            for p in pools
            for row in p.summary.rows()
        ]
    )
    frames = []
    for p in pools if requests else []:
        for rank, r in enumerate(p.runs):
            frames.append(
                pd.DataFrame(
                    {
                        "pool": p.pool,
                        "rank": rank,
                        "arrival_s": r.arrival_s,
                        "prompt_tokens": r.prompt_tokens,
                        "output_tokens": r.output_tokens,
                        "queue_s": r.queue_s,
                        "ttft_s": r.ttft_s,
                        "tpot_s": r.tpot_s,
                        "e2e_s": r.e2e_s,
                        "preemptions": r.preemptions,
                    }
                )
            )
    return pct, (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame())


def _pool_latency(
    name: str,
    n_ranks: int,
    runs: list[RequestRun],
    window: tuple[float, float],
    slo: tuple[float, float] | None,
    confidence: float,
    itl: StreamingQuantiles | None = None,
) -> PoolLatency:
    """A pool's latency from its sampled runs (``itl``: the inter-token latencies, default the runs')."""
    if itl is None:
        itl = StreamingQuantiles()
        for r in runs:
            itl.merge(r.itl)
    cat = {n: np.concatenate([getattr(r, n) for r in runs]) for n in ("ttft_s", "tpot_s", "e2e_s", "queue_s")}
    span = (window[1] - window[0]) * len(runs)  # rank-seconds: goodput is per rank
    ttft_slo, tpot_slo = slo if slo is not None else (float("inf"), float("inf"))
    summary = summarize(
        cat["ttft_s"], cat["tpot_s"], cat["e2e_s"], cat["queue_s"], itl, span, ttft_slo, tpot_slo, confidence
    )
    return PoolLatency(
        pool=name,
        ranks=n_ranks,
        sampled=len(runs),
        window_s=window,
        summary=summary,
        runs=runs,
        itl=itl,
        has_slo=slo is not None,
    )


__all__ = [
    "DEFAULT_SLO",
    "DEFAULT_SLO_TPOT_S",
    "DEFAULT_SLO_TTFT_S",
    "LatencyInputError",
    "PoolLatency",
    "busiest_start_s",
    "kv_capacity_tokens",
    "latency_frames",
    "pool_slo",
    "rank_arrivals_s",
    "rank_share",
    "ranks_up",
    "replay_latency",
    "request_level_kpis",
    "request_level_report",
]
