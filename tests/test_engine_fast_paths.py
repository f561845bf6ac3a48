"""The engine's fast paths give the results of the plain ones.

Grouped servers against one column per server, blocks spanning report intervals against blocks
cut at every report, blocks of ticks through a cooling transient against stepping it one tick at a
time, the closed-form die steps against the exact step tick by tick, and the vectorised
per-interval latency quantiles against one histogram per interval.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from twin import load_scenario, simulate
from twin.engine import columns, kernel, transient
from twin.engine.pool_stats import QUANTILES, WeightedHistogram, _Binned, _segment_stats
from twin.engine.segments import IntervalAccumulator, Segments
from twin.physics.thermal import die_steps, rc_step


def busy_day():
    """The default pod for 4 h: random server and GPU faults, an outage on battery and generator,
    a chiller trip, a demand-response window and a capped GPU fleet."""
    return load_scenario(
        "default",
        {
            "duration_s": 4 * 3600,
            "step_s": 2,
            "report_interval_s": 120,
            "fleet.power_cap_w": 650,
            "power.ups.battery": {"runtime_s": 120},
            "power.generator": {"rated_w": 2.0e6, "start_delay_s": 60},
            "reliability": {"server": {"mtbf_h": 30.0, "mttr_h": 0.5}, "gpu": {"mtbf_h": 400.0, "mttr_h": 1.0}},
            "events": [
                {"time_s": 1800, "kind": "utility_loss", "duration_s": 600},
                {"time_s": 7200, "kind": "chiller_trip", "count": 2, "duration_s": 900},
            ],
            "controls.demand_response": [{"start_s": 10000, "duration_s": 1200, "limit_w": 0.8e6}],
        },
    )


def odd_grid():
    """Ticks of 7 s, reports of 630 s, weather hours at :29:30, a last interval of 180 s, and a
    chiller outage that leaves heat unmet (the plant leaves rest, blocks step tick by tick)."""
    return load_scenario(
        "default",
        {
            "duration_s": 3 * 3600 + 90,
            "step_s": 7,
            "report_interval_s": 630,
            "start": "2024-07-15T08:29:30",
            "cooling.economiser": False,
            "events": [{"time_s": 1000, "kind": "chiller_trip", "count": 9, "duration_s": 900}],
            "reliability": {"server": {"mtbf_h": 30.0, "mttr_h": 0.3}},
        },
    )


SCENARIOS = {"busy_day": busy_day, "odd_grid": odd_grid}


def assert_same(a, b, rtol=1e-12, event_rtol=None):
    """Same time series, events and KPIs; event times to ``event_rtol`` if given (else exactly)."""
    assert list(a.timeseries.columns) == list(b.timeseries.columns)
    for col in a.timeseries.columns:
        np.testing.assert_allclose(a.timeseries[col], b.timeseries[col], rtol=rtol, atol=1e-9, err_msg=col)
    if event_rtol is None:
        pd.testing.assert_frame_equal(a.events, b.events)
    else:
        pd.testing.assert_frame_equal(a.events.drop(columns="time_s"), b.events.drop(columns="time_s"))
        np.testing.assert_allclose(a.events["time_s"], b.events["time_s"], rtol=event_rtol)
    for k, v in a.kpis.items():
        assert b.kpis[k] == pytest.approx(v, rel=rtol, abs=1e-6, nan_ok=True), k


@pytest.fixture(scope="module", params=sorted(SCENARIOS))
def case(request):
    build = SCENARIOS[request.param]
    return build, simulate(build(), debug=True)


def group_sizes(monkeypatch) -> list[int]:
    """The number of columns of every grouping the engine makes from here on (appended as made)."""
    sizes: list[int] = []
    group = columns.Columns.group.__func__

    def recording(cls, *a, **kw):
        c = group(cls, *a, **kw)
        sizes.append(c.n)
        return c

    monkeypatch.setattr(columns.Columns, "group", classmethod(recording))
    return sizes


def test_grouped_servers_give_the_per_server_results(case, monkeypatch):
    build, run = case
    sizes = group_sizes(monkeypatch)
    grouped = simulate(build())
    assert min(sizes) <= 3  # the two pools, and a split-off server or two: the run really was grouped
    assert len(run.events) > 10
    monkeypatch.setattr(columns, "GROUP_WHEN_BELOW", 0.0)  # never group: one column per server
    per_server = simulate(build())
    assert_same(grouped, per_server)
    assert_same(run, per_server)


def test_servers_leaving_and_joining_jobs_regroup_with_the_per_server_results(tmp_path, monkeypatch):
    """A mixed fleet (per-server trace offsets, and a job trace packed onto its pool): the job
    pool's servers in jobs (or idle) through a block share a column, and the groups follow the
    jobs as they start and end and servers fail and come back; every figure is the
    one-column-per-server run's."""
    jobs = tmp_path / "jobs.csv"  # GPUs: 24 all along; 40 for 2 h; 32 from 1 h to 3 h; 8 in the last hour
    jobs.write_text("job_id,start_s,duration_s,gpus\nb,0,14400,24\na,0,7200,40\nc,3600,7200,32\nd,10800,3600,8\n")
    chat = {"name": "chat", "kind": "inference", "model": "Llama-3.1-8B", "max_batch": 64, "servers": 8,
            "arrivals": {"kind": "trace", "path": "azure-llm-2023-conv", "requests_per_s": 40.0}}  # fmt: skip
    train = {"name": "train", "kind": "training", "model": "Llama-3.1-8B", "servers": 24, "jobs": {"path": str(jobs)}}
    over = {"fleet.gpus_per_server": 4, "fleet.servers_per_rack": 4, "fleet.racks_per_row": 2, "fleet.rows": 4,
            "duration_s": 4 * 3600, "step_s": 10, "report_interval_s": 600, "workloads": [chat, train],
            "reliability": {"server": {"mtbf_h": 20.0, "mttr_h": 0.3}}}  # fmt: skip
    build = lambda: load_scenario("default", over)  # noqa: E731
    monkeypatch.setattr(kernel, "MAX_BLOCK_CELLS", 32 * 40)  # blocks of 40 ticks or more: ~36 of them
    sizes = group_sizes(monkeypatch)
    grouped = simulate(build())
    # a column per chat server (its own offset); the job pool's servers in jobs, idle, and those
    # next to the edge between them (JobSource.steady keeps them apart): 4 columns for 24 servers
    assert min(sizes) <= 8 + 4
    assert len(set(sizes)) > 2  # regrouped as the jobs started and ended and servers failed
    assert (grouped.events["event"] == "server_fail").sum() >= 2
    monkeypatch.setattr(columns, "GROUP_WHEN_BELOW", 0.0)  # never group: one column per server
    assert_same(grouped, simulate(build()))


