"""The one-page report: where the energy went and what it produced.

Undefined values (null KPIs, NaN intervals) are gaps in the charts and ``n/a`` in the titles.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from twin.results import Result, atomic_write, fmt_value, null_undefined
from twin.units import J_PER_KWH, S_PER_HOUR


def report_figure(result: Result) -> Figure:
    """A 2 x 2 figure: power over time, PUE and tokens/s, energy breakdown, temperatures."""
    ts = null_undefined(result.timeseries)  # an infinity (no GPU up) is a gap, not an axis to -inf
    k = result.kpis
    hours = ts["time_s"] / S_PER_HOUR
    fig, axes = plt.subplots(2, 2, figsize=(13, 8.5), constrained_layout=True)
    ax = axes[0, 0]
    other = ts["other_facility_power_w"]
    stack = [ts["it_power_w"], ts["losses_power_w"], ts["cooling_power_w"], other]
    ax.stackplot(
        hours, [s / 1e3 for s in stack], labels=["IT", "conversion losses", "cooling", "other facility"], alpha=0.85
    )
    ax.plot(hours, ts["facility_peak_power_w"] / 1e3, color="k", lw=0.8, label="facility peak in interval")
    ax.set_xlabel("time [h]")
    ax.set_ylabel("power [kW]")
    ax.set_title("Facility power by destination")
    ax.legend(loc="lower right", fontsize=8)

    ax = axes[0, 1]
    ax.plot(hours, ts["pue"], color="tab:red", label="PUE")
    ax.set_xlabel("time [h]")
    ax.set_ylabel("PUE [-]", color="tab:red")
    ax2 = ax.twinx()
    ax2.plot(hours, _per_s(ts["tokens_out"], ts["duration_s"]), color="tab:blue", label="tokens out/s")
    ax2.set_ylabel("tokens out per second", color="tab:blue")
    ax.set_title("PUE and token output")

    ax = axes[1, 0]
    energy = {c[len("energy_") : -2]: v for c, v in k.items() if c.startswith("energy_") and c.endswith("_j")}
    names = sorted(energy, key=lambda n: energy[n])
    ax.barh(names, [energy[n] / J_PER_KWH for n in names], color="tab:gray")
    ax.set_xlabel("energy [kWh]")
    ax.set_title(
        f"Where {fmt_value(k.get('facility_energy_kwh'), '{:,.0f}')} kWh went "
        f"(ledger residual {fmt_value(k.get('ledger_residual_j'), '{:.2g}')} J)"
    )
    ax = axes[1, 1]
    ax.plot(hours, ts["die_temp_max_c"], label="max die temperature", color="tab:orange")
    ax.plot(hours, ts["inlet_temp_max_c"], label="max inlet temperature", color="tab:green")
    ax.set_xlabel("time [h]")
    ax.set_ylabel("temperature [°C]")
    ax3 = ax.twinx()
    ax3.plot(hours, ts["clock_fraction_mean"], color="tab:purple", lw=0.8, label="mean clock fraction")
    ax3.set_ylim(0, 1.05)
    ax3.set_ylabel("clock fraction", color="tab:purple")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("Temperatures and clocks")
    name = result.scenario.get("name")
    hours_run = _num(k, "duration_s") / S_PER_HOUR
    fig.suptitle(
        f"{name}: {fmt_value(k.get('n_gpus'), '{:.0f}')} GPUs, {fmt_value(hours_run, '{:.1f}')} h — "
        f"{fmt_value(k.get('tokens_per_kwh'), '{:,.0f}')} tokens/kWh, "
        f"{fmt_value(k.get('j_per_token_facility'), '{:.3g}')} J/token, PUE {fmt_value(k.get('pue'), '{:.3f}')}, "
        f"peak {fmt_value(_num(k, 'peak_facility_power_w') / 1e6, '{:.3f}')} MW",
        fontsize=12,
    )
    return fig


def _num(kpis: dict[str, float], key: str) -> float:
    """A KPI as a float; NaN when it is missing or null."""
    value = kpis.get(key)
    return np.nan if value is None else float(value)


def _per_s(amount: pd.Series, duration_s: pd.Series) -> pd.Series:
    """``amount / duration_s``; NaN for an interval of no duration."""
    return (amount / duration_s.where(duration_s > 0)).astype(float)


def write_report(result: Result, path: str | Path) -> Path:
    """Render :func:`report_figure` to a PNG, atomically."""
    fig = report_figure(result)
    try:
        return atomic_write(Path(path), lambda p: fig.savefig(p, dpi=110, format="png"))
    finally:
        plt.close(fig)
