"""A batch scheduler for job traces: FCFS, EASY backfill and priority queues on a pool of GPUs.

Jobs arrive at their submit time asking for a number of GPUs for a runtime; a pool of
``capacity_gpus`` runs them. The policies (:data:`POLICIES`):

``none``
    No queue: every job runs from its submit time, even beyond the capacity (the caller clips
    the GPUs held to the pool and reports the excess; the twin's behaviour before queues).
``fcfs``
    First come, first served: jobs start in submit order; a job that does not fit blocks every
    job behind it.
``easy``
    EASY backfill [1]_: the job at the head of the queue gets a reservation at the *shadow
    time*, the earliest time enough GPUs free up by the requested walltimes of the running
    jobs; a later job may start now if it fits in the free GPUs and either ends (by its
    walltime) before the shadow time or uses only the *extra* GPUs the head leaves free then.
    Backfilling thus never delays the head's reservation.
``priority``
    Highest ``priority`` first, FCFS among equal priorities; no backfill (a job that does not
    fit blocks the rest, as in ``fcfs``). A job arriving with a higher priority goes ahead of
    those waiting, never ahead of those running (no preemption).
``priority_easy``
    The ``priority`` order with EASY backfill (the head is the highest-priority job), as Slurm's
    priority plugin with its backfill scheduler works.

Backfill plans with the requested walltime (by default the runtime itself: perfect
estimates); the job then runs its actual runtime. A job that outruns its walltime is not
killed (the trace records what happened); while it runs over, the plan takes it to end at any
moment.

The scheduler is event driven with heaps, sorted lists and one min segment tree per job size
(no per-GPU state), so a pass costs O(sizes x log jobs), not a scan of the queue.

References
----------
.. [1] A. W. Mu'alem and D. G. Feitelson, "Utilization, predictability, workloads, and user
   runtime estimates in scheduling the IBM SP2 with backfilling", IEEE Trans. Parallel Distrib.
   Syst., vol. 12, no. 6, pp. 529-543, 2001, doi:10.1109/71.932708.
.. [2] D. Lifka, "The ANL/IBM SP scheduling system", JSSPP 1995, LNCS 949, pp. 295-303,
   doi:10.1007/3-540-60153-8_35 (EASY).
"""

from __future__ import annotations

import bisect
import heapq
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from twin._types import FloatArray

INF = float("inf")
#: A bound every finite walltime is under: "any waiting job". [s]
ANY = float(np.finfo(np.float64).max)

#: Scheduling policies by name; ``(order, backfill)`` of each queue.
POLICIES: dict[str, tuple[str, bool] | None] = {
    "none": None,
    "fcfs": ("submit", False),
    "easy": ("submit", True),
    "priority": ("priority", False),
    "priority_easy": ("priority", True),
}


@dataclass(frozen=True)
class Schedule:
    """Per-job times of a scheduled job trace, in the order of the input. [s]

    ``start_s`` is when a job got its GPUs and ``end_s = start_s + runtime``: the schedule runs
    every job to its end, however late (a run's horizon cuts it: :func:`queue_kpis`).
    """

    submit_s: FloatArray = field(repr=False)
    start_s: FloatArray = field(repr=False)
    end_s: FloatArray = field(repr=False)
    gpus: FloatArray = field(repr=False)
    capacity_gpus: float
    policy: str

    @property
    def wait_s(self) -> FloatArray:
        """Time each job waited in the queue. [s]"""
        return self.start_s - self.submit_s

    @property
    def makespan_s(self) -> float:
        """The last job's end. [s]"""
        return float(self.end_s.max()) if self.end_s.size else 0.0

    def repeated(self, period_s: float, horizon_s: float) -> Schedule:
        """The schedule repeated every ``period_s`` (a looped trace) to cover ``[0, horizon_s)``."""
        copies = max(int(np.ceil(horizon_s / period_s - 1e-12)), 1)
        if copies == 1:
            return self
        shift = np.repeat(period_s * np.arange(copies), self.submit_s.size)

        def tile(a: FloatArray) -> FloatArray:
            return np.tile(a, copies)

        return Schedule(
            tile(self.submit_s) + shift, tile(self.start_s) + shift, tile(self.end_s) + shift, tile(self.gpus),
            self.capacity_gpus, self.policy,
        )  # fmt: skip


