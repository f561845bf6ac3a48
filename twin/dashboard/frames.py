"""The tables the dashboard draws, built from :class:`~twin.results.Result` objects (no Streamlit).

Each function takes results or KPI dicts and returns a pandas DataFrame or plain values in the
result's units, so the app only lays them out and the numbers are tested here.
"""

from __future__ import annotations

import dataclasses
import io
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from twin.kpis import SITE_KPIS
from twin.ledger import IT_CATEGORIES, LOSS_CATEGORIES, category_label
from twin.results import Result, fmt_value, parquet_table, to_json
from twin.units import J_PER_KWH, S_PER_HOUR

#: Labels of the two runs in every comparison.
BASELINE, WHAT_IF = "baseline", "what-if"


@dataclass(frozen=True)
class KpiCard:
    """A headline KPI: key in ``Result.kpis``, label, unit, format, and which way is better."""

    key: str
    label: str
    unit: str
    fmt: str
    better: Literal["lower", "higher", "neither"] = "neither"
    scale: float = 1.0
    missing: str = "n/a"

    def value(self, kpis: Mapping[str, float]) -> float:
        """The KPI in display units (``nan`` when missing or undefined: ``None``, a JSON null)."""
        v = kpis.get(self.key)
        return math.nan if v is None else float(v) * self.scale

    def text(self, kpis: Mapping[str, float]) -> str:
        """The formatted value with its unit."""
        v = self.value(kpis)
        if not math.isfinite(v):
            return self.missing
        return f"{self.fmt.format(v)} {self.unit}".strip()

    @property
    def is_temperature(self) -> bool:
        """A temperature: its change is a difference in kelvin, never a per cent of °C."""
        return self.unit == "°C"

    def titled(self, inlet: str) -> KpiCard:
        """This card with ``{inlet}`` in its label filled in (``coolant``, ``air``)."""
        return dataclasses.replace(self, label=self.label.format(inlet=inlet)) if "{" in self.label else self


#: The cards the app shows, energy in and tokens out first.
KPI_CARDS: tuple[KpiCard, ...] = (
    KpiCard("facility_energy_kwh", "Energy in (grid)", "kWh", "{:,.0f}", "lower"),
    KpiCard("tokens_out", "Tokens out", "M", "{:,.0f}", "higher", scale=1e-6),
    KpiCard("tokens_per_kwh", "Tokens per kWh", "", "{:,.0f}", "higher"),
    KpiCard("j_per_token_facility", "Energy per token", "J", "{:.3f}", "lower"),
    KpiCard("pue", "PUE", "", "{:.3f}", "lower"),
    KpiCard("peak_facility_power_w", "Peak facility power", "kW", "{:,.0f}", "lower", scale=1e-3),
    KpiCard("max_die_temp_c", "Max die temperature", "°C", "{:.1f}", "lower"),
    KpiCard("throttled_gpu_h", "Throttled GPU-hours", "h", "{:,.1f}", "lower"),
    KpiCard("water_l", "Water", "L", "{:,.0f}", "lower"),
    KpiCard("carbon_kg", "Carbon", "t CO2e", "{:,.1f}", "lower", scale=1e-3),
)

#: Extra rows of the comparison table (after the cards).
TABLE_EXTRA: tuple[KpiCard, ...] = (
    KpiCard("it_energy_kwh", "IT energy", "kWh", "{:,.1f}", "lower"),
    KpiCard("cooling_energy_j", "Cooling energy", "kWh", "{:,.1f}", "lower", scale=1 / J_PER_KWH),
    KpiCard("conversion_loss_energy_j", "Conversion losses", "kWh", "{:,.1f}", "lower", scale=1 / J_PER_KWH),
    KpiCard("j_per_token_it", "Energy per token (IT)", "J", "{:.3f}", "lower"),
    KpiCard("mean_facility_power_w", "Mean facility power", "kW", "{:,.1f}", "lower", scale=1e-3),
    KpiCard("capped_gpu_h", "Power-capped GPU-hours", "h", "{:,.1f}"),
    KpiCard("max_inlet_temp_c", "Max {inlet} inlet temperature", "°C", "{:.1f}", "lower"),
    KpiCard("free_cooling_h", "Free-cooling hours", "h", "{:,.1f}", "higher"),
    KpiCard("wue_l_per_kwh", "WUE", "L/kWh", "{:.3f}", "lower"),
    KpiCard("unmet_heat_j", "Unmet heat", "kWh", "{:,.2f}", "lower", scale=1 / J_PER_KWH),
    KpiCard("energy_cost", "Energy cost", SITE_KPIS["energy_cost"].unit, "{:,.0f}", "lower"),
    KpiCard("n_gpus", "GPUs", "", "{:,.0f}"),
)


