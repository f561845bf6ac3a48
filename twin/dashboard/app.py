"""The what-if dashboard: ``twin dashboard`` (or ``streamlit run twin/dashboard/app.py``).

A leaf: it imports the public API (``twin.load_scenario``, ``twin.simulate``, ``twin.Result``) and
the dashboard's logic modules, and only lays out widgets, caches and charts. Levers become scenario
overrides in :mod:`twin.dashboard.levers`; tables come from :mod:`twin.dashboard.frames` and
:mod:`twin.dashboard.sweeps`.
"""

from __future__ import annotations

import time
from datetime import date
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st
import yaml

import twin
from twin.catalog.serving_accuracy import ServingAccuracy
from twin.dashboard import explain, frames, sankey, schematic, sweeps
from twin.dashboard import levers as lv
from twin.errors import TwinError
from twin.facility import build_facility

st.set_page_config(page_title="AI-factory twin: what-if", layout="wide")

RUN_COLORS = alt.Scale(domain=[frames.BASELINE, frames.WHAT_IF], range=["#8c8c8c", "#d62728"])
GROUP_COLORS = alt.Scale(domain=list(frames.FLOW_GROUPS), range=["#e377c2", "#1f77b4", "#bcbd22", "#2ca02c"])
#: The same colours for the Sankey's nodes, and grey for the power chain's.
NODE_COLORS = {**dict(zip(frames.FLOW_GROUPS, GROUP_COLORS.range, strict=True)), "power chain": "#7f7f7f"}
#: The schematic's colour scales: power boxes by peak load over rating, cooling boxes by temperature.
LOAD_SCALE = ("RdYlGn_r", 0.0, 1.0, "power: peak load / rating")
TEMP_SCALE = ("RdYlBu_r", 10.0, 90.0, "cooling: peak temperature [°C]")


@st.cache_data(show_spinner="simulating…", max_entries=64)
def simulate_cached(source: str, overrides_yaml: str) -> twin.Result:
    """One simulation, cached on the scenario source and the canonical overrides text."""
    overrides = yaml.safe_load(overrides_yaml) or {}
    return twin.simulate(twin.load_scenario(source, overrides))


@st.cache_data(show_spinner=False, max_entries=64)
def schematic_cached(source: str, overrides_yaml: str) -> tuple[list[schematic.Node], list[schematic.Edge]]:
    """The one-line schematic of a (cached) run, on the facility its scenario compiles to."""
    overrides = yaml.safe_load(overrides_yaml) or {}
    fac = build_facility(twin.load_scenario(source, overrides))
    return schematic.schematic(simulate_cached(source, overrides_yaml), fac)


def load_base(source: str) -> twin.Scenario:
    """The chosen scenario as written (no overrides; read on every rerun, so edits to the file show)."""
    return twin.load_scenario(source)


def show_error(exc: Exception) -> None:
    """A scenario or run error, every problem on its own line."""
    st.error(f"**{type(exc).__name__}**\n\n```\n{exc}\n```")


# ----------------------------------------------------------------------------- sidebar


def pick_scenario() -> str:
    """Scenario select box (presets and scenarios/*.yaml) and an optional path; returns the source."""
    choices = lv.scenario_choices()
    labels = [c.label for c in choices]
    label = st.sidebar.selectbox("Scenario", labels, key="scenario")
    path = st.sidebar.text_input("…or a scenario YAML path", key="scenario_path").strip()
    if path:
        return path
    return next(c.source for c in choices if c.label == label)


def reset_levers(base: twin.Scenario) -> None:
    """Put every lever widget back at the baseline's value."""
    for lever in lv.levers_for(base):
        value = lever.read(base)
        if lever.kind == "optional_float":
            st.session_state[f"{lever.key}__on"] = value is not None
            off = lever.off_value(base) if lever.off_value else lever.max_value
            st.session_state[lever.key] = float(value if value is not None else off)  # type: ignore[arg-type]
        elif lever.kind == "float":
            st.session_state[lever.key] = float(value)
        else:
            st.session_state[lever.key] = value


