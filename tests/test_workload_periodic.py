"""Periodic cumulative functions against the request-level controls and binning they replace."""

import doctest

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import twin.workload.periodic as periodic
from twin.workload import AZURE_LLM_2023, bin_requests, loop_trace, read_trace, resample_telemetry, trace_period_s
from twin.workload.periodic import MAX_BUCKET, BucketedSearch, PeriodicEvents, PeriodicSignal


@pytest.fixture(scope="module")
def conv():
    return read_trace(AZURE_LLM_2023["conv"])[0]


def events_of(df, loop=True):
    t = df["arrival_s"].to_numpy() - df["arrival_s"].min()
    w = {"prompt": df["prompt_tokens"].to_numpy(), "output": df["output_tokens"].to_numpy()}
    return PeriodicEvents(t, w, trace_period_s(df), loop)


def test_doctests():
    assert doctest.testmod(periodic).failed == 0


def test_window_sums_equal_binning_of_the_looped_trace(conv):
    # Independent route: materialise the looped trace (loop_trace) and bin it (bin_requests).
    ev = events_of(conv)
    step, n = 7.0, 1300  # 9 100 s: the hour-long trace looped into a third period
    looped = loop_trace(conv, step * n)
    bins = bin_requests(looped, 0.0, step, n)
    edges = step * np.arange(n + 1)
    sums = ev.edge_sums(edges)
    np.testing.assert_array_equal(sums["count"], bins.requests)
    np.testing.assert_array_equal(sums["prompt"], bins.prompt_tokens)
    np.testing.assert_array_equal(sums["output"], bins.output_tokens)


def test_offset_copy_is_the_circular_shift(conv):
    # A copy shifted by o holds the trace's request at u at (u - o) mod P.
    ev = events_of(conv)
    period = ev.period_s
    o = 1234.5
    shifted = conv.assign(arrival_s=np.mod(conv["arrival_s"].to_numpy() - o, period))
    step, n = 10.0, int(period // 10)
    bins = bin_requests(shifted.sort_values("arrival_s"), 0.0, step, n)
    sums = ev.edge_sums(step * np.arange(n + 1), offset_s=o)
    np.testing.assert_array_equal(sums["output"], bins.output_tokens)
    # Over a whole period every copy holds the whole trace, whatever its offset.
    for off in (0.0, 17.0, period / 3):
        whole = ev.window_sums([0.0], [period], off)
        assert whole["prompt"][0] == conv["prompt_tokens"].sum()


def test_no_loop_copy_ends_after_one_period(conv):
    ev = events_of(conv, loop=False)
    p = ev.period_s
    total = ev.window_sums([0.0], [10 * p], offset_s=500.0)
    assert total["count"][0] == len(conv)
    assert ev.window_sums([p], [3 * p], offset_s=500.0)["count"][0] == 0


def test_blocks_broadcast_ticks_by_servers(conv):
    ev = events_of(conv)
    t0 = np.arange(0.0, 60.0, 1.0)
    offsets = np.array([0.0, 100.0, 2000.0])
    block = ev.window_sums(t0[:, None], t0[:, None] + 1.0, offsets[None, :])["count"]
    assert block.shape == (60, 3)
    for j, o in enumerate(offsets):
        np.testing.assert_array_equal(block[:, j], ev.window_sums(t0, t0 + 1.0, o)["count"])


def test_signal_means_equal_resampled_telemetry():
    # A ZOH signal sampled irregularly: PeriodicSignal over one period must match resample_telemetry.
    rng = np.random.default_rng(1)
    t = np.concatenate(([0.0], np.sort(rng.uniform(0, 100, 40))))
    v = rng.uniform(0, 1, t.size)
    sig = PeriodicSignal(t, v, 100.0, loop=True)
    df = pd.DataFrame({"time_s": t, "gpu_index": 0, "u": v})
    step, n = 2.5, 40
    expected = resample_telemetry(df, 0.0, step, n, "u")
    edges = step * np.arange(n + 1)
    np.testing.assert_allclose(sig.window_mean(edges[:-1], edges[1:]), expected, rtol=1e-12)
    # Looped: the mean over any whole number of periods is the period mean, at any offset.
    assert float(sig.window_mean([3.0], [303.0], 41.0)[0]) == pytest.approx(sig.mean, rel=1e-12)


def test_signal_without_loop_holds_after_value():
    sig = PeriodicSignal([0.0, 5.0], [1.0, 0.5], 10.0, loop=False, after=0.0)
    # [0,10) has mean 0.75; [10, 30) is past the end: 0. Over [0, 20): 7.5 / 20.
    assert float(sig.window_mean([0.0], [20.0])[0]) == pytest.approx(7.5 / 20)


def test_rejects_bad_inputs():
    with pytest.raises(ValueError, match="period_s"):
        PeriodicEvents([0.0], {}, 0.0, True)
    with pytest.raises(ValueError, match="event times"):
        PeriodicEvents([0.0, 5.0], {}, 5.0, True)
    with pytest.raises(ValueError, match="starts_s"):
        PeriodicSignal([1.0], [0.0], 5.0, True)


# --- BucketedSearch: the O(1) lookup must give np.searchsorted's answer exactly ----------------

_values = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_subnormal=True)