def held_gpus(start_s: ArrayLike, end_s: ArrayLike, gpus: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """The step signal of GPUs held by jobs on ``[start, end)``: change times and GPUs held from each.

    Examples
    --------
    >>> t, g = held_gpus([0.0, 1.0], [2.0, 3.0], [4, 2])
    >>> t.tolist(), g.tolist()
    ([0.0, 1.0, 2.0, 3.0], [4.0, 6.0, 2.0, 0.0])
    """
    s, e = np.asarray(start_s, dtype=np.float64), np.asarray(end_s, dtype=np.float64)
    g = np.asarray(gpus, dtype=np.float64)
    times, inverse = np.unique(np.concatenate((s, e)), return_inverse=True)
    return times, np.cumsum(np.bincount(inverse, weights=np.concatenate((g, -g))))


def schedule_jobs(
    submit_s: ArrayLike,
    gpus: ArrayLike,
    runtime_s: ArrayLike,
    capacity_gpus: float,
    policy: str = "fcfs",
    *,
    priority: ArrayLike | None = None,
    walltime_s: ArrayLike | None = None,
) -> Schedule:
    """Schedule jobs on a pool of ``capacity_gpus`` GPUs with a policy of :data:`POLICIES`.

    Parameters
    ----------
    submit_s : array_like
        Submit time of each job. [s]
    gpus : array_like
        GPUs each job holds while it runs (whole GPUs, at least 1). [-]
    runtime_s : array_like
        Time each job runs once started (> 0). [s]
    capacity_gpus : float
        GPUs of the pool. [-]
    policy : str
        A name of :data:`POLICIES`.
    priority : array_like, optional
        Higher runs first under ``priority`` and ``priority_easy`` (default: all equal). [-]
    walltime_s : array_like, optional
        Requested walltime (> 0) that backfill plans with; default the runtime. [s]

    Returns
    -------
    Schedule

    Raises
    ------
    ValueError
        An unknown policy, arrays of unequal length, or a job that can never run (more GPUs
        than the pool, under a queueing policy; no GPU; a runtime or walltime not above 0).

    Examples
    --------
    Four GPUs: A (t=0, 4 GPUs, 10 s) runs first; B (t=1, 2 GPUs, 10 s) waits for A; C (t=2,
    2 GPUs, 5 s) starts beside B at 10 s.

    >>> s = schedule_jobs([0, 1, 2], [4, 2, 2], [10, 10, 5], 4, "fcfs")
    >>> s.start_s.tolist(), s.wait_s.tolist()
    ([0.0, 10.0, 10.0], [0.0, 9.0, 8.0])
    """
    if policy not in POLICIES:
        raise ValueError(f"unknown scheduling policy {policy!r}; valid: {', '.join(POLICIES)}")
    submit = np.asarray(submit_s, dtype=np.float64)
    g = np.asarray(gpus, dtype=np.float64)
    run = np.asarray(runtime_s, dtype=np.float64)
    prio = np.zeros_like(submit) if priority is None else np.asarray(priority, dtype=np.float64)
    wall = run if walltime_s is None else np.asarray(walltime_s, dtype=np.float64)
    if not (submit.ndim == 1 and submit.shape == g.shape == run.shape == prio.shape == wall.shape):
        raise ValueError("submit_s, gpus, runtime_s, priority and walltime_s must be 1-D arrays of one length")
    queueing = POLICIES[policy]
    checks = (
        (~np.isfinite(submit), "a finite submit time"),
        (~(g >= 1) | (g != np.round(g)), "a whole number of GPUs, at least 1"),
        (~(run > 0) | ~np.isfinite(run), "a finite runtime above 0 s"),
        (~(wall > 0), "a walltime above 0 s"),
        (~np.isfinite(prio), "a finite priority"),
        ((g > capacity_gpus) if queueing is not None else np.zeros(g.shape, bool),
         f"at most the pool's {capacity_gpus:g} GPUs (it could never start)"),
    )  # fmt: skip
    for bad, expected in checks:
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"job {i}: expected {expected}")
    if queueing is None:
        return Schedule(submit, submit.copy(), submit + run, g, float(capacity_gpus), policy)
    order_by, backfill = queueing
    if order_by == "submit":
        order = np.argsort(submit, kind="stable")
    else:
        order = np.lexsort((np.arange(submit.size), submit, -prio))
    start = _simulate(submit, g, run, wall, order, int(capacity_gpus), backfill)
    return Schedule(submit, start, start + run, g, float(capacity_gpus), policy)


