"""One serving rank, request by request: a vLLM-V1-like continuous-batching scheduler.

Each step (vLLM V1's ``Scheduler.schedule`` [1]_, chunked prefill on, no prefix caching):

1. **Running requests first**, in admission order: each is given the tokens it has not yet
   computed (1 for a decoding request; the rest of its prompt, in a chunk, for a prefilling one)
   while the step's ``max_num_batched_tokens`` budget lasts.
2. **KV cache.** Every token computed holds a slot in blocks of ``block_tokens`` (16). When the
   blocks a request needs are not free, the most recently admitted running request is preempted
   (its blocks freed, its progress lost; vLLM's default *recompute* mode): it goes back to the
   front of the queue and later prefills its prompt plus the tokens it had generated.
3. **Waiting requests** (first come, first served), if nothing was preempted in the step: each
   admitted while fewer than ``max_num_seqs`` run, budget is left and the blocks for its first
   chunk are free.

A request whose last prompt token is computed in a step samples its first output token at the
step's end (TTFT); each later step that decodes it gives one more token (one inter-token latency
each); it finishes with its ``output`` tokens. A request whose prompt and output cannot fit the
whole cache is refused (vLLM refuses a request longer than its ``max_model_len``) and counted.

A decode rank of a disaggregated pool (``prefilled=True``) receives requests whose prompt's KV
cache another rank computed and whose first token it sampled: each arrives holding its prompt
as computed (it still takes its cache blocks on admission), with one token generated, delivered
at its arrival; a preempted one recomputes its prompt here.

The step takes :func:`twin.physics.serving.step`'s time for its decode count, prefilled
tokens, mean decode context and mean prefill position, at the clock fraction in force when the
step starts (a callable of time: power caps and throttling act on it). The loop costs one
iteration per step and jumps from an empty rank to the next arrival: an idle hour costs nothing.

References
----------
.. [1] vLLM 0.11, ``vllm/v1/core/sched/scheduler.py`` (``schedule``: running requests, then
   waiting ones; ``_preempt_request`` pops the last of ``self.running`` and prepends it to the
   waiting queue) and ``vllm/v1/core/kv_cache_manager.py`` (``allocate_slots`` in blocks of 16).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from twin._types import FloatArray, IntArray
from twin.errors import InvalidInputError
from twin.physics.serving import step
from twin.physics.step_costs import ServingDevice, StepCosts
from twin.serving_requests.stats import StreamingQuantiles

#: Tokens per KV-cache block (vLLM's default ``block_size``).
BLOCK_TOKENS = 16

#: ``step_time(decode_seqs, prefill_tokens, context_tokens, prefill_position, clock_fraction) -> s``.
StepTime = Callable[[float, float, float, float, float], float]
#: The SM clock over boost at a time (s since the run's start). [1]
Clock = Callable[[float], float]


class SchedulerInputError(InvalidInputError):
    """A scheduler setting or a request array that cannot be run."""


@dataclass(frozen=True)
class SchedulerConfig:
    """A rank's scheduler limits (vLLM's flags).

    Attributes
    ----------
    max_num_seqs : int
        Most requests running at once.
    max_num_batched_tokens : int
        Token budget of one step (decode tokens and prefill chunks).
    kv_capacity_tokens : float
        Tokens the KV cache holds (``inf``: unlimited).
    block_tokens : int
        Tokens per cache block.
    """

    max_num_seqs: int
    max_num_batched_tokens: int
    kv_capacity_tokens: float = float("inf")
    block_tokens: int = BLOCK_TOKENS

    def __post_init__(self) -> None:
        for name in ("max_num_seqs", "max_num_batched_tokens", "block_tokens"):
            if int(getattr(self, name)) < 1:
                raise SchedulerInputError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.kv_capacity_tokens > 0:
            raise SchedulerInputError(f"kv_capacity_tokens must be > 0, got {self.kv_capacity_tokens}")

    @property
    def kv_blocks(self) -> float:
        """Whole blocks of the cache (``inf`` when unlimited)."""
        cap = self.kv_capacity_tokens
        return float(np.floor(cap / self.block_tokens)) if np.isfinite(cap) else float("inf")


@dataclass(frozen=True)
class RequestRun:
    """What one rank did with its requests (per request, in arrival order; times in s from 0).

    ``first_token_s``, ``finish_s`` and ``scheduled_s`` are NaN for a refused request.
    ``computed_tokens`` counts every token whose KV was computed (prompt, fed-back outputs and
    recomputed ones); ``lost_tokens`` those computed before a preemption threw them away.
    """

    arrival_s: FloatArray
    prompt_tokens: IntArray
    output_tokens: IntArray
    scheduled_s: FloatArray
    first_token_s: FloatArray
    finish_s: FloatArray
    preemptions: IntArray
    computed_tokens: IntArray
    lost_tokens: IntArray
    refused: np.ndarray
    itl: StreamingQuantiles
    steps: int
    busy_s: float
    prefill_tokens: int
    decode_tokens: int
    end_s: float

    @property
    def ttft_s(self) -> FloatArray:
        """Arrival to first output token. [s]"""
        return np.asarray(self.first_token_s - self.arrival_s)

    @property
    def e2e_s(self) -> FloatArray:
        """Arrival to last output token. [s]"""
        return np.asarray(self.finish_s - self.arrival_s)

    @property
    def queue_s(self) -> FloatArray:
        """Arrival to first scheduled step. [s]"""
        return np.asarray(self.scheduled_s - self.arrival_s)

    @property
    def tpot_s(self) -> FloatArray:
        """``(E2E - TTFT) / (output - 1)``; NaN for one-token outputs. [s]"""
        n = self.output_tokens - 1.0
        return np.asarray(np.where(n > 0, (self.finish_s - self.first_token_s) / np.maximum(n, 1.0), np.nan))


def physics_step_time(costs: StepCosts, device: ServingDevice) -> StepTime:
    """The twin's step time (:func:`twin.physics.serving.step`) of one rank's costs and device."""

    def step_time(decode: float, prefill: float, context: float, position: float, clock: float) -> float:
        return float(step(costs, device, decode, prefill, context, position, clock).time_s)

    return step_time


def step_clock(times_s: FloatArray, values: FloatArray) -> Clock:
    """A piecewise-constant clock: ``values[i]`` from ``times_s[i]`` (the first before it too).

    Examples
    --------
    >>> c = step_clock(np.array([0.0, 10.0]), np.array([1.0, 0.5]))
    >>> c(3.0), c(10.0), c(99.0)
    (1.0, 0.5, 0.5)
    """
    t = np.asarray(times_s, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    if t.size != v.size or t.size == 0 or np.any(np.diff(t) < 0):
        raise SchedulerInputError("a clock schedule needs as many values as sorted times, at least one")
    if np.any(~np.isfinite(v)) or np.any(v <= 0):
        raise SchedulerInputError("clock fractions must be finite and > 0")

    def clock(at_s: float) -> float:
        return float(v[max(int(np.searchsorted(t, at_s, side="right")) - 1, 0)])

    return clock


def _requests(arrival_s: FloatArray, prompt: IntArray, output: IntArray) -> tuple[FloatArray, IntArray, IntArray]:
    a = np.asarray(arrival_s, dtype=np.float64)
    p = np.asarray(prompt)
    o = np.asarray(output)
    if not (a.shape == p.shape == o.shape) or a.ndim != 1:
        raise SchedulerInputError("arrival_s, prompt_tokens and output_tokens must be 1-D arrays of one length")
    if np.any(~np.isfinite(a)) or np.any(np.diff(a) < 0):
        raise SchedulerInputError("arrival_s must be finite and sorted")
    if np.any(p < 1) or np.any(o < 1) or np.any(p != np.round(p)) or np.any(o != np.round(o)):
        raise SchedulerInputError("prompt and output tokens must be whole numbers >= 1")
    return a, p.astype(np.int64), o.astype(np.int64)


def simulate_frame(
    requests: pd.DataFrame, config: SchedulerConfig, step_time: StepTime, clock: float | Clock = 1.0
) -> RequestRun:
    """:func:`simulate_rank` on a request frame (``arrival_s``, ``prompt_tokens``, ``output_tokens``).

    Any reader of :mod:`twin.workload` gives one: the Azure LLM 2023/2024, BurstGPT and Mooncake
    traces (:func:`twin.workload.readers.read_trace`) and the Poisson, Gamma and MMPP streams of
    :mod:`twin.workload.synthetic`.
    """
    missing = [c for c in ("arrival_s", "prompt_tokens", "output_tokens") if c not in requests.columns]
    if missing:
        raise SchedulerInputError(f"request frame lacks column(s) {', '.join(missing)}")
    return simulate_rank(
        requests["arrival_s"].to_numpy(dtype=np.float64),
        requests["prompt_tokens"].to_numpy(),
        requests["output_tokens"].to_numpy(),
        config,
        step_time,
        clock,
    )


def simulate_rank(
    arrival_s: FloatArray,
    prompt_tokens: IntArray,
    output_tokens: IntArray,
    config: SchedulerConfig,
    step_time: StepTime,
    clock: float | Clock = 1.0,
    prefilled: bool = False,
) -> RequestRun:
    """Serve requests on one rank step by step (module docstring); deterministic.

    Parameters
    ----------
    arrival_s : ndarray
        Arrival times, sorted. [s]
    prompt_tokens, output_tokens : ndarray
        Whole numbers >= 1 per request (vLLM generates at least one token). [1]
    config : SchedulerConfig
        The rank's limits.
    step_time : callable
        Step time of a batch (:func:`physics_step_time`, or any function of the same arguments). [s]
    clock : float or callable
        SM clock over boost, constant or as a function of time (:func:`step_clock`). [1]
    prefilled : bool
        The requests arrive prefilled with their first token (a disaggregated pool's decode
        rank, module docstring); a one-token request is then done on arrival.

    Returns
    -------
    RequestRun
    """
    arrival, prompt, output = _requests(arrival_s, prompt_tokens, output_tokens)
    if callable(clock):
        clock_at: Clock = clock
    else:
        fixed = float(clock)

        def clock_at(_t: float) -> float:
            return fixed

    n = arrival.size
    bs = config.block_tokens
    total_blocks = config.kv_blocks
    free_blocks = total_blocks
    budget_max = int(config.max_num_batched_tokens)
    max_seqs = int(config.max_num_seqs)

    num_tokens = prompt.copy()  # prompt plus the outputs sampled so far
    computed = np.zeros(n, dtype=np.int64)
    generated = np.zeros(n, dtype=np.int64)
    held = np.zeros(n, dtype=np.int64)
    preemptions = np.zeros(n, dtype=np.int64)
    computed_total = np.zeros(n, dtype=np.int64)
    lost = np.zeros(n, dtype=np.int64)
    scheduled = np.full(n, np.nan)
    first = np.full(n, np.nan)
    finish = np.full(n, np.nan)
    last = np.full(n, np.nan)
    refused = np.ceil((prompt + output) / bs) > total_blocks
    itl = StreamingQuantiles()
    skip = refused
    if prefilled:  # the prompt's cache and the first token come from a prefill rank
        computed[:] = prompt
        generated[:] = 1
        num_tokens += 1
        first[:] = last[:] = arrival
        done_now = ~refused & (output <= 1)
        finish[done_now] = arrival[done_now]
        skip = refused | done_now  # not queued

    waiting: deque[int] = deque()
    running = np.zeros(0, dtype=np.int64)
    next_arrival = 0
    t = float(arrival[0]) if n else 0.0
    steps = 0
    busy = 0.0
    prefill_sum = decode_sum = 0
    while True:
        j = int(np.searchsorted(arrival, t, side="right"))
        if j > next_arrival:
            waiting.extend(i for i in range(next_arrival, j) if not skip[i])
            next_arrival = j
        if running.size == 0 and not waiting:
            if next_arrival >= n:
                break
            t = float(arrival[next_arrival])  # idle: jump to the next arrival
            continue
        budget = budget_max
        # 1. running requests, in admission order
        demand = num_tokens[running] - computed[running]
        sched = np.clip(budget - (np.cumsum(demand) - demand), 0, demand)
        new_blocks = np.maximum(-(-(computed[running] + sched) // bs) - held[running], 0)
        # 2. preempt from the back until the kept prefix fits
        need = np.concatenate([[0], np.cumsum(new_blocks)])
        freed = np.concatenate([np.cumsum(held[running][::-1])[::-1], [0]])
        keep = int(np.flatnonzero(need <= free_blocks + freed)[-1])
        preempted = keep < running.size
        if preempted:
            out = running[keep:]
            free_blocks += float(held[out].sum())
            lost[out] += computed[out]
            held[out] = 0
            computed[out] = 0
            preemptions[out] += 1
            waiting.extendleft(reversed(out.tolist()))
            running, sched, new_blocks = running[:keep], sched[:keep], new_blocks[:keep]
        free_blocks -= float(new_blocks.sum())
        held[running] += new_blocks
        budget -= int(sched.sum())
        # 3. waiting requests, first come first served
        admitted: list[int] = []
        chunks: list[int] = []
        while not preempted and waiting and budget > 0 and running.size + len(admitted) < max_seqs:
            r = waiting[0]
            k = min(int(num_tokens[r] - computed[r]), budget)
            blocks = -(-(int(computed[r]) + k) // bs) - int(held[r])
            if blocks > free_blocks:
                break
            waiting.popleft()
            free_blocks -= blocks
            held[r] += blocks
            budget -= k
            admitted.append(r)
            chunks.append(k)
            if np.isnan(scheduled[r]):
                scheduled[r] = t
        if admitted:
            running = np.concatenate([running, np.asarray(admitted, dtype=np.int64)])
            sched = np.concatenate([sched, np.asarray(chunks, dtype=np.int64)])
        # the step
        comp, ntok, gen = computed[running], num_tokens[running], generated[running]
        active = sched > 0
        decoding = (gen > 0) & (ntok - comp == 1) & active
        b = int(decoding.sum())
        pre = ~decoding & active
        c = int(sched[pre].sum())
        context = float((comp[decoding] + 1).mean()) if b else 0.0
        position = float((sched[pre] * (comp[pre] + 0.5 * sched[pre])).sum() / c) if c else 0.0
        dt = step_time(float(b), float(c), context, position, clock_at(t))
        if not dt > 0:
            raise SchedulerInputError(f"step time must be > 0, got {dt} at t = {t} s")
        t_end = t + dt
        comp = comp + sched
        computed[running] = comp
        computed_total[running] += sched
        prefill_sum += c
        decode_sum += b
        hit = active & (comp == ntok)  # a token is sampled
        sampled, gen_s = running[hit], gen[hit] + 1
        itl.add(t_end - last[sampled[gen_s > 1]])
        first[sampled[gen_s == 1]] = t_end
        generated[sampled] = gen_s
        num_tokens[sampled] += 1
        last[sampled] = t_end
        fin = gen_s >= output[sampled]
        if fin.any():
            done = sampled[fin]
            finish[done] = t_end
            free_blocks += float(held[done].sum())
            held[done] = 0
            stay = np.ones(running.size, dtype=bool)
            stay[np.flatnonzero(hit)[fin]] = False
            running = running[stay]
        t = t_end
        steps += 1
        busy += dt
    return RequestRun(
        arrival_s=arrival,
        prompt_tokens=prompt,
        output_tokens=output,
        scheduled_s=scheduled,
        first_token_s=first,
        finish_s=finish,
        preemptions=preemptions,
        computed_tokens=computed_total,
        lost_tokens=lost,
        refused=refused,
        itl=itl,
        steps=steps,
        busy_s=busy,
        prefill_tokens=prefill_sum,
        decode_tokens=decode_sum,
        end_s=t,
    )


__all__ = [
    "BLOCK_TOKENS",
    "RequestRun",
    "SchedulerConfig",
    "SchedulerInputError",
    "physics_step_time",
    "simulate_frame",
    "simulate_rank",
    "step_clock",
]