def lever_widget(lever: lv.Lever, base: twin.Scenario, active: bool = True) -> Any:
    """Draw one lever's widget (its state is in ``st.session_state[lever.key]``); return its value.

    An inactive lever (one that does not act given the others, e.g. a fault's duration without a
    fault) is drawn greyed out.
    """
    sb = st.sidebar
    label = f"{lever.label} [{lever.unit}]" if lever.unit else lever.label
    off = not active
    if lever.kind == "choice":
        return sb.selectbox(
            label,
            lv.lever_options(lever, base),
            format_func=lambda option: lever.label_of(base, option),
            key=lever.key,
            help=lever.help,
            disabled=off,
        )
    if lever.kind == "bool":
        return sb.toggle(label, key=lever.key, help=lever.help, disabled=off)
    if lever.kind == "int":
        return sb.slider(
            label,
            int(lever.min_value or 1),
            int(lever.max_value or 100),
            step=1,
            key=lever.key,
            help=lever.help,
            disabled=off,
        )
    if lever.kind == "float":
        return sb.slider(
            label,
            float(lever.min_value or 0.0),
            float(lever.max_value or 1.0),
            step=float(lever.step or 0.1),
            key=lever.key,
            help=lever.help,
            disabled=off,
        )
    if lever.kind == "date":
        year = base.start.year
        return sb.date_input(
            label,
            min_value=date(year, 1, 1),
            max_value=date(year, 12, 31),
            key=lever.key,
            help=lever.help,
            disabled=off,
        )
    if lever.kind == "optional_float":
        on = sb.toggle(f"Enable: {lever.label}", key=f"{lever.key}__on", help=lever.help, disabled=off)
        value = sb.slider(
            label,
            float(lever.min_value or 0.0),
            float(lever.max_value or 1.0),
            step=float(lever.step or 1.0),
            key=lever.key,
            disabled=off or not on,
        )
        return float(value) if on else None
    raise ValueError(f"unknown lever kind {lever.kind!r}")


def sidebar(base: twin.Scenario, source: str) -> tuple[float, dict[str, Any]]:
    """Run length and levers; returns the duration [h] and the lever values."""
    if st.session_state.get("_levers_for") != source:
        reset_levers(base)
        st.session_state["duration_h"] = lv.DEFAULT_DURATION_H
        st.session_state["_levers_for"] = source
    duration_h = st.sidebar.slider(
        "Simulated hours (baseline and what-if)",
        lv.MIN_DURATION_H,
        lv.MAX_DURATION_H,
        step=1.0,
        key="duration_h",
        help="Short runs keep the dashboard interactive; `twin run` does full days and years.",
    )
    st.sidebar.checkbox(
        "Request-level latency (2 ranks per pool, 300 s)",
        key="request_level",
        help="Replay a sample of each inference pool request by request after both runs: the TTFT and TPOT "
        "distributions (twin run --request-level). Adds seconds to each run.",
    )
    st.sidebar.button("Reset levers to the baseline", on_click=reset_levers, args=(base,), key="reset")
    values: dict[str, Any] = {}
    baseline = lv.baseline_values(base)
    for group in lv.GROUPS:
        group_levers = [lever for lever in lv.levers_for(base) if lever.group == group]
        if not group_levers:
            continue
        st.sidebar.subheader(group)
        for lever in group_levers:  # a lever's controls (the fault, the arrivals) come before it
            values[lever.key] = lever_widget(lever, base, lever.active(base, {**baseline, **values}))
    return float(duration_h), values


# ----------------------------------------------------------------------------- charts


