"""The one-page report (report.png): labels a reader understands, clock time, nothing hidden."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import matplotlib.pyplot as plt
import pytest
from matplotlib.figure import Figure

import twin
from twin.ledger import category_label
from twin.report import report_figure

#: Two hours of the default pod from 13:00.
SHORT = {"start": "2024-07-15T13:00:00", "duration_s": 7200}


@pytest.fixture(scope="module")
def result() -> twin.Result:
    return twin.simulate(twin.load_scenario("default", SHORT))


@pytest.fixture
def fig(result: twin.Result) -> Iterator[Figure]:
    figure = report_figure(result)
    figure.canvas.draw()
    yield figure
    plt.close(figure)


def test_energy_bars_are_named_in_words_and_the_residual_is_a_note(result: twin.Result, fig: Figure) -> None:
    bars = fig.axes[2]
    labels = [t.get_text() for t in bars.get_yticklabels()]
    categories = [k[len("energy_") : -2] for k in result.kpis if k.startswith("energy_") and k.endswith("_j")]
    assert sorted(labels) == sorted(category_label(c) for c in categories)
    assert "UPS loss" in labels and "PSU loss" in labels
    assert not any("_" in label for label in labels)
    assert all("residual" not in ax.get_title() for ax in fig.axes)
    assert any("metered minus booked" in t.get_text() for t in bars.texts)


def test_time_axes_are_clock_time_and_numbers_group_thousands(fig: Figure) -> None:
    power, pue, _, temps = fig.axes[:4]
    for ax in (power, pue, temps):
        ticks = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
        assert ticks and all(len(t) == 5 and t[2] == ":" for t in ticks), ticks  # HH:MM
        assert min(ticks) >= "13:00" and max(ticks) <= "15:00"
        assert ax.get_xlabel() == "clock time on 15 Jul 2024"
    assert power.yaxis.get_major_formatter()(12000.0, 0) == "12,000"
    # the energy axis and the tokens axis too
    assert fig.axes[2].xaxis.get_major_formatter()(12000.0, 0) == "12,000"
    tokens_axis = next(ax for ax in fig.axes[4:] if "tokens" in ax.get_ylabel())
    assert tokens_axis.yaxis.get_major_formatter()(412000.0, 0) == "412,000"


def test_power_legend_is_not_over_the_power_plot(fig: Figure) -> None:
    power = fig.axes[0]
    legend = power.get_legend()
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    box, plot = legend.get_window_extent(renderer), power.get_window_extent(renderer)
    assert box.y1 < plot.y0  # wholly below the axes (display y grows upwards)


def test_inlet_temperature_says_coolant_or_air(result: twin.Result, fig: Figure) -> None:
    temps = fig.axes[3]
    assert "max coolant inlet temperature" in [t.get_text() for t in temps.get_legend().get_texts()]
    air = dataclasses.replace(result, scenario={**result.scenario, "cooling": {"type": "air"}})
    assert air.inlet_medium == "air"


def test_a_run_of_several_days_shows_dates(result: twin.Result) -> None:
    ts = result.timeseries.copy()
    ts["time_s"] = ts["time_s"] * 36  # 2 h of rows spread over 3 days: the axis is what is tested
    figure = report_figure(dataclasses.replace(result, timeseries=ts))
    try:
        figure.canvas.draw()
        ax = figure.axes[0]
        assert ax.get_xlabel() == "date and clock time"
        assert any("Jul" in t.get_text() or t.get_text().isdigit() for t in ax.get_xticklabels())
    finally:
        plt.close(figure)
