"""The memory-bandwidth limit of the fleet state update, and how close the engine comes.

Bytes a state update must touch, per server and tick (the 8 GPUs of a server share its state):

===========================================  ======  ==========================================
what                                          bytes   arrays (float64)
===========================================  ======  ==========================================
the tick's arrivals (read)                       40   requests, prompt and output tokens, mean
                                                      prompt length, mean decode context
state before the tick (read)                     24   die temperature, prefill and decode backlog
state after the tick (written)                   24   the same three
===========================================  ======  ==========================================

88 bytes per server-tick, 11 bytes per device-step; everything else (power, losses, tokens)
is reduced over servers on the fly and needs no memory traffic of its own. A machine that moves
``B`` bytes/s (measured here as a numpy copy of arrays far larger than the caches) can therefore
do at most ``B / 11`` device-steps per second of a per-server state update. The engine is
measured on a case where every server differs (the Azure traces with a random offset per server,
so nothing is grouped): its device-steps/s over that bound is how close it comes. Cases with
identical servers compute one column per group and exceed the per-device bound by design.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

#: Bytes per server and tick of the minimal state update (table in the module docstring).
MIN_BYTES_PER_SERVER_TICK = 40 + 24 + 24
GPUS_PER_SERVER = 8


def copy_bandwidth_b_s(n_bytes: int, repeats: int = 5) -> dict[str, float]:
    """Best-of-``repeats`` numpy bandwidths over arrays of ``n_bytes``. [B/s]

    ``copy`` (``dst[:] = src``: read + write), ``read`` (a sum: read only), ``triad``
    (``a = b + s c`` as numpy does it, two passes: 5 array transfers).
    """
    n = n_bytes // 8
    src = np.random.default_rng(0).random(n)
    dst = np.empty_like(src)
    other = src[::-1].copy()

    def best(f: Any) -> float:
        f()  # warm up: page in
        out = np.inf
        for _ in range(repeats):
            t0 = time.perf_counter()
            f()
            out = min(out, time.perf_counter() - t0)
        return float(out)

    copy_s = best(lambda: np.copyto(dst, src))
    read_s = best(lambda: np.add.reduce(src))

    def triad() -> None:
        np.multiply(other, 3.0, out=dst)
        np.add(dst, src, out=dst)

    triad_s = best(triad)
    return {
        "copy_b_s": 2 * n * 8 / copy_s,
        "read_b_s": n * 8 / read_s,
        "triad_b_s": 5 * n * 8 / triad_s,
    }


def engine_rate(tiny: bool) -> dict[str, float]:
    """Device-steps/s of the engine's run loop on per-server traces (nothing grouped): 10 240 GPUs, 30 minutes.

    Only :meth:`Engine.run` is timed (not reading the traces or building the facility).
    """
    import twin
    from benchmarks.cases import FLEETS, TINY_GPUS, scenario_overrides
    from twin.simulation import build_engine

    n_gpus = TINY_GPUS if tiny else FLEETS["10k"]
    duration = 60.0 if tiny else 1800.0
    sc = twin.load_scenario("default", scenario_overrides(n_gpus, duration, 1.0, 60.0, trace=True))
    engine = build_engine(sc)
    t0 = time.perf_counter()
    engine.run()
    wall = time.perf_counter() - t0
    return {"n_gpus": n_gpus, "duration_s": duration, "wall_s": wall, "device_steps_per_s": n_gpus * duration / wall}


def bandwidth_report(tiny: bool = False, engine: dict[str, Any] | None = None) -> dict[str, Any]:
    """Bandwidth, the bound it sets, and the engine against it (``engine`` from a suite case, or measured)."""
    bw = copy_bandwidth_b_s((16 if tiny else 512) * 2**20)
    bytes_per_step = MIN_BYTES_PER_SERVER_TICK / GPUS_PER_SERVER
    bound = bw["copy_b_s"] / bytes_per_step
    eng = engine or engine_rate(tiny)
    rate = float(eng["device_steps_per_s"])
    equivalent = bw["copy_b_s"] / rate  # bytes the engine could have moved in the time of one device-step
    statement = (
        f"Memory bandwidth (numpy copy) {bw['copy_b_s'] / 1e9:.1f} GB/s; a per-server state update needs "
        f"{MIN_BYTES_PER_SERVER_TICK} B per server-tick = {bytes_per_step:g} B per device-step, so at most "
        f"{bound:.3g} device-steps/s. The engine on per-server traces (nothing grouped) does {rate:.3g} "
        f"device-steps/s: {100 * rate / bound:.1f} % of that bound. Each device-step takes the time of moving "
        f"{equivalent:.0f} B ({equivalent * GPUS_PER_SERVER / 8:.0f} float64 values per server-tick): numpy "
        "writes and reads every intermediate array of the serving, power and chain model."
    )
    return {
        "copy_gb_s": bw["copy_b_s"] / 1e9,
        "read_gb_s": bw["read_b_s"] / 1e9,
        "triad_gb_s": bw["triad_b_s"] / 1e9,
        "min_bytes_per_server_tick": MIN_BYTES_PER_SERVER_TICK,
        "min_bytes_per_device_step": bytes_per_step,
        "bound_device_steps_per_s": bound,
        "engine": eng,
        "engine_fraction_of_bound": rate / bound,
        "engine_equivalent_bytes_per_device_step": equivalent,
        "statement": statement,
    }