def line_chart(long: pd.DataFrame, quantity: str, height: int = 220) -> alt.LayerChart:
    """One quantity over time: the what-if solid red, the baseline dashed grey on top of it."""
    data = long[long["quantity"] == quantity]
    one_day = data["time"].max() - data["time"].min() <= pd.Timedelta(days=1)
    clock = "%H:%M" if one_day else "%d %b %H:%M"
    base = alt.Chart(data, title=quantity, height=height).encode(
        # Naive clock times arrive as UTC: a UTC scale shows them as they are in any browser.
        # labelExpr too: the browser's Vega-Lite drew "01 PM" from the format alone.
        x=alt.X(
            "time:T",
            title="clock time",
            scale=alt.Scale(type="utc"),
            axis=alt.Axis(format=clock, formatType="utc", labelExpr=f"utcFormat(datum.value, '{clock}')"),
        ),
        y=alt.Y("value:Q", title=None, scale=alt.Scale(zero=False), axis=alt.Axis(format=",.4~g")),
        color=alt.Color("run:N", scale=RUN_COLORS, title=None),
        tooltip=[
            "run",
            alt.Tooltip("time:T", format="%d %b %H:%M", formatType="utc"),
            alt.Tooltip("value:Q", format=",.4g"),
        ],
    )
    what_if = base.transform_filter(alt.datum.run == frames.WHAT_IF).mark_line(strokeWidth=2)
    baseline = base.transform_filter(alt.datum.run == frames.BASELINE).mark_line(strokeDash=[5, 3], strokeWidth=1.5)
    return alt.LayerChart(layer=[what_if, baseline])


def cdf_chart(cdf: pd.DataFrame, metric: str, height: int = 240) -> alt.Chart:
    """The CDF of one latency metric: baseline and what-if, one line style per workload, log latency axis."""
    return (
        alt.Chart(cdf, title=f"{metric} (share of requests at or below)")
        .mark_line(interpolate="step-before")
        .encode(
            x=alt.X("latency_ms:Q", title=f"{metric} [ms]", scale=alt.Scale(type="log")),
            y=alt.Y("share:Q", title="share of requests", scale=alt.Scale(domain=[0, 1])),
            color=alt.Color("run:N", scale=RUN_COLORS, title=None),
            strokeDash=alt.StrokeDash("workload:N", title="workload"),
            tooltip=[
                "run",
                "workload",
                alt.Tooltip("latency_ms:Q", format=",.1f"),
                alt.Tooltip("share:Q", format=".3f"),
            ],
        )
        .properties(height=height)
    )


def flow_chart(flow: pd.DataFrame) -> alt.Chart:
    """Stacked bars: where the grid's energy went, one bar per run."""
    return (
        alt.Chart(flow, height=170)
        .mark_bar()
        .encode(
            y=alt.Y("run:N", title=None, sort=[frames.BASELINE, frames.WHAT_IF]),
            x=alt.X("sum(energy_kwh):Q", title="energy from the grid [kWh]"),
            color=alt.Color("group:N", scale=GROUP_COLORS, title="destination", sort=list(frames.FLOW_GROUPS)),
            order=alt.Order("group_order:Q"),
            tooltip=[
                "run",
                "group",
                "category",
                alt.Tooltip("energy_kwh:Q", format=",.1f", title="kWh"),
                alt.Tooltip("share:Q", format=".2%"),
            ],
        )
    )


def charts(base: twin.Result, what_if: twin.Result, columns: list[str], per_row: int = 2) -> None:
    """One :func:`line_chart` per time-series column, ``per_row`` to a row."""
    long = frames.series_long(base, what_if, columns)
    cols = st.columns(per_row)
    for i, column in enumerate(columns):
        cols[i % per_row].altair_chart(line_chart(long, frames.series_label(column, base, what_if)), width="stretch")


def sankey_chart(result: twin.Result, title: str) -> Any:
    """The run's energy flow as a plotly Sankey (links from :func:`twin.dashboard.sankey.sankey_links`)."""
    import plotly.graph_objects as go  # the dashboard extra's; imported here so a missing one is a note

    on_ups = bool(result.scenario.get("power", {}).get("cooling_on_ups", False))
    links = sankey.sankey_links(result.kpis, cooling_on_ups=on_ups)
    nodes = list(dict.fromkeys([*links["source"], *links["target"]]))
    index = {node: i for i, node in enumerate(nodes)}
    category = dict(zip(links["target"], links["category"], strict=True))
    group = {node: sankey.node_group(node, category.get(node, "")) for node in nodes}
    figure = go.Figure(
        go.Sankey(
            valueformat=",.0f",
            valuesuffix=" kWh",
            textfont={"color": "#1a1a1a", "size": 12},
            node={"label": nodes, "color": [NODE_COLORS[group[n]] for n in nodes], "pad": 12, "thickness": 14},
            link={
                "source": [index[n] for n in links["source"]],
                "target": [index[n] for n in links["target"]],
                "value": links["energy_kwh"].tolist(),
                "color": [NODE_COLORS[group[n]] + "55" for n in links["target"]],  # translucent
            },
        )
    )
    figure.update_layout(
        title={"text": title, "font": {"size": 14}}, height=420, margin={"l": 8, "r": 8, "t": 40, "b": 8}
    )
    return figure