@settings(max_examples=300, deadline=None)
@given(
    a=st.lists(_values, min_size=1, max_size=200),
    v=st.lists(st.one_of(_values, st.sampled_from([-np.inf, np.inf, 0.0, -0.0])), min_size=1, max_size=200),
    side=st.sampled_from(["left", "right"]),
)
def test_bucketed_search_equals_searchsorted(a, v, side):
    # Irregular arrays, ties, a single value, queries on and between the values and far outside.
    arr = np.sort(np.asarray(a))
    q = np.concatenate((np.asarray(v), arr, np.nextafter(arr, np.inf), np.nextafter(arr, -np.inf)))
    np.testing.assert_array_equal(BucketedSearch(arr, side)(q), np.searchsorted(arr, q, side))


@settings(max_examples=200, deadline=None)
@given(
    start=st.floats(min_value=-1e4, max_value=1e4),
    step=st.floats(min_value=1e-3, max_value=1e3),
    n=st.integers(min_value=1, max_value=500),
    frac=st.lists(st.floats(min_value=-0.5, max_value=1.5), min_size=1, max_size=50),
    side=st.sampled_from(["left", "right"]),
)
def test_bucketed_search_on_regular_grids(start, step, n, frac, side):
    # A resampled signal's starts: a regular grid, queried on its points and anywhere in its span.
    grid = start + step * np.arange(n)
    q = np.concatenate((grid, start + step * n * np.asarray(frac)))
    search = BucketedSearch(grid, side)
    assert search.fast
    np.testing.assert_array_equal(search(q), np.searchsorted(grid, q, side))


def test_bucketed_search_shapes_and_fallback(conv):
    t = np.sort(conv["arrival_s"].to_numpy() - conv["arrival_s"].min())
    search = BucketedSearch(t, "left")
    assert search.fast  # the trace's requests spread over the buckets
    q = np.random.default_rng(3).uniform(-1.0, t[-1] + 1.0, size=(7, 11))  # a (servers, edges) block
    np.testing.assert_array_equal(search(q), np.searchsorted(t, q))
    assert search(np.float64(t[5])).shape == ()
    ties = np.zeros(MAX_BUCKET + 1)  # one bucket holding more than MAX_BUCKET values: binary search
    assert not BucketedSearch(ties).fast
    np.testing.assert_array_equal(BucketedSearch(ties, "right")([-1.0, 0.0, 1.0]), [0, MAX_BUCKET + 1, MAX_BUCKET + 1])
    for extreme in ([0.0, 5e-324], [-1e308, 1e308], [1.0]):  # a span too small or too large to scale
        arr = np.asarray(extreme)
        q = np.array([-np.inf, -1e308, 0.0, 5e-324, 1.0, 1e308, np.inf])
        for side in ("left", "right"):
            np.testing.assert_array_equal(BucketedSearch(arr, side)(q), np.searchsorted(arr, q, side))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(-3, 3), min_size=1, max_size=6),
    st.booleans(),
    st.floats(0.0, 25.0),
    st.floats(0.01, 25.0),
)
def test_value_range_is_that_of_the_values_held_in_the_window(values, loop, from_s, width_s):
    """Least and greatest value over [from, to): those of the pieces a fine sampling of the window meets."""
    n = len(values)
    starts = np.arange(n) * 2.0  # pieces of 2 s; period 2 n s
    sig = PeriodicSignal(starts, np.asarray(values, dtype=float), 2.0 * n, loop=loop, after=-7.0)
    to_s = from_s + width_s
    # A piece is held where the window covers any of it: sample the window finely, and its last instant.
    t = np.union1d(np.linspace(from_s, to_s, 4001)[:-1], [to_s - 1e-9])
    r = np.mod(t, 2.0 * n)
    held = np.asarray(values, dtype=float)[np.minimum((r // 2.0).astype(int), n - 1)]
    if not loop:
        held = np.where(t >= 2.0 * n, -7.0, held)
    lo, hi = sig.value_range(to_s, from_s)
    assert lo <= held.min() and hi >= held.max()  # never narrower than what the window holds
    edges = np.arange(0.0, to_s + 2.0 * n + 2.0, 2.0)
    if not np.any(np.abs(edges - to_s) < 0.01) and not np.any(np.abs(edges - from_s) < 0.01):
        assert (lo, hi) == (held.min(), held.max())  # away from a piece's edge: exactly it