def test_servers_on_one_trace_phase_share_a_column_with_the_per_server_results(monkeypatch):
    """Trace offsets fall on the tick grid: at 5-minute ticks the Azure hour holds 12 phases, so 48
    chat servers (each merging three shifted copies) replay at most 12 distinct streams and are
    computed as that many columns, with every figure of the one-column-per-server run."""
    arrivals = {"kind": "trace", "path": "azure-llm-2023-conv", "requests_per_s": 400.0, "copies": 3}
    chat = {"name": "chat", "kind": "inference", "model": "Llama-3.1-8B", "max_batch": 64, "servers": 48,
            "arrivals": arrivals}  # fmt: skip
    over = {"fleet.gpus_per_server": 4, "fleet.servers_per_rack": 4, "fleet.racks_per_row": 3, "fleet.rows": 4,
            "duration_s": 3 * 3600, "step_s": 300, "report_interval_s": 900, "workloads": [chat]}  # fmt: skip
    build = lambda: load_scenario("default", over)  # noqa: E731
    sizes = group_sizes(monkeypatch)
    grouped = simulate(build())
    assert max(sizes) <= 12
    monkeypatch.setattr(columns, "GROUP_WHEN_BELOW", 0.0)  # never group: one column per server
    per_server = simulate(build())
    assert_same(grouped, per_server)


def test_blocks_across_report_intervals_give_the_per_interval_results(case, monkeypatch):
    build, run = case
    monkeypatch.setattr(kernel.Engine, "_may_span", lambda self: False)
    assert_same(run, simulate(build()))
    if build is odd_grid:
        assert run.kpis["unmet_heat_j"] > 0  # the plant left rest: spanning had to stop and resume
        assert run.timeseries["duration_s"].iloc[-1] == 180.0  # 3 h 1.5 min = 17 x 630 s + 180 s