def sankey_pair(base: twin.Result, what_if: twin.Result) -> None:
    """Baseline and what-if energy flows side by side, or a note where plotly is missing."""
    try:
        figures = [
            sankey_chart(r, f"{run}: {r.kpis['facility_energy_kwh']:,.0f} kWh from the grid")
            for run, r in ((frames.BASELINE, base), (frames.WHAT_IF, what_if))
        ]
    except ImportError:
        st.info("The energy-flow diagram needs plotly: `pip install -e '.[dashboard]'`.")
        return
    for col, figure, key in zip(st.columns(2), figures, ("sankey_base", "sankey_what_if"), strict=True):
        col.plotly_chart(figure, key=key)
    st.caption(
        "From the grid through the transformer, UPS, PDUs and server PSUs to the accelerators and the rest of "
        "the servers, with every ledger category a leaf (each diagram fills its box: compare kWh, not widths)."
    )


def schematic_chart(nodes: list[schematic.Node], edges: list[schematic.Edge], title: str) -> Any:
    """The one-line schematic as a plotly figure: boxes coloured by load or temperature, lines between them."""
    import plotly.graph_objects as go
    from plotly.colors import sample_colorscale

    def fill(node: schematic.Node) -> tuple[str, str]:
        """The box's colour on its scale (grey without a value) and a text colour that reads on it."""
        value = schematic.colour_value(node)
        if value is None:
            return "#e6e6e6", "#1a1a1a"
        scale, low, high, _ = LOAD_SCALE if node.side == "power" else TEMP_SCALE
        colour = str(sample_colorscale(scale, [min(max((value - low) / (high - low), 0.0), 1.0)])[0])
        r, g, b = (float(c) for c in colour[colour.index("(") + 1 : -1].split(","))
        return colour, "#1a1a1a" if 0.299 * r + 0.587 * g + 0.114 * b > 110 else "#ffffff"

    at = {n.key: n for n in nodes}
    half_w, half_h = 0.48, 0.34
    shapes: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for e in edges:
        a, b = at[e.source], at[e.target]
        dash = {"power": "solid", "heat": "dot", "coolant": "solid"}[e.kind]
        colour = {"power": "#555555", "heat": "#d62728", "coolant": "#1f77b4"}[e.kind]
        line = {"color": colour, "width": 2, "dash": dash}
        shapes.append({"type": "line", "x0": a.x, "y0": a.y, "x1": b.x, "y1": b.y, "line": line, "layer": "below"})
    for n in nodes:
        box, text = fill(n)
        shapes.append(
            {
                "type": "rect",
                "x0": n.x - half_w,
                "x1": n.x + half_w,
                "y0": n.y - half_h,
                "y1": n.y + half_h,
                "fillcolor": box,
                "line": {"color": "#333333", "width": 1},
            }
        )
        label = "<br>".join([f"<b>{n.label}</b>", *n.lines])
        annotations.append({"x": n.x, "y": n.y, "text": label, "showarrow": False, "font": {"size": 10, "color": text}})
    # One layout update for every shape and label: plotly copies and validates the whole list on
    # each add_shape / add_annotation, which made the schematics a quarter of a cached rerun.
    figure = go.Figure(layout={"shapes": shapes, "annotations": annotations})
    # Invisible points: the hover details, and one colour bar per scale (the legend).
    figure.add_trace(
        go.Scatter(
            x=[n.x for n in nodes],
            y=[n.y for n in nodes],
            mode="markers",
            marker={"size": 40, "opacity": 0},
            hovertext=[f"{n.label}: {n.detail}" for n in nodes],
            hoverinfo="text",
            showlegend=False,
        )
    )
    for (scale, low, high, label), x in ((LOAD_SCALE, 0.02), (TEMP_SCALE, 0.54)):
        figure.add_trace(
            go.Scatter(
                x=[None],
                y=[None],
                mode="markers",
                showlegend=False,
                marker={
                    "colorscale": scale,
                    "cmin": low,
                    "cmax": high,
                    "color": [low],
                    "colorbar": {
                        "title": {"text": label, "font": {"size": 10}, "side": "top"},
                        "orientation": "h",
                        "x": x,
                        "xanchor": "left",
                        "y": 0.0,
                        "yanchor": "top",
                        "len": 0.44,
                        "thickness": 10,
                        "tickangle": 0,
                        "tickfont": {"size": 9},
                        "tickformat": ".0%" if scale == LOAD_SCALE[0] else "d",
                    },
                },
            )
        )
    hidden = {"visible": False, "showgrid": False, "zeroline": False}
    figure.update_layout(
        title={"text": title, "font": {"size": 14}},
        height=460,
        margin={"l": 4, "r": 4, "t": 40, "b": 64},
        xaxis={**hidden, "range": [-0.5, 5.5]},
        yaxis={**hidden, "range": [-0.45, 3.25]},
        plot_bgcolor="white",
    )
    return figure


