"""Why a changed lever changed nothing, read from the two runs' results (no Streamlit).

A planner who moves a lever and sees no change should not have to guess: a power cap above
what the GPUs draw never binds, a site limit above the facility's peak never acts, an
economiser in warm air never runs. :func:`no_effect` says so, with the figure that shows it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from twin.results import Result
from twin.weather import SYNTHETIC_KINDS


def no_effect(base: Result, what_if: Result, changed: Iterable[str]) -> list[str]:
    """One sentence for each changed setting that did not act in the what-if.

    Parameters
    ----------
    base, what_if : Result
        The two runs.
    changed : iterable of str
        The dotted scenario paths the what-if sets (the keys of its ``--set`` overrides).

    Returns
    -------
    list of str
        Markdown sentences; empty when every change acted (or none can be explained).
    """
    keys = set(changed)
    k, sc = what_if.kpis, what_if.scenario
    reasons: list[str] = []
    cap_w = _get(sc, "fleet.power_cap_w")
    if "fleet.power_cap_w" in keys and cap_w is not None and _zero(k.get("capped_gpu_h")):
        peak_w, pool = peak_gpu_power(what_if)
        whose = f" ({pool})" if pool else ""
        reasons.append(
            f"The {cap_w:,.0f} W GPU power cap never binds: GPU power peaks at {peak_w:,.0f} W{whose}, "
            "the highest interval mean of the run."
        )
    limit_w = _get(sc, "controls.site_power_limit_w")
    if "controls.site_power_limit_w" in keys and limit_w is not None and _zero(k.get("time_site_limited_s")):
        peak = k.get("peak_facility_power_w")
        reasons.append(
            f"The {limit_w / 1e3:,.0f} kW site power limit never binds: the facility's power peaks at {_kw(peak)} kW."
        )
    if "cooling.economiser" in keys and _get(sc, "cooling.economiser") and _zero(k.get("free_cooling_h")):
        ts = what_if.timeseries
        reasons.append(
            "The economiser never runs: the outdoor air is too warm for free cooling all through the run "
            f"(wet-bulb {ts['wet_bulb_c'].min():.1f} °C at its lowest, dry-bulb {ts['dry_bulb_c'].min():.1f} °C)."
        )
    synthetic = _get(sc, "weather.source") in SYNTHETIC_KINDS
    if "start" in keys and synthetic and _same(base.kpis, what_if.kpis):
        reasons.append(
            "The start date picks the season of a weather file; a synthetic climate "
            f"({_get(sc, 'weather.source')}) is the same every day."
        )
    if keys and not reasons and _same(base.kpis, what_if.kpis):
        reasons.append("The changes leave the energy in and the tokens out exactly as in the baseline.")
    return reasons


def peak_gpu_power(result: Result) -> tuple[float, str | None]:
    """The highest interval-mean GPU power of any pool [W] and that pool (``None``: the fleet mean)."""
    ts = result.timeseries
    columns = {pool: f"{pool}_gpu_power_mean_w" for pool in result.pool_names}
    peaks = {pool: float(ts[c].max()) for pool, c in columns.items() if c in ts and ts[c].notna().any()}
    if not peaks:
        return float(ts["gpu_power_mean_w"].max()), None
    pool = max(peaks, key=lambda p: peaks[p])
    return peaks[pool], pool


def _get(scenario: Mapping[str, Any], path: str) -> Any:
    """``scenario["a"]["b"]`` for ``"a.b"``; None where a level is missing."""
    node: Any = scenario
    for part in path.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def _zero(value: float | None) -> bool:
    """A KPI that is exactly zero (undefined is not zero)."""
    return value is not None and float(value) == 0.0


def _kw(value: float | None) -> str:
    return "n/a" if value is None or not math.isfinite(float(value)) else f"{float(value) / 1e3:,.0f}"


def _same(base: Mapping[str, float], what_if: Mapping[str, float]) -> bool:
    """The same energy in and tokens out (to rounding)."""
    return all(
        math.isclose(float(base.get(key, math.nan)), float(what_if.get(key, math.nan)), rel_tol=1e-12)
        for key in ("facility_energy_j", "tokens_out")
    )
