"""The benchmark cases: scenarios built from the default pod, scaled to a fleet size.

Fleets keep the default pod's geometry (4 eight-GPU servers per rack, 8 racks per row) and add
rows: 1 024, 10 240 and 102 400 GPUs are 4, 40 and 400 rows. Each workload's servers and request
rate scale with the fleet (the load per server is the default's), and so do the shared stages of
the power chain (transformer units, 2N UPS modules); PDUs and PSUs are per rack and server already.
The cooling plant is sized from the nameplate by the engine.

Cases
-----
``day-<fleet>``
    24 h at a 1 s physics step, 1-minute reports, the default diurnal request load: the arrival
    rate changes continuously, so every second is a tick.
``day-trace-<fleet>``
    The same with the Azure LLM 2023 traces (conversation and code) replayed per server with its
    own random offset: every server sees different arrivals every second (nothing to group).
``year-100k``
    102 400 GPUs for 365 days with 1-minute reports. The physics step is 60 s: for a year-long
    planning run "1-minute reporting" reads as a 1-minute resolution of the inputs (the diurnal
    load is integrated exactly over each minute; die temperatures settle within seconds, so their
    per-second detail does not change a minute's energy).
``quiet-<days>d``, ``quiet-30d-<n>f``
    1 024 GPUs at a constant load, hourly TMY3 weather, 1 s step, hourly reports: nothing varies
    within an hour, so the cost should grow with events, not with the simulated seconds: 1, 30
    and 365 days without events, then 30 days with 10, 100 and 1 000 server failures (each
    repaired after 10 minutes, then booting: three events each).
``mix-4k``, ``mix-38k``, ``mix-1.5m``
    Heterogeneous fleets, side by side with ExaDigiT RAPS's sizes: 35 % of the servers serve
    Llama-3-70B from the Azure conversation trace and 10 % Llama-3.1-8B from the code trace (each
    server with its own trace offset), 55 % train in RAPS-style random jobs (uniform start from
    12 h before the run to its end, clipped at 0; uniform 1-12 h; uniform 1..N nodes; enough jobs
    for ~90 % of the pool on average; drawn from ``seed``, written to a job CSV by the runner):
    560 servers x 8 GPUs for 24 h at 1 s (N = 128), 9 472 x 4 GPUs for 4 h at 1 s (N = 3 000),
    383 872 x 4 GPUs for 1 h at 15 s (N = 9 000).
``outage-1k``
    The dashboard's utility-outage what-if on the default pod as the page runs it: 6 h from 11:00,
    the utility lost for 1 h at 13:00 with a 5-minute battery and no generator (the cooling plant
    goes dark: the room air trips the servers 73 s in and the room stays uncooled for the hour, a
    transient the engine computes in blocks of ticks; ``outage-tiny``: 64 GPUs, 1 h, 20 min lost).
``dashboard``
    A whole-page rerun of the what-if dashboard for the 1 024-GPU pod over one day (one new 24 h
    simulation), headless through Streamlit's ``AppTest``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

#: Name of a fleet size -> GPUs.
FLEETS = {"1k": 1_024, "10k": 10_240, "100k": 102_400}
#: GPUs of the tiny fleet used by ``--tiny`` (the test suite): 2 racks of 4 servers.
TINY_GPUS = 64
DAY_S = 86_400.0


@dataclass(frozen=True)
class Case:
    """One benchmark: a scenario (preset plus overrides) or the dashboard."""

    name: str
    what: str
    n_gpus: int
    overrides: dict[str, Any] = field(default_factory=dict)
    kind: str = "simulate"  # or "dashboard"
    #: A job trace (CSV text) the runner writes to a file and names in the workload ``jobs_of``.
    job_csv: str = ""
    jobs_of: str = ""

    def with_files(self, folder: Path) -> dict[str, Any]:
        """The overrides, with the job trace written under ``folder`` and named by its path."""
        if not self.job_csv:
            return self.overrides
        path = folder / f"{self.name}-jobs.csv"
        path.write_text(self.job_csv)
        workloads = [
            {**w, "jobs": {"path": str(path)}} if w["name"] == self.jobs_of else w for w in self.overrides["workloads"]
        ]
        return {**self.overrides, "workloads": workloads}


def fleet_overrides(n_gpus: int) -> dict[str, Any]:
    """Fleet, workloads and shared power stages for ``n_gpus`` (a multiple of 256, or :data:`TINY_GPUS`)."""
    if n_gpus == TINY_GPUS:
        geometry = {"fleet.rows": 1, "fleet.racks_per_row": 2}
    elif n_gpus % 256 == 0:
        geometry = {"fleet.rows": n_gpus // 256, "fleet.racks_per_row": 8}
    else:
        raise ValueError(f"a benchmark fleet has 64 GPUs or a multiple of 256, got {n_gpus}")
    f = n_gpus / 1024
    units = max(1, round(f))
    return {
        **geometry,
        "fleet.servers_per_rack": 4,
        "power.transformer.count": units,
        "power.ups.count": 2 * units,
        "_scale": f,
    }


def _workloads(scale: float, trace: bool) -> list[dict[str, Any]]:
    chat = {"name": "chat-70b", "kind": "inference", "model": "Llama-3-70B", "tensor_parallel": 8, "max_batch": 512}
    code = {"name": "code-8b", "kind": "inference", "model": "Llama-3.1-8B", "tensor_parallel": 1, "max_batch": 128}
    if trace:
        chat["arrivals"] = {"kind": "trace", "path": "azure-llm-2023-conv", "requests_per_s": 700 * scale}
        code["arrivals"] = {"kind": "trace", "path": "azure-llm-2023-code", "requests_per_s": 1200 * scale}
    else:
        day = {"kind": "diurnal", "peak_to_mean": 1.5, "peak_hour": 14}
        chat["arrivals"] = {**day, "requests_per_s": 900 * scale, "prompt_tokens": 1000, "output_tokens": 250}
        code["arrivals"] = {**day, "requests_per_s": 2000 * scale, "prompt_tokens": 2048, "output_tokens": 28}
    chat["servers"] = round(96 * scale)
    code["servers"] = round(32 * scale)
    return [chat, code]


def scenario_overrides(n_gpus: int, duration_s: float, step_s: float, report_s: float, **kw: Any) -> dict[str, Any]:
    """Overrides of the default preset for one run."""
    over = fleet_overrides(n_gpus)
    scale = over.pop("_scale")
    trace = bool(kw.pop("trace", False))
    constant = bool(kw.pop("constant", False))
    workloads = _workloads(scale, trace)
    if constant:
        for w in workloads:
            w["arrivals"]["kind"] = "constant"
            for key in ("peak_to_mean", "peak_hour"):
                w["arrivals"].pop(key)
    over.update(
        {
            "duration_s": duration_s,
            "step_s": step_s,
            "report_interval_s": report_s,
            "workloads": workloads,
            **kw,
        }
    )
    return over


def _faults(n: int, duration_s: float) -> list[dict[str, Any]]:
    """``n`` single-server failures spread evenly over the run, each repaired after 10 minutes."""
    return [
        {"time_s": (i + 0.5) * duration_s / n, "kind": "server_fail", "count": 1, "duration_s": 600.0} for i in range(n)
    ]


#: Heterogeneous cases: name -> (servers, GPUs per server, racks per row, hours, step s, most nodes of a job).
MIXES = {
    "mix-4k": (560, 8, 10, 24.0, 1.0, 128),
    "mix-38k": (9_472, 4, 8, 4.0, 1.0, 3_000),
    "mix-1.5m": (383_872, 4, 8, 1.0, 15.0, 9_000),
}
#: The tiny mix the test suite runs: 2 racks of 4 servers, 10 minutes.
TINY_MIX = (8, 8, 2, 600.0 / 3600.0, 1.0, 2)


def random_jobs(servers: int, gpus_per_server: int, duration_s: float, max_nodes: int, seed: int) -> str:
    """RAPS-style random jobs as a job CSV (``job_id,start_s,duration_s,gpus``) for a pool of ``servers``.

    Starts are uniform from 12 h before the run to its end (clipped at 0: a job running at the
    start starts there with what is left of it), run times uniform 1-12 h, nodes uniform in
    ``1..max_nodes``; the count gives the pool ~90 % of its servers busy on average.
    """
    rng = np.random.default_rng(seed)
    before_s, mean_s = 12 * 3600.0, 6.5 * 3600.0
    n = max(1, math.ceil(0.9 * servers * (duration_s + before_s) / ((1 + max_nodes) / 2 * mean_s)))
    start = rng.uniform(-before_s, duration_s, n)
    end = start + rng.uniform(3600.0, 12 * 3600.0, n)
    nodes = rng.integers(1, max_nodes + 1, n)
    keep = end > 0.0
    start, end, nodes = np.maximum(start[keep], 0.0), end[keep], nodes[keep]
    start[np.argmin(start)] = 0.0  # times are read relative to the first start: it is the run's
    rows = [
        f"j{i:05d},{a:.0f},{b - a:.0f},{k * gpus_per_server}"
        for i, (a, b, k) in enumerate(zip(start, end, nodes, strict=True))
    ]
    return "job_id,start_s,duration_s,gpus\n" + "\n".join(rows) + "\n"


def mix_case(name: str, spec: tuple[int, int, int, float, float, int], seed: int = 42) -> Case:
    """A heterogeneous fleet: 35 % chat-70b, 10 % code-8b on per-server trace offsets, the rest training jobs."""
    servers, gps, racks_per_row, hours, step_s, max_nodes = spec
    spr = 4
    rows = servers // (spr * racks_per_row)
    if rows * spr * racks_per_row != servers:
        raise ValueError(f"{servers} servers do not fill rows of {racks_per_row} racks of {spr}")
    n_chat, n_code = round(0.35 * servers), round(0.10 * servers)
    n_train = servers - n_chat - n_code
    per_gpu = gps / 8  # the trace cases' load per GPU: 700 req/s on 96 and 1 200 on 32 eight-GPU servers
    chat_rate, code_rate = 700 / 96 * per_gpu * n_chat, 1200 / 32 * per_gpu * n_code
    chat = {
        "name": "chat-70b",
        "kind": "inference",
        "model": "Llama-3-70B",
        "tensor_parallel": gps,
        "max_batch": 512,
        "servers": n_chat,
        "arrivals": {"kind": "trace", "path": "azure-llm-2023-conv", "requests_per_s": chat_rate},
    }
    code = {
        "name": "code-8b",
        "kind": "inference",
        "model": "Llama-3.1-8B",
        "tensor_parallel": 1,
        "max_batch": 128,
        "servers": n_code,
        "arrivals": {"kind": "trace", "path": "azure-llm-2023-code", "requests_per_s": code_rate},
    }
    train = {"name": "train", "kind": "training", "model": "Llama-3-70B", "servers": n_train, "mfu": 0.4}
    units = max(1, math.ceil(servers * gps / 1024))
    duration_s = hours * 3600.0
    over = {
        "seed": seed,
        "fleet.gpus_per_server": gps,
        "fleet.servers_per_rack": spr,
        "fleet.racks_per_row": racks_per_row,
        "fleet.rows": rows,
        "power.transformer.count": units,
        "power.ups.count": 2 * units,
        "duration_s": duration_s,
        "step_s": step_s,
        "report_interval_s": 60.0,
        "workloads": [chat, code, train],
    }  # fmt: skip
    what = f"{servers:,} x {gps} GPUs, {hours:g} h at {step_s:g} s: 35/10/55 % chat/code/jobs to {max_nodes:,} nodes"
    return Case(name, what, servers * gps, over, job_csv=random_jobs(n_train, gps, duration_s, max_nodes, seed),
                jobs_of="train")  # fmt: skip


def outage_case(tiny: bool) -> Case:
    """The dashboard's utility outage without a generator (``twin.dashboard.levers``: 6 h, fault at 2 h for 1 h)."""
    battery = {"power.ups.battery": {"runtime_s": 300.0}}
    if tiny:
        events = [{"time_s": 600.0, "kind": "utility_loss", "duration_s": 1200.0}]
        return Case("outage-tiny", f"{TINY_GPUS} GPUs, 1 h, 20 min utility outage, no generator", TINY_GPUS,
                    scenario_overrides(TINY_GPUS, 3600.0, 1.0, 60.0, events=events, **battery))  # fmt: skip
    events = [{"time_s": 7200.0, "kind": "utility_loss", "duration_s": 3600.0}]
    over = {"start": "2024-07-15T11:00:00", "duration_s": 6 * 3600.0, "events": events, **battery}
    what = "default pod (1 024 GPUs), 6 h, 1 h utility outage, 5 min battery, no generator"
    return Case("outage-1k", what, 1024, over)


