"""The one-page report: where the energy went and what it produced.

Undefined values (null KPIs, NaN intervals) are gaps in the charts and ``n/a`` in the titles.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd

matplotlib.use("Agg")
import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import matplotlib.ticker as mticker
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from twin.ledger import category_label
from twin.results import Result, atomic_write, fmt_value, null_undefined
from twin.units import J_PER_KWH, S_PER_HOUR


def report_figure(result: Result) -> Figure:
    """A 2 x 2 figure: power over time, PUE and tokens/s, energy breakdown, temperatures.

    Time axes show clock time (``HH:MM`` for a run of a day or less, dates beyond); every axis
    groups thousands.
    """
    ts = null_undefined(result.timeseries)  # an infinity (no GPU up) is a gap, not an axis to -inf
    k = result.kpis
    clock = result.clock_time()
    fig, axes = plt.subplots(2, 2, figsize=(13, 9), constrained_layout=True)
    ax = axes[0, 0]
    other = ts["other_facility_power_w"]
    stack = [ts["it_power_w"], ts["losses_power_w"], ts["cooling_power_w"], other]
    ax.stackplot(
        clock, [s / 1e3 for s in stack], labels=["IT", "conversion losses", "cooling", "other facility"], alpha=0.85
    )
    ax.plot(clock, ts["facility_peak_power_w"] / 1e3, color="k", lw=0.8, label="facility peak in interval")
    ax.set_ylabel("power [kW]")
    ax.set_title("Facility power by destination")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3, fontsize=8, frameon=False)

    ax = axes[0, 1]
    ax.plot(clock, ts["pue"], color="tab:red", label="PUE")
    ax.set_ylabel("PUE [-]", color="tab:red")
    ax2 = ax.twinx()
    ax2.plot(clock, _per_s(ts["tokens_out"], ts["duration_s"]), color="tab:blue", label="tokens out/s")
    ax2.set_ylabel("tokens out per second", color="tab:blue")
    ax2.yaxis.set_major_formatter(_THOUSANDS)
    ax.set_title("PUE and token output")

    ax = axes[1, 0]
    energy = {c[len("energy_") : -2]: v for c, v in k.items() if c.startswith("energy_") and c.endswith("_j")}
    names = sorted(energy, key=lambda n: energy[n])
    ax.barh([category_label(n) for n in names], [energy[n] / J_PER_KWH for n in names], color="tab:gray")
    ax.set_xlabel("energy [kWh]")
    ax.xaxis.set_major_formatter(_THOUSANDS)
    ax.set_title(f"Where {fmt_value(k.get('facility_energy_kwh'), '{:,.0f}')} kWh went")
    ax.text(
        1.0,
        -0.16,
        f"ledger: metered minus booked energy {fmt_value(k.get('ledger_residual_j'), '{:.2g}')} J",
        transform=ax.transAxes,
        ha="right",
        va="top",
        fontsize=7,
        color="0.4",
    )
    ax = axes[1, 1]
    ax.plot(clock, ts["die_temp_max_c"], label="max die temperature", color="tab:orange")
    ax.plot(clock, ts["inlet_temp_max_c"], label=f"max {result.inlet_medium} inlet temperature", color="tab:green")
    ax.set_ylabel("temperature [°C]")
    ax3 = ax.twinx()
    ax3.plot(clock, ts["clock_fraction_mean"], color="tab:purple", lw=0.8, label="mean clock fraction")
    ax3.set_ylim(0, 1.05)
    ax3.set_ylabel("clock fraction", color="tab:purple")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, fontsize=8, frameon=False)
    ax.set_title("Temperatures and clocks")
    for ax in (axes[0, 0], axes[0, 1], axes[1, 1]):
        _clock_axis(ax, clock)
    axes[0, 0].yaxis.set_major_formatter(_THOUSANDS)
    name = result.scenario.get("name")
    hours_run = _num(k, "duration_s") / S_PER_HOUR
    fig.suptitle(
        f"{name}: {fmt_value(k.get('n_gpus'), '{:,.0f}')} GPUs, {fmt_value(hours_run, '{:,.1f}')} h — "
        f"{fmt_value(k.get('tokens_per_kwh'), '{:,.0f}')} tokens/kWh, "
        f"{fmt_value(k.get('j_per_token_facility'), '{:.3g}')} J/token, PUE {fmt_value(k.get('pue'), '{:.3f}')}, "
        f"peak {fmt_value(_num(k, 'peak_facility_power_w') / 1e6, '{:.3f}')} MW",
        fontsize=12,
    )
    return fig


#: Tick labels with thousands grouped (``12,000``).
_THOUSANDS = mticker.StrMethodFormatter("{x:,.0f}")


def _clock_axis(ax: Axes, clock: pd.Series) -> None:
    """Clock-time ticks: ``HH:MM`` and the date in the label for a run within one day, dates beyond."""
    if clock.empty:
        return
    first, last = clock.iloc[0], clock.iloc[-1]
    if last.normalize() == first.normalize():
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M"))
        ax.set_xlabel(f"clock time on {first:%d %b %Y}")
    else:
        locator = mdates.AutoDateLocator()
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        ax.set_xlabel("date and clock time")


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