def outage_and_cooling_loss():
    """The default pod for 1.5 h: a utility outage with no generator (cooling stops, the room air
    trips the servers, the battery carries the rest), then all four CDU pumps fail (the loop warms,
    dies reach their shutdown temperature): the plant's nodes move fast for most of the run."""
    return load_scenario(
        "default",
        {
            "duration_s": 5400,
            "report_interval_s": 60,
            "power.ups.battery": {"runtime_s": 300},
            "power.generator": None,
            "events": [
                {"time_s": 300, "kind": "utility_loss", "duration_s": 1500},
                {"time_s": 3600, "kind": "cdu_pump_fail", "count": 4, "duration_s": 900},
            ],
        },
    )


def hot_air_room():
    """An air-cooled room with its rack mass, one chiller out, losing the two running on a July afternoon:
    the room warms, the GPUs throttle (the governor holds them) and some shut down."""
    return load_scenario(
        "default",
        {
            "duration_s": 3600,
            "start": "2024-07-20T13:00:00",
            "report_interval_s": 60,
            "weather": {"source": "greensboro-nc"},
            "cooling.type": "air",
            "cooling.crah_supply_air_c": 24,
            "cooling.room_extra_heat_capacity_j_k_per_rack": 5.0e5,
            "events": [
                {"time_s": 0, "kind": "chiller_trip", "count": 1},
                {"time_s": 300, "kind": "chiller_trip", "count": 2, "duration_s": 1800},
            ],
        },
    )


def outage_with_traces():
    """The default pod's pools replaying the Azure traces, each server at its own offset, losing the
    utility (no generator) for 20 min: queues everywhere while the loop warms and GPU Boost drops bins."""
    conv = {"kind": "trace", "path": "azure-llm-2023-conv", "requests_per_s": 700.0}
    code = {"kind": "trace", "path": "azure-llm-2023-code", "requests_per_s": 1200.0}
    chat_pool = {"name": "chat-70b", "kind": "inference", "model": "Llama-3-70B", "tensor_parallel": 8}
    code_pool = {"name": "code-8b", "kind": "inference", "model": "Llama-3.1-8B", "tensor_parallel": 1}
    return load_scenario(
        "default",
        {
            "duration_s": 1500,
            "report_interval_s": 60,
            "power.ups.battery": {"runtime_s": 300},
            "power.generator": None,
            "workloads": [
                {**chat_pool, "max_batch": 512, "servers": 96, "arrivals": conv},
                {**code_pool, "max_batch": 128, "servers": 32, "arrivals": code},
            ],
            "events": [{"time_s": 300, "kind": "utility_loss", "duration_s": 1200}],
        },
    )


@pytest.mark.parametrize("build", [outage_and_cooling_loss, hot_air_room, outage_with_traces])
def test_transient_blocks_give_the_one_tick_results(build, monkeypatch):
    """Blocks of ticks through a transient (passes until each tick starts where the last ended)
    against stepping the plant's nodes one tick at a time: equal to 1e-9 (event times to 1e-12 s
    relative); the governor's own tolerance never enters, as ticks where it holds a serving GPU
    are stepped one at a time, nor does the clock-1 solve's queue (``Block.boost_ticks``). 1e-9,
    not 1e-10, for the grid ramp: a difference of two megawatt powers over a tick, whose last
    digits are rounding (1.8e-10 apart with the racks' steel in the room)."""
    ticks, boost_cut = [], []
    compute = kernel.Engine._compute

    def recording(self, t0, t1, excess_k=None):
        b = compute(self, t0, t1, excess_k)
        if excess_k is not None:
            ticks.append(t0.size)
            boost_cut.append(b.boost_ticks < t0.size)
        return b

    monkeypatch.setattr(kernel.Engine, "_compute", recording)
    blocks = simulate(build(), debug=True)
    assert max(ticks) >= 30  # the transient really went in blocks of many ticks
    if build is outage_with_traces:  # a tick served below boost left other queues than the clock-1 solve's
        assert any(boost_cut)
    monkeypatch.setattr(transient, "TRANSIENT_TICKS", 1)
    one_tick = simulate(build(), debug=True)
    assert blocks.kpis["unmet_heat_j"] > 0 and blocks.events["event"].eq("thermal_shutdown").any()
    assert_same(blocks, one_tick, rtol=1e-9, event_rtol=1e-12)