def schematic_pair(source: str, run_ov: dict[str, Any], what_ov: dict[str, Any]) -> None:
    """Baseline and what-if one-line schematics side by side (plotly, as the Sankey)."""
    try:
        figures = [
            schematic_chart(*schematic_cached(source, lv.overrides_key(ov)), run)
            for run, ov in ((frames.BASELINE, run_ov), (frames.WHAT_IF, {**run_ov, **what_ov}))
        ]
    except ImportError:
        return  # the Sankey's note says plotly is missing
    for col, figure, key in zip(st.columns(2), figures, ("schematic_base", "schematic_what_if"), strict=True):
        col.plotly_chart(figure, key=key)
    st.caption(
        "One-line schematic: the power chain (top) coloured by each stage's peak load over the rating of the units "
        "that must carry it (PDUs and PSUs: the fleet's mean), the cooling loops (below) by the peak temperature "
        "each delivers (the chilled water at its setpoint). Peaks of the report intervals' means; hover for details."
    )


def kpi_cards(
    base: dict[str, float], what_if: dict[str, float], cards: tuple[frames.KpiCard, ...] = frames.KPI_CARDS
) -> None:
    """KPI cards of the what-if, five to a row, with the change against the baseline."""
    for start in range(0, len(cards), 5):
        cols = st.columns(5)
        for col, card in zip(cols, cards[start : start + 5], strict=False):
            col.metric(
                card.label,
                card.text(what_if),
                delta=frames.delta(card, base, what_if),
                delta_color=frames.delta_color(card),
                help=f"baseline: {card.text(base)}",
            )


# ----------------------------------------------------------------------------- pages