class _LeftmostMin:
    """Values in fixed slots (``inf``: empty) and the leftmost slot holding at most a bound.

    A min segment tree: setting a slot and finding that slot take O(log slots).
    """

    def __init__(self, n_slots: int) -> None:
        self.size = 1 << max(n_slots - 1, 0).bit_length()
        self.tree = [INF] * (2 * self.size)

    def set(self, slot: int, value: float) -> None:
        """Put ``value`` in ``slot``."""
        t = self.tree
        k = slot + self.size
        t[k] = value
        k >>= 1
        while k:
            t[k] = min(t[2 * k], t[2 * k + 1])
            k >>= 1

    def leftmost_at_most(self, bound: float) -> int:
        """The first slot with a value at most ``bound``; -1 when none."""
        t = self.tree
        if t[1] > bound:
            return -1
        k = 1
        while k < self.size:
            k = 2 * k if t[2 * k] <= bound else 2 * k + 1
        return k - self.size


def _simulate(
    submit: FloatArray, gpus: FloatArray, run: FloatArray, wall: FloatArray, order: np.ndarray, capacity: int,
    backfill: bool,
) -> FloatArray:  # fmt: skip
    """Start time of each job: the event loop behind :func:`schedule_jobs`.

    The queue is a sorted list of ranks (position in ``order``); running jobs are in a heap by
    end time and in a list sorted by planned end (``start + walltime``) for the shadow time.
    Backfill candidates are found per job size: a :class:`_LeftmostMin` over the jobs of that
    size in queue order holds the walltime of those waiting, so the first one that fits the
    reservation is found in O(log jobs) instead of by a scan of the queue.
    """
    n = submit.size
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    job_of: list[int] = order.tolist()
    rank_l: list[int] = rank.tolist()
    sub: list[float] = submit.tolist()
    g: list[int] = gpus.astype(np.int64).tolist()
    rt: list[float] = run.tolist()
    wt: list[float] = wall.tolist()
    arrivals: list[int] = np.argsort(submit, kind="stable").tolist()
    # Jobs of each size in queue order: their slot in that size's tree.
    sizes: list[int] = sorted(set(g))
    by_rank = np.asarray(g, dtype=np.int64)[order]
    slot = [0] * n
    jobs_of_size: dict[int, list[int]] = {}
    for d in sizes:
        members = order[by_rank == d].tolist()
        jobs_of_size[d] = members
        for k, j in enumerate(members):
            slot[j] = k
    waiting = {d: _LeftmostMin(len(jobs_of_size[d]) if backfill else 0) for d in sizes}

    start = [float("nan")] * n
    planned = [0.0] * n
    ending: list[tuple[float, int]] = []  # heap of (end, job)
    plan: list[tuple[float, int]] = []  # sorted (planned end, job) of running jobs
    queue: list[int] = []  # sorted ranks of waiting jobs
    free = capacity
    i = 0

    def launch(j: int, now: float) -> None:
        nonlocal free
        start[j] = now
        planned[j] = now + wt[j]
        heapq.heappush(ending, (now + rt[j], j))
        bisect.insort(plan, (planned[j], j))
        if backfill:
            waiting[g[j]].set(slot[j], INF)
        free -= g[j]

    while i < n or queue:
        now = min(sub[arrivals[i]] if i < n else INF, ending[0][0] if ending else INF)
        while ending and ending[0][0] <= now:
            _, j = heapq.heappop(ending)
            free += g[j]
            del plan[bisect.bisect_left(plan, (planned[j], j))]
        while i < n and sub[arrivals[i]] <= now:
            j = arrivals[i]
            bisect.insort(queue, rank_l[j])
            if backfill:
                waiting[g[j]].set(slot[j], wt[j])
            i += 1
        k = 0  # start from the head while it fits
        while k < len(queue) and g[job_of[queue[k]]] <= free:
            launch(job_of[queue[k]], now)
            k += 1
        del queue[:k]
        if not (backfill and queue and free > 0):
            continue
        need = g[job_of[queue[0]]]
        avail, shadow = free, now
        for k, (end, j) in enumerate(plan):  # GPUs free up by planned ends until the head fits
            avail += g[j]
            if avail >= need:
                shadow = max(end, now)  # a job past its walltime may end at any moment
                # every job planned to end by the shadow time frees its GPUs then too (ties: the
                # extra GPUs must not depend on which of them was counted first)
                for end_k, j_k in plan[k + 1 :]:
                    if max(end_k, now) > shadow:
                        break
                    avail += g[j_k]
                break
        extra = avail - need
        while free > 0:  # backfill: the first job in queue order that fits and keeps the reservation
            best = -1
            for d in sizes:
                if d > free:
                    break
                # any waiting job of a size the head leaves free; else one that ends before the shadow
                found = waiting[d].leftmost_at_most(ANY if d <= extra else shadow - now)
                if found >= 0 and (best < 0 or rank_l[jobs_of_size[d][found]] < rank_l[best]):
                    best = jobs_of_size[d][found]
            if best < 0:
                break
            if now + wt[best] > shadow:
                extra -= g[best]
            launch(best, now)
            del queue[bisect.bisect_left(queue, rank_l[best])]
    return np.asarray(start, dtype=np.float64)


