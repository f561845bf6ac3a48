"""The Streamlit app, headless through ``streamlit.testing.v1.AppTest``.

Each test changes levers the way a user would and checks the KPI cards against the physics
direction (a lower power cap draws less energy, a cold climate gives a lower PUE) and against the
numbers ``twin.simulate`` gives for the same overrides.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

import twin
from twin.dashboard import launch
from twin.dashboard import levers as lv
from twin.units import J_PER_KWH

APP = Path(lv.__file__).resolve().parent / "app.py"
#: The page's default window: 6 h around the default pod's 14:00 request peak.
SIX_HOURS = {"start": "2024-07-15T11:00:00", "duration_s": lv.DEFAULT_DURATION_H * 3600}


@pytest.fixture
def app() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    return at


def metric(at: AppTest, label: str) -> tuple[str, str]:
    """(value, delta) of the KPI card ``label``."""
    for m in at.metric:
        if m.label == label:
            return m.value, m.delta
    raise AssertionError(f"no metric {label!r}; have {[m.label for m in at.metric]}")


def number(text: str) -> float:
    match = re.search(r"-?[\d,]+(?:\.\d+)?", text)
    assert match, text
    return float(match.group(0).replace(",", ""))


def test_first_page_is_the_baseline_twice(app: AppTest) -> None:
    assert any("equals the baseline" in i.value for i in app.info)
    value, delta = metric(app, "Energy in (grid)")
    assert delta in ("", None)
    # The card shows what the public API computes for the same run.
    run = twin.simulate(twin.load_scenario("default", SIX_HOURS))
    kpis = run.kpis
    assert value == f"{kpis['facility_energy_kwh']:,.0f} kWh"
    assert metric(app, "PUE")[0] == f"{kpis['pue']:.3f}"
    assert len(app.get("vega_lite_chart")) >= 9  # energy flow + power/PUE/tokens/cooling + temperatures
    # The energy-flow diagrams, baseline and what-if: the grid's outflow is the energy in.
    if importlib.util.find_spec("plotly") is None:  # the dashboard extra has it; without it, a note says so
        assert any("needs plotly" in i.value for i in app.info)
        return
    figures = [json.loads(c.proto.spec) for c in app.get("plotly_chart")]
    sankeys = [f["data"][0] for f in figures if f["data"][0]["type"] == "sankey"]
    assert len(sankeys) == 2
    labels, link = sankeys[0]["node"]["label"], sankeys[0]["link"]
    grid = labels.index("grid")
    out_kwh = sum(v for s, v in zip(link["source"], link["value"], strict=True) if s == grid)
    assert out_kwh == pytest.approx(kpis["facility_energy_kwh"], rel=1e-9)
    assert {"accelerators", "UPS loss", "chillers", "transformer"} <= set(labels)
    # The one-line schematics, baseline and what-if: the UPS box says its peak load over its rating.
    schematics = [f["layout"] for f in figures if f["data"][0]["type"] == "scatter"]
    assert [s["title"]["text"] for s in schematics] == ["baseline", "what-if"]
    ts = run.timeseries
    ups_w = (ts["it_power_w"] + ts["psu_loss_power_w"] + ts["pdu_loss_power_w"]).max()  # 2N of 1.4 MW: one carries it
    boxes = [a["text"] for a in schematics[0]["annotations"]]
    assert f"<b>UPS</b><br>{ups_w / 1e3:,.0f} kW<br>{ups_w / 1.4e6:.0%} of rating" in boxes
    assert any(b.startswith("<b>4 × CDU</b>") for b in boxes) and any("chiller" in b for b in boxes)
    assert [d.label for d in app.get("download_button")] == [
        "summary.json (what-if)",
        "timeseries.csv",
        "timeseries.parquet",
        "ledger.csv",
        "baseline summary.json",
    ]


def test_header_names_the_window_as_clock_time_around_the_peak(app: AppTest) -> None:
    # The default pod's load peaks at 14:00: the 6 h window is 11:00-17:00, and the page says so.
    header = next(m.value for m in app.markdown if "h simulated" in m.value)
    assert "6 h simulated: **15 Jul 2024 11:00–17:00**" in header
    assert "--set start=2024-07-15T11:00:00" in app.code[0].value
    assert app.code[0].proto.wrap_lines  # the whole line shows, however many --set it has
    # The charts' x axis is clock time over the same window.
    import pyarrow as pa

    chart = next(c for c in app.get("vega_lite_chart") if "facility power [kW]" in c.proto.spec)
    power = pa.ipc.open_stream(chart.proto.datasets[0].data.data).read_all().to_pandas()
    assert power["time"].min() == pd.Timestamp("2024-07-15 11:00")
    assert power["time"].max() < pd.Timestamp("2024-07-15 17:00")
    x = json.loads(chart.proto.spec)["layer"][0]["encoding"]["x"]
    assert (x["field"], x["type"], x["axis"]["format"]) == ("time", "temporal", "%H:%M")
    assert x["axis"]["labelExpr"] == "utcFormat(datum.value, '%H:%M')"  # what the browser draws


def test_lower_power_cap_lowers_facility_energy(app: AppTest) -> None:
    base_kwh = number(metric(app, "Energy in (grid)")[0])
    app.toggle(key="power_cap_w__on").set_value(True).run()  # the slider is enabled once the switch is on
    app.slider(key="power_cap_w").set_value(300.0).run()
    assert not app.exception
    value, delta = metric(app, "Energy in (grid)")
    # Around the 14:00 peak the GPUs draw well over 300 W, so the cap binds: less energy, and
    # fewer tokens out (the capped clocks slow the batches the peak load needs).
    assert number(value) < base_kwh
    assert delta.startswith("-")
    assert metric(app, "Tokens out")[1].startswith("-")
    kpis = twin.simulate(twin.load_scenario("default", {**SIX_HOURS, "fleet.power_cap_w": 300.0})).kpis
    assert value == f"{kpis['facility_energy_kwh']:,.0f} kWh"
    assert "--set fleet.power_cap_w=300.0" in app.code[0].value


def test_a_cap_above_the_peak_says_it_never_binds(app: AppTest) -> None:
    app.toggle(key="power_cap_w__on").set_value(True).run()
    app.slider(key="power_cap_w").set_value(700.0).run()  # the H100's most
    assert not app.exception
    note = next(i.value for i in app.info if "never binds" in i.value)
    what_if = twin.simulate(twin.load_scenario("default", {**SIX_HOURS, "fleet.power_cap_w": 700.0}))
    peak_w = max(what_if.timeseries[f"{p}_gpu_power_mean_w"].max() for p in what_if.pool_names)
    assert note.startswith(f"The 700 W GPU power cap never binds: GPU power peaks at {peak_w:,.0f} W")
    assert metric(app, "Energy in (grid)")[1] in ("", None)


def test_cold_climate_lowers_pue_and_reset_restores_the_baseline(app: AppTest) -> None:
    base_pue = number(metric(app, "PUE")[0])
    assert "Sand Point, AK (TMY3)" in app.selectbox(key="weather_source").options  # names, not slugs
    app.selectbox(key="weather_source").set_value("sand-point-ak").run()
    assert not app.exception
    pue, delta = metric(app, "PUE")
    assert number(pue) < base_pue  # Sand Point AK's July is cool: more economiser, less chiller
    assert delta.startswith("-")
    app.button(key="reset").click().run()
    assert app.selectbox(key="weather_source").value == "greensboro-nc"
    assert number(metric(app, "PUE")[0]) == base_pue


def test_half_the_fleet_halves_tokens_at_the_same_load_per_server(app: AppTest) -> None:
    tokens = number(metric(app, "Tokens out")[0])
    app.slider(key="rows").set_value(2).run()
    assert not app.exception
    assert number(metric(app, "Tokens out")[0]) == pytest.approx(tokens / 2, rel=2e-3)  # display rounding
    assert "--set fleet.rows=2" in app.code[0].value
    assert "512 × H100-SXM" in app.markdown[0].value


def test_air_cooling_raises_pue_and_cooling_energy(app: AppTest) -> None:
    base_pue = number(metric(app, "PUE")[0])
    app.selectbox(key="cooling_type").set_value("air").run()
    assert number(metric(app, "PUE")[0]) > base_pue
    table = app.table[-1].value  # a static table: long labels wrap, nothing is cut off
    row = table.loc["Cooling energy"]
    assert number(row["what-if"]) > number(row["baseline"])
    assert "Max coolant or air inlet temperature" in table.index  # liquid baseline, air what-if


def test_invalid_lever_combination_is_an_error_message_not_a_crash(app: AppTest) -> None:
    assert app.slider(key="dry_bulb_c").disabled  # it acts on the synthetic climates only
    app.selectbox(key="weather_source").set_value("constant").run()
    app.slider(key="dry_bulb_c").set_value(10.0)
    app.slider(key="wet_bulb_c").set_value(20.0).run()
    assert not app.exception
    assert any("wet_bulb_c" in e.value for e in app.error)


def test_fault_levers_are_greyed_out_until_a_fault_is_chosen(app: AppTest) -> None:
    assert app.selectbox(key="fault").value == "scenario"
    for key in ("fault_start_h", "fault_count"):
        assert app.slider(key=key).disabled, key
    assert app.toggle(key="battery_runtime_s__on").disabled
    assert "Faults and controls" not in [h.value for h in app.main.subheader]  # nothing happened
    app.selectbox(key="fault").set_value("chiller_trip").run()
    assert not app.slider(key="fault_count").disabled
    assert app.toggle(key="battery_runtime_s__on").disabled  # a battery only acts in an outage
    app.slider(key="fault_start_h").set_value(12.0).run()  # after the 6 h run
    assert any("after the end of the 6 h run" in w.value for w in app.warning)


def test_utility_outage_with_a_late_generator_sheds_load_and_lowers_tokens(app: AppTest) -> None:
    tokens = number(metric(app, "Tokens out")[0])
    app.toggle(key="cooling_on_ups").set_value(True)  # the battery carries the cooling plant too
    app.selectbox(key="fault").set_value("utility_loss").run()
    assert not app.toggle(key="battery_runtime_s__on").disabled
    assert app.toggle(key="battery_runtime_s__on").value  # a 5 min battery and a generator are offered
    app.slider(key="generator_delay_s").set_value(900.0).run()  # 15 min: after the battery is empty
    assert not app.exception, app.exception
    assert not app.error, [e.value for e in app.error]
    values = {"fault": "utility_loss", "cooling_on_ups": True, "generator_delay_s": 900.0}
    overrides = lv.what_if_overrides(twin.load_scenario("default"), values)
    kpis = twin.simulate(twin.load_scenario("default", {**SIX_HOURS, **overrides})).kpis
    # The battery runs out before the generator starts: every server is shed until it does.
    assert kpis["load_shed_j"] > 0
    assert kpis["battery_min_soc"] == pytest.approx(0.1)  # the cut-off
    assert kpis["tokens_lost"] > 0
    assert "Faults and controls" in [h.value for h in app.main.subheader]
    assert metric(app, "Load shed")[0] == f"{kpis['load_shed_j'] / J_PER_KWH:,.1f} kWh"
    assert metric(app, "Tokens lost")[0] == f"{kpis['tokens_lost'] / 1e6:,.1f} M"
    assert metric(app, "Battery min charge")[0] == "10.0 %"
    assert metric(app, "Fewest servers up")[0] == "0"
    value, delta = metric(app, "Tokens out")
    assert value == f"{kpis['tokens_out'] / 1e6:,.0f} M"
    assert number(value) < tokens and delta.startswith("-")
    events = next(d.value for d in app.dataframe if "event" in getattr(d.value, "columns", []))
    assert {"utility_loss", "battery_empty", "load_shed", "generator_online", "servers_booted"} <= set(events["event"])
    assert "power.generator={rated_w: 2000000.0, start_delay_s: 900.0}" in app.code[0].value


def test_azure_trace_moves_tokens_as_twin_simulate_does(app: AppTest) -> None:
    base_tokens = twin.simulate(twin.load_scenario("default", SIX_HOURS)).kpis["tokens_out"]
    app.selectbox(key="arrivals").set_value("azure-llm-2023-code").run()
    assert not app.selectbox(key="arrivals_pool").disabled
    app.selectbox(key="arrivals_pool").set_value("code-8b").run()
    assert not app.exception, app.exception
    assert not app.error, [e.value for e in app.error]
    values = {"arrivals": "azure-llm-2023-code", "arrivals_pool": "code-8b"}
    overrides = lv.what_if_overrides(twin.load_scenario("default"), values)
    assert overrides == {
        "workloads.1.arrivals": {"kind": "trace", "path": "azure-llm-2023-code", "requests_per_s": 2000.0}
    }
    kpis = twin.simulate(twin.load_scenario("default", {**SIX_HOURS, **overrides})).kpis
    value, delta = metric(app, "Tokens out")
    assert value == f"{kpis['tokens_out'] / 1e6:,.0f} M"
    # The same mean request rate as the diurnal baseline, which runs above its mean around the 14:00 peak.
    assert kpis["tokens_out"] < base_tokens
    assert delta == f"{(kpis['tokens_out'] - base_tokens) / 1e6:+,.0f} ({kpis['tokens_out'] / base_tokens - 1:+.1%})"
    assert "workloads.1.arrivals={kind: trace, path: azure-llm-2023-code, requests_per_s: 2000.0}" in app.code[0].value
    latency = next(d.value for d in app.dataframe if "latency" in getattr(d.value, "columns", []))
    row = latency[(latency["workload"] == "code-8b") & (latency["latency"] == "TTFT p99")].iloc[0]
    assert row["what-if [ms]"] == pytest.approx(kpis["code-8b_ttft_p99_s"] * 1e3, rel=1e-12)


def test_another_model_runs_as_twin_simulate_does_and_one_that_does_not_fit_is_named(app: AppTest) -> None:
    app.slider(key="duration_h").set_value(1.0).run()
    assert app.selectbox(key="model_pool").disabled
    app.selectbox(key="model").set_value("Qwen/Qwen3-235B-A22B-Instruct-2507-FP8").run()
    assert not app.exception, app.exception
    assert not app.error, [e.value for e in app.error]
    overrides = {
        "start": "2024-07-15T13:00:00",  # the 1 h window ending at the 14:00 peak
        "duration_s": 3600.0,
        "workloads.0.model": "Qwen/Qwen3-235B-A22B-Instruct-2507-FP8",
    }
    kpis = twin.simulate(twin.load_scenario("default", overrides)).kpis
    assert metric(app, "Energy in (grid)")[0] == f"{kpis['facility_energy_kwh']:,.0f} kWh"
    assert "--set workloads.0.model=Qwen/Qwen3-235B-A22B-Instruct-2507-FP8" in app.code[0].value
    # Llama 3.1 405B in BF16 needs 101 GB per H100 with TP8: an error that says so, not a run.
    app.selectbox(key="model").set_value("meta-llama/Llama-3.1-405B-Instruct").run()
    assert not app.exception, app.exception
    assert any("101 GB of weights per GPU" in e.value for e in app.error), [e.value for e in app.error]


def test_site_power_limit_holds_the_peak(app: AppTest) -> None:
    # One hour: a binding limit is found by bisection every tick, so a run takes several times longer.
    app.slider(key="duration_h").set_value(1.0).run()
    peak_kw = number(metric(app, "Peak facility power")[0])
    limit_kw = 10.0 * round(0.9 * peak_kw / 10.0)
    app.toggle(key="site_power_limit_kw__on").set_value(True).run()
    app.slider(key="site_power_limit_kw").set_value(limit_kw).run()
    assert not app.exception, app.exception
    assert number(metric(app, "Peak facility power")[0]) <= limit_kw
    assert number(metric(app, "Time at the site power limit")[0]) > 0
    assert f"--set controls.site_power_limit_w={limit_kw * 1e3}" in app.code[0].value


def test_sweep_folder_plots_any_kpi_against_any_field(app: AppTest, tmp_path: Path) -> None:
    folder = tmp_path / "sweep"
    folder.mkdir()
    pd.DataFrame(
        {
            "point": ["p0", "p1", "p2", "p3"],
            "fleet.power_cap_w": [300.0, 400.0, 300.0, 400.0],
            "weather.source": ["greensboro-nc", "greensboro-nc", "sand-point-ak", "sand-point-ak"],
            "tokens_per_kwh": [7.1e5, 6.9e5, 7.3e5, 7.0e5],
            "pue": [1.30, 1.29, 1.26, 1.25],
        }
    ).to_csv(folder / "summary.csv", index=False)
    charts_before = len(app.get("vega_lite_chart"))
    app.text_input(key="sweep_path").input(str(folder)).run()
    assert not app.exception
    assert not app.error, [e.value for e in app.error]
    assert app.selectbox(key="sweep_x").value == "fleet.power_cap_w"  # the swept field, not "point"
    assert app.selectbox(key="sweep_y").value == "tokens_per_kwh"
    app.selectbox(key="sweep_x").set_value("weather.source")
    app.selectbox(key="sweep_y").set_value("pue")
    app.selectbox(key="sweep_color").set_value("fleet.power_cap_w").run()
    assert not app.error
    assert len(app.get("vega_lite_chart")) == charts_before + 1
    spec = json.loads(app.get("vega_lite_chart")[-1].proto.spec)
    assert spec["encoding"]["x"]["field"] == r"weather\.source"  # one column, not "source" nested in "weather"
    assert spec["encoding"]["color"]["field"] == r"fleet\.power_cap_w"
    assert app.dataframe[-1].value.shape == (4, 5)


def test_sweep_folder_without_a_summary_names_what_it_expected(app: AppTest, tmp_path: Path) -> None:
    app.text_input(key="sweep_path").input(str(tmp_path)).run()
    assert not app.exception
    assert any("summary.parquet or summary.csv" in e.value for e in app.error)


def test_twin_dashboard_execs_streamlit_on_the_app(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from twin.cli import app as cli_app

    calls: list[list[str]] = []

    def fake_execv(path: str, argv: list[str]) -> None:
        calls.append(argv)
        raise SystemExit(0)

    monkeypatch.setattr("os.execv", fake_execv)
    result = CliRunner().invoke(cli_app, ["dashboard", "--port", "8765"])
    assert result.exit_code == 0, result.output
    assert "http://127.0.0.1:8765" in result.output
    (argv,) = calls
    assert argv[1:5] == ["-P", "-m", "streamlit", "run"]
    assert Path(argv[5]) == APP
    assert argv[argv.index("--server.port") + 1] == "8765"
    assert argv[argv.index("--server.headless") + 1] == "true"


def test_dashboard_interpreter_ignores_a_twin_folder_in_the_working_folder(tmp_path: Path) -> None:
    # A clone's (or any) twin/ in the folder the dashboard is started from must not shadow the
    # installed package: run the command's interpreter and flags there and import twin.
    (tmp_path / "twin").mkdir()
    (tmp_path / "twin" / "__init__.py").write_text("raise ImportError('the working folder shadowed twin')\n")
    argv = launch.streamlit_command()
    interpreter = argv[: argv.index("-m")]
    env = {**os.environ, "PYTHONPATH": str(Path(twin.__file__).resolve().parents[1])}
    done = subprocess.run(
        [*interpreter, "-c", "import twin; print(twin.__file__)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()).resolve() == Path(twin.__file__).resolve()


def chart_frame(at: AppTest, title_part: str) -> pd.DataFrame:
    """The data of the Vega-Lite chart whose title holds ``title_part`` (Streamlit ships it as Arrow)."""
    import json

    import pyarrow as pa

    for chart in at.get("vega_lite_chart"):
        spec = json.loads(chart.proto.spec)
        if title_part in str(spec.get("title", "")):
            return pa.ipc.open_stream(chart.proto.datasets[0].data.data).read_all().to_pandas()
    raise AssertionError(f"no chart titled {title_part!r}")


def test_request_level_box_draws_latency_cdfs_and_a_cap_moves_tpot_right(app: AppTest) -> None:
    assert "Latency distribution, request by request" not in [h.value for h in app.main.subheader]  # off by default
    app.checkbox(key="request_level").check().run()
    app.toggle(key="power_cap_w__on").set_value(True).run()
    app.slider(key="power_cap_w").set_value(300.0).run()
    assert not app.exception, app.exception
    assert "Latency distribution, request by request" in [h.value for h in app.main.subheader]
    assert "--set 'request_level={ranks: 2, window_s: 300.0}'" in app.code[0].value
    for metric in ("TTFT", "TPOT"):
        cdf = chart_frame(app, f"{metric} (share")
        assert set(cdf["run"]) == {"baseline", "what-if"} and set(cdf["workload"]) == {"chat-70b", "code-8b"}
        for _, g in cdf.groupby(["run", "workload"]):  # a CDF: rising to 1
            assert (g["share"].diff().dropna() >= 0).all() and g["share"].iloc[-1] == pytest.approx(1.0)
    tpot = chart_frame(app, "TPOT (share")
    median = {
        run: g.loc[g["share"] >= 0.5, "latency_ms"].iloc[0]
        for run, g in tpot[tpot["workload"] == "chat-70b"].groupby("run")
    }
    assert median["what-if"] > median["baseline"]  # a 300 W cap slows the decode steps
