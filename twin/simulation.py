"""``simulate(scenario) -> Result``: the one place where the parts are wired together."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict

import numpy as np
import pandas as pd

from twin._version import __version__
from twin.checks import check_room_air, run_checks, serving_error
from twin.engine.kernel import Engine
from twin.facility import build_facility
from twin.facility_parts.fleet import Facility
from twin.physics.interconnect import kv_transfer_energy_j
from twin.results import Result, compute_kpis, events_frame
from twin.scenario.faults import FAULT_KINDS
from twin.scenario.schema import Scenario
from twin.units import S_PER_HOUR
from twin.workload.scheduler import job_table, queue_kpis

#: Event-log names that are faults (not repairs or consequences).
FAULT_EVENT_NAMES = frozenset(FAULT_KINDS)


def simulate(
    scenario: Scenario,
    *,
    rng: np.random.Generator | None = None,
    debug: bool = False,
    progress: Callable[[float, float], None] | None = None,
) -> Result:
    """Run one scenario.

    Parameters
    ----------
    scenario : Scenario
        A validated scenario (see :func:`twin.load_scenario`).
    rng : numpy.random.Generator, optional
        The run's generator; by default ``np.random.default_rng(scenario.seed)``.
    debug : bool
        Check the energy ledger after every report interval (raises on imbalance).
    progress : callable, optional
        ``progress(t_s, duration_s)`` as report intervals close (once per computed block that
        closes some; ``t_s`` is the end of the last one closed).

    Returns
    -------
    Result
    """
    t_wall = time.perf_counter()
    rng = np.random.default_rng(scenario.seed) if rng is None else rng
    engine = build_engine(scenario, rng=rng, progress=progress, debug=debug)
    fac = engine.fac
    warnings = run_checks(fac, request_level=scenario.request_level)
    engine.run()
    engine.ledger.check(upto=engine.interval_index)
    ts = engine.recorder.frame()
    ledger = engine.ledger.frame(ts["time_s"].to_numpy())[: len(ts)]
    pool_names = [p.name for p in fac.pools]
    kpis = compute_kpis(ts, ledger, pool_names, scenario.site.model_dump(), fac.n_gpus)
    kpis.update(engine.pool_stats.kpis())
    kpis.update(fault_kpis(engine, kpis))
    dark = ts["servers_up"].to_numpy() == 0
    if dark.any():
        warnings += check_room_air(fac, float(ts["room_excess_k"].to_numpy()[dark].max()))
    queue, jobs = job_reports(fac, kpis)
    kpis.update(queue)
    kpis.update(kv_transfer_kpis(fac, kpis))
    result = Result(
        kpis=kpis,
        timeseries=ts,
        ledger=ledger,
        scenario=scenario.model_dump(mode="json"),
        seed=scenario.seed,
        rng_state=dict(rng.bit_generator.state),
        meta={
            "twin_version": __version__,
            "wall_time_s": time.perf_counter() - t_wall,
            "n_gpus": fac.n_gpus,
            "n_servers": fac.n_servers,
            "accelerator": fac.accelerator.name,
            "warnings": warnings,
            # The serving model's measured error on this accelerator (None: no pool serves, or no
            # measured error applies, which the warnings say).
            "serving_error": None if (err := serving_error(fac)) is None else asdict(err),
        },
        events=events_frame(engine.events),
        jobs=jobs,
    )
    if scenario.request_level is not None:  # a sample of each inference pool, request by request
        from twin.latency import request_level_report  # its scipy.stats import stays off a default run's path

        result = request_level_report(result, scenario, fac)
        result.meta["wall_time_s"] = time.perf_counter() - t_wall
    return result


def build_engine(
    scenario: Scenario,
    *,
    rng: np.random.Generator | None = None,
    debug: bool = False,
    progress: Callable[[float, float], None] | None = None,
) -> Engine:
    """The engine of one scenario, built but not run: the one place an :class:`Engine` is made.

    :func:`simulate` runs it; a benchmark may time :meth:`Engine.run` alone. Arguments as for
    :func:`simulate`.
    """
    rng = np.random.default_rng(scenario.seed) if rng is None else rng
    return Engine(build_facility(scenario), rng, progress=progress, debug=debug)


def fault_kpis(engine: Engine, kpis: dict[str, float]) -> dict[str, float]:
    """What faults and controls cost: the engine's run totals plus net tokens."""
    out = {**engine.faults.kpis(), **engine.controls.kpis()}
    out["tokens_out_net"] = kpis["tokens_out"] - out["tokens_lost_training"]
    kwh = kpis["facility_energy_kwh"]
    out["tokens_per_kwh_net"] = out["tokens_out_net"] / kwh if kwh > 0 else 0.0
    out["fault_events"] = float(sum(1 for e in engine.events if e["event"] in FAULT_EVENT_NAMES))
    return out


def kv_transfer_kpis(fac: Facility, kpis: dict[str, float]) -> dict[str, float]:
    """Scale-out energy of each disaggregated pool's KV transfers: its prompt tokens x bytes x J/byte.

    The same product the engine adds to the prefill servers' power (:mod:`twin.engine.serving`),
    so this KPI is part of ``server_other`` in the ledger.
    """
    out: dict[str, float] = {}
    for p in fac.pools:
        if p.disaggregation is not None:
            kv_bytes = kpis[f"{p.name}_tokens_prefill"] * p.kv_transfer_bytes_per_token
            out[f"{p.name}_kv_transfer_energy_j"] = float(
                kv_transfer_energy_j(kv_bytes, p.disaggregation.energy_j_per_bit)
            )
    return out


def job_reports(fac: Facility, kpis: dict[str, float]) -> tuple[dict[str, float], pd.DataFrame | None]:
    """Queue KPIs and the per-job table of the pools whose job trace a scheduler queues.

    A looped trace repeats its schedule every period. The pool's utilisation is the GPU-hours
    the run placed (``{pool}_job_gpu_h_run``: faults and checkpoint stalls included) over its
    GPU-hours; its training tokens are shared out to the jobs by GPU-seconds run.
    """
    out: dict[str, float] = {}
    frames = []
    horizon_s = fac.run.duration_s
    for p in fac.pools:
        if p.jobs is None or p.jobs.schedule is None:
            continue
        placed = p.jobs.placed
        sched = p.jobs.schedule.repeated(placed.period_s, horizon_s) if placed.loop else p.jobs.schedule
        out.update({f"{p.name}_{k}": v for k, v in queue_kpis(sched, horizon_s).items()})
        capacity_gpu_h = p.n_servers * fac.gpus_per_server * horizon_s / S_PER_HOUR
        out[f"{p.name}_job_utilisation"] = kpis[f"{p.name}_job_gpu_h_run"] / capacity_gpu_h
        table = job_table(sched, p.jobs.job_id, horizon_s, kpis[f"{p.name}_tokens_training"])
        frames.append(table.assign(pool=p.name)[["pool", *table.columns]])
    return out, (pd.concat(frames, ignore_index=True) if frames else None)