def queue_kpis(s: Schedule, horizon_s: float) -> dict[str, float]:
    """Queue figures of a schedule over a run ``[0, horizon_s)``.

    Waits are those of the jobs started within the run (NaN when none); ``jobs_waiting_end``
    counts jobs submitted but not started by its end. Keys are the per-pool KPI columns of
    :mod:`twin.kpis` (``job_wait_p95_s``, ...).

    Examples
    --------
    >>> s = schedule_jobs([0, 1, 2], [4, 2, 2], [10, 10, 5], 4, "fcfs")
    >>> k = queue_kpis(s, 12.0)
    >>> k["job_wait_max_s"], k["jobs_started"], k["jobs_finished"], k["job_queue_max"]
    (9.0, 3.0, 1.0, 2.0)
    """
    h = horizon_s
    started = s.start_s < h
    wait = s.wait_s[started]
    waited = (s.wait_s > 0) & (s.submit_s < h)
    sub, beg = np.sort(s.submit_s[waited]), np.sort(s.start_s[waited])
    queued = np.searchsorted(sub, sub, "right") - np.searchsorted(beg, sub, "right")
    stats = dict.fromkeys(("mean", "p50", "p95", "max"), np.nan)
    if wait.size:
        stats = {
            "mean": float(wait.mean()), "p50": float(np.percentile(wait, 50)), "p95": float(np.percentile(wait, 95)),
            "max": float(wait.max()),
        }  # fmt: skip
    return {
        **{f"job_wait_{q}_s": v for q, v in stats.items()},
        "jobs_started": float(np.count_nonzero(started)),
        "jobs_finished": float(np.count_nonzero(s.end_s <= h)),
        "jobs_waiting_end": float(np.count_nonzero((s.submit_s < h) & ~started)),
        "job_queue_max": float(queued.max()) if queued.size else 0.0,
    }


def job_table(s: Schedule, job_id: ArrayLike, horizon_s: float, tokens: float) -> pd.DataFrame:
    """One row per job submitted within ``[0, horizon_s)``, with the tokens it trained.

    ``tokens`` (the pool's training tokens) are shared out in proportion to each job's GPU-seconds
    run within the run: the pool's tokens per GPU-second times the job's GPU-seconds. Times are
    seconds after the run's start; ``start_s`` and ``end_s`` may lie beyond the run's end.
    """
    ids = np.asarray(job_id, dtype=object)
    ids = np.tile(ids, s.submit_s.size // ids.size)  # a repeated schedule repeats the names
    h = horizon_s
    gpu_s = s.gpus * (np.clip(s.end_s, 0.0, h) - np.clip(s.start_s, 0.0, h))
    total = float(gpu_s.sum())
    keep = s.submit_s < h
    frame = pd.DataFrame(
        {
            "job_id": pd.array(ids, dtype="str"),
            "submit_s": s.submit_s,
            "start_s": s.start_s,
            "end_s": s.end_s,
            "wait_s": s.wait_s,
            "gpus": s.gpus.astype(np.int64),
            "gpu_s_run": gpu_s,
            "tokens_trained": tokens * gpu_s / total if total > 0 else np.zeros_like(gpu_s),
        }
    )
    return frame.loc[keep].reset_index(drop=True)