def test_die_steps_are_the_exact_rc_step_tick_by_tick():
    rng = np.random.default_rng(3)
    for dt, tau in ((1.0, 2.0), (0.1, 2.0), (60.0, 2.0), (5.0, 1e6)):
        steady = 40 + 50 * rng.random((700, 5))
        die0 = 30 + rng.random(5)
        dts = np.full(700, dt)
        dts[0], dts[-1] = 0.3 * dt, 0.7 * dt  # partial first and last ticks
        live = np.array([True, True, False, True, True])
        end, hottest = die_steps(die0, steady, tau, dts, live)
        die, expect = die0, []
        for k in range(dts.size):
            die = rc_step(die, steady[k], tau, dts[k])
            expect.append(die[live].max())
        np.testing.assert_allclose(end, die, rtol=1e-13)
        np.testing.assert_allclose(hottest, expect, rtol=1e-13)


@pytest.mark.parametrize("dense", [True, False])
def test_interval_quantiles_are_those_of_one_histogram_per_interval(dense):
    rng = np.random.default_rng(5)
    values = np.exp(rng.normal(-3, 1.5, size=(40, 6)))
    weights = rng.random((40, 6)) * (rng.random((40, 6)) > 0.2)
    weights[3, 2] = np.inf * 0  # NaN weight: ignored, as by the histogram
    values[5, 1] = np.inf
    tick_segment = np.repeat(np.arange(5), 8)
    weights[16:24] = 0.0  # an interval with nothing in it
    b = _Binned(values, weights)
    got = _segment_stats(b.idx, b.w, b.wv, tick_segment[b.tick], 5, dense=dense)
    for s in range(5):
        h = WeightedHistogram()
        h.add(values[tick_segment == s], weights[tick_segment == s])
        for q, frac in QUANTILES.items():
            assert got[q][s] == pytest.approx(h.quantile(frac), rel=1e-12, nan_ok=True)
        assert got["mean"][s] == pytest.approx(h.mean(), rel=1e-12, nan_ok=True)


def test_interval_accumulator_closes_intervals_across_blocks():
    acc = IntervalAccumulator({"e": "sum", "peak": "max"})
    acc.add_scalar("e", 1.0)  # an event's contribution to the open interval
    # A block of 6 ticks in 3 segments; the first continues the open interval, the last stays open.
    seg = Segments(np.array([0, 2, 5]), 6, closed=2)
    acc.add(seg, {"e": seg.sum(np.arange(6.0)), "peak": seg.max(np.array([1, 5, 2, 2, 9, 3.0]))})
    assert acc.open == {"e": 5.0, "peak": 3.0}
    got = acc.take()
    np.testing.assert_array_equal(got["e"], [1.0 + 0 + 1, 2 + 3 + 4])
    np.testing.assert_array_equal(got["peak"], [5.0, 9.0])
    acc.close_open()
    np.testing.assert_array_equal(acc.take()["e"], [5.0])


@pytest.mark.parametrize("source", ["greensboro-nc", "diurnal", "constant"])
def test_weather_lookup_on_arrays_is_weather_at(source):
    from twin.facility_inputs import load_weather
    from twin.weather import weather_at

    sc = load_scenario("default", {"weather.source": source, "start": "2024-03-07T05:17:00"})
    w = load_weather(sc.weather, sc.start, None, sc.duration_s)
    t = np.sort(np.random.default_rng(0).uniform(0, 3e7, 2000))
    t[:3] = [0.0, 2580.0, 2580.0 + 3600.0]  # the first weather change is at 06:00, 2 580 s in
    got, want = w.at_times(t), weather_at(w.frame, sc.start, t)
    assert set(got) == set(want)
    for k in want:
        np.testing.assert_array_equal(got[k], want[k])
    assert w.changes_in(0.0, 3 * 3600.0).tolist() == ([] if source == "constant" else [2580.0, 6180.0, 9780.0])
