"""Running a sweep: the points not yet finished, on Dask distributed or in this process.

The client (this process) submits one task per point; a worker validates the scenario it is sent,
simulates it and returns the time series and KPIs, or the error and its traceback. The client
writes each point's file as its future completes. One writer, holding the folder's lock, means a
point's file is written once and atomically, and workers need no shared file system.

Re-running a sweep skips every point with a finished file and runs the rest: those never started,
those a killed run had in flight, and those that failed before (failures are retried; a point
that succeeds on retry loses its error record). A point file that is unreadable (truncated) or
records another point's key is not finished: it is reported (``on_invalid``), removed and the
point computed again.

The LocalCluster serves no dashboard and binds its HTTP endpoint to a free port on 127.0.0.1, so
a sweep runs when Dask's default dashboard port (8787) is taken.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
import traceback
import uuid
from collections.abc import Callable, Generator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

import twin
from twin.errors import TwinError
from twin.sweep import store
from twin.sweep.spec import Sweep, SweepPoint

#: ``progress(done, total, point, status)`` after each point of this run completes, and
#: ``progress(0, total, None, "start")`` before the first (``total``: the points this run runs).
Progress = Callable[[int, int, SweepPoint | None, str], None]

#: ``on_invalid(point, problem)`` for each point whose file does not count as finished, before it is rerun.
OnInvalid = Callable[[SweepPoint, str], None]

#: Seconds to wait for a remote scheduler to have a worker.
WORKER_WAIT_S = 60.0

#: Address of the LocalCluster scheduler's HTTP endpoint: any free port, never the default 8787.
HTTP_ADDRESS = "127.0.0.1:0"


@dataclass
class SweepReport:
    """What one run of a sweep did.

    Attributes
    ----------
    out : Path
        The sweep's folder.
    run_id : str
        Identifier of this run (recorded in every point file it wrote).
    total : int
        Points in the spec.
    skipped : int
        Points already finished on disk, not run again.
    ran : int
        Points this run finished.
    failed : list of SweepPoint
        Points whose run failed in this run, in spec order.
    invalid : list of (SweepPoint, str)
        Points whose file was unreadable or another point's, with the problem; run again.
    summary : pandas.DataFrame
        The summary written at the end (see :func:`twin.sweep.store.build_summary`).
    wall_time_s : float
        Wall time of the run, start-up included.
    """

    out: Path
    run_id: str
    total: int
    skipped: int = 0
    ran: int = 0
    failed: list[SweepPoint] = field(default_factory=list)
    invalid: list[tuple[SweepPoint, str]] = field(default_factory=list)
    summary: pd.DataFrame = field(default_factory=pd.DataFrame)
    wall_time_s: float = 0.0


def run_point(scenario: dict[str, Any], source_dir: str | None) -> dict[str, Any]:
    """Validate and simulate one point (runs on a worker); never raises for a failing run.

    Returns
    -------
    dict
        ``status`` ``ok`` with ``timeseries``, ``kpis``, ``meta``; or ``failed`` with
        ``error_type``, ``error`` and ``traceback``. Both carry ``worker`` and ``wall_time_s``.
    """
    from twin.scenario.schema import Scenario
    from twin.simulation import simulate

    t0 = time.perf_counter()
    worker = f"{socket.gethostname()}:{os.getpid()}"
    try:
        sc = Scenario.model_validate({**scenario, "source_dir": source_dir})
        result = simulate(sc)
    except Exception as exc:
        return {
            "status": store.FAILED,
            "error_type": type(exc).__name__,
            "error": str(exc),
            "traceback": traceback.format_exc(),
            "worker": worker,
            "wall_time_s": time.perf_counter() - t0,
        }
    return {
        "status": store.OK,
        "timeseries": result.timeseries,
        "kpis": result.kpis,
        "meta": result.meta,
        "worker": worker,
        "wall_time_s": time.perf_counter() - t0,
    }


def twin_version() -> str:
    """The twin version importable where this runs (asked of every worker before a sweep)."""
    return twin.__version__


def run_sweep(
    sweep: Sweep,
    out: str | Path,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    progress: Progress | None = None,
    on_invalid: OnInvalid | None = None,
) -> SweepReport:
    """Run every point of ``sweep`` that has no finished file in ``out``; rebuild the summary.

    Parameters
    ----------
    sweep : Sweep
        A loaded sweep (:func:`twin.sweep.load_sweep`).
    out : str or Path
        The sweep's folder (created if needed).
    scheduler : str, optional
        Address of a Dask scheduler (``tcp://host:8786``); by default a LocalCluster is started.
    workers : int, optional
        LocalCluster worker processes (one thread each); default: the CPU count, at most one per
        point to run. ``0`` runs the points one after the other in this process, without Dask.
    progress : callable, optional
        ``progress(done, total, point, status)`` after each point (see :data:`Progress`).
    on_invalid : callable, optional
        ``on_invalid(point, problem)`` for each point file found unreadable or another point's,
        before the point is run again (see :data:`OnInvalid`).

    Returns
    -------
    SweepReport

    Raises
    ------
    TwinError
        Another run holds the folder, Dask is missing, or the workers cannot run the twin.
    """
    t0 = time.perf_counter()
    out = Path(out)
    report = SweepReport(out=out, run_id=uuid.uuid4().hex[:12], total=len(sweep.points))
    with store.locked(out):
        store.write_manifest(sweep, out)
        todo = _todo(sweep, out, report, on_invalid)
        report.skipped = report.total - len(todo)
        if progress is not None:
            progress(0, len(todo), None, "start")
        try:
            if todo:
                serial = workers == 0 and scheduler is None
                results = _serial(todo) if serial else _on_dask(todo, scheduler, workers)
                with contextlib.closing(results):  # an interrupt closes the cluster at once
                    for done, (point, payload) in enumerate(results, start=1):
                        _store(out, point, payload, report)
                        if progress is not None:
                            progress(done, len(todo), point, payload["status"])
        finally:
            report.summary = store.build_summary(sweep, out)
            store.write_summary(report.summary, out)
    report.failed.sort(key=lambda p: p.index)
    report.wall_time_s = time.perf_counter() - t0
    return report


def _todo(sweep: Sweep, out: Path, report: SweepReport, on_invalid: OnInvalid | None) -> list[SweepPoint]:
    """The points without a finished file; an invalid file is reported and removed (it is run again)."""
    todo = []
    for p in sweep.points:
        path = store.point_path(out, p.key)
        if path.exists():
            problem = store.point_problem(out, p.key)
            if problem is None:
                continue
            report.invalid.append((p, problem))
            if on_invalid is not None:
                on_invalid(p, problem)
            path.unlink(missing_ok=True)
        todo.append(p)
    return todo


def _store(out: Path, point: SweepPoint, payload: dict[str, Any], report: SweepReport) -> None:
    facts = {
        "key": point.key,
        "values": point.values,
        "worker": payload["worker"],
        "wall_time_s": payload["wall_time_s"],
        "run_id": report.run_id,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if payload["status"] == store.OK:
        record = {
            **facts,
            "kpis": payload["kpis"],
            "meta": payload["meta"],
            "scenario": point.scenario.model_dump(mode="json"),
        }
        store.write_point(out, point.key, payload["timeseries"], record)
        report.ran += 1
    else:
        record = {**facts, **{k: payload[k] for k in ("error_type", "error", "traceback")}}
        store.write_error(out, point.key, record)
        report.failed.append(point)


def _task_args(point: SweepPoint) -> tuple[dict[str, Any], str | None]:
    sc = point.scenario
    return sc.model_dump(mode="json"), (str(sc.source_dir) if sc.source_dir is not None else None)


def _serial(todo: list[SweepPoint]) -> Generator[tuple[SweepPoint, dict[str, Any]]]:
    for point in todo:
        yield point, run_point(*_task_args(point))


def _on_dask(
    todo: list[SweepPoint], scheduler: str | None, workers: int | None
) -> Generator[tuple[SweepPoint, dict[str, Any]]]:
    """Run the points on Dask; yield each as its future completes (the cluster closes after)."""
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise TwinError(
            "sweeps on Dask need the sweep extra: pip install 'ai-factory-twin[sweep]' (or run with --workers 0)"
        ) from None
    import dask

    with ExitStack() as stack:
        # A loaded machine can take longer than Dask's default 30 s to start and connect workers.
        stack.enter_context(dask.config.set({"distributed.comm.timeouts.connect": f"{WORKER_WAIT_S:.0f}s"}))
        if scheduler is not None:
            client = stack.enter_context(Client(scheduler, timeout="30s"))
            try:
                client.wait_for_workers(1, timeout=WORKER_WAIT_S)
            except TimeoutError:
                raise TwinError(f"no Dask worker joined {scheduler} within {WORKER_WAIT_S:.0f} s") from None
        else:
            n = workers if workers is not None else min(os.cpu_count() or 1, len(todo))
            cluster = stack.enter_context(
                LocalCluster(
                    n_workers=max(1, n),
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",
                    dashboard_address=HTTP_ADDRESS,  # Dask's default (8787) may be taken: any free port
                    scheduler_kwargs={"dashboard": False},  # the HTTP endpoint only, no dashboard
                    silence_logs=logging.CRITICAL,  # failures are recorded per point; shutdown noise is not
                )
            )
            client = stack.enter_context(Client(cluster))
        _check_workers(client)
        futures = {
            client.submit(run_point, *_task_args(p), key=f"twin-point-{p.key}", pure=False, priority=-p.index): p
            for p in todo
        }
        for future in as_completed(futures):
            point = futures.pop(future)
            if future.status == "finished":
                payload = future.result()
            else:  # the task itself died (its worker was lost too often): record it like a failed run
                exc = future.exception()
                payload = {
                    "status": store.FAILED,
                    "error_type": type(exc).__name__,
                    "error": str(exc),
                    "traceback": "".join(traceback.format_exception(exc)) if exc is not None else "",
                    "worker": "",
                    "wall_time_s": float("nan"),
                }
            future.release()
            yield point, payload


def _check_workers(client: Any) -> None:
    """Every worker must import the same twin version as this process (see README, Sweeps)."""
    try:
        versions = client.run(twin_version)
    except Exception as exc:
        raise TwinError(
            f"the Dask workers cannot run the twin ({type(exc).__name__}: {exc}); "
            "install the project, the same version, on the scheduler and every worker"
        ) from None
    wrong = {addr: v for addr, v in versions.items() if v != twin.__version__}
    if wrong:
        listed = ", ".join(f"{a} has {v}" for a, v in sorted(wrong.items()))
        raise TwinError(f"workers run another twin version than this client's {twin.__version__}: {listed}")