def all_cases(tiny: bool = False) -> list[Case]:
    """Every case at full size, or at the tiny size the test suite runs."""
    cases: list[Case] = []
    fleets = {"tiny": TINY_GPUS} if tiny else FLEETS
    day = 600.0 if tiny else DAY_S
    for label, n in fleets.items():
        cases.append(
            Case(f"day-{label}", f"{n:,} GPUs, {day / 3600:g} h at 1 s, diurnal load", n,
                 scenario_overrides(n, day, 1.0, 60.0))
        )  # fmt: skip
    if not tiny:
        n = FLEETS["10k"]
        cases.append(Case("day-10k-6h", f"{n:,} GPUs, 6 h at 1 s (memory vs 24 h)", n,
                          scenario_overrides(n, 6 * 3600.0, 1.0, 60.0)))  # fmt: skip
    for label, n in fleets.items():
        cases.append(
            Case(f"day-trace-{label}", f"{n:,} GPUs, {day / 3600:g} h at 1 s, Azure traces per server", n,
                 scenario_overrides(n, day, 1.0, 60.0, trace=True))
        )  # fmt: skip
    n_year = TINY_GPUS if tiny else FLEETS["100k"]
    year_days = 2 if tiny else 365
    cases.append(
        Case(f"year-{'tiny' if tiny else '100k'}", f"{n_year:,} GPUs, {year_days} days at 60 s, 1-min reports",
             n_year, scenario_overrides(n_year, year_days * DAY_S, 60.0, 60.0))
    )  # fmt: skip
    n_quiet = TINY_GPUS if tiny else FLEETS["1k"]
    for days in (1, 3) if tiny else (1, 30, 365):
        cases.append(
            Case(f"quiet-{days}d", f"{n_quiet:,} GPUs, {days} d constant load, hourly weather, 1 s step", n_quiet,
                 scenario_overrides(n_quiet, days * DAY_S, 1.0, 3600.0, constant=True))
        )  # fmt: skip
    days = 3 if tiny else 30
    for n_faults in (10,) if tiny else (10, 100, 1000):
        cases.append(
            Case(f"quiet-{days}d-{n_faults}f", f"{n_quiet:,} GPUs, {days} d constant load, {n_faults} server faults",
                 n_quiet, scenario_overrides(n_quiet, days * DAY_S, 1.0, 3600.0, constant=True,
                                             events=_faults(n_faults, days * DAY_S)))
        )  # fmt: skip
    cases.append(outage_case(tiny))
    mixes = {"mix-tiny": TINY_MIX} if tiny else MIXES
    cases += [mix_case(name, spec) for name, spec in mixes.items()]
    cases.append(Case("dashboard", "dashboard what-if rerun, default pod, 1 day", 1024, kind="dashboard"))
    return cases