#: Fault and control outcomes, shown when a run has events or a fault KPI is not zero.
FAULT_CARDS: tuple[KpiCard, ...] = (
    KpiCard("tokens_lost", "Tokens lost", "M", "{:,.1f}", "lower", scale=1e-6),
    KpiCard("load_shed_j", "Load shed", "kWh", "{:,.1f}", "lower", scale=1 / J_PER_KWH),
    KpiCard("battery_min_soc", "Battery min charge", "%", "{:.1f}", "higher", scale=100.0, missing="no battery"),
    KpiCard("time_to_thermal_shutdown_s", "Fault to thermal shutdown", "s", "{:,.0f}", "higher", missing="no shutdown"),
    KpiCard("min_servers_up", "Fewest servers up", "", "{:,.0f}", "higher"),
    KpiCard("tokens_out_net", "Tokens out net of lost", "M", "{:,.0f}", "higher", scale=1e-6),
    KpiCard("time_throttled_s", "Time thermally throttled", "s", "{:,.0f}", "lower"),
    KpiCard("time_site_limited_s", "Time at the site power limit", "h", "{:,.2f}", "neither", scale=1 / S_PER_HOUR),
    KpiCard("generator_output_j", "Generator output", "kWh", "{:,.1f}", "neither", scale=1 / J_PER_KWH),
    KpiCard("ups_load_fraction_max", "Peak UPS load (of one side)", "%", "{:.1f}", "lower", scale=100.0),
)
#: Fault KPIs whose non-zero value means a fault or control acted.
_FAULT_SIGNS: tuple[str, ...] = ("tokens_lost", "load_shed_j", "time_throttled_s", "time_site_limited_s")


def has_fault_outcomes(*results: Result) -> bool:
    """Whether any run logged an event or lost, shed, throttled or limited anything."""
    for result in results:
        if len(result.events):
            return True
        if any(float(result.kpis.get(key, 0.0)) != 0.0 for key in _FAULT_SIGNS):
            return True
    return False


def events_table(result: Result) -> pd.DataFrame:
    """The run's discrete events for display: time [h], time [s], event, detail."""
    ev = result.events
    return pd.DataFrame(
        {
            "time [h]": ev["time_s"] / S_PER_HOUR,
            "time [s]": ev["time_s"],
            "event": ev["event"].astype(str),
            "detail": ev["detail"].astype(str),
        }
    )


#: Per-pool latency KPIs ``<pool>_<suffix>`` (twin.engine.pool_stats), in display order.
LATENCY_KPIS: tuple[tuple[str, str], ...] = (
    ("ttft_p50_s", "TTFT p50"),
    ("ttft_p99_s", "TTFT p99"),
    ("tpot_p50_s", "TPOT p50"),
    ("tpot_p99_s", "TPOT p99"),
)


def latency_pools(kpis: Mapping[str, float]) -> list[str]:
    """Inference pools that report latency KPIs, in KPI order."""
    suffix = "_" + LATENCY_KPIS[0][0]
    return [key[: -len(suffix)] for key in kpis if key.endswith(suffix)]


def latency_table(base: Mapping[str, float], what_if: Mapping[str, float]) -> pd.DataFrame:
    """``workload, latency, baseline [ms], what-if [ms], change %`` for every pool with latency KPIs."""
    pools = list(dict.fromkeys([*latency_pools(base), *latency_pools(what_if)]))
    rows = []
    for pool in pools:
        for suffix, label in LATENCY_KPIS:
            b = float(base.get(f"{pool}_{suffix}", math.nan)) * 1e3
            w = float(what_if.get(f"{pool}_{suffix}", math.nan)) * 1e3
            rows.append(
                {
                    "workload": pool,
                    "latency": label,
                    f"{BASELINE} [ms]": b,
                    f"{WHAT_IF} [ms]": w,
                    "change %": 100.0 * (w - b) / b if b > 0 and math.isfinite(w) else math.nan,
                }
            )
    columns = ["workload", "latency", f"{BASELINE} [ms]", f"{WHAT_IF} [ms]", "change %"]
    return pd.DataFrame(rows, columns=columns)


