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
``dashboard``
    A whole-page rerun of the what-if dashboard for the 1 024-GPU pod over one day (one new 24 h
    simulation), headless through Streamlit's ``AppTest``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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
    cases.append(Case("dashboard", "dashboard what-if rerun, default pod, 1 day", 1024, kind="dashboard"))
    return cases