def what_if_page(source: str, base_sc: twin.Scenario, duration_h: float, values: dict[str, Any]) -> None:
    """Run both scenarios (cached) and draw the comparison."""
    try:
        run_ov = {
            **lv.run_overrides(base_sc, duration_h),
            **lv.request_level_overrides(bool(st.session_state.get("request_level"))),
        }
        what_ov = lv.what_if_overrides(lv.windowed(base_sc, duration_h), values)
        t0 = time.perf_counter()
        base = simulate_cached(source, lv.overrides_key(run_ov))
        what_if = simulate_cached(source, lv.overrides_key({**run_ov, **what_ov}))
        elapsed = time.perf_counter() - t0
    except TwinError as exc:
        show_error(exc)
        return

    st.markdown(
        f"**{base_sc.name}** — {what_if.meta['n_gpus']:,} × {what_if.meta['accelerator']} in "
        f"{what_if.meta['n_servers']:,} servers, {duration_h:g} h simulated: "
        f"**{lv.window_text(lv.window_start(base_sc, duration_h), duration_h)}**. "
        f"This page took {elapsed:.2f} s (the what-if simulated in {what_if.meta['wall_time_s']:.2f} s; "
        "a lever setting seen before comes from the cache)."
    )
    if not what_ov:
        st.info("The what-if equals the baseline: change a lever in the sidebar.")
    st.code(lv.cli_command(source, {**run_ov, **what_ov}), language="bash", wrap_lines=True)
    if what_if.meta.get("serving_error") is not None:  # the serving model's measured error on this accelerator
        st.caption(ServingAccuracy(**what_if.meta["serving_error"]).describe())
    for warning in what_if.meta.get("warnings", []):
        st.warning(warning)
    for reason in explain.no_effect(base, what_if, what_ov):
        st.info(reason)
    fault_h = values.get("fault_start_h")
    if values.get("fault", "scenario") not in ("scenario", "clear") and fault_h is not None and fault_h >= duration_h:
        st.warning(f"The fault at {fault_h:g} h comes after the end of the {duration_h:g} h run: it does not happen.")

    st.subheader("Energy in, tokens out")
    kpi_cards(base.kpis, what_if.kpis)

    st.subheader("Where the energy goes")
    flow = frames.flow_comparison(base.kpis, what_if.kpis)
    flow["group_order"] = flow["group"].map({g: i for i, g in enumerate(frames.FLOW_GROUPS)})
    st.altair_chart(flow_chart(flow), width="stretch")
    sankey_pair(base, what_if)
    schematic_pair(source, run_ov, what_ov)
    st.markdown(
        f"- **baseline:** {frames.flow_sentence(base.kpis)}\n- **what-if:** {frames.flow_sentence(what_if.kpis)}"
    )
    with st.expander("Energy by ledger category"):
        table = flow.pivot_table(index=["group", "category"], columns="run", values="energy_kwh", sort=False)
        st.dataframe(table.style.format("{:,.1f}"), width="stretch")

    st.subheader("Power and PUE over time")
    charts(base, what_if, ["facility_power_w", "pue", "tokens_per_s", "cooling_power_w"])
    st.subheader("Temperatures and throttling")
    charts(base, what_if, ["die_temp_max_c", "inlet_temp_max_c", "throttled_fraction", "capped_fraction"])

    if frames.has_fault_outcomes(base, what_if):
        fault_section(base, what_if)
    if frames.latency_pools(what_if.kpis):
        st.subheader("Latency per workload")
        st.dataframe(
            frames.latency_table(base.kpis, what_if.kpis).style.format(
                {f"{frames.BASELINE} [ms]": "{:,.1f}", f"{frames.WHAT_IF} [ms]": "{:,.1f}", "change %": frames.signed},
                na_rep="",
            ),
            hide_index=True,
            width="stretch",
        )
        st.caption(
            "Time to first token and time per output token from the fluid queue: the spread over ticks and "
            "servers, weighted by requests (TTFT) or tokens (TPOT); see the README's latency estimates."
        )
    cdf = frames.latency_cdf(base, what_if)
    if len(cdf):
        window = what_if.meta["request_level"]
        st.subheader("Latency distribution, request by request")
        c1, c2 = st.columns(2)
        for col, metric in zip((c1, c2), ("TTFT", "TPOT"), strict=True):
            col.altair_chart(cdf_chart(cdf[cdf["metric"] == metric], metric), width="stretch")
        st.caption(
            f"{window['ranks']} ranks of each inference pool replayed request by request over "
            f"{window['start_s']:,.0f}-{window['end_s']:,.0f} s of each run (the busiest interval), at the run's "
            "clock: a cap, the site limit or throttling moves the curves right. Share of requests at or below "
            "each latency (log bins, 20 a decade)."
        )

    st.subheader("Side by side")
    inlet = frames.inlet_medium(base, what_if)
    st.table(frames.comparison_text(base.kpis, what_if.kpis, inlet).set_index("KPI"))  # a table wraps: nothing cut

    st.subheader("Download")
    d = st.columns(5)
    d[0].download_button(
        "summary.json (what-if)",
        frames.summary_json(what_if, what_ov),
        "summary.json",
        "application/json",
        key="dl_summary",
    )
    d[1].download_button(
        "timeseries.csv", frames.timeseries_csv(what_if), "timeseries.csv", "text/csv", key="dl_ts_csv"
    )
    d[2].download_button(
        "timeseries.parquet",
        frames.timeseries_parquet(what_if),
        "timeseries.parquet",
        "application/vnd.apache.parquet",
        key="dl_ts_parquet",
    )
    d[3].download_button("ledger.csv", frames.ledger_csv(what_if), "ledger.csv", "text/csv", key="dl_ledger")
    d[4].download_button(
        "baseline summary.json", frames.summary_json(base), "baseline-summary.json", "application/json", key="dl_base"
    )


