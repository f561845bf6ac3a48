"""Small building blocks the anchors share: scenario overrides, runs and device-level points.

Every scenario starts from the built-in default preset and overrides only what the published
conditions fix (accelerator, model, batch, load, cooling, power chain); everything else keeps the
twin's one set of defaults.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from twin import catalog
from twin._types import FloatArray
from twin.engine.server_constants import ServerConstants
from twin.engine.serving import serve_block
from twin.facility import build_facility
from twin.physics.accelerator import accelerator_power_w
from twin.results import Result
from twin.scenario import load_scenario
from twin.scenario.schema import Scenario
from twin.simulation import simulate

#: The parameter table whose section 7 lists the anchors' published figures with their sources.
PARAMS = "parameters.md"


def accelerator(name: str) -> catalog.AcceleratorSpec:
    """The catalog's accelerator ``name``."""
    return catalog.accelerator_spec(name)


#: Requests per second that no single server can keep up with: the queue never empties, so the
#: batch stays at ``max_batch`` (an MLPerf "offline" run, a benchmark's steady state).
SATURATING_RATE = 1.0e5


def node(
    accelerator: str,
    gpus: int,
    workloads: list[dict[str, Any]],
    *,
    cooling: dict[str, Any] | None = None,
    duration_s: float = 600.0,
    servers: int = 1,
    **extra: Any,
) -> dict[str, Any]:
    """Overrides for ``servers`` servers in one rack with constant inputs and no site load.

    The power chain above the PSUs is sized to the load (a 2.8 MW UPS idling under one server
    would book a fixed loss 100 times the node's own), and cooling is ideal unless given: node
    anchors read the node's power, not the facility's.
    """
    over: dict[str, Any] = {
        "duration_s": duration_s,
        "step_s": duration_s,
        "report_interval_s": duration_s,
        "fleet.accelerator": accelerator,
        "fleet.gpus_per_server": gpus,
        "fleet.rows": 1,
        "fleet.racks_per_row": 1,
        "fleet.servers_per_rack": servers,
        "power.transformer.rated_w": 50e3 * servers,
        "power.ups.rated_w": 25e3 * servers,
        "power.pdu.rated_w": 25e3 * servers,
        "site.other_facility_power_w": 0.0,
        "weather": {"source": "constant"},
        "cooling": cooling or {"model": "ideal", "type": "liquid", "supply_temp_c": 30.0},
        "workloads": workloads,
    }
    over.update(extra)
    return over


def inference(
    model: str,
    *,
    max_batch: int,
    prompt_tokens: float,
    output_tokens: float,
    tensor_parallel: int = 1,
    precision: str = "bf16",
    requests_per_s: float = SATURATING_RATE,
    servers: int | None = None,
    name: str = "serve",
) -> dict[str, Any]:
    """One inference workload at a constant request rate (saturating by default)."""
    return {
        "name": name,
        "kind": "inference",
        "model": model,
        "servers": servers,
        "tensor_parallel": tensor_parallel,
        "max_batch": max_batch,
        "precision": precision,
        "arrivals": {
            "kind": "constant",
            "requests_per_s": requests_per_s,
            "prompt_tokens": prompt_tokens,
            "output_tokens": output_tokens,
        },
    }


def scenario(overrides: dict[str, Any]) -> Scenario:
    """The default preset with ``overrides`` (dotted paths) applied and validated."""
    return load_scenario("default", overrides)


def run(overrides: dict[str, Any]) -> Result:
    """Simulate the default preset with ``overrides``."""
    return simulate(scenario(overrides))


def first_shutdown(sc: Scenario) -> tuple[float, float]:
    """Time of the first thermal shutdown and the hottest device inlet up to it.

    Returns
    -------
    time_s, inlet_c : float
        ``inf`` and the run's hottest inlet when no server shuts down. [s], [C]
    """
    result = simulate(sc)
    ev = result.events
    times = ev.loc[ev["event"] == "thermal_shutdown", "time_s"] if len(ev) else []
    t = float(min(times)) if len(times) else float("inf")
    ts = result.timeseries
    upto = ts[ts["time_s"] <= t]
    return t, float(upto["inlet_temp_max_c"].max())


def decode_point(
    accelerator: str,
    model: str,
    batch: int,
    context_tokens: float,
    clock_fraction: FloatArray | float = 1.0,
    *,
    tensor_parallel: int = 1,
    precision: str = "bf16",
    voltage_floor: float | None = None,
) -> tuple[FloatArray, FloatArray]:
    """Board power and decode tokens/s per GPU of a replica held at ``batch`` sequences.

    Uses the engine's serving model (:func:`twin.engine.serving.serve_block`, so the same
    activity-to-power mapping as a run) for one server with an endless decode queue and no
    prefill, at each SM clock fraction given (the clock is held there, as ``nvidia-smi -lgc``
    does, not chosen by a governor). ``voltage_floor`` replaces the accelerator's core-voltage
    floor in the power model (for sensitivity notes; default: the catalog's).

    Returns
    -------
    power_w, tokens_per_s : ndarray
        Per GPU, one value per clock fraction. [W], [1/s]
    """
    wl = inference(
        model,
        max_batch=batch,
        prompt_tokens=0.0,
        output_tokens=1.0,
        tensor_parallel=tensor_parallel,
        precision=precision,
    )
    gpus = max(tensor_parallel, 1)
    fac = build_facility(scenario(node(accelerator, gpus, [wl])))
    const = ServerConstants.build(fac)
    acc = fac.accelerator
    clock = np.atleast_1d(np.asarray(clock_fraction, dtype=np.float64))[:, None]
    k = clock.shape[0]
    ones = np.ones((k, 1))
    res = serve_block(
        const,
        np.zeros((k, 1)),
        np.full((k, 1), 1e12),  # more decode tokens than any tick can serve
        ones,
        np.full((k, 1), float(context_tokens)),
        clock,
        np.zeros(1),
        np.zeros(1),
        np.ones(k),
    )
    board = acc.power_params
    if voltage_floor is not None:
        board = replace(board, voltage_floor_fraction=voltage_floor)
    power = accelerator_power_w(res.power_busy, res.mem_activity, res.sm_activity, clock, params=board)
    return power[:, 0], res.decode_tokens[:, 0] / fac.gpus_per_server


__all__ = [
    "SATURATING_RATE",
    "decode_point",
    "first_shutdown",
    "inference",
    "node",
    "run",
    "scenario",
]
