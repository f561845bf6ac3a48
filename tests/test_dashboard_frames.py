"""The tables the dashboard draws (energy flow, comparisons, series, downloads) and the sweep reader."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import twin
from twin.dashboard import frames, sweeps
from twin.errors import TwinError
from twin.units import J_PER_KWH

SHORT = {"duration_s": 3600, "step_s": 10, "report_interval_s": 300}


@pytest.fixture(scope="module")
def pair() -> tuple[twin.Result, twin.Result]:
    base = twin.simulate(twin.load_scenario("default", SHORT))
    capped = twin.simulate(twin.load_scenario("default", {**SHORT, "fleet.power_cap_w": 250.0}))
    return base, capped


def test_energy_flow_adds_up_to_the_grid_input(pair: tuple[twin.Result, twin.Result]) -> None:
    kpis = pair[0].kpis
    flow = frames.energy_flow(kpis)
    # Every joule is booked once: the categories add up to the metered energy (ledger tolerance).
    assert flow["energy_kwh"].sum() == pytest.approx(kpis["facility_energy_kwh"], rel=1e-9)
    assert flow["share"].sum() == pytest.approx(1.0, rel=1e-9)
    by_group = flow.groupby("group")["energy_kwh"].sum()
    assert by_group["IT"] == pytest.approx(kpis["it_energy_kwh"], rel=1e-12)
    assert by_group["cooling"] == pytest.approx(kpis["cooling_energy_j"] / J_PER_KWH, rel=1e-12)
    assert by_group["conversion losses"] == pytest.approx(kpis["conversion_loss_energy_j"] / J_PER_KWH, rel=1e-12)
    assert list(dict.fromkeys(flow["group"])) == list(frames.FLOW_GROUPS)
    assert frames.flow_group("ups_loss") == "conversion losses"
    assert frames.flow_group("cooling_chiller") == "cooling"
    assert frames.flow_group("battery_net") == "other facility"


def test_flow_sentence_follows_the_joules_to_tokens(pair: tuple[twin.Result, twin.Result]) -> None:
    k = pair[0].kpis
    text = frames.flow_sentence(k)
    assert f"{k['facility_energy_kwh']:,.0f} kWh from the grid" in text
    assert f"({k['it_energy_kwh'] / k['facility_energy_kwh']:.1%})" in text
    assert f"{k['tokens_per_kwh']:,.0f} per grid kWh" in text


def test_deltas_and_colours(pair: tuple[twin.Result, twin.Result]) -> None:
    base, capped = (r.kpis for r in pair)
    card = next(c for c in frames.KPI_CARDS if c.key == "facility_energy_kwh")
    diff = capped["facility_energy_kwh"] - base["facility_energy_kwh"]
    assert diff < 0  # a 250 W cap on GPUs averaging ~330 W
    text = frames.delta(card, base, capped)
    assert text == f"-{abs(diff):,.0f} ({diff / base['facility_energy_kwh']:+.1%})"
    assert frames.delta(card, base, base) is None
    assert frames.delta_color(card) == "inverse"  # less energy is good: shown green
    tpk = next(c for c in frames.KPI_CARDS if c.key == "tokens_per_kwh")
    assert frames.delta_color(tpk) == "normal"


def test_temperature_changes_are_kelvin_and_nothing_reads_minus_zero() -> None:
    die = next(c for c in frames.KPI_CARDS if c.key == "max_die_temp_c")
    # 55.0 -> 61.8 °C: a difference of 6.8 K, not "+12.4 %" of a Celsius reading
    assert frames.delta(die, {"max_die_temp_c": 55.0}, {"max_die_temp_c": 61.8}) == "+6.8 K"
    assert frames.delta(die, {"max_die_temp_c": 61.8}, {"max_die_temp_c": 55.0}) == "-6.8 K"
    table = frames.comparison_table({"max_die_temp_c": 55.0}, {"max_die_temp_c": 61.8}).set_index("KPI")
    assert table.loc["Max die temperature", "change"] == pytest.approx(6.8)
    assert math.isnan(table.loc["Max die temperature", "change %"])
    # a change that rounds to zero at the card's precision is no change: no "-0.0", no arrow
    throttled = next(c for c in frames.KPI_CARDS if c.key == "throttled_gpu_h")
    assert frames.delta(throttled, {"throttled_gpu_h": 1.02}, {"throttled_gpu_h": 0.98}) is None
    assert frames.delta(throttled, {"throttled_gpu_h": 1.0}, {"throttled_gpu_h": 0.9}) == "-0.1 (-10.0%)"
    assert [frames.signed(v) for v in (-0.04, 0.0, 0.04, -1.26, float("nan"))] == ["0.0", "0.0", "0.0", "-1.3", ""]
    text = frames.comparison_text({"throttled_gpu_h": 1.02}, {"throttled_gpu_h": 0.98}).set_index("KPI")
    assert text.loc["Throttled GPU-hours", "change"] == ""
    assert text.loc["Throttled GPU-hours", "better"] == "="


def test_inlet_temperature_says_coolant_or_air(pair: tuple[twin.Result, twin.Result]) -> None:
    base, capped = pair
    assert frames.inlet_medium(base, capped) == "coolant"  # the default pod is liquid-cooled
    assert frames.series_label("inlet_temp_max_c", base, capped) == "max coolant inlet temperature [°C]"
    text = frames.comparison_text(base.kpis, capped.kpis, frames.inlet_medium(base, capped))
    assert "Max coolant inlet temperature" in set(text["KPI"])
    air = twin.Result(**{**base.__dict__, "scenario": {**base.scenario, "cooling": {"type": "air"}}})
    assert frames.inlet_medium(base, air) == "coolant or air"
    assert frames.inlet_medium(air, air) == "air"


def test_comparison_table_is_what_if_minus_baseline(pair: tuple[twin.Result, twin.Result]) -> None:
    base, capped = (r.kpis for r in pair)
    table = frames.comparison_table(base, capped).set_index("KPI")
    row = table.loc["PUE"]
    assert row["baseline"] == base["pue"]
    assert row["change"] == pytest.approx(capped["pue"] - base["pue"])
    assert row["change %"] == pytest.approx(100 * (capped["pue"] - base["pue"]) / base["pue"])
    text = frames.comparison_text(base, capped).set_index("KPI")
    assert text.loc["Energy in (grid)", "better"] == "what-if"
    assert text.loc["Tokens per kWh", "better"] == "what-if"
    assert text.loc["Throttled GPU-hours", "better"] == "="


def test_series_have_both_runs_in_display_units(pair: tuple[twin.Result, twin.Result]) -> None:
    base, capped = pair
    long = frames.series_long(base, capped, ["facility_power_w", "capped_fraction"])
    n = len(base.timeseries)
    assert len(long) == 2 * 2 * n
    power = long[(long["quantity"] == "facility power [kW]") & (long["run"] == frames.BASELINE)]
    assert power["value"].to_numpy() == pytest.approx(base.timeseries["facility_power_w"].to_numpy() / 1e3)
    # Clock time from the baseline's start, interval by interval.
    start = pd.Timestamp(base.scenario["start"])
    assert (power["time"] - start).dt.total_seconds().to_numpy() == pytest.approx(base.timeseries["time_s"].to_numpy())
    capped_pct = long[(long["quantity"] == "GPUs at the power cap [%]") & (long["run"] == frames.WHAT_IF)]["value"]
    assert capped_pct.between(0, 100).all()
    assert capped_pct.max() > 0
    derived = frames.with_derived(capped)
    # capped GPU-seconds over all GPU-seconds, summed back, gives the KPI.
    gpu_h = (derived["capped_fraction"] * derived["duration_s"]).sum() * capped.kpis["n_gpus"] / 3600
    assert gpu_h == pytest.approx(capped.kpis["capped_gpu_h"], rel=1e-12)


def test_downloads_round_trip(pair: tuple[twin.Result, twin.Result]) -> None:
    result = pair[1]
    back = pd.read_parquet(io.BytesIO(frames.timeseries_parquet(result)))
    pd.testing.assert_frame_equal(back, result.timeseries)
    csv = pd.read_csv(io.BytesIO(frames.timeseries_csv(result)))
    assert list(csv.columns) == list(result.timeseries.columns)
    assert csv["facility_power_w"].to_numpy() == pytest.approx(result.timeseries["facility_power_w"].to_numpy())
    doc = json.loads(frames.summary_json(result, {"fleet.power_cap_w": 250.0}))
    assert doc["overrides"] == {"fleet.power_cap_w": 250.0}
    assert doc["kpis"]["facility_energy_j"] == result.kpis["facility_energy_j"]
    ledger = pd.read_csv(io.BytesIO(frames.ledger_csv(result)))
    assert ledger["metered_j"].sum() == pytest.approx(result.kpis["facility_energy_j"], rel=1e-12)


# ----------------------------------------------------------------------------- sweeps


def _sweep_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "fleet.rows": [4, 2, 1, 3],
            "cooling.type": ["air", "liquid", "air", "liquid"],
            "ok": [True, True, False, True],
            "tokens_per_kwh": [6.1e5, 7.0e5, math.nan, 6.8e5],
            "pue": [1.41, 1.29, 1.40, 1.28],
        }
    )


def test_sweep_folder_prefers_parquet_and_reads_csv(tmp_path: Path) -> None:
    frame = _sweep_frame()
    frame.to_csv(tmp_path / "summary.csv", index=False)
    assert sweeps.summary_file(tmp_path).name == "summary.csv"
    pd.testing.assert_frame_equal(sweeps.load_sweep(tmp_path), frame)
    frame.assign(pue=frame["pue"] + 1).to_parquet(tmp_path / "summary.parquet", index=False)
    assert sweeps.summary_file(tmp_path).name == "summary.parquet"
    assert sweeps.load_sweep(tmp_path)["pue"].iloc[0] == pytest.approx(2.41)
    assert sweeps.load_sweep(tmp_path / "summary.csv")["pue"].iloc[0] == pytest.approx(1.41)


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: p / "missing", "no such sweep folder"),
        (lambda p: p, "expected summary.parquet or summary.csv"),
        (lambda p: (p / "x.txt").write_text("a") and p / "x.txt", r"expected a \.parquet or \.csv"),
        (lambda p: (p / "summary.csv").write_text("a,b\n") and p, "has no rows"),
    ],
)
def test_bad_sweep_paths_say_what_was_expected(tmp_path: Path, setup: object, message: str) -> None:
    path = setup(tmp_path)  # type: ignore[operator]
    with pytest.raises(TwinError, match=message):
        sweeps.load_sweep(path)


def test_sweep_axes_and_plot_frame() -> None:
    frame = _sweep_frame()
    assert sweeps.numeric_columns(frame) == ["fleet.rows", "tokens_per_kwh", "pue"]
    assert sweeps.default_axes(frame) == ("fleet.rows", "tokens_per_kwh")
    data = sweeps.plot_frame(frame, "fleet.rows", "tokens_per_kwh", "cooling.type")
    assert data["fleet.rows"].tolist() == [2, 3, 4]  # the NaN point dropped, sorted by x
    assert list(data.columns) == ["fleet.rows", "tokens_per_kwh", "cooling.type"]
    with pytest.raises(TwinError, match="not numeric"):
        sweeps.plot_frame(frame, "fleet.rows", "cooling.type")
    with pytest.raises(TwinError, match="no column 'nope'"):
        sweeps.plot_frame(frame, "nope", "pue")


def test_sweep_chart_plots_dotted_swept_fields_one_category_per_value() -> None:
    # What `twin sweep` writes: bookkeeping columns first, then the swept paths (dotted), then KPIs.
    frame = pd.DataFrame(
        {
            "point": [0, 1, 2, 3, 4, 5],
            "key": list("abcdef"),
            "weather.source": ["greensboro-nc", "phoenix-az", "sand-point-ak"] * 2,
            "cooling.liquid_class": ["W32"] * 3 + ["W45"] * 3,
            "status": ["ok"] * 6,
            "tokens_per_kwh": [7.1e5, 6.9e5, 7.3e5, 7.0e5, 6.8e5, 7.2e5],
        }
    )
    x, y = sweeps.default_axes(frame)
    assert (x, y) == ("weather.source", "tokens_per_kwh")  # the swept value, not the row index
    spec = sweeps.chart(sweeps.plot_frame(frame, x, y, "cooling.liquid_class"), x, y, "cooling.liquid_class").to_dict()
    enc = spec["encoding"]
    # Escaped, Vega-Lite reads the flat column "weather.source", not "source" nested in "weather".
    assert enc["x"]["field"] == r"weather\.source"
    assert enc["x"]["type"] == "nominal"
    assert enc["color"]["field"] == r"cooling\.liquid_class"
    assert enc["y"]["field"] == "tokens_per_kwh"
    (rows,) = spec["datasets"].values()
    assert {r["weather.source"] for r in rows} == {"greensboro-nc", "phoenix-az", "sand-point-ak"}
    assert len(rows) == 6
    assert sweeps.field("a[0].b") == r"a\[0\]\.b"


def test_sweep_chart_whole_number_field_has_whole_ticks() -> None:
    frame = _sweep_frame()
    spec = sweeps.chart(sweeps.plot_frame(frame, "fleet.rows", "pue"), "fleet.rows", "pue").to_dict()
    assert spec["encoding"]["x"]["type"] == "quantitative"
    assert spec["encoding"]["x"]["axis"]["tickMinStep"] == 1
    spec = sweeps.chart(sweeps.plot_frame(frame, "pue", "tokens_per_kwh"), "pue", "tokens_per_kwh").to_dict()
    assert "tickMinStep" not in spec["encoding"]["x"].get("axis", {})


def test_uploaded_summary_bytes(tmp_path: Path) -> None:
    frame = _sweep_frame()
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    pd.testing.assert_frame_equal(sweeps.read_summary_bytes("summary.parquet", buf.getvalue()), frame)
    with pytest.raises(TwinError, match=r"expected a \.parquet or \.csv"):
        sweeps.read_summary_bytes("summary.json", b"{}")


@pytest.fixture(scope="module")
def outage() -> twin.Result:
    """The default pod losing the utility for 20 min at 10 min with no battery and no generator."""
    return twin.simulate(
        twin.load_scenario(
            "default", {**SHORT, "events": [{"time_s": 600, "kind": "utility_loss", "duration_s": 1200}]}
        )
    )


def test_fault_outcomes_show_only_when_something_happened(
    pair: tuple[twin.Result, twin.Result], outage: twin.Result
) -> None:
    assert not frames.has_fault_outcomes(*pair)
    assert frames.has_fault_outcomes(pair[0], outage)
    k = outage.kpis
    assert k["load_shed_j"] > 0 and k["tokens_lost"] > 0  # every server dark for 20 minutes
    cards = {c.key: c for c in frames.FAULT_CARDS}
    assert cards["load_shed_j"].text(k) == f"{k['load_shed_j'] / J_PER_KWH:,.1f} kWh"
    assert cards["tokens_lost"].text(k) == f"{k['tokens_lost'] / 1e6:,.1f} M"
    assert cards["battery_min_soc"].text(k) == "no battery"
    assert cards["time_to_thermal_shutdown_s"].text(k) == "no shutdown"
    assert cards["min_servers_up"].text(k) == "0"


def test_events_table_lists_the_fault_and_its_repair(outage: twin.Result) -> None:
    table = frames.events_table(outage)
    assert list(table.columns) == ["time [h]", "time [s]", "event", "detail"]
    first = table.iloc[0]
    assert (first["event"], first["time [s]"]) == ("utility_loss", 600.0)
    assert first["time [h]"] == pytest.approx(600.0 / 3600.0, rel=1e-12)
    assert "utility_loss_repaired" in set(table["event"])
    assert table.loc[table["event"] == "utility_loss_repaired", "time [s]"].iloc[0] == 1800.0
    # The servers-up series drops to zero while the site is dark and the chart reads it.
    long = frames.series_long(outage, outage, ["servers_up", "die_temp_max_c"])
    up = long[long["quantity"] == frames.SERIES["servers_up"][0]]["value"]
    assert up.min() == 0.0
    assert up.max() == outage.meta["n_servers"]
    # No server, no die temperature: undefined (NaN, never -inf) and a gap in the chart.
    assert outage.timeseries["die_temp_max_c"].isna().any()
    assert not np.isinf(outage.timeseries["die_temp_max_c"]).any()
    die = long[long["quantity"] == frames.SERIES["die_temp_max_c"][0]]["value"]
    assert die.isna().sum() == 2 * int((outage.timeseries["servers_up"] == 0).sum())
    assert np.isfinite(die.dropna()).all()


def test_latency_table_per_pool_in_milliseconds(pair: tuple[twin.Result, twin.Result]) -> None:
    base, capped = (r.kpis for r in pair)
    assert frames.latency_pools(base) == ["chat-70b", "code-8b"]
    table = frames.latency_table(base, capped)
    assert len(table) == 2 * len(frames.LATENCY_KPIS)
    row = table[(table["workload"] == "chat-70b") & (table["latency"] == "TPOT p99")].iloc[0]
    assert row["baseline [ms]"] == pytest.approx(base["chat-70b_tpot_p99_s"] * 1e3, rel=1e-12)
    assert row["what-if [ms]"] == pytest.approx(capped["chat-70b_tpot_p99_s"] * 1e3, rel=1e-12)
    expected = 100.0 * (capped["chat-70b_tpot_p99_s"] / base["chat-70b_tpot_p99_s"] - 1.0)
    assert row["change %"] == pytest.approx(expected, rel=1e-9)
    for pool in ("chat-70b", "code-8b"):  # a quantile table: p99 at or above p50
        rows = table[table["workload"] == pool].set_index("latency")["baseline [ms]"]
        assert rows["TTFT p99"] >= rows["TTFT p50"] > 0
        assert rows["TPOT p99"] >= rows["TPOT p50"] > 0
    assert frames.latency_table({}, {}).empty  # training-only sites report none


def test_latency_cdf_rises_to_one_and_a_cap_moves_tpot_right(pair: tuple[twin.Result, twin.Result]) -> None:
    """The replayed TTFT/TPOT CDFs of both runs (1 rank per pool, 60 s): monotone, ending at 1; the cap slows TPOT."""
    from twin.latency import request_level_report

    replayed = []
    for result in pair:
        sc = twin.Scenario.model_validate(result.scenario).with_updates({"request_level": {"ranks": 1, "window_s": 60}})
        replayed.append(request_level_report(result, sc))
    cdf = frames.latency_cdf(*replayed)
    assert set(cdf["run"]) == {frames.BASELINE, frames.WHAT_IF} and set(cdf["metric"]) == {"TTFT", "TPOT"}
    for _, g in cdf.groupby(["run", "workload", "metric"]):
        assert (np.diff(g["share"]) >= 0).all() and (np.diff(g["latency_ms"]) > 0).all()
        assert g["share"].iloc[-1] == pytest.approx(1.0) and (g["share"] > 0).all()

    def median_ms(run: str) -> float:
        g = cdf[(cdf["run"] == run) & (cdf["workload"] == "chat-70b") & (cdf["metric"] == "TPOT")]
        return float(g.loc[g["share"] >= 0.5, "latency_ms"].iloc[0])

    assert median_ms(frames.WHAT_IF) > median_ms(frames.BASELINE)  # 250 W: slower decode steps
    assert frames.latency_cdf(*pair).empty  # runs without a replay draw no CDF