def fault_section(base: twin.Result, what_if: twin.Result) -> None:
    """Faults and controls: what was lost, servers up and the battery over time, the events."""
    st.subheader("Faults and controls")
    kpi_cards(base.kpis, what_if.kpis, frames.FAULT_CARDS)
    quantities = ["servers_up"]
    if any("battery_soc" in r.timeseries and r.timeseries["battery_soc"].notna().any() for r in (base, what_if)):
        quantities.append("battery_soc")
    charts(base, what_if, quantities, per_row=len(quantities))
    st.markdown(f"**Events of the what-if** ({len(what_if.events)})")
    st.dataframe(
        frames.events_table(what_if).style.format({"time [h]": "{:.3f}", "time [s]": "{:,.1f}"}),
        hide_index=True,
        width="stretch",
    )
    with st.expander(f"Events of the baseline ({len(base.events)})"):
        st.dataframe(frames.events_table(base), hide_index=True, width="stretch")


def sweep_page() -> None:
    """Plot any KPI of a sweep result folder against any other column."""
    st.markdown(
        "A sweep folder holds `summary.parquet` or `summary.csv`: one row per point, the swept fields "
        "and every KPI as columns."
    )
    path = st.text_input("Sweep folder (or summary file)", key="sweep_path").strip()
    upload = st.file_uploader("…or upload a summary.csv / summary.parquet", type=["csv", "parquet"], key="sweep_upload")
    try:
        if path:
            frame = sweeps.load_sweep(path)
        elif upload is not None:
            frame = sweeps.read_summary_bytes(upload.name, upload.getvalue())
        else:
            return
        x0, y0 = sweeps.default_axes(frame)
    except TwinError as exc:
        show_error(exc)
        return
    columns = [str(c) for c in frame.columns]
    numeric = sweeps.numeric_columns(frame)
    c1, c2, c3 = st.columns(3)
    x = c1.selectbox("x axis", columns, index=columns.index(x0), key="sweep_x")
    y = c2.selectbox("y axis (KPI)", numeric, index=numeric.index(y0), key="sweep_y")
    color = c3.selectbox("colour by", ["(none)", *columns], key="sweep_color")
    color_col = None if color == "(none)" else color
    try:
        data = sweeps.plot_frame(frame, x, y, color_col)
    except TwinError as exc:
        show_error(exc)
        return
    st.altair_chart(sweeps.chart(data, x, y, color_col), width="stretch")
    st.caption(f"{len(frame)} points, {len(columns)} columns")
    st.dataframe(frame, width="stretch", hide_index=True)
    st.download_button("summary.csv", frame.to_csv(index=False).encode(), "summary.csv", "text/csv", key="dl_sweep")


def main() -> None:
    """The page."""
    st.title("AI-factory twin — what-if")
    source = pick_scenario()
    try:
        base_sc = load_base(source)
    except TwinError as exc:
        show_error(exc)
        return
    duration_h, values = sidebar(base_sc, source)
    tab_what_if, tab_sweep = st.tabs(["What-if", "Sweep results"])
    with tab_what_if:
        what_if_page(source, base_sc, duration_h, values)
    with tab_sweep:
        sweep_page()


main()
