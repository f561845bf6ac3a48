"""Sizes a run may have: the fleet and tick limits, and the memory a run needs on this machine.

A scenario is refused at validation (a :class:`~twin.errors.ScenarioError`) when it is larger than
the twin can simulate, before anything is allocated:

* at most :data:`MAX_GPUS` accelerators. The largest single AI site announced, xAI's Colossus, has
  about 200,000 GPUs (2025); ten times that leaves room for what-ifs (and for ExaDigiT RAPS's
  largest benchmark, 383,872 four-GPU nodes) while keeping every per-server array
  (``rack_of_server``, the fleet state) under a few hundred MB.
* at most :data:`MAX_TICKS` physics ticks (``duration_s / step_s``). Where demand varies the
  engine computes every tick; a billion of them take hours (31 years at 1 s ticks).
* the memory estimate of :func:`estimate_run_bytes` fits this machine's physical memory.

Where the memory goes (measured with ``ru_maxrss`` on the default preset, twin 2024-12): the
per-interval recorder and ledger (``twin.engine.telemetry.Recorder``, ``twin.ledger.Ledger``)
preallocate one float64 per report interval for every timeseries column and ledger category;
the results hold them once more when written (Parquet) and plotted: 1.15 kB per report row with
76 columns and 12 categories (720,000 rows took 0.94 GB above the interpreter). Ticks are not
preallocated: the engine builds blocks of at most ``MAX_BLOCK_CELLS`` server-ticks and
``MAX_BLOCK_RACK_CELLS`` rack-ticks (``twin.engine.kernel``), so time costs run time, not memory
(383,872 servers in ~44,000 rack columns, blocks of 9 ticks: 348 MB peak). Per-server state and one-tick
blocks of a large fleet took 0.5-0.8 kB per server (96,000-320,000 servers). Drawn request
streams are capped at ``MAX_DRAWN_REQUESTS`` per workload (``twin.facility_traces``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sized
from pathlib import Path
from typing import Protocol

#: Most accelerators in one fleet (see the module docstring).
MAX_GPUS = 2_000_000
#: Most physics ticks in one run, ``duration_s / step_s``.
MAX_TICKS = 1_000_000_000

GIB = 2**30
#: Interpreter, libraries and a full block of ticks (measured: 145 MB + 75 MB).
BASE_BYTES = 256 * 2**20
#: Per workload: its drawn or replayed request stream (2 million requests of 3 float64 columns).
WORKLOAD_BYTES = 64 * 2**20
#: Per server: state arrays and its share of a one-tick block (measured 0.5-0.8 kB).
SERVER_BYTES = 1024
#: Ledger categories (base, cooling components, fault subsystems): at most this many.
CATEGORIES = 20
#: Timeseries columns besides the per-category power columns: fleet and weather (26), faults and
#: controls (16), and per workload 12 (7 counters and the latency statistics).
BASE_COLUMNS = 42
COLUMNS_PER_WORKLOAD = 12
#: Copies of each per-interval value at the peak: the recorder, and the written/plotted result.
ROW_COPIES = 2


class _FleetSize(Protocol):
    @property
    def n_servers(self) -> int:
        """Servers in the fleet."""
        ...


class RunSize(Protocol):
    """What the limits read of a scenario (:class:`twin.scenario.schema.Scenario` has it all)."""

    @property
    def duration_s(self) -> float:
        """Simulated time. [s]"""
        ...

    @property
    def step_s(self) -> float:
        """Physics tick. [s]"""
        ...

    @property
    def report_interval_s(self) -> float:
        """Report interval. [s]"""
        ...

    @property
    def workloads(self) -> Sized:
        """The pools (one per workload)."""
        ...

    @property
    def fleet(self) -> _FleetSize:
        """The fleet."""
        ...


def report_rows(scenario: RunSize) -> float:
    """Report intervals in the run (rows of the timeseries), as a float (it may be huge, or inf)."""
    rows = scenario.duration_s / scenario.report_interval_s
    return float(math.ceil(rows - 1e-9)) if rows < 2**53 else rows


def estimate_run_bytes(scenario: RunSize) -> float:
    """Peak memory of a run of ``scenario``, estimated from its sizes (see the module docstring). [B]"""
    n_pools = len(scenario.workloads)
    columns = BASE_COLUMNS + CATEGORIES + COLUMNS_PER_WORKLOAD * n_pools
    per_row = ROW_COPIES * 8 * (columns + CATEGORIES + 2)
    return float(
        BASE_BYTES
        + WORKLOAD_BYTES * n_pools
        + per_row * report_rows(scenario)
        + SERVER_BYTES * scenario.fleet.n_servers
    )


#: Memory limits of a Linux container (cgroup v2, v1); "max" or a huge number means none.
CGROUP_LIMIT_FILES = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")


def physical_memory_bytes() -> float | None:
    """Physical memory of this machine, or its container's limit if lower (None where unknown). [B]"""
    try:
        total = float(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None
    for name in CGROUP_LIMIT_FILES:
        try:
            limit = Path(name).read_text().strip()
        except OSError:
            continue
        if limit.isdigit():
            total = min(total, float(limit))
    return total


def size_problem(scenario: RunSize) -> str | None:
    """Why a run of ``scenario`` is too large for the twin or this machine, or None."""
    ticks = scenario.duration_s / scenario.step_s
    if ticks > MAX_TICKS:
        return (
            f"duration_s / step_s = {scenario.duration_s:g} / {scenario.step_s:g} = {ticks:.3g} ticks, more than "
            f"the {MAX_TICKS:.0e} a run may have; shorten duration_s or raise step_s"
        )
    need = estimate_run_bytes(scenario)
    have = physical_memory_bytes()
    if have is not None and need > have:
        return (
            f"the run needs about {need / GIB:,.1f} GiB, this machine has {have / GIB:,.1f} GiB: "
            f"{report_rows(scenario):.3g} report rows (duration_s {scenario.duration_s:g} / report_interval_s "
            f"{scenario.report_interval_s:g}) and {scenario.fleet.n_servers:,} servers; shorten duration_s or "
            "raise report_interval_s"
        )
    return None