def latency_cdf(base: Result, what_if: Result) -> pd.DataFrame:
    """``run, workload, metric, latency_ms, share``: the replayed TTFT and TPOT distributions as CDFs.

    From each run's request-level histogram (``Result.latency_histogram``, log bins): ``share`` is
    the fraction of the pool's requests at or below the bin's upper edge ``latency_ms``, so it
    rises to 1 in every (run, workload, metric). Empty when neither run was replayed.
    """
    frames = []
    for run, result in ((BASELINE, base), (WHAT_IF, what_if)):
        hist = result.latency_histogram
        if hist is None:
            continue
        for (pool, metric), g in hist[hist["metric"].isin(["ttft", "tpot"])].groupby(["pool", "metric"], sort=False):
            g = g.sort_values("high_s")
            counts = g["count"].to_numpy(dtype=np.float64)
            frames.append(
                pd.DataFrame(
                    {
                        "run": run,
                        "workload": pool,
                        "metric": str(metric).upper(),
                        "latency_ms": g["high_s"].to_numpy() * 1e3,
                        "share": np.cumsum(counts) / counts.sum(),
                    }
                )
            )
    columns = ["run", "workload", "metric", "latency_ms", "share"]
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)


def delta(card: KpiCard, base: Mapping[str, float], what_if: Mapping[str, float]) -> str | None:
    """``st.metric`` delta text: the change in display units and in per cent; None when unchanged.

    Unchanged means equal as shown: a change that rounds to zero in the card's format is no
    change (never ``-0.0``). A temperature's change is a difference in kelvin (``+6.8 K``), not a
    per cent of a Celsius reading.
    """
    b, w = card.value(base), card.value(what_if)
    if not (math.isfinite(b) and math.isfinite(w)):
        return None
    diff = w - b
    shown = card.fmt.format(abs(diff))
    if not any(ch in "123456789" for ch in shown):
        return None
    sign = "+" if diff > 0 else "-"
    if card.is_temperature:
        return f"{sign}{shown} K"
    pct = f" ({diff / abs(b):+.1%})" if b != 0 else ""
    return f"{sign}{shown}{pct}"


def signed(value: float, digits: int = 1) -> str:
    """``value`` with its sign at ``digits`` decimals; one that rounds to zero reads ``0.0`` (never ``-0.0``)."""
    if not math.isfinite(value):
        return ""
    rounded = round(value, digits)
    return f"{0.0:.{digits}f}" if rounded == 0 else f"{rounded:+.{digits}f}"


def delta_color(card: KpiCard) -> Literal["normal", "inverse", "off"]:
    """Green when the change is good: ``inverse`` for lower-is-better KPIs."""
    return {"lower": "inverse", "higher": "normal", "neither": "off"}[card.better]  # type: ignore[return-value]


def inlet_medium(*results: Result) -> str:
    """What the runs' inlet temperature measures: ``coolant``, ``air``, or ``coolant or air`` when they differ."""
    media = dict.fromkeys(r.inlet_medium for r in results)
    return " or ".join(media) or "server"


def _compared(
    base: Mapping[str, float], what_if: Mapping[str, float], inlet: str
) -> Iterator[tuple[KpiCard, float, float]]:
    """Every card and extra row either run reports, with its baseline and what-if values."""
    for card in (*KPI_CARDS, *TABLE_EXTRA):
        if card.key in base or card.key in what_if:
            yield card.titled(inlet), card.value(base), card.value(what_if)


def comparison_table(base: Mapping[str, float], what_if: Mapping[str, float], inlet: str = "server") -> pd.DataFrame:
    """KPI, unit, baseline, what-if, change and change % for every card and extra row.

    ``inlet`` names what the inlet temperature measures (:func:`inlet_medium`). A temperature has
    no change % (a per cent of a Celsius reading means nothing).
    """
    rows = []
    for card, b, w in _compared(base, what_if, inlet):
        relative = b != 0 and math.isfinite(b) and not card.is_temperature
        rows.append(
            {
                "KPI": card.label,
                "unit": card.unit,
                BASELINE: b,
                WHAT_IF: w,
                "change": w - b,
                "change %": 100.0 * (w - b) / abs(b) if relative else math.nan,
            }
        )
    return pd.DataFrame(rows)


