"""The report's rows: what each interval's sums become in the time series (:class:`twin.engine.kernel.Engine`).

The engine sums each interval's energies, tallies and extremes (:class:`twin.engine.segments.IntervalAccumulator`,
with the kinds :func:`interval_kinds` names); :func:`interval_rows` turns the sums of the intervals
just closed into report columns (:func:`report_columns`). Undefined values are NaN here (null in a
report): a mean over no live GPU, a PUE the meter cannot give.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from twin._types import FloatArray
from twin.engine.segments import Kind
from twin.units import L_PER_M3, WATER_DENSITY_KG_M3

#: Token tallies kept per pool and interval.
TOKEN_KEYS = ("prefill", "generated", "training", "step_x_tokens", "batch_x_tokens", "requests")


def interval_kinds(categories: tuple[str, ...], pool_names: list[str]) -> dict[str, Kind]:
    """How each interval quantity accumulates over the ticks of an interval (sum or max)."""
    kinds: dict[str, Kind] = {
        "duration_s": "sum",
        "metered_j": "sum",
        "peak_facility_power_w": "max",
        "max_die_temp_c": "max",
        "max_inlet_temp_c": "max",
        "throttled_gpu_s": "sum",
        "capped_gpu_s": "sum",
        "clock_gpu_s": "sum",
        "gpu_s": "sum",
        "water_kg": "sum",
        "free_cooling_s": "sum",
        "unmet_heat_j": "sum",
    }
    kinds.update({f"e:{name}": "sum" for name in categories})
    kinds.update({f"{name}:{key}": "sum" for name in pool_names for key in TOKEN_KEYS})
    return kinds


def report_columns(categories: tuple[str, ...], pool_names: list[str], extra: list[str]) -> list[str]:
    """The time series' columns: the facility's, each ledger category's power, ``extra``, each pool's."""
    cols = [
        "time_s", "duration_s", "facility_power_w", "facility_peak_power_w", "it_power_w",
        "cooling_power_w", "losses_power_w", "pue", "gpu_power_mean_w", "clock_fraction_mean",
        "die_temp_max_c", "inlet_temp_max_c", "throttled_gpu_s", "capped_gpu_s", "servers_up",
        "dry_bulb_c", "wet_bulb_c", "free_cooling_fraction", "water_l", "unmet_heat_w",
        "loop_excess_k", "room_excess_k",
        "tokens_generated", "tokens_prefill", "tokens_training", "tokens_out",
    ]  # fmt: skip
    cols += [f"{c}_power_w" for c in categories]
    cols += extra
    for name in pool_names:
        cols += [
            f"{name}_requests", f"{name}_tokens_prefill", f"{name}_tokens_generated",
            f"{name}_tokens_training", f"{name}_backlog_tokens", f"{name}_batch_mean",
            f"{name}_step_time_mean_s",
        ]  # fmt: skip
    return cols


def interval_rows(
    v: dict[str, FloatArray],
    point: dict[str, FloatArray],
    i0: int,
    report_s: float,
    categories: tuple[str, ...],
    pool_names: list[str],
    servers_up: float,
    plant: Any,
) -> dict[str, Any]:
    """Report columns of the intervals ``i0, i0 + 1, ...`` from their sums ``v``.

    ``point`` holds what is read at the intervals' end (weather, each pool's backlog),
    ``servers_up`` the servers up then, and ``plant`` the cooling plant (its loop and room excess).
    """
    dur = v["duration_s"]
    n = dur.size
    e = {name: v[f"e:{name}"] for name in categories}
    it_j = e["accelerators"] + e["server_other"]
    cooling_j = sum((x for k, x in e.items() if k.startswith("cooling")), np.zeros(n))
    losses_j = e["psu_loss"] + e["pdu_loss"] + e["ups_loss"] + e["transformer_loss"]
    gpu_s = v["gpu_s"]
    row: dict[str, Any] = {
        "time_s": (i0 + np.arange(n)) * report_s,
        "duration_s": dur,
        "facility_power_w": v["metered_j"] / dur,
        "facility_peak_power_w": v["peak_facility_power_w"],
        "it_power_w": it_j / dur,
        "cooling_power_w": cooling_j / dur,
        "losses_power_w": losses_j / dur,
        "pue": interval_pue(v["metered_j"], it_j, e.get("battery_net")),
        "gpu_power_mean_w": ratio(e["accelerators"], gpu_s),  # no GPU up: undefined
        "clock_fraction_mean": ratio(v["clock_gpu_s"], gpu_s),
        "die_temp_max_c": _finite_or_nan(v["max_die_temp_c"]),  # no GPU up: undefined, not -inf
        "inlet_temp_max_c": _finite_or_nan(v["max_inlet_temp_c"]),
        "throttled_gpu_s": v["throttled_gpu_s"],
        "capped_gpu_s": v["capped_gpu_s"],
        "servers_up": servers_up,
        "dry_bulb_c": point["dry_bulb_c"],
        "wet_bulb_c": point["wet_bulb_c"],
        "free_cooling_fraction": v["free_cooling_s"] / dur,
        "water_l": v["water_kg"] / WATER_DENSITY_KG_M3 * L_PER_M3,
        "unmet_heat_w": v["unmet_heat_j"] / dur,
        "loop_excess_k": getattr(plant, "loop_excess_k", 0.0),
        "room_excess_k": getattr(plant, "room_excess_k", 0.0),
    }
    row.update({f"{c}_power_w": e[c] / dur for c in categories})
    totals = {"prefill": np.zeros(n), "generated": np.zeros(n), "training": np.zeros(n)}
    for name in pool_names:
        for kind in totals:
            x = v[f"{name}:{kind}"]
            totals[kind] = totals[kind] + x
            row[f"{name}_tokens_{kind}"] = x
        gen = v[f"{name}:generated"]
        row[f"{name}_requests"] = v[f"{name}:requests"]
        row[f"{name}_backlog_tokens"] = point[f"{name}_backlog_tokens"]
        row[f"{name}_batch_mean"] = ratio(v[f"{name}:batch_x_tokens"], gen, 0.0)
        row[f"{name}_step_time_mean_s"] = ratio(v[f"{name}:step_x_tokens"], gen)
    row["tokens_prefill"] = totals["prefill"]
    row["tokens_generated"] = totals["generated"]
    row["tokens_training"] = totals["training"]
    row["tokens_out"] = totals["generated"] + totals["training"]
    return row


def ratio(num: Any, den: Any, empty: float = np.nan) -> Any:
    """``num / den`` where ``den > 0``, else ``empty`` (NaN: undefined); a float for scalars."""
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    out = np.divide(num, den, out=np.full(np.shape(num), empty), where=den > 0)
    return out if out.ndim else float(out)


def interval_pue(metered_j: FloatArray, it_j: FloatArray, battery_net_j: FloatArray | None) -> FloatArray:
    """Metered facility input over IT energy per interval; NaN where that ratio means nothing.

    Undefined: no IT energy (every server down), nothing metered (the UPS battery carried the
    whole site: the ratio would read 0), or the battery discharging for part of the interval (the
    meter misses part of what the facility drew: the ratio would read below its true value).
    """
    defined = (np.asarray(it_j) > 0) & (np.asarray(metered_j) > 0)
    if battery_net_j is not None:
        defined &= np.asarray(battery_net_j) >= 0
    return np.divide(metered_j, it_j, out=np.full(np.shape(metered_j), np.nan), where=defined)


def _finite_or_nan(x: FloatArray) -> FloatArray:
    """``x`` with infinities (a maximum over no live device) as NaN."""
    x = np.asarray(x, dtype=np.float64)
    return np.where(np.isfinite(x), x, np.nan)
