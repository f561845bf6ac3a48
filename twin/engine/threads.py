"""Threads the engine computes a block's columns with: how many, and the pool that runs them.

The kernel (:mod:`twin.engine.kernel`) splits a wide block's columns into contiguous chunks, one
per thread; numpy releases the GIL inside each array operation, so chunks of enough cells run on
several cores at once. The count is the ``--threads`` option of the CLI or the ``TWIN_THREADS``
environment variable, by default every core this process may run on; 1 computes serially.
Columns differ in cost (a serving column against a training one, a pool that queues more), so
the chunks' edges follow the time each chunk took (:func:`rebalanced`): a column computes the same
in any chunk, so where the edges fall changes the run's speed, never its numbers.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import numpy as np

from twin.errors import InvalidInputError

#: The environment variable that caps the engine's threads.
THREADS_ENV = "TWIN_THREADS"

_POOLS: dict[int, ThreadPoolExecutor] = {}
_LOCK = threading.Lock()


class ThreadsError(InvalidInputError, ValueError):
    """A thread count that is not a positive integer; names the option or variable it came from."""


def cores() -> int:
    """Cores this process may run on (its CPU affinity where the platform tells it)."""
    if hasattr(os, "process_cpu_count"):  # Python 3.13+
        return int(os.process_cpu_count() or 1)
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def parse_threads(value: object, source: str) -> int:
    """``value`` as a thread count (an integer >= 1); ``source`` names where it came from in the error."""
    text = str(value).strip()
    try:
        n = int(text)
    except ValueError:
        raise ThreadsError(f"{source}: expected a whole number of threads >= 1, got {text!r}") from None
    if n < 1:
        raise ThreadsError(f"{source}: expected a whole number of threads >= 1, got {n}")
    return n


def resolve_threads(threads: int | None = None) -> int:
    """The thread count to use: ``threads`` if given, else ``TWIN_THREADS``, else every core."""
    if threads is not None:
        return parse_threads(threads, "threads")
    env = os.environ.get(THREADS_ENV)
    if env is not None and env.strip():
        return parse_threads(env, f"environment variable {THREADS_ENV}")
    return cores()


def run_all(n_threads: int, tasks: Sequence[Callable[[], Any]]) -> list[Any]:
    """Results of ``tasks`` in order, on ``n_threads`` threads: this one and a pool shared by the process's runs."""
    with _LOCK:
        pool = _POOLS.get(n_threads)
        if pool is None:
            pool = _POOLS[n_threads] = ThreadPoolExecutor(n_threads - 1, thread_name_prefix="twin-columns")
    futures = [pool.submit(task) for task in tasks[1:]]
    try:
        first = tasks[0]()  # this thread computes a chunk too
    finally:
        wait(futures)  # no chunk outlives the block, whatever happened to this one
    return [first, *(f.result() for f in futures)]


def native_limits(n_threads: int) -> AbstractContextManager[Any]:
    """Caps BLAS and OpenMP thread pools at ``n_threads`` while a run lasts (threadpoolctl, when installed).

    Nothing to do when ``n_threads`` is every core (their default).
    """
    if n_threads >= cores():
        return nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # not a dependency: without it the native pools keep their own defaults
        return nullcontext()
    return threadpool_limits(limits=n_threads)


def chunks(n_columns: int, n_chunks: int) -> list[slice]:
    """``n_columns`` split into ``n_chunks`` contiguous slices of about equal size."""
    edges = [n_columns * i // n_chunks for i in range(n_chunks + 1)]
    return [slice(a, b) for a, b in itertools.pairwise(edges) if b > a]


#: Chunks whose times differ by less than this share of their mean keep their edges.
REBALANCE_TOLERANCE = 0.1
#: Share of the way each edge moves toward where the last times put it (damps a noisy timing).
REBALANCE_STEP = 0.5


def timed(task: Callable[[], Any]) -> tuple[Any, float]:
    """``task()`` and the seconds it took (wall time of the thread that ran it)."""
    t0 = time.perf_counter()
    out = task()
    return out, time.perf_counter() - t0


def rebalanced(edges: Sequence[int], seconds: Sequence[float]) -> list[int]:
    """Chunk edges that share out the time evenly, from each chunk's ``seconds`` over ``edges``.

    A chunk's time is taken as spread evenly over its columns; each inner edge moves
    :data:`REBALANCE_STEP` of the way toward the column where the cumulative time reaches its
    share, and every chunk keeps at least one column. Times within :data:`REBALANCE_TOLERANCE` of
    their mean leave the edges as they are.

    Examples
    --------
    The first of two chunks of 100 columns took three times the second: its columns cost 3, the
    other's 1, so the even split of the time 400 falls at column 67; the edge moves halfway there:

    >>> rebalanced([0, 100, 200], [3.0, 1.0])
    [0, 83, 200]
    >>> rebalanced([0, 100, 200], [1.0, 1.05])
    [0, 100, 200]
    """
    e = np.asarray(edges, dtype=np.float64)
    t = np.maximum(np.asarray(seconds, dtype=np.float64), 1e-12)
    if t.max() - t.min() <= REBALANCE_TOLERANCE * t.mean():
        return list(edges)
    cum = np.concatenate(([0.0], np.cumsum(t)))
    even = np.interp(cum[-1] * np.arange(e.size) / (e.size - 1), cum, e)
    out = np.round(e + REBALANCE_STEP * (even - e)).astype(np.int64)
    out[0], out[-1] = int(edges[0]), int(edges[-1])
    for i in range(1, out.size - 1):  # at least one column a chunk
        out[i] = min(max(out[i], out[i - 1] + 1), out[-1] - (out.size - 1 - i))
    return [int(x) for x in out]