def comparison_text(base: Mapping[str, float], what_if: Mapping[str, float], inlet: str = "server") -> pd.DataFrame:
    """:func:`comparison_table` as text, each value in its KPI's format (for display)."""
    rows = []
    for card, b, w in _compared(base, what_if, inlet):
        change = delta(card, base, what_if)
        rows.append(
            {
                "KPI": card.label,
                BASELINE: card.text(base),
                WHAT_IF: card.text(what_if),
                "change": "" if change is None else change,
                "better": _verdict(card, b, w),
            }
        )
    return pd.DataFrame(rows)


def _verdict(card: KpiCard, b: float, w: float) -> str:
    if card.better == "neither" or not (math.isfinite(b) and math.isfinite(w)):
        return ""
    if card.fmt.format(b) == card.fmt.format(w):  # equal as shown
        return "="
    return "what-if" if (w < b) == (card.better == "lower") else "baseline"


# ----------------------------------------------------------------------------- energy flow

#: Where the grid's energy goes, in drawing order (IT last: it is what makes tokens).
FLOW_GROUPS: tuple[str, ...] = ("conversion losses", "cooling", "other facility", "IT")


def flow_group(category: str) -> str:
    """The flow group of a ledger category (``ups_loss`` → conversion losses)."""
    if category in IT_CATEGORIES:
        return "IT"
    if category in LOSS_CATEGORIES:
        return "conversion losses"
    if category.startswith("cooling"):
        return "cooling"
    return "other facility"


def energy_flow(kpis: Mapping[str, float]) -> pd.DataFrame:
    """Energy per ledger category: ``group``, ``category``, ``energy_kwh``, ``share`` of the grid input.

    The categories are every ``energy_<category>_j`` KPI, so the rows add up to the facility
    energy to the ledger's tolerance.
    """
    rows = []
    facility_j = float(kpis["facility_energy_j"])
    for key, value in kpis.items():
        if not (key.startswith("energy_") and key.endswith("_j")):
            continue
        category = key[len("energy_") : -len("_j")]
        rows.append(
            {
                "group": flow_group(category),
                "category": category_label(category),
                "energy_kwh": float(value) / J_PER_KWH,
                "share": float(value) / facility_j if facility_j > 0 else math.nan,
            }
        )
    frame = pd.DataFrame(rows, columns=["group", "category", "energy_kwh", "share"])
    order = {g: i for i, g in enumerate(FLOW_GROUPS)}
    frame["_o"] = frame["group"].map(order)
    return frame.sort_values(["_o", "energy_kwh"], ascending=[True, False]).drop(columns="_o").reset_index(drop=True)


def flow_comparison(base: Mapping[str, float], what_if: Mapping[str, float]) -> pd.DataFrame:
    """:func:`energy_flow` of both runs, stacked, with a ``run`` column."""
    return pd.concat(
        [energy_flow(base).assign(run=BASELINE), energy_flow(what_if).assign(run=WHAT_IF)], ignore_index=True
    )


def flow_sentence(kpis: Mapping[str, float]) -> str:
    """One line from the grid to the tokens: kWh in, the share that reaches IT, tokens out."""
    facility = _num(kpis, "facility_energy_kwh")
    it = _num(kpis, "it_energy_kwh")
    tokens = _num(kpis, "tokens_out")
    acc = _num(kpis, "energy_accelerators_j") / J_PER_KWH
    share = it / facility if facility > 0 else math.nan
    return (
        f"{fmt_value(facility, '{:,.0f}')} kWh from the grid → {fmt_value(it, '{:,.0f}')} kWh to IT "
        f"({fmt_value(share, '{:.1%}')}), of which {fmt_value(acc, '{:,.0f}')} kWh to accelerators → "
        f"{fmt_value(tokens / 1e6, '{:,.0f}')} M tokens "
        f"({fmt_value(kpis.get('tokens_per_kwh'), '{:,.0f}')} per grid kWh)"
    )


def _num(kpis: Mapping[str, float], key: str) -> float:
    """A KPI as a float: NaN when missing or undefined (``None``)."""
    v = kpis.get(key)
    return math.nan if v is None else float(v)


# ----------------------------------------------------------------------------- time series

#: Time-series quantities for the charts: column → (label, scale to display units).
SERIES: dict[str, tuple[str, float]] = {
    "facility_power_w": ("facility power [kW]", 1e-3),
    "it_power_w": ("IT power [kW]", 1e-3),
    "cooling_power_w": ("cooling power [kW]", 1e-3),
    "losses_power_w": ("conversion losses [kW]", 1e-3),
    "pue": ("PUE [-]", 1.0),
    "die_temp_max_c": ("max die temperature [°C]", 1.0),
    "inlet_temp_max_c": ("max {inlet} inlet temperature [°C]", 1.0),
    "clock_fraction_mean": ("mean clock fraction [-]", 1.0),
    "dry_bulb_c": ("outdoor dry-bulb [°C]", 1.0),
    "tokens_per_s": ("tokens out per second [k/s]", 1e-3),
    "throttled_fraction": ("GPUs throttled [%]", 100.0),
    "capped_fraction": ("GPUs at the power cap [%]", 100.0),
    "servers_up": ("servers up", 1.0),
    "battery_soc": ("UPS battery state of charge [%]", 100.0),
    "generator_power_w": ("generator output [kW]", 1e-3),
}


def series_label(column: str, *results: Result) -> str:
    """The chart title of ``column`` for these runs (the inlet temperature says coolant or air)."""
    return SERIES[column][0].format(inlet=inlet_medium(*results))


def with_derived(result: Result) -> pd.DataFrame:
    """The time series plus ``hours``, ``tokens_per_s`` and throttled/capped GPU fractions."""
    ts = result.timeseries
    n_gpus = float(result.kpis.get("n_gpus", result.meta.get("n_gpus", math.nan)))
    gpu_s = ts["duration_s"] * n_gpus
    return ts.assign(
        hours=ts["time_s"] / S_PER_HOUR,
        tokens_per_s=ts["tokens_out"] / ts["duration_s"],
        throttled_fraction=ts["throttled_gpu_s"] / gpu_s,
        capped_fraction=ts["capped_gpu_s"] / gpu_s,
    )


def series_long(base: Result, what_if: Result, columns: list[str]) -> pd.DataFrame:
    """Long table ``time, run, quantity, value`` of ``columns`` for both runs (display units).

    ``time`` is clock time from the baseline's start for both runs (a what-if on another day
    keeps the time of day), naive, to be shown as is (a UTC scale in Vega-Lite). Values that are
    not finite (undefined: the PUE or maximum die temperature of an interval with every server
    down) become gaps (NaN).
    """
    start = pd.Timestamp(base.scenario["start"])
    parts = []
    for run, result in ((BASELINE, base), (WHAT_IF, what_if)):
        ts = with_derived(result)
        time = start + pd.to_timedelta(ts["time_s"], unit="s")
        for col in columns:
            label, scale = series_label(col, base, what_if), SERIES[col][1]
            value = (ts[col] * scale).where(np.isfinite(ts[col]))
            parts.append(pd.DataFrame({"time": time, "run": run, "quantity": label, "value": value}))
    return pd.concat(parts, ignore_index=True)


# ----------------------------------------------------------------------------- downloads


def summary_json(result: Result, overrides: Mapping[str, Any] | None = None) -> str:
    """``summary.json`` as ``twin run`` writes it (undefined values null), plus the what-if overrides."""
    doc = {**result.summary(), "overrides": dict(overrides or {})}
    return to_json(doc)


def timeseries_csv(result: Result) -> bytes:
    """The time series as CSV."""
    return result.timeseries.to_csv(index=False).encode()


def timeseries_parquet(result: Result) -> bytes:
    """The time series as Parquet (undefined values as nulls, as ``twin run`` writes it)."""
    buf = io.BytesIO()
    pq.write_table(parquet_table(result.timeseries), buf)
    return buf.getvalue()


def ledger_csv(result: Result) -> bytes:
    """The energy ledger (per interval and category) as CSV."""
    return result.ledger.to_csv(index=False).encode()
